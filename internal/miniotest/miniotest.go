// Package miniotest starts a real MinIO server for tests of S3 code: one
// `minio server` process on 127.0.0.1 at a free port, with a temporary
// data directory and random root credentials, stopped by PID when the test
// ends.
//
// The binary is built from a pinned source version by `make minio` into
// $HOME/.cache/garrison/minio-<Version>-static/minio (GARRISON_MINIO overrides the
// path). When it is missing the test is skipped with the command to run,
// except under CI=true where it fails: a CI run without MinIO is broken.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the pinned MinIO source version (MinIO does not tag in
// semver); keep it in step with MINIO_VERSION in the Makefile.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// InstallCommand builds the binary where Binary looks for it.
const InstallCommand = "make minio"

// ErrNotFound is returned by Binary when there is no minio binary.
var ErrNotFound = errors.New("miniotest: minio binary not found")

// dirPrefix names the data directories under os.TempDir.
const dirPrefix = "garrison-miniotest-"

// Binary returns the path of the minio binary: $GARRISON_MINIO if set,
// else the cache path `make minio` installs to.
func Binary() (string, error) {
	p := os.Getenv("GARRISON_MINIO")
	if p == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		p = filepath.Join(home, ".cache", "garrison", "minio-"+Version+"-static", "minio")
	}
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w at %s (run `%s`)", ErrNotFound, p, InstallCommand)
	}
	return p, nil
}

// Server is a running MinIO.
type Server struct {
	// Endpoint is host:port, for minio-go (plain http).
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	werr error         // the process's exit status, once done is closed
}

// Start starts a server for t and stops it when t ends. It skips t when
// the binary is missing, or fails it under CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true, so this is a failure", err)
		}
		t.Skipf("%v; skipping the MinIO tests", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := StartServer(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

// StartServer starts bin as a MinIO server on a free loopback port with a
// new data directory and waits until it is ready. The caller must Stop it.
func StartServer(ctx context.Context, bin string) (*Server, error) {
	sweep()
	var err error
	for range 3 { // the free port may be taken before minio binds it
		var s *Server
		s, err = start(ctx, bin)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func start(ctx context.Context, bin string) (_ *Server, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	defer logf.Close() // the child has its own copy

	s := &Server{
		Endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		AccessKey: "garrison" + randHex(6),
		SecretKey: randHex(20),
		dir:       dir,
		done:      make(chan struct{}),
	}
	// Not exec.CommandContext: the server outlives ctx, which only bounds
	// the start-up.
	cmd := exec.Command(bin, "server", "--quiet", "--address", s.Endpoint, filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_CI_CD=1",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a ^C to the test does not reach it before
	// Stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("miniotest: start %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		s.werr = cmd.Wait()
		close(s.done)
	}()
	if err := os.WriteFile(filepath.Join(dir, "minio.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = s.Stop(context.Background())
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		log := s.logTail()
		_ = s.Stop(context.Background())
		return nil, fmt.Errorf("%w\nminio log:\n%s", err, log)
	}
	return s, nil
}

// waitReady polls /minio/health/ready, then /minio/health/cluster, until
// both answer 200, the process exits, or ctx ends. "ready" alone comes
// before the object layer is up: S3 calls made then fail with "Server not
// initialized yet"; "cluster" answers 200 once objects can be written.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	paths := []string{"/minio/health/ready", "/minio/health/cluster"}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Endpoint+paths[0], nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if paths = paths[1:]; len(paths) == 0 {
					return nil
				}
				continue
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("miniotest: minio exited before it was ready: %v", s.werr)
		case <-ctx.Done():
			return fmt.Errorf("miniotest: minio not ready at %s: %w", s.Endpoint, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop terminates the server (SIGTERM, then SIGKILL if it has not exited
// when ctx ends or after 10 s) and removes its data directory.
func (s *Server) Stop(ctx context.Context) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return os.RemoveAll(s.dir)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	grace := time.NewTimer(10 * time.Second)
	defer grace.Stop()
	select {
	case <-s.done:
	case <-grace.C:
		_ = s.cmd.Process.Kill()
		<-s.done
	case <-ctx.Done():
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("miniotest: %w", err)
	}
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("miniotest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sweep kills the servers and removes the directories left by test
// processes that died without stopping them. A server is killed only when
// its owner is gone and /proc shows it is still minio serving that
// directory, so a recycled PID is never hit.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := readPID(filepath.Join(dir, "owner.pid"))
		if err != nil || alive(owner) {
			continue
		}
		if pid, err := readPID(filepath.Join(dir, "minio.pid")); err == nil {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(cmdline), filepath.Join(dir, "data")) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = os.RemoveAll(dir)
	}
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
