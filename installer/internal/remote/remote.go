// Package remote is the SSH transport garrisonctl uses to reach the nodes of
// a site: it runs commands, moves files and opens TCP connections from a
// node, over one authenticated connection per node.
//
// Host keys are pinned in a known_hosts file (see HostKeys): the first
// contact records the node's key, every later contact must present the same
// one. Commands run as root: directly when the inventory's SSH user is root,
// otherwise under `sudo -n`; a cancelled command is killed on the node with
// its process group. A node that stops answering keepalives is given up on.
// File transfer needs nothing on the node but a POSIX sh and coreutils (cat,
// stat, sha256sum, mktemp, mv, chmod, chown, mkdir, rm): there is no SFTP.
//
// Every error names the node (Target.Name) and the operation.
package remote

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Target is one node as the inventory describes it.
type Target struct {
	// Name is the node's name in the inventory, used in every error message
	// and as the name its host key is pinned under.
	Name string
	// Address is the node's host name or IP address.
	Address string
	// Port is the node's SSH port; 0 means 22.
	Port int
	// User is the SSH user: root, or a user with passwordless sudo, in which
	// case every command runs under `sudo -n`.
	User string
	// KeyFile is the path of an unencrypted private key in OpenSSH (or PEM)
	// format; a leading "~/" is the current user's home directory.
	KeyFile string
	// HostKeyFingerprint, when set, is the node's host key fingerprint as
	// `ssh-keygen -lf` prints it ("SHA256:..."); the node must present that
	// key, on first contact too. Any of the node's host keys will do.
	HostKeyFingerprint string
}

// Options are the parts of Dial that are the same for every node.
type Options struct {
	// HostKeys holds the pinned host keys; required.
	HostKeys *HostKeys
	// Dial opens the TCP connection to the node; nil means a net.Dialer.
	// Tests and the testbed pass one that dials from a network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logf receives progress and first-contact notices (never secrets);
	// nil discards them.
	Logf func(format string, args ...any)
	// ConnectTimeout bounds the TCP connection and the SSH handshake;
	// 0 means 15s.
	ConnectTimeout time.Duration

	// keepalive is the interval between keepalive requests; 0 means
	// defaultKeepalive. Tests shorten it.
	keepalive time.Duration
}

const (
	defaultConnectTimeout = 15 * time.Second
	// defaultKeepalive and keepaliveMisses decide when a node that stopped
	// answering (powered off, cable pulled) is given up on, so that no
	// command waits forever on a dead connection.
	defaultKeepalive = 15 * time.Second
	keepaliveMisses  = 3
	// killGrace is how long a cancelled command has to end after SIGTERM
	// before it gets SIGKILL.
	killGrace = 5 * time.Second
)

// Client is an open SSH connection to one node. Its methods may be called
// from several goroutines at once; each call opens its own SSH session, and
// OpenSSH allows 10 at a time by default (sshd_config MaxSessions).
type Client struct {
	target Target
	ssh    *ssh.Client
	logf   func(format string, args ...any)
	done   chan struct{} // closed by Close; stops the keepalive goroutine
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu   sync.Mutex // guards lost
	lost error      // why keepalive gave the connection up, if it did

	// onCommand, when set (by tests), sees every command line sent.
	onCommand func(cmd string)
}

// nameRE is what a node name may look like: it goes into the known_hosts
// file as a host name, where commas, spaces and wildcards mean something.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// check validates t and fills in its defaults.
func (t Target) check() (Target, error) {
	if t.Name == "" {
		return t, errors.New("remote: target has no name")
	}
	if !nameRE.MatchString(t.Name) {
		return t, fmt.Errorf("remote: target name %q: use letters, digits, '.', '_' and '-'", t.Name)
	}
	var bad []string
	if t.Address == "" {
		bad = append(bad, "no address")
	}
	if t.Port == 0 {
		t.Port = 22
	}
	if t.Port < 1 || t.Port > 65535 {
		bad = append(bad, fmt.Sprintf("port %d out of range", t.Port))
	}
	if t.User == "" {
		bad = append(bad, "no ssh user")
	}
	if t.KeyFile == "" {
		bad = append(bad, "no ssh key file")
	}
	if t.HostKeyFingerprint != "" {
		fp, err := normalizeFingerprint(t.HostKeyFingerprint)
		if err != nil {
			bad = append(bad, err.Error())
		}
		t.HostKeyFingerprint = fp
	}
	if len(bad) > 0 {
		return t, fmt.Errorf("remote: %s: bad target: %s", t.Name, strings.Join(bad, "; "))
	}
	return t, nil
}

// normalizeFingerprint checks a "SHA256:..." fingerprint and returns it the
// way ssh.FingerprintSHA256 writes it (unpadded base64).
func normalizeFingerprint(fp string) (string, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(fp), "SHA256:")
	b64 = strings.TrimRight(b64, "=")
	if raw, err := base64.RawStdEncoding.DecodeString(b64); !ok || err != nil || len(raw) != 32 {
		return "", fmt.Errorf("host key fingerprint %q: want SHA256:<43 base64 characters> as `ssh-keygen -lf` prints it", fp)
	}
	return "SHA256:" + b64, nil
}

// Dial connects to the node t over SSH, checks its host key against
// o.HostKeys (pinning it on first contact) and authenticates with t.KeyFile.
func Dial(ctx context.Context, t Target, o Options) (*Client, error) {
	t, err := t.check()
	if err != nil {
		return nil, err
	}
	if o.HostKeys == nil {
		return nil, fmt.Errorf("remote: %s: no host key file (Options.HostKeys)", t.Name)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.keepalive <= 0 {
		o.keepalive = defaultKeepalive
	}
	signer, err := loadSigner(t)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(t.Address, strconv.Itoa(t.Port))
	known := knownhosts.Normalize(addr)
	pins, err := o.HostKeys.pinsFor(t.Name, known)
	if err != nil {
		return nil, fmt.Errorf("remote: %s: %w", t.Name, err)
	}
	algos := hostKeyAlgorithms(pins)

	// Without a pin but with an inventory fingerprint, the node may hold
	// several host keys and the admin may have copied the fingerprint of
	// any of them: try each key type the node offers until one matches.
	var offered []ssh.PublicKey
	for {
		var key ssh.PublicKey
		cfg := &ssh.ClientConfig{
			User: t.User,
			Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
				key = k
				return o.HostKeys.verify(t, known, k, o.Logf)
			},
			HostKeyAlgorithms: algos,
		}
		conn, err := dialSSH(ctx, addr, cfg, o)
		switch {
		case err == nil:
			return newClient(t, conn, o), nil
		case errors.Is(err, errInventoryMismatch) && len(pins) == 0 && key != nil:
			offered = append(offered, key)
			algos = withoutFamily(algos, key.Type())
			if len(algos) > 0 {
				continue
			}
			return nil, inventoryMismatch(t, offered)
		case key == nil && strings.Contains(err.Error(), "no common algorithm for host key"):
			if len(pins) > 0 {
				return nil, pinnedTypeMissing(t, o.HostKeys.path, pins, err)
			}
			if len(offered) > 0 {
				// The node has no host key of the types not tried yet.
				return nil, inventoryMismatch(t, offered)
			}
		}
		return nil, connectError(t, addr, err)
	}
}

// dialSSH opens the TCP connection and runs the SSH handshake, both bounded
// by o.ConnectTimeout and ctx.
func dialSSH(ctx context.Context, addr string, cfg *ssh.ClientConfig, o Options) (*ssh.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The handshake does not take a context: a deadline bounds it, and
	// closing the connection ends it early when ctx is cancelled.
	if err := conn.SetDeadline(time.Now().Add(o.ConnectTimeout)); err != nil {
		conn.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			c.Close()
		}
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// connectError says what went wrong while connecting, in the admin's terms.
func connectError(t Target, addr string, err error) error {
	what := fmt.Sprintf("remote: %s: connect %s@%s", t.Name, t.User, addr)
	switch {
	case errors.Is(err, ErrHostKeyMismatch) || errors.Is(err, errInventoryMismatch):
		// verify's message already names the node and both keys.
		var hk *hostKeyError
		if errors.As(err, &hk) {
			return hk
		}
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%s: the node refused the key in %s for user %s (is its public key in that user's authorized_keys?): %w",
			what, t.KeyFile, t.User, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// loadSigner reads the target's private key.
func loadSigner(t Target) (ssh.Signer, error) {
	path := t.KeyFile
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("remote: %s: ssh key file %s: %w", t.Name, t.KeyFile, err)
		}
		path = filepath.Join(home, rest)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("remote: %s: ssh key file: %w", t.Name, err)
	}
	defer clear(data)
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("remote: %s: ssh key file %s is encrypted with a passphrase; garrisonctl needs an unencrypted key "+
			"(a dedicated deploy key, or remove the passphrase with ssh-keygen -p -f %s)", t.Name, path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("remote: %s: ssh key file %s: %w", t.Name, path, err)
	}
	return signer, nil
}

func newClient(t Target, conn *ssh.Client, o Options) *Client {
	c := &Client{target: t, ssh: conn, logf: o.Logf, done: make(chan struct{})}
	c.wg.Add(1)
	go c.keepalive(o.keepalive)
	return c
}

// keepalive sends a keepalive request every interval and closes the
// connection when keepaliveMisses of them in a row got no answer.
func (c *Client) keepalive(interval time.Duration) {
	defer c.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	replies := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-c.done:
			return
		case err := <-replies:
			if err != nil { // the connection is gone
				return
			}
			pending, missed = false, 0
		case <-tick.C:
			if pending {
				missed++
				if missed >= keepaliveMisses {
					c.mu.Lock()
					c.lost = fmt.Errorf("the node did not answer SSH keepalives for %v", interval*keepaliveMisses)
					c.mu.Unlock()
					c.ssh.Close()
					return
				}
				continue
			}
			pending = true
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				// OpenSSH answers this unknown request with a failure,
				// which is an answer all the same. It returns at the latest
				// when the connection closes.
				_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
				replies <- err
			}()
		}
	}
}

// connErr adds why the connection was lost, if keepalive gave it up, to an
// error from the SSH layer.
func (c *Client) connErr(err error) error {
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	if lost != nil {
		return fmt.Errorf("connection lost: %v: %w", lost, err)
	}
	return err
}

// DialContext opens a TCP connection from the node to addr (a direct-tcpip
// channel), e.g. to 127.0.0.1:8008 on the node. network is "tcp", "tcp4"
// or "tcp6".
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.ssh.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("remote: %s: dial %s %s from the node: %w", c.target.Name, network, addr, c.connErr(err))
	}
	return conn, nil
}

// Close closes the connection; sessions and connections still open through
// it end.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		err := c.ssh.Close()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = fmt.Errorf("remote: %s: close: %w", c.target.Name, err)
		}
		c.wg.Wait()
	})
	return c.closeErr
}

// Quote quotes s for a POSIX shell: the result is one word whose value is s.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// pgidMarker starts the line the wrapper writes to standard error before
// it runs a command: the command's process group, which a cancelled Run
// kills. OpenSSH cannot do that itself: it refuses "signal" requests in
// sessions without privilege separation, which root logins are.
const pgidMarker = "garrison-remote-pgid="

// wrapper runs "$1" with sh after writing the process group line (empty
// where there is no /proc).
const wrapper = `g=; { read -r _ _ _ _ g _ < /proc/$$/stat; } 2>/dev/null; printf '` + pgidMarker + `%s\n' "$g" >&2; exec sh -c "$1"`

// shellCommand is the command line sent to the node for cmd: cmd run by sh
// (so that root and sudo users get the same shell whatever their login
// shell is) behind the wrapper, under `sudo -n` for a user other than root.
func shellCommand(user, cmd string) string {
	return asRoot(user, "sh -c "+Quote(wrapper)+" sh "+Quote(cmd))
}

// asRoot is the command line that runs the command line cmd as root.
func asRoot(user, cmd string) string {
	if user == "root" {
		return cmd
	}
	return "sudo -n " + cmd
}
