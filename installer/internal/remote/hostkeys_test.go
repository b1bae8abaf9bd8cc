package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestFirstContactPinsAndLaterContactsPass(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	path := filepath.Join(t.TempDir(), "state", "known_hosts")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	hk, err := OpenHostKeys(path)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, ok := hk.Fingerprint("app1")
	require.False(t, ok)

	var log testLog
	s.dial(t, "app1", hk, Options{Logf: log.logf})
	want := s.fingerprint(t, "ed25519")
	require.Contains(t, log.String(), "app1: first contact")
	require.Contains(t, log.String(), want)
	require.Contains(t, log.String(), path+":1")
	got, ok := hk.Fingerprint("app1")
	require.True(t, ok)
	require.Equal(t, want, got)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(data), "app1,"+knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))+" ssh-ed25519 "), "%s", data)

	// A later run opens the file again and finds the pin.
	hk2, err := OpenHostKeys(path)
	require.NoError(t, err)
	var log2 testLog
	s.dial(t, "app1", hk2, Options{Logf: log2.logf})
	require.Empty(t, log2.String())
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(data), string(after), "a known node is not pinned twice")
}

func TestChangedHostKeyIsRefused(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	hk := openHostKeys(t)
	c := s.dial(t, "app1", hk, Options{})
	require.NoError(t, c.Close())
	old := s.fingerprint(t, "ed25519")

	s.restart(t, true)
	offered := s.fingerprint(t, "ed25519")
	require.NotEqual(t, old, offered)
	_, err := Dial(context.Background(), s.target("app1"), Options{HostKeys: hk})
	require.Error(t, err)
	require.ErrorIs(t, err, ErrHostKeyMismatch)
	msg := err.Error()
	for _, want := range []string{"app1", old, offered, hk.path, "delete line 1"} {
		require.Contains(t, msg, want)
	}
	fp, _ := hk.Fingerprint("app1")
	require.Equal(t, old, fp, "a refused key does not replace the pin")

	// The same node under another name is still the pinned address.
	_, err = Dial(context.Background(), s.target("renamed"), Options{HostKeys: hk})
	require.ErrorIs(t, err, ErrHostKeyMismatch)
	require.Contains(t, err.Error(), "renamed")
}

func TestInventoryFingerprint(t *testing.T) {
	t.Parallel()
	// A node with two host keys: the inventory may name either.
	s := startSSHD(t, "ed25519", "ecdsa")
	ed, ec := s.fingerprint(t, "ed25519"), s.fingerprint(t, "ecdsa")
	other := "SHA256:" + strings.Repeat("A", 43)

	for _, tc := range []struct {
		name    string
		fp      string
		wantErr []string // empty: the dial succeeds and pins fp
	}{
		{name: "ed25519", fp: ed},
		{name: "ecdsa", fp: ec},
		{name: "padded", fp: ed + "="},
		{name: "wrong", fp: other, wantErr: []string{"app1", other, ed, ec, "nothing was pinned"}},
		{name: "malformed", fp: "MD5:ab:cd", wantErr: []string{"app1", "MD5:ab:cd", "ssh-keygen -lf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hk := openHostKeys(t)
			target := s.target("app1")
			target.HostKeyFingerprint = tc.fp
			var log testLog
			c, err := Dial(context.Background(), target, Options{HostKeys: hk, Logf: log.logf})
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				for _, want := range tc.wantErr {
					require.Contains(t, err.Error(), want)
				}
				_, ok := hk.Fingerprint("app1")
				require.False(t, ok, "nothing is pinned")
				return
			}
			require.NoError(t, err)
			require.NoError(t, c.Close())
			want := strings.TrimRight(tc.fp, "=")
			got, ok := hk.Fingerprint("app1")
			require.True(t, ok)
			require.Equal(t, want, got)
			require.Contains(t, log.String(), "matches the inventory")

			// Later contacts ask for the pinned key's type, whichever the
			// node would offer first otherwise.
			c = s.dial(t, "app1", hk, Options{})
			require.NoError(t, c.Close())
			// An inventory that disagrees with the pin is refused.
			target.HostKeyFingerprint = other
			_, err = Dial(context.Background(), target, Options{HostKeys: hk})
			require.ErrorIs(t, err, ErrHostKeyMismatch)
			require.Contains(t, err.Error(), other)
		})
	}
}

// TestPinnedKeyTypeGone checks a node that no longer has a key of the
// pinned type: that is a changed host key too.
func TestPinnedKeyTypeGone(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, "ed25519", "ecdsa")
	hk := openHostKeys(t)
	target := s.target("app1")
	target.HostKeyFingerprint = s.fingerprint(t, "ecdsa")
	c, err := Dial(context.Background(), target, Options{HostKeys: hk})
	require.NoError(t, err)
	require.NoError(t, c.Close())

	s.keyTypes = []string{"ed25519"}
	s.restart(t, false)
	_, err = Dial(context.Background(), s.target("app1"), Options{HostKeys: hk})
	require.ErrorIs(t, err, ErrHostKeyMismatch)
	for _, want := range []string{"app1", "offers no host key of the type", target.HostKeyFingerprint, "delete line 1 of " + hk.path} {
		require.Contains(t, err.Error(), want)
	}
}

// TestHostKeysVerify checks the pinning rules without a server.
func TestHostKeysVerify(t *testing.T) {
	t.Parallel()
	k1, k2 := newHostKey(t), newHostKey(t)
	fp1, fp2 := ssh.FingerprintSHA256(k1), ssh.FingerprintSHA256(k2)
	target := Target{Name: "app1", Address: "10.0.0.11", Port: 22, User: "root", KeyFile: "k"}
	nop := func(string, ...any) {}

	for _, tc := range []struct {
		name    string
		file    string // the file's content before; KEY1 and KEY2 stand for the keys
		target  Target
		key     ssh.PublicKey
		wantErr []string
	}{
		{name: "first contact", key: k1},
		{name: "pinned", file: "app1,10.0.0.11 KEY1\n", key: k1},
		{name: "pinned by name only", file: "app1 KEY1\n", key: k1},
		{name: "changed", file: "# comment\napp1,10.0.0.11 KEY1\n", key: k2, wantErr: []string{"app1", fp1, fp2, "line 2"}},
		{name: "address pinned for another node", file: "db1,10.0.0.11 KEY1\n", key: k2, wantErr: []string{"app1", "db1,10.0.0.11", fp1, fp2}},
		{name: "one of two pins", file: "app1 KEY2\napp1 KEY1\n", key: k1},
		{name: "revoked", file: "@revoked * KEY1\n", key: k1, wantErr: []string{"app1", fp1, "revokes"}},
		{name: "other port", file: "[10.0.0.11]:2222 KEY2\n", key: k1},
		{name: "no final newline", file: "db1 KEY2", key: k1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "known_hosts")
			content := strings.NewReplacer("KEY1", keyText(k1), "KEY2", keyText(k2)).Replace(tc.file)
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			hk, err := OpenHostKeys(path)
			require.NoError(t, err)
			err = hk.verify(target, "10.0.0.11", tc.key, nop)
			if len(tc.wantErr) > 0 {
				require.ErrorIs(t, err, ErrHostKeyMismatch)
				for _, want := range tc.wantErr {
					require.Contains(t, err.Error(), want)
				}
				after, err := os.ReadFile(path)
				require.NoError(t, err)
				require.Equal(t, content, string(after), "a refused key is not recorded")
				return
			}
			require.NoError(t, err)
			// Accepted keys stay accepted, and the file still parses.
			require.NoError(t, hk.verify(target, "10.0.0.11", tc.key, nop))
			hk2, err := OpenHostKeys(path)
			require.NoError(t, err)
			require.NoError(t, hk2.verify(target, "10.0.0.11", tc.key, nop))
		})
	}
}

func TestOpenHostKeysRejectsGarbage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(path, []byte("app1 "+keyText(newHostKey(t))+"\napp2 ssh-ed25519 notbase64!\n"), 0o600))
	_, err := OpenHostKeys(path)
	require.Error(t, err)
	require.Contains(t, err.Error(), path+":2")

	_, err = OpenHostKeys("")
	require.Error(t, err)
}

func TestTargetCheck(t *testing.T) {
	t.Parallel()
	good := Target{Name: "app1", Address: "10.0.0.11", User: "root", KeyFile: "/k"}
	for _, tc := range []struct {
		name    string
		edit    func(*Target)
		wantErr []string
	}{
		{name: "good", edit: func(*Target) {}},
		{name: "no name", edit: func(t *Target) { t.Name = "" }, wantErr: []string{"no name"}},
		{name: "name with comma", edit: func(t *Target) { t.Name = "a,b" }, wantErr: []string{`"a,b"`}},
		{name: "name with wildcard", edit: func(t *Target) { t.Name = "app*" }, wantErr: []string{`"app*"`}},
		{name: "everything missing", edit: func(t *Target) { *t = Target{Name: "app1", Port: 70000} },
			wantErr: []string{"app1", "no address", "port 70000", "no ssh user", "no ssh key file"}},
		{name: "bad fingerprint", edit: func(t *Target) { t.HostKeyFingerprint = "SHA256:short" }, wantErr: []string{"app1", "SHA256:short"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := good
			tc.edit(&target)
			got, err := target.check()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				require.Equal(t, 22, got.Port)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
			// Dial refuses it before doing anything.
			_, err = Dial(context.Background(), target, Options{HostKeys: &HostKeys{path: "/nonexistent/known_hosts"}})
			require.Error(t, err)
		})
	}
	_, err := Dial(context.Background(), good, Options{})
	require.ErrorContains(t, err, "Options.HostKeys")
}

func newHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return k
}

// keyText is a key as a known_hosts line writes it after the host names.
func keyText(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}
