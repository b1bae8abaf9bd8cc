package compat

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/pushwire"
)

// The push proxy's protocol checked against Mattermost's own structs
// (server/public v0.4.2, the version mattermost-push-proxy pins): what a
// Mattermost server marshals is accepted, and every answer is byte for
// byte what model.PushResponse's constructors marshal to.

const pushSecret = "compat-push-secret"

// pushProxy is one garrison-pushproxy for the push tests, started on
// first use.
var pushProxy struct {
	once sync.Once
	url  string
	err  error
	cmd  *exec.Cmd
	dir  string
}

// stopPushProxy ends the proxy, if a test started one, and removes its
// directory; runMain calls it after the tests.
func stopPushProxy() error {
	var err error
	if c := pushProxy.cmd; c != nil {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err = <-done:
		case <-time.After(stopTimeout):
			_ = c.Process.Kill()
			<-done
			err = fmt.Errorf("garrison-pushproxy did not exit within %s of SIGTERM", stopTimeout)
		}
		if err != nil {
			err = fmt.Errorf("garrison-pushproxy: %w", err)
		}
	}
	if pushProxy.dir != "" {
		_ = os.RemoveAll(pushProxy.dir)
	}
	return err
}

func startPushProxy(t *testing.T) string {
	t.Helper()
	pushProxy.once.Do(func() { pushProxy.url, pushProxy.err = launchPushProxy() })
	require.NoError(t, pushProxy.err)
	return pushProxy.url
}

func launchPushProxy() (string, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "garrison-compat-pushproxy-")
	if err != nil {
		return "", err
	}
	pushProxy.dir = dir
	bin := os.Getenv("GARRISON_PUSHPROXY_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "garrison-pushproxy")
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			return "", err
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./pushproxy/cmd/garrison-pushproxy")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build garrison-pushproxy: %w\n%s", err, out)
		}
	}
	if err := srv.pg.CreateDatabase(ctx, "garrison_pushproxy", ""); err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	_ = l.Close()
	url := "http://" + addr
	cfg, err := json.Marshal(map[string]any{
		"ListenAddress": addr, "MetricsListenAddress": "", "DataSource": srv.pg.DSN("garrison_pushproxy"),
		"PublicURL": url, "VAPIDKeyFile": filepath.Join(dir, "vapid.json"), "SenderSecret": pushSecret, "LogLevel": "WARN",
	})
	if err != nil {
		return "", err
	}
	cfgPath := filepath.Join(dir, "pushproxy.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(dir, "pushproxy.log"))
	if err != nil {
		return "", err
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The proxy lives as long as the test process; it dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pushProxy.cmd = cmd
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, nil
			}
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	b, _ := os.ReadFile(logFile.Name())
	return "", &startError{log: string(b)}
}

type startError struct{ log string }

func (e *startError) Error() string { return "garrison-pushproxy did not become ready:\n" + e.log }

// postProxy POSTs body (already marshalled by Mattermost's structs) and
// returns the raw answer.
func postProxy(t *testing.T, url, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	// A Mattermost server carries the secret in PushNotificationServer's
	// userinfo, which Go's client sends as basic auth.
	req.SetBasicAuth("mattermost", pushSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, bytes.TrimSpace(raw)
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// webpushDevice subscribes a device on the proxy's own push service (the
// Firefox protocol) and registers it as garrison would; it returns the
// registration id.
func webpushDevice(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/webpush/vapid_public_key", nil)
	req.SetBasicAuth("mattermost", pushSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var key struct {
		VAPIDPublicKey string `json:"vapid_public_key"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&key))
	_ = resp.Body.Close()
	raw, err := base64.RawURLEncoding.DecodeString(key.VAPIDPublicKey)
	require.NoError(t, err)

	conn, wsResp, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http://", "ws://", 1)+"/ws", nil)
	require.NoError(t, err)
	_ = wsResp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	require.NoError(t, conn.WriteJSON(map[string]any{"messageType": "hello", "use_webpush": true}))
	var hello map[string]any
	require.NoError(t, conn.ReadJSON(&hello))
	require.NoError(t, conn.WriteJSON(map[string]any{"messageType": "register", "channelID": model.NewId(),
		"key": base64.URLEncoding.EncodeToString(raw)}))
	var reg struct {
		Status       int    `json:"status"`
		PushEndpoint string `json:"pushEndpoint"`
	}
	require.NoError(t, conn.ReadJSON(&reg))
	require.Equal(t, 200, reg.Status)

	ua, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	code, body := postProxy(t, url, "/api/v1/webpush/registrations", marshal(t, map[string]any{
		"endpoint": reg.PushEndpoint, "expirationTime": nil,
		"keys": map[string]string{"p256dh": base64.RawURLEncoding.EncodeToString(ua.PublicKey().Bytes()), "auth": base64.RawURLEncoding.EncodeToString(auth)},
	}))
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var created struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	return created.ID
}

func TestPushProxySendPush(t *testing.T) {
	url := startPushProxy(t)
	rid := webpushDevice(t, url)

	message := func(deviceID string) *model.PushNotification {
		pn := &model.PushNotification{
			AckId: model.NewId(), ServerId: model.NewId(), PostId: model.NewId(), ChannelId: model.NewId(), TeamId: model.NewId(),
			Category: model.CategoryCanReply, Version: model.PushMessageV2, Type: model.PushTypeMessage,
			Message: "You've received a new message.", SenderId: model.NewId(), IsIdLoaded: true, Badge: 2,
		}
		pn.SetDeviceIdAndPlatform(deviceID)
		return pn
	}
	versioned := message("webpush:" + rid)
	versioned.Platform = "webpush-v2"
	noServer := message("webpush:" + rid)
	noServer.ServerId = ""
	for _, tc := range []struct {
		name string
		pn   *model.PushNotification
		want model.PushResponse
	}{
		{"delivered", message("webpush:" + rid), model.NewOkPushResponse()},
		{"platform with a version suffix", versioned, model.NewOkPushResponse()},
		{"clear", func() *model.PushNotification {
			pn := message("webpush:" + rid)
			pn.Type, pn.ContentAvailable, pn.Message = model.PushTypeClear, 1, ""
			return pn
		}(), model.NewOkPushResponse()},
		{"unknown registration", message("webpush:" + "AAAAAAAAAAAAAAAAAAAAAA"), model.NewRemovePushResponse()},
		{"stock mobile app", message("apple_rn-v2:" + "abcdef0123456789"), model.NewErrorPushResponse("platform not available on this network")},
		{"android app", message("android_rn-v2:" + "abcdef0123456789"), model.NewErrorPushResponse("platform not available on this network")},
		{"missing server id", noServer, model.NewErrorPushResponse("Failed because of missing server Id")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postProxy(t, url, "/api/v1/send_push", marshal(t, tc.pn))
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, string(marshal(t, tc.want)), string(body), "byte-compatible with model.PushResponse")
			var got model.PushResponse
			require.NoError(t, json.Unmarshal(body, &got))
			require.Equal(t, tc.want, got)
		})
	}
}

func TestPushProxyAck(t *testing.T) {
	url := startPushProxy(t)
	ack := &model.PushNotificationAck{
		Id: model.NewId(), ClientReceivedAt: model.GetMillis(), ClientPlatform: "android",
		NotificationType: model.PushTypeMessage, PostId: model.NewId(), IsIdLoaded: true,
	}
	code, body := postProxy(t, url, "/api/v1/ack", marshal(t, ack))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, string(marshal(t, model.NewOkPushResponse())), string(body))

	bad := *ack
	bad.NotificationType = ""
	code, body = postProxy(t, url, "/api/v1/ack", marshal(t, &bad))
	require.Equal(t, http.StatusOK, code)
	var got model.PushResponse
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, model.PushStatusFail, got[model.PushStatus])
}

func TestPushProxyWrongSecret(t *testing.T) {
	url := startPushProxy(t)
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/send_push", bytes.NewReader(marshal(t, &model.PushNotification{})))
	req.SetBasicAuth("mattermost", "not-the-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	var got model.PushResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got), "a Mattermost server can still decode the answer")
	require.Equal(t, model.PushStatusFail, got[model.PushStatus])
}

// TestAttachDeviceProps is the driver's PUT /users/sessions/device, as the
// mobile apps call it at start.
func TestAttachDeviceProps(t *testing.T) {
	ctx := context.Background()
	a, err := createAccount(ctx, "device")
	require.NoError(t, err)
	_, _, err = a.Login(ctx, a.User.Username, a.Password)
	require.NoError(t, err)
	resp, err := a.AttachDeviceProps(ctx, map[string]string{"device_id": "android_rn-v2:" + model.NewId()})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sessions, _, err := a.GetSessions(ctx, a.User.Id, "")
	require.NoError(t, err)
	found := false
	for _, s := range sessions {
		found = found || strings.HasPrefix(s.DeviceId, "android_rn-v2:")
	}
	require.True(t, found, "the session carries the device id")

	_, err = a.AttachDeviceProps(ctx, map[string]string{"device_id": ""})
	require.Error(t, err, "an empty device id is refused")
}

// TestPushWireMatchesMattermost: garrison's and the proxy's shared wire
// types marshal to exactly the bytes Mattermost's own structs do, every
// field set, so either end can talk to a stock Mattermost counterpart.
func TestPushWireMatchesMattermost(t *testing.T) {
	n := pushwire.PushNotification{
		AckID: "a", Platform: "webpush", ServerID: "s", DeviceID: "d", PostID: "p", Category: "CAN_REPLY", Sound: "none",
		Message: "m", Badge: 3, ContentAvailable: 1, TeamID: "t", ChannelID: "c", RootID: "r", ChannelName: "cn",
		Type: "message", SubType: "calls", Transport: "voip", SenderID: "u", SenderName: "un", OverrideUsername: "ou",
		OverrideIconURL: "oi", FromWebhook: "true", Version: "v2", IsCRTEnabled: true, IsIDLoaded: true, Signature: "sig",
	}
	ours := marshal(t, n)
	var theirs model.PushNotification
	require.NoError(t, json.Unmarshal(ours, &theirs))
	require.Equal(t, string(marshal(t, &theirs)), string(ours))

	a := pushwire.PushNotificationAck{ID: "a", ReceivedAt: 42, Platform: "android", Type: "message", PostID: "p", IsIDLoaded: true}
	oursAck := marshal(t, a)
	var theirsAck model.PushNotificationAck
	require.NoError(t, json.Unmarshal(oursAck, &theirsAck))
	require.Equal(t, string(marshal(t, &theirsAck)), string(oursAck))
}
