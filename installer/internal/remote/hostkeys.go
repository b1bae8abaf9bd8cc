package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKeyMismatch is wrapped by the error Dial returns when a node
// presents a host key other than the pinned one or the inventory's.
var ErrHostKeyMismatch = errors.New("host key mismatch")

// errInventoryMismatch marks a mismatch with Target.HostKeyFingerprint, on
// which Dial may try the node's other host key types.
var errInventoryMismatch = errors.New("host key does not match the inventory")

// HostKeys pins nodes' SSH host keys in a file in known_hosts format
// (garrisonctl keeps it in its state directory, mode 0600).
//
// On first contact with a node, its key is recorded under the node's name
// and its address, after checking Target.HostKeyFingerprint if the
// inventory gives one; Options.Logf shows the fingerprint so the admin can
// confirm it. Afterwards a node that presents another key is refused with
// an error naming the node, the pinned and the offered fingerprints, and the
// line of the file to delete if the change is legitimate.
//
// Names and addresses are matched literally: wildcards and hashed host names
// (which garrisonctl never writes) do not match anything. A key listed on a
// @revoked line is refused for every node.
//
// Several goroutines and several garrisonctl processes may use the same
// file: checking and recording happen under a lock on it.
type HostKeys struct {
	path string
	mu   sync.Mutex // serialises this process's use of the file; flock does it across processes
}

// pin is one line of the file.
type pin struct {
	marker string // "", "revoked" or "cert-authority" (the @ stripped)
	hosts  []string
	key    ssh.PublicKey
	line   int
}

// OpenHostKeys opens the host key file at path, creating it (mode 0600) if
// it does not exist, and checks that it parses.
func OpenHostKeys(path string) (*HostKeys, error) {
	if path == "" {
		return nil, errors.New("remote: host key file: empty path")
	}
	h := &HostKeys{path: path}
	if _, err := h.load(false); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	return h, nil
}

// Fingerprint returns the SHA256 fingerprint of the host key pinned for
// the node name, as receipts record it, and false if none is pinned (or the
// file cannot be read).
func (h *HostKeys) Fingerprint(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pins, err := h.load(false)
	if err != nil {
		return "", false
	}
	for _, p := range pins {
		if p.marker == "" && slices.Contains(p.hosts, name) {
			return ssh.FingerprintSHA256(p.key), true
		}
	}
	return "", false
}

// pinsFor returns the pins that apply to the node name at the normalized
// address known.
func (h *HostKeys) pinsFor(name, known string) ([]pin, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pins, err := h.load(false)
	if err != nil {
		return nil, err
	}
	return matching(pins, name, known), nil
}

func matching(pins []pin, name, known string) []pin {
	var out []pin
	for _, p := range pins {
		if p.marker == "" && (slices.Contains(p.hosts, name) || slices.Contains(p.hosts, known)) {
			out = append(out, p)
		}
	}
	return out
}

// load reads and parses the file under a shared lock, creating it if it is
// missing. With forWrite it returns the file still open and exclusively
// locked, for the caller to append to and close.
func (h *HostKeys) load(forWrite bool) ([]pin, error) {
	pins, f, _, err := h.open(forWrite)
	if f != nil {
		f.Close()
	}
	return pins, err
}

func (h *HostKeys) open(forWrite bool) ([]pin, *os.File, []byte, error) {
	flag, how := os.O_RDONLY, syscall.LOCK_SH
	if forWrite {
		flag, how = os.O_RDWR|os.O_APPEND, syscall.LOCK_EX
	}
	f, err := os.OpenFile(h.path, flag, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(h.path, flag|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("host key file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("host key file %s: lock: %w", h.path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("host key file %s: %w", h.path, err)
	}
	pins, err := parsePins(data, h.path)
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return pins, f, data, nil
}

func parsePins(data []byte, file string) ([]pin, error) {
	var pins []pin
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
		if err != nil {
			return nil, fmt.Errorf("host key file %s:%d: %w", file, i+1, err)
		}
		pins = append(pins, pin{marker: marker, hosts: hosts, key: key, line: i + 1})
	}
	return pins, nil
}

// hostKeyError is a refused host key; its message is the whole story.
type hostKeyError struct {
	msg       string
	inventory bool // the key does not match Target.HostKeyFingerprint
}

func (e *hostKeyError) Error() string { return e.msg }

func (e *hostKeyError) Is(target error) bool {
	return target == ErrHostKeyMismatch || (e.inventory && target == errInventoryMismatch)
}

// verify checks the key the node t offered at the normalized address
// known, and pins it on first contact.
func (h *HostKeys) verify(t Target, known string, key ssh.PublicKey, logf func(string, ...any)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	pins, f, data, err := h.open(true)
	if err != nil {
		return err
	}
	defer f.Close()

	fp := ssh.FingerprintSHA256(key)
	offered := describeKey(key)
	for _, p := range pins {
		if p.marker == "revoked" && keyEqual(p.key, key) {
			return &hostKeyError{msg: fmt.Sprintf("remote: %s: the node offered %s, which %s:%d revokes", t.Name, offered, h.path, p.line)}
		}
	}
	pinned := matching(pins, t.Name, known)
	if len(pinned) > 0 {
		for _, p := range pinned {
			if !keyEqual(p.key, key) {
				continue
			}
			if t.HostKeyFingerprint != "" && fp != t.HostKeyFingerprint {
				return &hostKeyError{inventory: true, msg: fmt.Sprintf(
					"remote: %s: %v: the node offered %s, pinned at %s:%d, but the inventory expects %s; "+
						"correct the inventory, or if the pin is wrong delete line %d of %s",
					t.Name, ErrHostKeyMismatch, offered, h.path, p.line, t.HostKeyFingerprint, p.line, h.path)}
			}
			return nil
		}
		return &hostKeyError{msg: pinMismatch(t, h.path, offered, key.Type(), pinned)}
	}

	if t.HostKeyFingerprint != "" && fp != t.HostKeyFingerprint {
		return &hostKeyError{inventory: true, msg: fmt.Sprintf("remote: %s: %v: the node offered %s, but the inventory expects %s",
			t.Name, ErrHostKeyMismatch, offered, t.HostKeyFingerprint)}
	}
	hosts := []string{t.Name}
	if known != t.Name {
		hosts = append(hosts, known)
	}
	line := knownhosts.Line(hosts, key) + "\n"
	if len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("remote: %s: pin host key in %s: %w", t.Name, h.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("remote: %s: pin host key in %s: %w", t.Name, h.path, err)
	}
	lineNo := bytes.Count(data, []byte("\n")) + strings.Count(line, "\n")
	how := fmt.Sprintf("confirm it on the node's console with ssh-keygen -lf %s", hostKeyFile(key.Type()))
	if t.HostKeyFingerprint != "" {
		how = "it matches the inventory"
	}
	logf("remote: %s: first contact: pinned %s in %s:%d (%s)", t.Name, offered, h.path, lineNo, how)
	return nil
}

// pinMismatch is the message for a node whose key is not the pinned one.
func pinMismatch(t Target, file, offered, keyType string, pinned []pin) string {
	var was, lines []string
	for _, p := range pinned {
		was = append(was, fmt.Sprintf("%s (line %d, for %s)", describeKey(p.key), p.line, strings.Join(p.hosts, ",")))
		lines = append(lines, strconv.Itoa(p.line))
	}
	return fmt.Sprintf("remote: %s: %v: the node offered %s, but %s pins %s; someone may be intercepting the connection. "+
		"If the node was reinstalled or its host key changed on purpose, check the offered fingerprint on the node's console "+
		"(ssh-keygen -lf %s) and delete line %s of %s",
		t.Name, ErrHostKeyMismatch, offered, file, strings.Join(was, " and "), hostKeyFile(keyType), strings.Join(lines, ", "), file)
}

// pinnedTypeMissing is the error for a node that has no host key of the
// pinned types any more.
func pinnedTypeMissing(t Target, file string, pinned []pin, err error) error {
	var was, lines []string
	for _, p := range pinned {
		was = append(was, fmt.Sprintf("%s (line %d)", describeKey(p.key), p.line))
		lines = append(lines, strconv.Itoa(p.line))
	}
	return &hostKeyError{msg: fmt.Sprintf("remote: %s: %v: the node offers no host key of the type %s pins: %s; "+
		"if its host keys changed on purpose, delete line %s of %s (%v)",
		t.Name, ErrHostKeyMismatch, file, strings.Join(was, " and "), strings.Join(lines, ", "), file, err)}
}

// inventoryMismatch is the message when none of the node's host keys has
// the inventory's fingerprint.
func inventoryMismatch(t Target, offered []ssh.PublicKey) error {
	var keys []string
	for _, k := range offered {
		keys = append(keys, describeKey(k))
	}
	return &hostKeyError{inventory: true, msg: fmt.Sprintf(
		"remote: %s: %v: the node offered %s, but the inventory expects %s; nothing was pinned. "+
			"Check the fingerprint on the node's console (ssh-keygen -lf %s)",
		t.Name, ErrHostKeyMismatch, strings.Join(keys, " and "), t.HostKeyFingerprint, hostKeyFile(offered[0].Type()))}
}

func describeKey(k ssh.PublicKey) string {
	return k.Type() + " key " + ssh.FingerprintSHA256(k)
}

func keyEqual(a, b ssh.PublicKey) bool {
	return bytes.Equal(a.Marshal(), b.Marshal())
}

// hostKeyFile is where OpenSSH on a Debian node keeps the public host key
// of a type.
func hostKeyFile(keyType string) string {
	return "/etc/ssh/ssh_host_" + family(keyType) + "_key.pub"
}

// preferredHostKeyAlgorithms is the order in which a first contact asks
// for a host key: Ed25519 first, the key admins usually look up.
var preferredHostKeyAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// hostKeyAlgorithms are the host key algorithms to ask for: those of the
// pinned keys, so that a node holding keys of several types presents the
// pinned one, or the preferred list on first contact.
func hostKeyAlgorithms(pins []pin) []string {
	if len(pins) == 0 {
		return slices.Clone(preferredHostKeyAlgorithms)
	}
	var algos []string
	for _, p := range pins {
		add := []string{p.key.Type()}
		if p.key.Type() == ssh.KeyAlgoRSA {
			add = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
		}
		for _, a := range add {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// withoutFamily drops from algos those that ask for keys like keyType.
func withoutFamily(algos []string, keyType string) []string {
	return slices.DeleteFunc(slices.Clone(algos), func(a string) bool { return family(a) == family(keyType) })
}

// family groups host key algorithms by the key they need: "ed25519",
// "ecdsa", "rsa".
func family(algo string) string {
	switch {
	case algo == ssh.KeyAlgoED25519:
		return "ed25519"
	case strings.HasPrefix(algo, "ecdsa-sha2-"):
		return "ecdsa"
	case algo == ssh.KeyAlgoRSA || algo == ssh.KeyAlgoRSASHA256 || algo == ssh.KeyAlgoRSASHA512:
		return "rsa"
	}
	return algo
}
