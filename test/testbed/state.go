package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/garrison-chat/garrison/test/debroot"
)

// DefaultStateDir holds one record per live testbed run.
const DefaultStateDir = "/run/garrison-testbed"

// record is what a run writes down about the resources it creates, before
// creating them (namespaces, whose names carry the run's unique prefix) or
// right after (the blackhole route, whose subnet another run may try too),
// so that a later run can remove them if this one dies without cleaning
// up. The sweeper removes nothing that is not in a record.
type record struct {
	Prefix     string          `json:"prefix"`
	OwnerPID   int             `json:"owner_pid"`
	OwnerStart uint64          `json:"owner_start"` // /proc/PID/stat starttime, against pid reuse
	Subnet     netip.Prefix    `json:"subnet,omitzero"`
	Route      bool            `json:"route"` // the blackhole route for Subnet was added
	Namespaces []string        `json:"namespaces,omitempty"`
	Dir        string          `json:"dir,omitempty"`
	Procs      []procRecord    `json:"procs,omitempty"`
	Machines   []machineRecord `json:"machines,omitempty"`
}

type procRecord struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// machineRecord is a booted machine (Node.Boot), recorded before its
// copy is made.
type machineRecord struct {
	Node string `json:"node"`
	// Parent is the directory the machine's debroot node is made in (the
	// node's directory), which debroot.Sweep cleans after a dead run.
	Parent string `json:"parent"`
	// Dir is the debroot node's scratch directory, once made.
	Dir string `json:"dir,omitempty"`
	// PID and Start name the machine's systemd (host PID) while it runs.
	PID   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
}

// machine returns the last record of the machine on node, or nil.
func (r *record) machine(node string) *machineRecord {
	for i := len(r.Machines) - 1; i >= 0; i-- {
		if r.Machines[i].Node == node {
			return &r.Machines[i]
		}
	}
	return nil
}

// state is a run's record on disk, and the lock that says the run is
// alive: the owner holds an exclusive flock on <prefix>.lock for as long as
// it runs, and the kernel drops it when the process dies, however it dies.
type state struct {
	dir  string
	lock *os.File
	rec  record
}

func (s *state) jsonPath() string { return filepath.Join(s.dir, s.rec.Prefix+".json") }

// claim reserves prefix: it creates and locks <prefix>.lock and writes the
// first record. It fails if the prefix is taken.
func claim(dir, prefix string) (*state, error) {
	lockPath := filepath.Join(dir, prefix+".lock")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	// A sweeper may have locked or unlinked the file between our create
	// and lock (it saw a lock file with no record), and a lock on an
	// unlinked file protects nothing: the prefix counts as taken, and the
	// caller tries another.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: lock %s: %v", fs.ErrExist, lockPath, err)
	}
	if !sameFile(f, lockPath) {
		f.Close()
		return nil, fmt.Errorf("%w: lock file %s was removed", fs.ErrExist, lockPath)
	}
	start, err := procStart(os.Getpid())
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &state{dir: dir, lock: f, rec: record{Prefix: prefix, OwnerPID: os.Getpid(), OwnerStart: start}}
	if err := s.save(); err != nil {
		_ = os.Remove(lockPath)
		f.Close()
		return nil, err
	}
	return s, nil
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// save writes the record atomically.
func (s *state) save() error {
	b, err := json.MarshalIndent(s.rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.jsonPath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.jsonPath())
}

// release removes the record and then the lock: called once every
// recorded resource is gone.
func (s *state) release() error {
	err := os.Remove(s.jsonPath())
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	_ = os.Remove(s.jsonPath() + ".tmp")
	_ = os.Remove(filepath.Join(s.dir, s.rec.Prefix+".lock"))
	_ = s.lock.Close()
	return err
}

// sweep removes what runs that died without cleaning up left behind:
// every record whose lock nobody holds and whose owner process is gone.
// It returns the prefixes it removed.
func sweep(ctx context.Context, dir string, logf func(string, ...any)) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var swept []string
	for _, f := range files {
		prefix := strings.TrimSuffix(filepath.Base(f), ".json")
		if !validPrefix(prefix) {
			continue
		}
		if sweepOne(ctx, dir, prefix, logf) {
			swept = append(swept, prefix)
		}
	}
	// Lock files without a record: a run that died between creating its
	// lock and writing its record, or a sweep that died half-way.
	locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	for _, l := range locks {
		prefix := strings.TrimSuffix(filepath.Base(l), ".lock")
		if _, err := os.Stat(filepath.Join(dir, prefix+".json")); !errors.Is(err, os.ErrNotExist) || !validPrefix(prefix) {
			continue
		}
		f, err := os.OpenFile(l, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil && sameFile(f, l) {
			if _, err := os.Stat(filepath.Join(dir, prefix+".json")); errors.Is(err, os.ErrNotExist) {
				_ = os.Remove(l)
			}
		}
		f.Close()
	}
	return swept
}

func sweepOne(ctx context.Context, dir, prefix string, logf func(string, ...any)) bool {
	lockPath := filepath.Join(dir, prefix+".lock")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil || !sameFile(f, lockPath) {
		return false // the owner is alive, or another run is sweeping it
	}
	b, err := os.ReadFile(filepath.Join(dir, prefix+".json"))
	if err != nil {
		_ = os.Remove(lockPath)
		return false
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil || rec.Prefix != prefix {
		logf("testbed: leaving %s alone: unreadable record", filepath.Join(dir, prefix+".json"))
		return false
	}
	if start, err := procStart(rec.OwnerPID); err == nil && start == rec.OwnerStart {
		// The lock is free but the owner lives: not a state a run gets
		// into by dying, so leave it.
		return false
	}
	logf("testbed: removing the leftovers of run %s (owner pid %d is gone)", prefix, rec.OwnerPID)
	st := &state{dir: dir, lock: nil, rec: rec}
	if err := st.removeResources(ctx, logf); err != nil {
		logf("testbed: sweeping run %s: %v", prefix, err)
		return false
	}
	_ = os.Remove(filepath.Join(dir, prefix+".json"))
	_ = os.Remove(filepath.Join(dir, prefix+".json.tmp"))
	_ = os.Remove(lockPath)
	return true
}

// removeResources kills the recorded machines and processes and every
// process in the recorded namespaces, deletes the namespaces, the
// blackhole route and the scratch directory. Resources already gone are
// not errors.
func (s *state) removeResources(ctx context.Context, logf func(string, ...any)) error {
	var errs []error
	for _, m := range s.rec.Machines {
		if s.rec.Dir == "" || !strings.HasPrefix(m.Parent, s.rec.Dir+string(filepath.Separator)) {
			errs = append(errs, fmt.Errorf("machine directory %q is not in the run's directory: left alone", m.Parent))
			continue
		}
		// Kills the machine of a dead run (by the PID debroot recorded,
		// after checking it), removes its cgroups, what systemd-nspawn
		// left under /run, and its copy. Nothing when this process, the
		// owner, is alive: Close has powered it off already.
		debroot.Sweep(m.Parent, logf)
		if m.PID > 0 {
			if start, err := procStart(m.PID); err == nil && start == m.Start {
				_ = syscall.Kill(m.PID, syscall.SIGKILL)
			}
		}
	}
	for _, p := range s.rec.Procs {
		if start, err := procStart(p.PID); err == nil && start == p.Start {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	// Namespaces: the switch last, so the nodes' veths go first.
	for i := len(s.rec.Namespaces) - 1; i >= 0; i-- {
		ns := s.rec.Namespaces[i]
		if !strings.HasPrefix(ns, s.rec.Prefix+"-") {
			errs = append(errs, fmt.Errorf("namespace %q does not carry prefix %s: left alone", ns, s.rec.Prefix))
			continue
		}
		if err := killNamespace(ctx, ns); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err == nil {
			if out, err := command(ctx, "ip", "netns", "delete", ns).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip netns delete %s: %w: %s", ns, err, bytes.TrimSpace(out)))
			}
		}
	}
	if s.rec.Route {
		// "blackhole" in the delete matches only a route of that type:
		// any other route for the subnet is not ours.
		out, err := command(ctx, "ip", "route", "delete", "blackhole", s.rec.Subnet.String()).CombinedOutput()
		if err != nil && !routeGone(out) {
			errs = append(errs, fmt.Errorf("ip route delete blackhole %s: %w: %s", s.rec.Subnet, err, bytes.TrimSpace(out)))
		}
	}
	if s.rec.Dir != "" {
		if !strings.Contains(filepath.Base(s.rec.Dir), s.rec.Prefix) {
			errs = append(errs, fmt.Errorf("directory %q does not carry prefix %s: left alone", s.rec.Dir, s.rec.Prefix))
		} else if err := os.RemoveAll(s.rec.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func routeGone(out []byte) bool {
	return bytes.Contains(out, []byte("No such process")) || bytes.Contains(out, []byte("Cannot find"))
}

// netnsDir is where ip netns keeps its named namespaces.
const netnsDir = "/run/netns"

// killNamespace SIGKILLs every process whose network namespace is ns, and
// waits until they have all exited.
func killNamespace(ctx context.Context, ns string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, ns), &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		pids := namespacePIDs(want)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s: processes %v survive SIGKILL: %w", ns, pids, ctx.Err())
		case <-tick.C:
		}
	}
}

// namespacePIDs lists the live processes (zombies excluded: they have
// left their namespaces) whose network namespace link reads want. The
// calling process is never listed, even when one of its threads is
// dialing from inside the namespace.
func namespacePIDs(want string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || pid == 1 {
			continue
		}
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && link == want && !exited(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStart returns the start time of process pid (field 22 of
// /proc/PID/stat, in clock ticks since boot): with the pid, it names a
// process uniquely.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// exited reports whether process pid has ended: it is gone, or a zombie
// not reaped yet.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}
