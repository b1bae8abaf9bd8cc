package pushservice_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/stretchr/testify/require"
)

// Independent senders: webpush-go v1.4.0 (the library the proxy itself
// sends with) and npm web-push 3.6.7 run under node. Both must get 201,
// and the device must receive exactly the ciphertext they POSTed.

// userAgentKeys are a browser's subscription keys (RFC 8291 §2): only
// senders use them here, to encrypt.
func userAgentKeys(t *testing.T) (p256dh, auth string) {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	return base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(secret)
}

// recorder is webpush-go's HTTP client: it keeps the body it forwards.
type recorder struct {
	client *http.Client
	mu     sync.Mutex // guards bodies
	bodies [][]byte
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.ContentLength = int64(len(b))
	return r.client.Do(req)
}

func TestWebpushGoSender(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noLimits)
	priv, pub, err := webpush.GenerateVAPIDKeys()
	require.NoError(t, err)
	pubBytes, err := base64.RawURLEncoding.DecodeString(pub)
	require.NoError(t, err)

	d := dial(t, e.base)
	d.hello("")
	ep := d.register("5a0f6a56-2f3c-4d5e-9b1a-000000000001", base64.URLEncoding.EncodeToString(pubBytes))
	p256dh, auth := userAgentKeys(t)
	sub := &webpush.Subscription{Endpoint: ep, Keys: webpush.Keys{P256dh: p256dh, Auth: auth}}
	rec := &recorder{client: e.srv.Client()}

	for i, tc := range []struct {
		msg   string
		topic string
	}{{"first message", ""}, {"second message", "badge"}} {
		p := []byte(tc.msg)
		// webpush-go v1.4.0 pads into spare capacity of the caller's slice
		// (a data race when shared); a full slice expression prevents it.
		// It also prefixes Subscriber with "mailto:" itself.
		resp, err := webpush.SendNotificationWithContext(t.Context(), p[:len(p):len(p)], sub, &webpush.Options{
			HTTPClient:      rec,
			Subscriber:      "ops@example.org",
			TTL:             120,
			Topic:           tc.topic,
			Urgency:         webpush.UrgencyHigh,
			VAPIDPublicKey:  pub,
			VAPIDPrivateKey: priv,
		})
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, "120", resp.Header.Get("TTL"))

		n := d.next()
		require.Equal(t, resp.Header.Get("Location"), e.base+"/m/"+n.version)
		require.Len(t, n.data, 4096, "webpush-go pads to the record size")
		require.True(t, bytes.Equal(rec.bodies[i], n.data), "the device receives the POSTed ciphertext byte for byte")
		d.ack(n, 100)
	}
}

// repoRoot finds the directory of the repository's go.mod above the
// package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for range 20 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatal("no go.mod above the package directory")
	return ""
}

// nodePeers returns node and the NODE_PATH of the npm test peers. Without
// them the test is skipped, or fails under CI=true, where `npm ci --prefix
// test/node` must have run.
func nodePeers(t *testing.T) (node, nodePath string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed: %v", err)
	}
	nodePath = filepath.Join(repoRoot(t), "test", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(nodePath, "web-push", "package.json")); err != nil {
		missing("npm web-push is not installed (npm ci --prefix test/node): %v", err)
	}
	return node, nodePath
}

func TestNodeWebPushSender(t *testing.T) {
	t.Parallel()
	node, nodePath := nodePeers(t)
	e := newEnv(t, noLimits)
	k := newVAPIDKey(t)
	privScalar, err := k.priv.Bytes()
	require.NoError(t, err)

	d := dial(t, e.base)
	d.hello("")
	ep := d.register("5a0f6a56-2f3c-4d5e-9b1a-000000000002", k.padded())
	p256dh, auth := userAgentKeys(t)

	input, err := json.Marshal(map[string]any{
		"subscription": map[string]any{"endpoint": ep, "keys": map[string]string{"p256dh": p256dh, "auth": auth}},
		"payload":      base64.StdEncoding.EncodeToString([]byte("hello from npm web-push")),
		"vapid":        map[string]string{"subject": "mailto:ops@example.org", "publicKey": k.raw(), "privateKey": base64.RawURLEncoding.EncodeToString(privScalar)},
		"ttl":          300,
		"urgency":      "normal",
		"topic":        "chat",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "webpush_send.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())

	var got struct {
		Status   int    `json:"status"`
		Location string `json:"location"`
		TTL      string `json:"ttl"`
		Body     string `json:"body"`
	}
	require.NoError(t, json.Unmarshal(out, &got), "node printed %s", out)
	require.Equal(t, http.StatusCreated, got.Status)
	require.Equal(t, "300", got.TTL)
	sent, err := base64.StdEncoding.DecodeString(got.Body)
	require.NoError(t, err)

	n := d.next()
	require.Equal(t, got.Location, e.base+"/m/"+n.version)
	require.True(t, bytes.Equal(sent, n.data), "the device receives the POSTed ciphertext byte for byte")
	d.ack(n, 100)
}
