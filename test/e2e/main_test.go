package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// binEnv names a garrison binary to test instead of building one (make
// test-e2e passes make build's output).
const binEnv = "GARRISON_BIN"

// reportEnv names a directory that receives each scenario's figures as
// <scenario>.json, besides the test log.
const reportEnv = "E2E_REPORT_DIR"

// build is the garrison binary of this test process: built once, on the
// first test that gets past the testbed's checks, into a directory
// TestMain removes.
type build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// bin is the only package-level state: the build is shared by every test
// of the process, which is the point of it.
var bin build

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		_ = os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// garrisonBinary returns the path of the garrison binary, building it on
// the first call (about 5 s with a warm cache) unless GARRISON_BIN names
// one.
func garrisonBinary(t *testing.T) string {
	t.Helper()
	bin.once.Do(func() {
		if p := os.Getenv(binEnv); p != "" {
			bin.path, bin.err = filepath.Abs(p)
			if bin.err == nil {
				_, bin.err = os.Stat(bin.path)
			}
			return
		}
		if bin.dir, bin.err = os.MkdirTemp("", "garrison-e2e-bin-"); bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "garrison")
		// go test puts its own toolchain first in $PATH.
		goTool, err := exec.LookPath("go")
		if err != nil {
			bin.err = fmt.Errorf("build garrison: %w (or set %s)", err, binEnv)
			return
		}
		cmd := exec.Command(goTool, "build", "-o", bin.path, "github.com/garrison-chat/garrison/server/cmd/garrison")
		if out, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build garrison: %w\n%s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// report logs a scenario's figures and, when E2E_REPORT_DIR is set,
// writes them to <dir>/<name>.json. Figures are reported, never asserted:
// the testbed shares two cores with everything else a test run does.
func report(t *testing.T, name string, figures map[string]any) {
	t.Helper()
	keys := make([]string, 0, len(figures))
	for k := range figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s: %v", k, figures[k])
	}
	t.Logf("report %s:%s", name, b.String())
	dir := os.Getenv(reportEnv)
	if dir == "" {
		return
	}
	data, err := json.MarshalIndent(figures, "", "  ")
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".json"), append(data, '\n'), 0o644)
	}
	if err != nil {
		t.Errorf("report %s: %v", name, err)
	}
}
