package manifest

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeTree creates files (slash paths → contents) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	return root
}

func TestBuild(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"VERSION":             "1.0\n",
		"a/x":                 "ax",
		"a-b/x":               "a-b x", // '-' sorts before '/': "a-b/x" < "a/x"
		"a.txt":               "",
		"repo/pool/p_1_all":   strings.Repeat("p", 100_000),
		"MANIFEST":            "old manifest, skipped",
		"MANIFEST.minisig":    "old sig, skipped",
		"docs/MANIFEST":       "not at the top: kept",
		"docs/space name.md":  "spaces are fine",
		"docs/ünïcödé.md":     "so is UTF-8",
		"sbom/garrison.cdx.j": "{}",
	}
	root := writeTree(t, files)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "empty", "dir"), 0o755))

	var calls int
	var last, lastTotal int64
	entries, err := Build(root, func(done, total int64) {
		calls++
		require.GreaterOrEqual(t, done, last)
		last, lastTotal = done, total
	})
	require.NoError(t, err)

	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
		require.Equal(t, sha256.Sum256([]byte(files[e.Path])), e.SHA256, e.Path)
	}
	require.Equal(t, []string{
		"VERSION", "a-b/x", "a.txt", "a/x", "docs/MANIFEST", "docs/space name.md", "docs/ünïcödé.md",
		"repo/pool/p_1_all", "sbom/garrison.cdx.j",
	}, paths)
	require.Equal(t, len(entries), calls)
	require.Equal(t, lastTotal, last)

	// The manifest round-trips and is what sha256sum -c expects.
	text := Format(entries)
	parsed, err := Parse(text)
	require.NoError(t, err)
	require.Equal(t, entries, parsed)
	require.NoError(t, os.WriteFile(filepath.Join(root, FileName), text, 0o644))
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "--quiet", "--strict", "-c", FileName)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "sha256sum -c: %s", out)
	}
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
		want  string
	}{
		{"symlink", func(t *testing.T, root string) {
			require.NoError(t, os.Symlink("VERSION", filepath.Join(root, "docs", "link")))
		}, "docs/link: symlink"},
		{"symlink to a directory", func(t *testing.T, root string) {
			require.NoError(t, os.Symlink("..", filepath.Join(root, "docs", "up")))
		}, "docs/up: symlink"},
		{"fifo", func(t *testing.T, root string) {
			require.NoError(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
		}, "fifo: named pipe"},
		{"backslash", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, `a\b`), nil, 0o644))
		}, "backslash"},
		{"newline", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, "a\nb"), nil, 0o644))
		}, "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := writeTree(t, map[string]string{"VERSION": "1\n", "docs/x.md": "x"})
			tc.setup(t, root)
			_, err := Build(root, nil)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, root) // names the path
		})
	}
}

func TestBuildRootNotADirectory(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{"f": "x"})
	_, err := Build(filepath.Join(root, "f"), nil)
	require.ErrorContains(t, err, "not a directory")
	_, err = Build(filepath.Join(root, "missing"), nil)
	require.Error(t, err)
}

const (
	hexA = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb" // sha256("a")
	hexB = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d" // sha256("b")
)

func TestParse(t *testing.T) {
	t.Parallel()
	good := hexA + "  VERSION\n" + hexB + "  docs/a b.md\n"
	entries, err := Parse([]byte(good))
	require.NoError(t, err)
	require.Equal(t, []Entry{{Path: "VERSION", SHA256: sha256.Sum256([]byte("a"))}, {Path: "docs/a b.md", SHA256: sha256.Sum256([]byte("b"))}}, entries)
	require.Equal(t, good, string(Format(entries)))

	empty, err := Parse(nil)
	require.NoError(t, err)
	require.Empty(t, empty)

	tests := []struct {
		name, in, want string
	}{
		{"no final newline", hexA + "  a\n" + hexA + "  b", "line 2: missing final newline"},
		{"empty line", hexA + "  a\n\n", "line 2: empty line"},
		{"short line", "abc  a\n", "line 1: want"},
		{"uppercase hex", strings.ToUpper(hexA) + "  a\n", "line 1: digest"},
		{"non-hex", "z" + hexA[1:] + "  a\n", "line 1: digest"},
		{"binary marker", hexA + " *a\n", "line 1: want two spaces"},
		{"one space", hexA + " a\n", "line 1: want"},
		{"tab", hexA + "\tab\n", "line 1: want two spaces"},
		{"crlf", hexA + "  a\r\n", "control character"},
		{"absolute", hexA + "  /etc/passwd\n", "absolute"},
		{"dotdot", hexA + "  a/../../etc/passwd\n", `".." element`},
		{"dot", hexA + "  ./a\n", `"." element`},
		{"empty element", hexA + "  a//b\n", "empty element"},
		{"trailing slash", hexA + "  a/\n", "empty element"},
		{"backslash", hexA + "  a\\b\n", "backslash"},
		{"invalid utf8", hexA + "  a\xff\n", "UTF-8"},
		{"duplicate", hexA + "  a\n" + hexB + "  a\n", "line 2: duplicate path \"a\""},
		{"unsorted", hexA + "  b\n" + hexB + "  a\n", "line 2: path \"a\" is out of order"},
		{"file and directory", hexA + "  a\n" + hexB + "  a/b\n", `line 2: path "a/b" is below "a", which line 1 lists as a file`},
		{"file and deep directory", hexA + "  a\n" + hexA + "  a-b\n" + hexB + "  a/b/c\n", `is below "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidPath(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"a", "a/b", "a b/c", "pool/libc6_2.36-9+deb12u9_amd64.deb", "..a", "a..", ".hidden"} {
		require.NoError(t, ValidPath(p), p)
	}
	for _, p := range []string{"", "/a", "a/", "./a", "a/./b", "..", "a/..", "a\tb", "a\x7fb", "a\\b"} {
		require.Error(t, ValidPath(p), p)
	}
}

// FuzzParse: Parse never panics, and whatever it accepts is in canonical
// form: Format gives back exactly the input.
func FuzzParse(f *testing.F) {
	f.Add([]byte(hexA + "  VERSION\n" + hexB + "  docs/a.md\n"))
	f.Add([]byte(hexA + "  a\n" + hexB + "  a/b\n"))
	f.Add([]byte(hexA + "  ../x\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(data)
		if err != nil {
			return
		}
		if !bytes.Equal(Format(entries), data) {
			t.Fatalf("Parse accepted non-canonical input %q", data)
		}
		for _, e := range entries {
			if err := ValidPath(e.Path); err != nil {
				t.Fatalf("Parse accepted invalid path: %v", err)
			}
		}
	})
}

// A FIFO or a symlink where a file was is refused at open: no read that
// blocks forever, no file read through a link.
func TestHashFileRefusesFIFOsAndSymlinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	_, _, err := HashFile(fifo)
	require.ErrorContains(t, err, fifo)
	require.ErrorContains(t, err, "only directories and regular files")

	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, []byte("x"), 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(target, link))
	_, _, err = HashFile(link)
	require.ErrorContains(t, err, link+": a symlink")

	sum, n, err := HashFile(target)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, sha256.Sum256([]byte("x")), sum)
}
