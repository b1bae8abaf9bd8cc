package ece

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Independent peers: npm http_ece (an RFC 8188/8291 implementation) and
// npm web-push (a Web Push sender), installed by `npm ci --prefix test/node`.

// nodePeers finds node and the test/node modules. Missing peers skip the
// test, or fail it under CI=true, where they are part of the image.
func nodePeers(t *testing.T) (node, nodePath string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed: %v", err)
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	nodePath = filepath.Join(dir, "test", "node", "node_modules")
	for _, m := range []string{"http_ece", "web-push"} {
		if _, err := os.Stat(filepath.Join(nodePath, m, "package.json")); err != nil {
			missing("npm module %s is missing (run npm ci --prefix test/node): %v", m, err)
		}
	}
	return node, nodePath
}

// runNode runs script with in as JSON on stdin and decodes its stdout into out.
func runNode(t *testing.T, script string, in, out any) {
	t.Helper()
	node, nodePath := nodePeers(t)
	input, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), node, "-e", script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("node: %v\n%s", err, stderr.String())
		}
		require.NoError(t, err)
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), out), "node output: %s", stdout.String())
}

const readStdin = `
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c)).on('end', () => {
  const i = JSON.parse(Buffer.concat(chunks).toString());
  process.stdout.write(JSON.stringify(main(i)));
});
const b = (s) => Buffer.from(s, 'base64url');
`

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestHTTPECEDecryptsWebpushGo: the same webpush-go body our decryptor
// opens, an independent implementation opens too.
func TestHTTPECEDecryptsWebpushGo(t *testing.T) {
	t.Parallel()
	s, err := NewSubscriber()
	require.NoError(t, err)
	plaintext := []byte(`{"ack_id":"a1","type":"message","post_id":"p1"} ünïcode`)
	body, _ := webpushGoBody(t, s, plaintext)

	ours, err := s.Decrypt(body)
	require.NoError(t, err)
	require.Equal(t, plaintext, ours)

	var out struct{ Plaintext string }
	runNode(t, readStdin+`
const ece = require('http_ece');
const crypto = require('crypto');
function main(i) {
  const ua = crypto.createECDH('prime256v1');
  ua.setPrivateKey(b(i.priv));
  const pt = ece.decrypt(b(i.body), { version: 'aes128gcm', privateKey: ua, authSecret: i.auth });
  return { plaintext: pt.toString('base64url') };
}`, map[string]string{"priv": enc(s.Key.Bytes()), "auth": s.AuthSecret(), "body": enc(body)}, &out)
	require.Equal(t, plaintext, b64(t, out.Plaintext))
}

// TestWebPushNodeEncrypts: npm web-push's encrypt and generateRequestDetails
// output opens with our decryptor.
func TestWebPushNodeEncrypts(t *testing.T) {
	t.Parallel()
	s, err := NewSubscriber()
	require.NoError(t, err)
	plaintext := []byte("When I grow up, I want to be a watermelon — from node")

	var out struct {
		Encrypted string
		Body      string
		Headers   map[string]any
	}
	runNode(t, readStdin+`
const webpush = require('web-push');
function main(i) {
  const keys = { p256dh: i.p256dh, auth: i.auth };
  const e = webpush.encrypt(i.p256dh, i.auth, b(i.plaintext), 'aes128gcm');
  const vapid = webpush.generateVAPIDKeys();
  const d = webpush.generateRequestDetails({ endpoint: 'https://push.example/push/x', keys }, b(i.plaintext), {
    TTL: 60, vapidDetails: { subject: 'mailto:ops@example.org', publicKey: vapid.publicKey, privateKey: vapid.privateKey },
  });
  return { encrypted: e.cipherText.toString('base64url'), body: d.body.toString('base64url'), headers: d.headers };
}`, map[string]string{"p256dh": s.P256dh(), "auth": s.AuthSecret(), "plaintext": enc(plaintext)}, &out)

	got, err := s.Decrypt(b64(t, out.Encrypted))
	require.NoError(t, err)
	require.Equal(t, plaintext, got)

	got, err = s.Decrypt(b64(t, out.Body))
	require.NoError(t, err)
	require.Equal(t, plaintext, got)
	require.Equal(t, "aes128gcm", out.Headers["Content-Encoding"])
}

// TestHTTPECEMultiRecord: multi-record, padded messages agree both ways
// between http_ece and this package (and its test encryptor).
func TestHTTPECEMultiRecord(t *testing.T) {
	t.Parallel()
	s, err := NewSubscriber()
	require.NoError(t, err)
	plaintext := bytes.Repeat([]byte("a longer message split into records; "), 12)
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	ours := seal(t, as, s.Key.PublicKey(), s.Auth, randomSalt(t), plaintext, 64, 250)

	var out struct{ Theirs, Opened string }
	runNode(t, readStdin+`
const ece = require('http_ece');
const crypto = require('crypto');
function main(i) {
  const as = crypto.createECDH('prime256v1');
  as.generateKeys();
  const theirs = ece.encrypt(b(i.plaintext), { version: 'aes128gcm', dh: i.p256dh, privateKey: as, authSecret: i.auth, rs: 64, pad: 250 });
  const ua = crypto.createECDH('prime256v1');
  ua.setPrivateKey(b(i.priv));
  const opened = ece.decrypt(b(i.ours), { version: 'aes128gcm', privateKey: ua, authSecret: i.auth });
  return { theirs: theirs.toString('base64url'), opened: opened.toString('base64url') };
}`, map[string]string{
		"p256dh": s.P256dh(), "auth": s.AuthSecret(), "priv": enc(s.Key.Bytes()),
		"plaintext": enc(plaintext), "ours": enc(ours),
	}, &out)

	require.Equal(t, plaintext, b64(t, out.Opened))
	theirs := b64(t, out.Theirs)
	require.Greater(t, len(theirs), 10*64, "http_ece wrote many records")
	got, err := s.Decrypt(theirs)
	require.NoError(t, err)
	require.Equal(t, plaintext, got)
}
