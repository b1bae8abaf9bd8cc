package push

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgcluster"
)

const (
	startTimeout = 60 * time.Second // for a process to answer its readiness check
	stopTimeout  = 30 * time.Second // for a process to exit after SIGTERM
)

func inCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// need skips the test when a prerequisite is missing, or fails it under
// CI=true, where a missing prerequisite means a broken CI image.
func need(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	if inCI() {
		t.Fatalf("%s: %v (required under CI=true)", what, err)
	}
	t.Skipf("%s: %v", what, err)
}

// binaries are built once per test process.
var binaries struct {
	once             sync.Once
	garrison, pushpx string
	dir              string
	err              error
}

// buildBinaries returns the paths of garrison and garrison-pushproxy:
// from GARRISON_BIN and GARRISON_PUSHPROXY_BIN, or built from this
// repository into a temporary directory.
func buildBinaries(t *testing.T) (garrison, pushproxy string) {
	t.Helper()
	binaries.once.Do(func() {
		binaries.garrison = os.Getenv("GARRISON_BIN")
		binaries.pushpx = os.Getenv("GARRISON_PUSHPROXY_BIN")
		if binaries.garrison != "" && binaries.pushpx != "" {
			return
		}
		binaries.dir, binaries.err = os.MkdirTemp("", "garrison-pushtest-bin-")
		if binaries.err != nil {
			return
		}
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			binaries.err = err
			return
		}
		for _, b := range []struct {
			dst *string
			pkg string
		}{{&binaries.garrison, "./server/cmd/garrison"}, {&binaries.pushpx, "./pushproxy/cmd/garrison-pushproxy"}} {
			if *b.dst != "" {
				continue
			}
			out := filepath.Join(binaries.dir, filepath.Base(b.pkg))
			cmd := exec.Command("go", "build", "-o", out, b.pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
			if msg, err := cmd.CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("build %s: %w\n%s", b.pkg, err, msg)
				return
			}
			*b.dst = out
		}
	})
	require.NoError(t, binaries.err)
	return binaries.garrison, binaries.pushpx
}

// startPostgres starts a throwaway cluster for one test, stopped at cleanup.
func startPostgres(t *testing.T, dir string) *pgcluster.Cluster {
	t.Helper()
	binDir, err := pgcluster.Find("")
	need(t, err, "postgres")
	ctx := context.Background()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), BinDir: binDir, Fsync: false})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pg.Stop(context.Background())) })
	return pg
}

// runDir is a per-test directory the postgres user can traverse.
func runDir(t *testing.T) string {
	t.Helper()
	// t.TempDir's parent is private to root; the postgres user must be
	// able to reach its data directory in here.
	dir, err := os.MkdirTemp("", "garrison-pushtest-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// process is one binary under test, its output in a log file that is
// printed when the test fails.
type process struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func newProcess(t *testing.T, dir, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, bin: bin, args: args, env: env, logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("---- %s output ----\n%s\n---- end of %s output ----", p.name, b, p.name)
		}
	})
	return p
}

// start runs the process with the test's environment minus any MM_* and
// GARRISON_* settings from the developer's shell, plus p.env.
func (p *process) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MM_") && !strings.HasPrefix(kv, "GARRISON_") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = filepath.Dir(p.logPath)
	cmd.Env = append(env, p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test process dies, the child goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start(), "start %s", p.name)
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
}

func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitHTTP polls url until it answers 200.
func (p *process) waitHTTP(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(startTimeout)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before %s answered: %v", p.name, url, p.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s: %s did not answer 200 within %s (last: %s)", p.name, url, startTimeout, last)
}

// stop sends SIGTERM and requires a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	require.True(t, p.running(), "%s is not running", p.name)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("%s did not exit within %s of SIGTERM", p.name, stopTimeout)
	}
	require.NoError(t, p.waitErr, "%s did not shut down cleanly", p.name)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond) // poll interval, not a wait for an event
	}
	t.Fatalf("%s: not true within %s (last error: %v)", what, within, last)
}
