package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// LSN is a position in the write-ahead log (pg_lsn); the difference of two
// is a number of bytes.
type LSN uint64

// ParseLSN parses the text form of a pg_lsn, such as 16/B374D848.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("pgcluster: bad LSN %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: bad LSN %q", s)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: bad LSN %q", s)
	}
	return LSN(h<<32 | l), nil
}

// String returns the text form Postgres uses, such as 16/B374D848.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xffffffff) }

// StartReplica makes o.Dir a streaming replica of primary and starts it.
//
// When o.Dir holds no cluster yet, StartReplica copies primary with
// pg_basebackup -R -X stream -C -S slot: the copy streams its WAL through
// physical replication slot slot, which it creates on the primary, and
// connects as application_name slot, the name under which
// primary.Standbys lists it. The base backup runs under o.Exec, so in the
// replica's network namespace, and connects to primary.ListenAddr: the
// primary must accept replication connections from there (for a replica
// on another address, put its network in the primary's TrustNetworks).
//
// When o.Dir already holds a cluster (a replica stopped earlier), it is
// started as Start would.
func StartReplica(ctx context.Context, primary *Cluster, slot string, o Options) (*Cluster, error) {
	if !validSlot(slot) {
		return nil, fmt.Errorf("pgcluster: start replica: slot name %q: use lower-case letters, digits and _", slot)
	}
	c, err := newCluster(o)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.basebackup(ctx, primary, slot, o.Fsync); err != nil {
			return nil, fmt.Errorf("pgcluster: start replica: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("pgcluster: start replica: %w", err)
	}
	return c.run(ctx, o)
}

func validSlot(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func (c *Cluster) basebackup(ctx context.Context, primary *Cluster, slot string, fsync bool) error {
	// application_name goes into the primary_conninfo that -R writes, so
	// the walreceiver shows up under the slot's name.
	args := []string{"-d", "application_name=" + slot,
		"-h", primary.listen, "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", c.dir, "-R", "-X", "stream", "-C", "-S", slot, "-c", "fast"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	c.log.Info("copying postgres cluster", "dir", c.dir, "from", primary.dir, "slot", slot)
	if out, err := c.command(ctx, "pg_basebackup", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_basebackup: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// The primary's socket and log live in its data directory, so the
	// copy holds its socket lock file, naming the primary's live
	// postmaster (a replica on the same port would refuse to start), and
	// its log.
	copied, _ := filepath.Glob(filepath.Join(c.dir, ".s.PGSQL.*.lock"))
	copied = append(copied, filepath.Join(c.dir, "postgres.log"))
	for _, f := range copied {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Promote turns a replica into a primary (pg_ctl promote) and waits until
// it accepts writes.
func (c *Cluster) Promote(ctx context.Context) error {
	out, err := c.command(ctx, "pg_ctl", "-D", c.dir, "-w", "-t", pgctlTimeout, "promote").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: promote: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// InRecovery reports whether the server is a replica (pg_is_in_recovery).
func (c *Cluster) InRecovery(ctx context.Context) (bool, error) {
	var in bool
	err := c.queryRow(ctx, "SELECT pg_is_in_recovery()", &in)
	if err != nil {
		return false, fmt.Errorf("pgcluster: in recovery: %w", err)
	}
	return in, nil
}

// CurrentLSN returns the primary's current WAL write position
// (pg_current_wal_lsn). It fails on a replica.
func (c *Cluster) CurrentLSN(ctx context.Context) (LSN, error) {
	var s string
	if err := c.queryRow(ctx, "SELECT pg_current_wal_lsn()::text", &s); err != nil {
		return 0, fmt.Errorf("pgcluster: current lsn: %w", err)
	}
	return ParseLSN(s)
}

// Replay is where a replica's recovery stands.
type Replay struct {
	// Received is the last WAL position received and flushed by the
	// walreceiver (0 before the first since the server started).
	Received LSN
	// Replayed is the last WAL position applied; a query on the replica
	// sees every transaction committed before it.
	Replayed LSN
	// PauseState is pg_get_wal_replay_pause_state(): "not paused",
	// "pause requested" or "paused".
	PauseState string
	// LastReplayedCommit is the commit time of the last transaction
	// replayed; zero when none has been since the server started.
	LastReplayedCommit time.Time
}

// ErrNotReplica is returned by the calls that only make sense on a
// replica when the server is not in recovery.
var ErrNotReplica = errors.New("pgcluster: the server is not a replica")

// ReplayStatus reports the replica's receive and replay positions.
func (c *Cluster) ReplayStatus(ctx context.Context) (Replay, error) {
	const q = `SELECT pg_is_in_recovery(),
		pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
		CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END,
		pg_last_xact_replay_timestamp()`
	var (
		in               bool
		recv, replay, st *string
		last             *time.Time
		r                Replay
		err              error
	)
	if err = c.queryRow(ctx, q, &in, &recv, &replay, &st, &last); err != nil {
		return Replay{}, fmt.Errorf("pgcluster: replay status: %w", err)
	}
	if !in {
		return Replay{}, ErrNotReplica
	}
	if recv != nil {
		if r.Received, err = ParseLSN(*recv); err != nil {
			return Replay{}, err
		}
	}
	if replay != nil {
		if r.Replayed, err = ParseLSN(*replay); err != nil {
			return Replay{}, err
		}
	}
	if st != nil {
		r.PauseState = *st
	}
	if last != nil {
		r.LastReplayedCommit = *last
	}
	return r, nil
}

// WaitReplayed polls the replica until it has replayed the WAL up to lsn
// (typically a primary's CurrentLSN after a write), or ctx ends.
func (c *Cluster) WaitReplayed(ctx context.Context, lsn LSN) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := c.ReplayStatus(ctx)
		if err == nil && r.Replayed >= lsn {
			return nil
		}
		if errors.Is(err, ErrNotReplica) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: wait for replay of %s (replayed %s): %w", lsn, r.Replayed, ctx.Err())
		case <-tick.C:
		}
	}
}

// PauseReplay stops the replica from applying WAL (pg_wal_replay_pause):
// it keeps receiving WAL, but queries on it see the data as of the pause
// until ResumeReplay. A promotion ends the pause.
func (c *Cluster) PauseReplay(ctx context.Context) error {
	if err := c.execRecovery(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		return fmt.Errorf("pgcluster: pause replay: %w", err)
	}
	return nil
}

// ResumeReplay undoes PauseReplay (pg_wal_replay_resume).
func (c *Cluster) ResumeReplay(ctx context.Context) error {
	if err := c.execRecovery(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		return fmt.Errorf("pgcluster: resume replay: %w", err)
	}
	return nil
}

func (c *Cluster) execRecovery(ctx context.Context, sql string) error {
	in, err := c.InRecovery(ctx)
	if err != nil {
		return err
	}
	if !in {
		return ErrNotReplica
	}
	return c.exec(ctx, sql)
}

// Standby is one replica streaming from a primary, a row of
// pg_stat_replication.
type Standby struct {
	// Name is the replica's application_name: the slot name for replicas
	// made by StartReplica.
	Name string
	// Addr is the replica's address as the primary sees it.
	Addr string
	// State is "startup", "catchup", "streaming", "backup" or "stopping".
	State string
	// SyncState is "async", "potential", "sync" or "quorum".
	SyncState string
	// Sent, Flushed and Replayed are the WAL positions sent to the
	// replica, flushed by it and applied by it.
	Sent, Flushed, Replayed LSN
	// ReplayLag is how long ago the WAL the replica has just applied was
	// written here (pg_stat_replication.replay_lag); zero when idle.
	ReplayLag time.Duration
}

// Standbys lists the replicas connected to this primary.
func (c *Cluster) Standbys(ctx context.Context) ([]Standby, error) {
	const q = `SELECT application_name, COALESCE(host(client_addr), ''), state, sync_state,
		COALESCE(sent_lsn::text, '0/0'), COALESCE(flush_lsn::text, '0/0'), COALESCE(replay_lsn::text, '0/0'),
		COALESCE(EXTRACT(EPOCH FROM replay_lag)::float8, 0)
		FROM pg_stat_replication ORDER BY application_name`
	conn, err := pgx.Connect(ctx, c.adminDSN)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: standbys: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: standbys: %w", err)
	}
	var out []Standby
	for rows.Next() {
		var (
			s                       Standby
			sent, flushed, replayed string
			lag                     float64
		)
		if err := rows.Scan(&s.Name, &s.Addr, &s.State, &s.SyncState, &sent, &flushed, &replayed, &lag); err != nil {
			return nil, fmt.Errorf("pgcluster: standbys: %w", err)
		}
		for _, p := range []struct {
			dst *LSN
			s   string
		}{{&s.Sent, sent}, {&s.Flushed, flushed}, {&s.Replayed, replayed}} {
			if *p.dst, err = ParseLSN(p.s); err != nil {
				return nil, err
			}
		}
		s.ReplayLag = time.Duration(lag * float64(time.Second))
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgcluster: standbys: %w", err)
	}
	return out, nil
}

// queryRow runs a one-row query in the postgres database on a fresh
// connection through the unix socket.
func (c *Cluster) queryRow(ctx context.Context, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, c.adminDSN)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// StopMode is how a server shuts down; see pg_ctl stop -m.
type StopMode string

// The pg_ctl shutdown modes.
const (
	// StopSmart waits for every client to disconnect.
	StopSmart StopMode = "smart"
	// StopFast disconnects clients and writes a shutdown checkpoint; Stop
	// uses it. A primary also waits for its walsenders to send the WAL
	// to reachable replicas.
	StopFast StopMode = "fast"
	// StopImmediate exits at once without a checkpoint; the next start
	// runs crash recovery. It does not wait for unreachable replicas.
	StopImmediate StopMode = "immediate"
)

// StopWith is Stop with a shutdown mode other than StopFast.
func (c *Cluster) StopWith(ctx context.Context, mode StopMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	if err := c.pgctlStopMode(ctx, mode); err != nil {
		return fmt.Errorf("pgcluster: stop: %w", err)
	}
	c.stopped = true
	c.removeSocketDir()
	c.log.Info("postgres stopped", "dir", c.dir, "mode", mode)
	return nil
}

// PID returns the postmaster's process id, read from postmaster.pid and
// checked through /proc to be a process serving this data directory.
func (c *Cluster) PID() (int, error) {
	pf, err := readPidFile(filepath.Join(c.dir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgcluster: pid: %w", err)
	}
	if !c.isPostmasterFor(pf.pid) {
		return 0, fmt.Errorf("pgcluster: pid: no postmaster running for %s", c.dir)
	}
	return pf.pid, nil
}

// Kill ends the server the way a crash would: SIGKILL to the postmaster
// (by the pid PID returns), then to its remaining children, with no
// shutdown checkpoint and no goodbye to clients or replicas. It waits
// until every process of the server is gone. Afterwards Stop does nothing,
// and Start on the same directory runs crash recovery.
//
// A child is a process whose working directory is the data directory and
// whose executable is this installation's postgres: the postmaster's
// children inherit both, and an unrelated process has neither.
func (c *Cluster) Kill(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	pid, err := c.PID()
	if err != nil {
		return fmt.Errorf("pgcluster: kill: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgcluster: kill: %w", err)
	}
	// A dying process loses its working directory before it becomes a
	// zombie, so every process seen is also waited for by pid.
	seen := map[int]bool{pid: true}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, p := range c.processes() {
			seen[p] = true
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		var running []int
		for p := range seen {
			if exited(p) {
				delete(seen, p)
			} else {
				running = append(running, p)
			}
		}
		if len(running) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: kill: processes %v still running: %w", running, ctx.Err())
		case <-tick.C:
		}
	}
	c.stopped = true
	c.removeSocketDir()
	c.log.Info("postgres killed", "dir", c.dir, "pid", pid)
	return nil
}

// processes lists the live processes of this server: those whose working
// directory is the data directory and whose executable is our postgres.
func (c *Cluster) processes() []int {
	dir, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return nil
	}
	exe, err := filepath.EvalSymlinks(filepath.Join(c.binDir, "postgres"))
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil || cwd != dir {
			continue
		}
		if p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && p == exe {
			pids = append(pids, pid)
		}
	}
	return pids
}

// exited reports whether process pid has ended: it is gone, or a zombie
// its parent has not reaped yet (the postmaster's parent is init).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}
