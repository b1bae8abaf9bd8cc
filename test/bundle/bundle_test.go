// Package bundle tests the offline bundle that `make bundle` built, as a
// site would receive it: both archives hold the signed tree, garrisonctl
// and Debian's minisign verify it, every kind of tampering is caught and
// named, a second build from a copy of the source is byte-identical, and
// the signed repository installs everything on a Debian root with no
// network (install_test.go).
//
// The Makefile builds the bundle once per test run and passes its
// directory in GARRISON_DIST; garrisonctl comes from GARRISONCTL_BIN.
package bundle_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// buildInfo mirrors the fields of dist/garrison-<v>.buildinfo.json the
// tests use.
type buildInfo struct {
	Version         string `json:"version"`
	SourceDateEpoch int64  `json:"source_date_epoch"`
	Commit          string `json:"commit"`
	MinIOVersion    string `json:"minio_version"`
	SigningKeyID    string `json:"signing_key_id"`
	Tar             string `json:"tar"`
	TarSHA256       string `json:"tar_sha256"`
	ISO             string `json:"iso"`
	ISOSHA256       string `json:"iso_sha256"`
}

type built struct {
	dist string
	info buildInfo
	tar  string
	iso  string
	pub  string
}

func (b built) top() string { return "garrison-" + b.info.Version }

// need fails under CI=true and skips otherwise.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			need(t, "%s is missing (.ci/run installs it)", tool)
		}
	}
}

func theBundle(t *testing.T) built {
	t.Helper()
	dist := os.Getenv("GARRISON_DIST")
	if dist == "" {
		need(t, "GARRISON_DIST is not set: run these tests through `make test` (it runs `make bundle` first)")
	}
	matches, err := filepath.Glob(filepath.Join(dist, "garrison-*.buildinfo.json"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "exactly one bundle in %s", dist)
	data, err := os.ReadFile(matches[0])
	require.NoError(t, err)
	b := built{dist: dist}
	require.NoError(t, json.Unmarshal(data, &b.info))
	b.tar = filepath.Join(dist, b.info.Tar)
	b.iso = filepath.Join(dist, b.info.ISO)
	b.pub = filepath.Join(dist, "garrison-signing.pub")
	for _, p := range []string{b.tar, b.iso, b.pub} {
		_, err := os.Stat(p)
		require.NoError(t, err)
	}
	return b
}

func garrisonctl(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("GARRISONCTL_BIN")
	if bin == "" {
		need(t, "GARRISONCTL_BIN is not set: run these tests through `make test`")
	}
	return bin
}

// scratch is a directory for the whole test process, removed by TestMain.
var (
	scratchOnce sync.Once
	scratchDir  string
	scratchErr  error
)

func scratch(t *testing.T) string {
	t.Helper()
	scratchOnce.Do(func() { scratchDir, scratchErr = os.MkdirTemp("", "garrison-bundle-test-") })
	require.NoError(t, scratchErr)
	return scratchDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if scratchDir != "" {
		os.RemoveAll(scratchDir)
	}
	os.Exit(code)
}

var (
	extractOnce sync.Once
	extracted   string
	extractErr  error
)

// extractedTree is the tar's content, extracted once per test process; the
// returned directory contains garrison-<v>/. Tests must not change it.
func extractedTree(t *testing.T, b built) string {
	t.Helper()
	dir := filepath.Join(scratch(t), "tar")
	extractOnce.Do(func() {
		if extractErr = os.MkdirAll(dir, 0o755); extractErr != nil {
			return
		}
		out, err := exec.Command("tar", "-xf", b.tar, "-C", dir).CombinedOutput()
		if err != nil {
			extractErr = fmt.Errorf("tar -xf: %w: %s", err, out)
		}
		extracted = dir
	})
	require.NoError(t, extractErr)
	return extracted
}

// result is one run of a command.
type result struct {
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func runCmd(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err, "%s %s", name, strings.Join(args, " "))
	}
	return r
}

// verify runs garrisonctl bundle verify with its own state directory and
// returns the result and that directory.
func verify(t *testing.T, bin string, args ...string) (result, string) {
	t.Helper()
	state := t.TempDir()
	r := runCmd(t, []string{"GARRISONCTL_STATE_DIR=" + state}, bin, append([]string{"bundle", "verify"}, args...)...)
	return r, state
}

// receipts lists the receipts a verification wrote.
func receipts(t *testing.T, state string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(state, "receipts", "*.json"))
	require.NoError(t, err)
	return m
}
