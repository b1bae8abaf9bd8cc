package lock

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sum = "c24fe4eb8e60d8632d72ed104cce7c92cff200847c897dc8ba764b6c47b519e0"

func TestParseFormatRoundTrip(t *testing.T) {
	t.Parallel()
	l := &Lock{Roots: []string{"nginx", "adduser"}, Packages: []Package{
		{Name: "nginx", Version: "1.22.1-9+deb12u3", Arch: "amd64", Size: 10, SHA256: sum},
		{Name: "adduser", Version: "3.134", Arch: "all", Size: 20, SHA256: sum},
		{Name: "libc6", Version: "1:2.36-9", Arch: "amd64", Size: 30, SHA256: sum},
	}}
	text := l.Format("test")
	got, err := Parse(text)
	require.NoError(t, err)
	require.Equal(t, l.Roots, got.Roots)
	require.Equal(t, []string{"adduser", "libc6", "nginx"}, names(got.Packages), "sorted by name")
	require.Equal(t, text, got.Format("test"))
	require.Equal(t, "libc6_2.36-9_amd64.deb", got.Packages[1].FileName(), "the epoch is not in pool names")
}

func TestParseNamesEveryBadLine(t *testing.T) {
	t.Parallel()
	text := strings.Join([]string{
		"# comment",
		"nginx 1.0 amd64 10 " + sum,
		"nginx 1.0 amd64 10 " + sum,
		"Bad_Name 1.0 amd64 10 " + sum,
		"xx 1.0 amd64 -1 " + sum,
		"yy 1.0 amd64 10 abc",
		"zz 1.0 amd64",
	}, "\n")
	_, err := Parse([]byte(text))
	require.Error(t, err)
	for _, want := range []string{"line 3: nginx:amd64 listed twice", "line 4: bad package name", "line 5: bad size", "line 6: bad sha256", "line 7: want 5 fields"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = Parse([]byte("# nothing\n"))
	require.ErrorContains(t, err, "no packages")
}

func TestParseStanzas(t *testing.T) {
	t.Parallel()
	out := "Package: adduser\nVersion: 3.134\nArchitecture: all\nSize: 183272\nSHA256: " + sum + "\nDescription: x\n\n" +
		"Package: nginx\nVersion: 1.22\nArchitecture: amd64\nSize: 5\n"
	_, err := parseStanzas([]byte(out))
	require.ErrorContains(t, err, `incomplete apt record for package "nginx" version "1.22"`)
	ps, err := parseStanzas([]byte(out[:strings.Index(out, "\n\n")]))
	require.NoError(t, err)
	require.Equal(t, []Package{{Name: "adduser", Version: "3.134", Arch: "all", Size: 183272, SHA256: sum}}, ps)
}

// The committed lock parses and pins the roots the bundle promises.
func TestCommittedLock(t *testing.T) {
	t.Parallel()
	l, err := Load("../../bookworm.lock")
	require.NoError(t, err)
	have := map[string]bool{}
	for _, p := range l.Packages {
		have[p.Name] = true
	}
	for _, want := range []string{"nginx", "postgresql-15", "patroni", "python3-etcd", "etcd-server", "pgbackrest", "adduser"} {
		require.True(t, have[want], "%s is in the lock", want)
		require.Contains(t, l.Roots, want)
	}
}

func names(ps []Package) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name)
	}
	return s
}
