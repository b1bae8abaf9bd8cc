package bundle_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A second build from a copy of the same source, in another directory,
// with another umask and time zone, gives the same bytes.
func TestBundleIsReproducible(t *testing.T) {
	needTools(t, "git", "tar")
	t.Parallel()
	b := theBundle(t)
	minio := os.Getenv("GARRISON_MINIO_BIN")
	if minio == "" {
		need(t, "GARRISON_MINIO_BIN is not set: run these tests through `make test`")
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	repo := filepath.Dir(strings.TrimSpace(string(out)))

	// The working tree as the first build saw it: tracked and untracked
	// files that git does not ignore (so dist/, bin/ and .keys/ stay out).
	src := filepath.Join(scratch(t), "second-build", "source")
	require.NoError(t, os.MkdirAll(src, 0o755))
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = repo
	files, err := ls.Output()
	require.NoError(t, err)
	var existing bytes.Buffer
	for _, f := range bytes.Split(files, []byte{0}) {
		if len(f) == 0 {
			continue
		}
		if _, err := os.Lstat(filepath.Join(repo, string(f))); err == nil { // deleted but not yet committed
			existing.Write(f)
			existing.WriteByte(0)
		}
	}
	pack := exec.Command("tar", "--null", "-T", "-", "-cf", "-")
	pack.Dir = repo
	pack.Stdin = &existing
	unpack := exec.Command("tar", "-xf", "-", "-C", src)
	unpack.Stdin, err = pack.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, unpack.Start())
	require.NoError(t, pack.Run())
	require.NoError(t, unpack.Wait())

	dist := filepath.Join(scratch(t), "second-build", "dist")
	build := exec.CommandContext(t.Context(), "sh", "-c", `umask 077; exec "$@"`, "sh",
		"go", "run", "./packaging/cmd/mkbundle", "build",
		"-out", dist, "-minio", minio, "-minio-version", b.info.MinIOVersion, "-commit", b.info.Commit)
	build.Dir = src
	build.Env = append(os.Environ(),
		"TZ=Pacific/Chatham", "LC_ALL=C",
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(b.info.SourceDateEpoch, 10))
	if os.Getenv("GARRISON_KEYS_DIR") == "" && os.Getenv("GARRISON_SIGNING_KEY") == "" {
		build.Env = append(build.Env, "GARRISON_KEYS_DIR="+filepath.Join(repo, ".keys"))
	}
	msg, err := build.CombinedOutput()
	require.NoError(t, err, "%s", msg)

	require.Equal(t, b.info.TarSHA256, sha256File(t, filepath.Join(dist, b.info.Tar)), "the tar is byte-identical")
	require.Equal(t, b.info.ISOSHA256, sha256File(t, filepath.Join(dist, b.info.ISO)), "the ISO is byte-identical")
	require.Equal(t, sha256File(t, b.pub), sha256File(t, filepath.Join(dist, "garrison-signing.pub")))
}
