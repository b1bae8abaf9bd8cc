package debroot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const debianSources = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

func TestParseDeb822(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []aptSource
	}{
		{
			name: "debian.sources of this machine",
			in:   debianSources,
			want: []aptSource{
				{Types: []string{"deb"}, URI: "http://deb.debian.org/debian", Suite: "bookworm", Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", File: "f"},
				{Types: []string{"deb"}, URI: "http://deb.debian.org/debian", Suite: "bookworm-updates", Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", File: "f"},
				{Types: []string{"deb"}, URI: "http://deb.debian.org/debian-security", Suite: "bookworm-security", Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", File: "f"},
			},
		},
		{
			name: "disabled stanza, two URIs, lower-case keys, inline key",
			in: "Types: deb deb-src\nURIs: http://a/debian http://b/debian\nSuites: bookworm\nComponents: main contrib\n" +
				"Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n -----END PGP PUBLIC KEY BLOCK-----\n\n" +
				"types: deb\nuris: http://c/debian\nsuites: bookworm\ncomponents: main\nEnabled: no\n",
			want: []aptSource{
				{Types: []string{"deb", "deb-src"}, URI: "http://a/debian", Suite: "bookworm", Components: []string{"main", "contrib"}, File: "f"},
				{Types: []string{"deb", "deb-src"}, URI: "http://b/debian", Suite: "bookworm", Components: []string{"main", "contrib"}, File: "f"},
			},
		},
		{name: "empty", in: "\n# nothing\n", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, parseDeb822(tt.in, "f"))
		})
	}
}

func TestParseOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []aptSource
	}{
		{
			name: "plain",
			in:   "deb http://deb.debian.org/debian bookworm main contrib\n",
			want: []aptSource{{Types: []string{"deb"}, URI: "http://deb.debian.org/debian", Suite: "bookworm", Components: []string{"main", "contrib"}, File: "f"}},
		},
		{
			name: "options, comments, deb-src",
			in: "# deb http://old/debian bookworm main\n" +
				"deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m/debian bookworm main # trailing\n" +
				"deb [ trusted=yes ] file:/srv/repo ./\n" +
				"deb-src http://m/debian bookworm main\n",
			want: []aptSource{
				{Types: []string{"deb"}, URI: "http://m/debian", Suite: "bookworm", Components: []string{"main"}, SignedBy: "/usr/share/keyrings/k.gpg", File: "f"},
				{Types: []string{"deb"}, URI: "file:/srv/repo", Suite: "./", Components: []string{}, File: "f"},
				{Types: []string{"deb-src"}, URI: "http://m/debian", Suite: "bookworm", Components: []string{"main"}, File: "f"},
			},
		},
		{name: "garbage", in: "deb\ndeb [x=y]\nfoo bar baz\n", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, parseOneLine(tt.in, "f"))
		})
	}
}

func TestPickMirror(t *testing.T) {
	t.Parallel()
	src := func(typ, uri, suite string, comps ...string) aptSource {
		return aptSource{Types: []string{typ}, URI: uri, Suite: suite, Components: comps, File: "f"}
	}
	tests := []struct {
		name    string
		srcs    []aptSource
		want    string
		wantErr string
	}{
		{"first bookworm main deb", []aptSource{
			src("deb-src", "http://src/debian", "bookworm", "main"),
			src("deb", "http://sec/debian-security", "bookworm-security", "main"),
			src("deb", "http://contrib/debian", "bookworm", "contrib"),
			src("deb", "http://main/debian", "bookworm", "main"),
		}, "http://main/debian", ""},
		{"none", []aptSource{src("deb", "http://x/debian", "trixie", "main")}, "", "no `deb` entry for bookworm main"},
		{"unusable scheme", []aptSource{src("deb", "cdrom:[Debian]/", "bookworm", "main")}, "", `cannot use scheme "cdrom"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pickMirror(tt.srcs, "bookworm")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.URI)
		})
	}
}

func TestRootSourcesList(t *testing.T) {
	t.Parallel()
	srcs := append(parseDeb822(debianSources, "f"),
		parseOneLine("deb http://deb.debian.org/debian bookworm main\n"+ // a duplicate
			"deb http://deb.debian.org/debian bookworm-backports main\n"+
			"deb-src http://deb.debian.org/debian bookworm main\n"+
			"deb http://deb.debian.org/debian bookworm contrib\n", "g")...)
	require.Equal(t, "deb http://deb.debian.org/debian bookworm main\n"+
		"deb http://deb.debian.org/debian bookworm-updates main\n"+
		"deb http://deb.debian.org/debian-security bookworm-security main\n",
		rootSourcesList(srcs, "bookworm"))
}

func TestHostSources(t *testing.T) {
	t.Parallel()
	etc := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(etc, "sources.list.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "sources.list.d", "debian.sources"), []byte(debianSources), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "sources.list.d", "x.list"), []byte("deb http://x/debian bookworm main\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "sources.list.d", "y.list.disabled"), []byte("deb http://y/debian bookworm main\n"), 0o644))

	srcs, err := hostSources(etc)
	require.NoError(t, err)
	var uris []string
	for _, s := range srcs {
		uris = append(uris, s.URI+" "+s.Suite)
	}
	// sources.list.d in name order, as apt reads it; *.disabled ignored.
	require.Equal(t, []string{
		"http://deb.debian.org/debian bookworm",
		"http://deb.debian.org/debian bookworm-updates",
		"http://deb.debian.org/debian-security bookworm-security",
		"http://x/debian bookworm",
	}, uris)
}
