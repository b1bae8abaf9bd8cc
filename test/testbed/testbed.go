package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/garrison-chat/garrison/internal/pgcluster"
	"github.com/garrison-chat/garrison/test/debroot"
)

// ErrUnsupported is wrapped by the errors of Check: the machine cannot run
// a testbed (not root, or a tool is missing). New skips on it, or fails
// under CI=true.
var ErrUnsupported = errors.New("testbed: this machine cannot run a testbed")

// Options configures Create and New. The zero value is ready to use.
type Options struct {
	// BaseDir is where the run's scratch directory is created; empty
	// means /tmp. The postgres user must be able to traverse it.
	BaseDir string
	// StateDir holds the records of live runs; empty means
	// DefaultStateDir. Runs sharing a machine must share it.
	StateDir string
	// Logf receives a line for each step; nil discards them (New passes
	// t.Logf).
	Logf func(format string, args ...any)

	// Postgres and Nginx say the test needs those binaries: New then
	// checks for them up front and skips (or fails under CI=true) when
	// they are missing, instead of failing half-way through the setup.
	Postgres, Nginx bool

	// Machines is how many nodes the test boots as machines (Node.Boot).
	// When it is not 0, New also checks for what booting needs
	// (debroot.Check: debootstrap, systemd-nspawn, ...; ssh-keygen) and
	// skips as for the tools above, and Create fails, with an error
	// wrapping ErrResources that names need and availability, when there
	// is less free disk under BaseDir or less memory than that many
	// machines need. Each Boot checks again for one machine.
	Machines int
	// MachineDisk is the free disk one machine needs under BaseDir; 0
	// means DefaultMachineDisk (1.2 GiB).
	MachineDisk uint64
	// MachineMemory is the free memory (MemAvailable) one machine needs;
	// 0 means DefaultMachineMemory (700 MiB).
	MachineMemory uint64
}

// Testbed is one run's set of network namespaces on a bridge: a switch
// namespace holding the bridge, and a namespace per node with a veth into
// it. It is safe for concurrent use.
type Testbed struct {
	prefix string
	subnet netip.Prefix
	dir    string
	sw     string // the switch namespace
	logf   func(string, ...any)
	needs  resourceNeeds // of each machine

	hostsMu sync.Mutex // serialises WriteHosts

	keyMu  sync.Mutex // guards pubKey
	pubKey []byte     // the machines' authorized key, once made

	mu       sync.Mutex // guards the fields below and st.rec
	st       *state
	nodes    []*Node
	procs    []*Process
	pgs      []*Postgres
	machines []*Machine
	closed   bool
}

// Check reports, in one error wrapping ErrUnsupported, everything this
// machine lacks to run a testbed: root, ip (iproute2), and iptables with
// the nf_tables backend, whose rules are per network namespace.
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)")
	}
	if _, err := lookTool("ip"); err != nil {
		missing = append(missing, "ip (apt-get install iproute2)")
	}
	if _, err := iptablesTool(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrUnsupported, strings.Join(missing, "; "))
	}
	return nil
}

// New creates a testbed for t and removes it when t ends, failed or not;
// when t failed it first logs the tail of every process's log. It skips t
// in -short mode, and when Check (or the tools asked for in o) fails,
// except under CI=true where a machine that cannot run the testbed is a
// failure.
func New(t testing.TB, o Options) *Testbed {
	t.Helper()
	if testing.Short() {
		t.Skip("testbed: needs root and builds network namespaces; not run with -short")
	}
	err := Check()
	if err == nil && o.Postgres {
		if _, perr := pgcluster.Find(""); perr != nil {
			err = fmt.Errorf("%w: %v", ErrUnsupported, perr)
		}
	}
	if err == nil && o.Nginx {
		if _, nerr := lookTool("nginx"); nerr != nil {
			err = fmt.Errorf("%w: missing nginx (apt-get install nginx)", ErrUnsupported)
		}
	}
	if err == nil && o.Machines != 0 {
		err = checkMachineTools()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true, so this is a failure", err)
		}
		t.Skipf("%v; skipping", err)
	}
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tb, err := Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Minutes: machines power off (at most machineStopTimeout each, in
		// parallel) and their copies are deleted.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			t.Log(tb.LogTails(40))
			tb.mu.Lock()
			machines := tb.machines
			if tb.closed { // by the test: the machines are gone
				machines = nil
			}
			tb.mu.Unlock()
			for _, m := range machines {
				t.Log(m.dn.Diagnostics(ctx))
			}
		}
		if err := tb.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return tb
}

// Create builds an empty testbed, for programs that are not tests; the
// caller must Close it. In order, it:
//
//  1. removes the leftovers of earlier runs whose owner died (sweep),
//  2. claims a unique name prefix by locking a record in o.StateDir,
//  3. picks a /24 in 10.200.0.0–10.250.255.0 that no route, address or
//     other run uses, and adds a blackhole route for it in the root
//     namespace (the safety rule: a client mistakenly run in the root
//     namespace fails on this machine instead of leaving it),
//  4. creates the scratch directory and the switch namespace with its
//     bridge, so that the root namespace gets no new links.
//
// With o.Machines, it first checks that this machine has the disk and
// memory for that many machines (see Options.Machines).
func Create(ctx context.Context, o Options) (_ *Testbed, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if o.Machines < 0 {
		return nil, fmt.Errorf("testbed: Options.Machines %d is negative", o.Machines)
	}
	needs := resourceNeeds{disk: o.MachineDisk, memory: o.MachineMemory}
	if needs.disk == 0 {
		needs.disk = DefaultMachineDisk
	}
	if needs.memory == 0 {
		needs.memory = DefaultMachineMemory
	}
	base := orDefault(o.BaseDir, "/tmp")
	if o.Machines > 0 {
		if err := checkResources(base, o.Machines, needs); err != nil {
			return nil, err
		}
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	stateDir := o.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	sweep(ctx, stateDir, logf)

	tb := &Testbed{logf: logf, needs: needs}
	for range 20 {
		prefix := randomPrefix()
		if m, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"-*")); len(m) > 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(base, dirPrefix+prefix)); err == nil {
			continue
		}
		tb.st, err = claim(stateDir, prefix)
		if err == nil {
			tb.prefix = prefix
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("testbed: claim a prefix: %w", err)
		}
	}
	if tb.st == nil {
		return nil, fmt.Errorf("testbed: no free prefix after 20 tries (last: %v)", err)
	}
	defer func() {
		if err != nil {
			_ = tb.Close(context.WithoutCancel(ctx))
		}
	}()

	if tb.subnet, err = tb.addRoute(ctx, stateDir); err != nil {
		return nil, err
	}
	tb.dir = filepath.Join(base, dirPrefix+tb.prefix)
	if err := tb.record(func(r *record) { r.Dir = tb.dir }); err != nil {
		return nil, err
	}
	if err := mkdirAll(tb.dir); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	tb.sw = tb.prefix + "-sw"
	if err := tb.record(func(r *record) { r.Namespaces = append(r.Namespaces, tb.sw) }); err != nil {
		return nil, err
	}
	if err := ipBatch(ctx, "", "netns add "+tb.sw); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := ipBatch(ctx, tb.sw,
		"link add "+bridge+" type bridge",
		"link set "+bridge+" up",
	); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	logf("testbed: run %s on %s (blackholed in the root namespace), scratch %s", tb.prefix, tb.subnet, tb.dir)
	return tb, nil
}

const (
	// bridge is the bridge's name in the switch namespace.
	bridge = "br0"
	// dirPrefix and the run's prefix name its scratch directory.
	dirPrefix = "garrison-testbed-"
)

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// mkdirAll creates dir and its parents mode 0755 whatever the umask, so
// that the postgres user and nginx workers can pass through.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// record changes the run's record and saves it.
func (tb *Testbed) record(change func(*record)) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.recordLocked(change)
}

func (tb *Testbed) recordLocked(change func(*record)) error {
	change(&tb.st.rec)
	if err := tb.st.save(); err != nil {
		return fmt.Errorf("testbed: save the run record: %w", err)
	}
	return nil
}

const prefixChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomPrefix returns "gt" and 5 random characters: short enough to leave
// room for node names in a namespace name, and 60 million values.
func randomPrefix() string {
	b := []byte("gt")
	for range 5 {
		b = append(b, prefixChars[rand.IntN(len(prefixChars))])
	}
	return string(b)
}

var prefixRE = regexp.MustCompile(`^gt[a-z0-9]{5}$`)

func validPrefix(s string) bool { return prefixRE.MatchString(s) }

// addRoute picks a free /24 and adds its blackhole route. The route is
// recorded only once added: "ip route add" failing with "File exists" is
// how two runs that picked the same subnet at once find out, and the loser
// must not record (and so one day sweep) the winner's route.
func (tb *Testbed) addRoute(ctx context.Context, stateDir string) (netip.Prefix, error) {
	used, err := usedPrefixes(ctx, stateDir)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("testbed: list the subnets in use: %w", err)
	}
	for range 100 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + rand.IntN(51)), byte(rand.IntN(256)), 0}), 24)
		if overlapsAny(p, used) {
			continue
		}
		out, err := command(ctx, "ip", "route", "add", "blackhole", p.String()).CombinedOutput()
		if err != nil {
			if bytes.Contains(out, []byte("File exists")) {
				continue
			}
			return netip.Prefix{}, fmt.Errorf("testbed: ip route add blackhole %s: %w: %s", p, err, bytes.TrimSpace(out))
		}
		if err := tb.record(func(r *record) { r.Subnet, r.Route = p, true }); err != nil {
			_ = command(ctx, "ip", "route", "delete", "blackhole", p.String()).Run()
			return netip.Prefix{}, err
		}
		return p, nil
	}
	return netip.Prefix{}, errors.New("testbed: no free /24 in 10.200.0.0-10.250.255.0")
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

// usedPrefixes lists the IPv4 networks in use on this machine: the root
// namespace's routes (all tables, default routes aside) and addresses, the
// addresses in every named namespace, and the subnets of every recorded
// run, live or not yet swept.
func usedPrefixes(ctx context.Context, stateDir string) ([]netip.Prefix, error) {
	var used []netip.Prefix
	routes, err := command(ctx, "ip", "-o", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("ip route show: %w", err)
	}
	used = append(used, parseRoutes(string(routes))...)
	addrs, err := command(ctx, "ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("ip addr show: %w", err)
	}
	used = append(used, parseAddrs(string(addrs))...)
	// Namespaces come and go while we look: errors for one that vanished
	// are fine, whatever was printed still counts.
	all, _ := command(ctx, "ip", "-all", "netns", "exec", "ip", "-o", "-4", "addr", "show").Output()
	used = append(used, parseAddrs(string(all))...)

	files, _ := filepath.Glob(filepath.Join(stateDir, "*.json"))
	for _, f := range files {
		var rec record
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &rec) == nil && rec.Subnet.IsValid() {
			used = append(used, rec.Subnet)
		}
	}
	return used, nil
}

var routeTypes = map[string]bool{
	"unicast": true, "local": true, "broadcast": true, "multicast": true, "throw": true,
	"unreachable": true, "prohibit": true, "blackhole": true, "nat": true, "anycast": true,
}

// parseRoutes returns the destinations of `ip -o -4 route show` lines.
func parseRoutes(out string) []netip.Prefix {
	var ps []netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && routeTypes[f[0]] {
			f = f[1:]
		}
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		if p, ok := parsePrefix(f[0]); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// parseAddrs returns the networks of the "inet A/N" in `ip -o addr` output.
func parseAddrs(out string) []netip.Prefix {
	var ps []netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				if p, ok := parsePrefix(f[i+1]); ok {
					ps = append(ps, p)
				}
			}
		}
	}
	return ps
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// Prefix returns the run's unique name prefix, which every namespace name
// starts with.
func (tb *Testbed) Prefix() string { return tb.prefix }

// Subnet returns the run's /24; nodes get addresses from .10 up.
func (tb *Testbed) Subnet() netip.Prefix { return tb.subnet }

// Dir returns the run's scratch directory; each node has a subdirectory.
func (tb *Testbed) Dir() string { return tb.dir }

// Nodes returns the nodes in the order they were added.
func (tb *Testbed) Nodes() []*Node {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]*Node(nil), tb.nodes...)
}

// Node returns the node called name, or nil.
func (tb *Testbed) Node(name string) *Node {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, n := range tb.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Close removes everything the testbed created: it powers its machines
// off (killing by PID those still up after 30 s) and deletes their
// copies, kills its processes (by PID, and every other process left in
// its namespaces), shuts its Postgres servers down (immediate mode),
// deletes the namespaces, the blackhole route and the scratch directory
// (the SSH key with it), and finally its record. When something cannot
// be removed the record stays, so that a later run's sweep retries once
// this process has exited. Calling Close again does nothing.
func (tb *Testbed) Close(ctx context.Context) error {
	tb.mu.Lock()
	if tb.closed {
		tb.mu.Unlock()
		return nil
	}
	tb.closed = true
	procs, pgs, machines := tb.procs, tb.pgs, tb.machines
	tb.mu.Unlock()

	// Machines first: a poweroff lets their units stop cleanly, before
	// the namespaces they run in are emptied by force.
	machineErrs := make([]error, len(machines))
	var wg sync.WaitGroup
	for i, m := range machines {
		wg.Go(func() { machineErrs[i] = m.remove(ctx) })
	}
	wg.Wait()
	for _, p := range procs {
		wg.Go(func() { _ = p.Kill(ctx) })
	}
	for _, pg := range pgs {
		wg.Go(func() {
			if err := pg.StopWith(ctx, pgcluster.StopImmediate); err != nil {
				tb.logf("testbed: %v (its processes are killed with the namespace)", err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(machineErrs, tb.st.removeResources(ctx, tb.logf))...); err != nil {
		_ = tb.st.lock.Close()
		return fmt.Errorf("testbed: close run %s: %w", tb.prefix, err)
	}
	if err := tb.st.release(); err != nil {
		return fmt.Errorf("testbed: close run %s: %w", tb.prefix, err)
	}
	tb.logf("testbed: run %s removed", tb.prefix)
	return nil
}

// LogTails returns the last n lines of the log of every process and
// Postgres server the testbed started, for a failed test's output.
func (tb *Testbed) LogTails(n int) string {
	tb.mu.Lock()
	procs, pgs := tb.procs, tb.pgs
	tb.mu.Unlock()
	var b strings.Builder
	seen := map[string]bool{}
	for _, p := range procs {
		if seen[p.logPath] {
			continue // a restarted process appends to the same log
		}
		seen[p.logPath] = true
		fmt.Fprintf(&b, "--- %s/%s: %s (last %d lines)\n%s\n", p.node.name, p.name, p.logPath, n, tailFile(p.logPath, n))
	}
	for _, pg := range pgs {
		path := filepath.Join(pg.Dir(), "postgres.log")
		if seen[path] {
			continue
		}
		seen[path] = true
		fmt.Fprintf(&b, "--- %s/postgres: %s (last %d lines)\n%s\n", pg.node.name, path, n, tailFile(path, n))
	}
	return b.String()
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// command returns a command running a system tool found by lookTool (the
// bare name when it is not found, for the error to say so).
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, toolPath(name), args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// toolPath returns lookTool's path for name, or name itself when it is
// not found: the command then fails saying what is missing.
func toolPath(name string) string {
	if p, err := lookTool(name); err == nil {
		return p
	}
	return name
}

// lookTool finds a system tool in $PATH or in the sbin directories, which
// a non-login root shell's $PATH may lack.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// checkMachineTools reports, wrapping ErrUnsupported, what this machine
// lacks to boot machines: debroot's requirements and ssh-keygen.
func checkMachineTools() error {
	var missing []error
	if err := debroot.Check(); err != nil {
		missing = append(missing, err)
	}
	if _, err := lookTool("ssh-keygen"); err != nil {
		missing = append(missing, errors.New("missing ssh-keygen (apt-get install openssh-client)"))
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: machines: %w", ErrUnsupported, errors.Join(missing...))
	}
	return nil
}

// iptablesTool returns the iptables-restore to use: iptables-nft-restore,
// or iptables-restore when it is the nf_tables variant. The legacy backend
// is refused: it serialises every namespace on one lock file.
func iptablesTool() (string, error) {
	if p, err := lookTool("iptables-nft-restore"); err == nil {
		return p, nil
	}
	p, err := lookTool("iptables-restore")
	if err != nil {
		return "", errors.New("iptables (apt-get install iptables)")
	}
	out, _ := exec.Command(p, "--version").CombinedOutput()
	if !bytes.Contains(out, []byte("nf_tables")) {
		return "", fmt.Errorf("iptables with the nf_tables backend (%s is %s)", p, bytes.TrimSpace(out))
	}
	return p, nil
}

// ipBatch runs ip commands, one per line, in namespace ns ("" for the
// root namespace) with a single ip process.
func ipBatch(ctx context.Context, ns string, lines ...string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := command(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %q: %w: %s", strings.Join(args, " "), lines, err, bytes.TrimSpace(out))
	}
	return nil
}
