package compat

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pgcluster"
)

const (
	// dirPrefix names this suite's temporary directories, so that a later
	// run can clean up after one that was killed.
	dirPrefix = "garrison-compat-"
	// ownerFile, in a run's directory, holds the pid of the test process.
	ownerFile = "owner.pid"
	// dbName is the database the server under test uses.
	dbName = "garrison_compat"

	startTimeout = 60 * time.Second // for the server to answer its first ping
	stopTimeout  = 30 * time.Second // for the server to exit after SIGTERM
)

// srv is the server under test and the system admin created in it. It is
// package state because testing.M offers no other way to hand TestMain's
// server to the tests; TestMain sets it before m.Run and nothing changes
// it afterwards.
var srv struct {
	url   string // http://127.0.0.1:<port>
	wsURL string // ws://127.0.0.1:<port>
	admin *account
	// bin and pg let a test start a second server with other settings
	// (startExtraServer in s3_test.go): the built binary and the cluster.
	bin string
	pg  *pgcluster.Cluster
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	ctx := context.Background()
	h, err := start(ctx)
	if err != nil {
		if errors.Is(err, pgcluster.ErrNotFound) && !inCI() {
			fmt.Fprintf(os.Stderr, "compat: %v\ncompat: skipping the compatibility suite (under CI=true this is a failure)\n", err)
			return 0
		}
		fmt.Fprintf(os.Stderr, "compat: %v\n", err)
		return 1
	}

	code := m.Run()

	if err := stopPushProxy(); err != nil {
		fmt.Fprintf(os.Stderr, "compat: %v\n", err)
		code = max(code, 1)
	}

	if err := h.stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "compat: %v\n", err)
		code = max(code, 1)
	}
	if code != 0 {
		h.printLog()
	}
	if err := h.cleanUp(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "compat: %v\n", err)
		code = max(code, 1)
	}
	return code
}

// harness owns what TestMain started: a directory, a Postgres cluster and
// the garrison process.
type harness struct {
	dir     string // removed by cleanUp
	logPath string // the server's stdout and stderr
	pg      *pgcluster.Cluster
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd.Wait returns
	waitErr error         // cmd.Wait's result, set before exited is closed
}

// start builds garrison, starts Postgres and the server, waits until the
// server answers and creates the first user (the system admin). On error
// it leaves nothing running.
func start(ctx context.Context) (h *harness, err error) {
	binDir, err := pgcluster.Find("")
	if err != nil {
		return nil, err
	}
	sweep(ctx, binDir)

	h = &harness{}
	defer func() {
		if err != nil {
			if h.cmd != nil {
				if stopErr := h.stop(ctx); stopErr != nil {
					fmt.Fprintf(os.Stderr, "compat: %v\n", stopErr)
				}
				h.printLog()
			}
			if cleanErr := h.cleanUp(ctx); cleanErr != nil {
				fmt.Fprintf(os.Stderr, "compat: %v\n", cleanErr)
			}
		}
	}()

	if h.dir, err = os.MkdirTemp("", dirPrefix); err != nil {
		return h, fmt.Errorf("create the run directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return h, err
	}
	// When we are root, Postgres runs as the postgres user, which must be
	// able to reach its data directory inside this one.
	if err := os.Chmod(h.dir, 0o755); err != nil {
		return h, err
	}

	bin := filepath.Join(h.dir, "garrison")
	if err := buildServer(ctx, bin); err != nil {
		return h, err
	}

	h.pg, err = pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(h.dir, "pg"), BinDir: binDir, Fsync: false})
	if err != nil {
		return h, err
	}
	if err := h.pg.CreateDatabase(ctx, dbName, ""); err != nil {
		return h, err
	}

	port, err := freePort()
	if err != nil {
		return h, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The server refuses a missing file directory, as an admin's would.
	if err := os.MkdirAll(filepath.Join(h.dir, "data"), 0o750); err != nil {
		return h, err
	}
	srv.url = "http://" + addr
	srv.wsURL = "ws://" + addr
	if err := h.startServer(bin, []string{
		"MM_SQLSETTINGS_DATASOURCE=" + h.pg.DSN(dbName),
		"MM_SERVICESETTINGS_LISTENADDRESS=" + addr,
		"MM_SERVICESETTINGS_SITEURL=" + srv.url,
		"MM_FILESETTINGS_DIRECTORY=" + filepath.Join(h.dir, "data"),
		"MM_TEAMSETTINGS_ENABLEOPENSERVER=true",
		"MM_SERVICESETTINGS_ENABLEUSERACCESSTOKENS=true", // integrations_test.go
		"MM_LOGSETTINGS_CONSOLELEVEL=WARN",
	}); err != nil {
		return h, err
	}
	if err := h.waitReady(ctx, srv.url); err != nil {
		return h, err
	}
	srv.bin, srv.pg = bin, h.pg

	// The first user created on an empty system becomes its admin.
	if srv.admin, err = createAccount(ctx, "admin"); err != nil {
		return h, fmt.Errorf("create the first user: %w", err)
	}
	return h, nil
}

// buildServer compiles ./server/cmd/garrison of the repository this
// module sits in.
func buildServer(ctx context.Context, out string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./server/cmd/garrison")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build garrison: %w\n%s", err, b)
	}
	return nil
}

// startServer starts the binary with a clean MM_* environment plus env,
// its output going to a log file.
func (h *harness) startServer(bin string, env []string) error {
	h.logPath = filepath.Join(h.dir, "garrison.log")
	logFile, err := os.Create(h.logPath)
	if err != nil {
		return err
	}
	// The child has its own copy of the descriptor.
	defer func() { _ = logFile.Close() }()

	var base []string
	for _, kv := range os.Environ() {
		// Settings from the developer's shell must not change what is tested.
		if !strings.HasPrefix(kv, "MM_") {
			base = append(base, kv)
		}
	}
	cmd := exec.Command(bin)
	cmd.Dir = h.dir // so that no ./config/config.json is picked up
	cmd.Env = append(base, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If this test process is killed (go test -timeout), take the server
	// down with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start garrison: %w", err)
	}
	h.cmd = cmd
	h.exited = make(chan struct{})
	go func() {
		h.waitErr = cmd.Wait()
		close(h.exited)
	}()
	return nil
}

// waitReady polls GET /api/v4/system/ping on the server at url until it
// answers 200.
func (h *harness) waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v4/system/ping", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-h.exited:
			return fmt.Errorf("garrison exited before answering GET /api/v4/system/ping: %v", h.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("garrison did not answer GET /api/v4/system/ping with 200 within %s (last: %s)", startTimeout, last)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM to the server and waits for it. Exit status 0 is what
// shows that the shutdown was graceful.
func (h *harness) stop(ctx context.Context) error {
	if h.cmd == nil {
		return nil
	}
	select {
	case <-h.exited:
		return fmt.Errorf("garrison exited before it was sent SIGTERM: %v", h.waitErr)
	default:
	}
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM to garrison (pid %d): %w", h.cmd.Process.Pid, err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-h.exited:
	case <-timer.C:
		_ = h.cmd.Process.Kill()
		<-h.exited
		return fmt.Errorf("garrison (pid %d) did not exit within %s of SIGTERM; killed it", h.cmd.Process.Pid, stopTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	if h.waitErr != nil {
		return fmt.Errorf("garrison did not shut down cleanly after SIGTERM: %v (want exit status 0)", h.waitErr)
	}
	return nil
}

// printLog copies the server's output to stderr.
func (h *harness) printLog() {
	if h.logPath == "" {
		return
	}
	b, err := os.ReadFile(h.logPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compat: read the server log: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "compat: ---- garrison output (%s) ----\n%s\ncompat: ---- end of garrison output ----\n", h.logPath, b)
}

// cleanUp stops Postgres and removes the run directory.
func (h *harness) cleanUp(ctx context.Context) error {
	var errs []error
	if h.pg != nil {
		errs = append(errs, h.pg.Stop(ctx))
	}
	if h.dir != "" {
		errs = append(errs, os.RemoveAll(h.dir))
	}
	return errors.Join(errs...)
}

// sweep stops the clusters and removes the directories of earlier runs
// whose test process died without cleaning up (killed by -timeout).
func sweep(ctx context.Context, binDir string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // still running
		}
		if err := pgcluster.StopOrphan(ctx, binDir, filepath.Join(dir, "pg")); err != nil {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// account is a user created through the API together with a client
// logged in as that user.
type account struct {
	*model.Client4
	User     *model.User
	Password string
}

// uniqueName returns prefix followed by random lower-case letters and
// digits: valid as a username, team name or channel name.
func uniqueName(prefix string) string {
	return prefix + model.NewId()[:16]
}

// createAccount signs a new user up without a session, as the sign-up
// page does, and logs a new client in as that user.
func createAccount(ctx context.Context, prefix string) (*account, error) {
	name := uniqueName(prefix)
	password := "Pw-" + model.NewId()
	u, _, err := model.NewAPIv4Client(srv.url).CreateUser(ctx, &model.User{
		Username:  name,
		Email:     name + "@example.com",
		Password:  password,
		FirstName: "First" + name,
		LastName:  "Last" + name,
	})
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", name, err)
	}
	c := model.NewAPIv4Client(srv.url)
	if _, _, err := c.Login(ctx, name, password); err != nil {
		return nil, fmt.Errorf("log in as %s: %w", name, err)
	}
	return &account{Client4: c, User: u, Password: password}, nil
}

// newUser creates a user with a unique name and returns it logged in.
func newUser(t *testing.T) *account {
	t.Helper()
	a, err := createAccount(t.Context(), "u")
	require.NoError(t, err)
	return a
}

// newTeam creates a team owned by owner: teamType model.TeamOpen (which
// also allows open invites, so that anyone may join) or model.TeamInvite.
func newTeam(t *testing.T, owner *account, teamType string) *model.Team {
	t.Helper()
	name := uniqueName("t")
	team, resp, err := owner.CreateTeam(t.Context(), &model.Team{
		Name:            name,
		DisplayName:     "Team " + name,
		Type:            teamType,
		AllowOpenInvite: teamType == model.TeamOpen,
	})
	require.NoError(t, err, "CreateTeam")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "CreateTeam")
	return team
}

// newChannel creates a channel of type model.ChannelTypeOpen or
// model.ChannelTypePrivate in a team owner belongs to.
func newChannel(t *testing.T, owner *account, teamID string, channelType model.ChannelType) *model.Channel {
	t.Helper()
	name := uniqueName("c")
	ch, resp, err := owner.CreateChannel(t.Context(), &model.Channel{
		TeamId:      teamID,
		Name:        name,
		DisplayName: "Channel " + name,
		Type:        channelType,
	})
	require.NoError(t, err, "CreateChannel")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "CreateChannel")
	return ch
}

// addToTeam has by add each user to the team.
func addToTeam(t *testing.T, by *account, teamID string, users ...*account) {
	t.Helper()
	for _, u := range users {
		_, _, err := by.AddTeamMember(t.Context(), teamID, u.User.Id)
		require.NoError(t, err, "AddTeamMember %s", u.User.Username)
	}
}

// addToChannel has by add each user to the channel.
func addToChannel(t *testing.T, by *account, channelID string, users ...*account) {
	t.Helper()
	for _, u := range users {
		_, _, err := by.AddChannelMember(t.Context(), channelID, u.User.Id)
		require.NoError(t, err, "AddChannelMember %s", u.User.Username)
	}
}

// newPost has by post message in the channel.
func newPost(t *testing.T, by *account, channelID, message string) *model.Post {
	t.Helper()
	p, resp, err := by.CreatePost(t.Context(), &model.Post{ChannelId: channelID, Message: message})
	require.NoError(t, err, "CreatePost")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "CreatePost")
	return p
}

// teamWith creates an open team owned by owner with members added to it.
func teamWith(t *testing.T, owner *account, members ...*account) *model.Team {
	t.Helper()
	team := newTeam(t, owner, model.TeamOpen)
	addToTeam(t, owner, team.Id, members...)
	return team
}

// channelWith creates a channel owned by owner with members added to it.
func channelWith(t *testing.T, owner *account, teamID string, channelType model.ChannelType, members ...*account) *model.Channel {
	t.Helper()
	ch := newChannel(t, owner, teamID, channelType)
	addToChannel(t, owner, ch.Id, members...)
	return ch
}

// requireAppError checks that a driver call failed with the HTTP status
// and, unless id is empty, the Mattermost AppError id.
func requireAppError(t *testing.T, resp *model.Response, err error, status int, id string) {
	t.Helper()
	require.Error(t, err, "want HTTP %d %s", status, id)
	require.NotNil(t, resp, "no HTTP response: %v", err)
	var appErr *model.AppError
	require.True(t, errors.As(err, &appErr), "the error is not a *model.AppError (the body was not AppError JSON?): %v", err)
	require.Equal(t, status, resp.StatusCode, "HTTP status (error %q: %s)", appErr.Id, appErr.Message)
	require.Equal(t, status, appErr.StatusCode, "AppError status_code")
	if id != "" {
		require.Equal(t, id, appErr.Id, "AppError id (message %q)", appErr.Message)
	}
}

// userIDs returns the ids of users.
func userIDs(users []*model.User) []string {
	out := make([]string, 0, len(users))
	for _, u := range users {
		out = append(out, u.Id)
	}
	return out
}
