package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/pki"
)

// site is a site CA with the files an agent needs, as the installer would
// write them, and client certificates for the tests.
type site struct {
	ca      *pki.CA
	dir     string
	files   TLSFiles
	admin   tls.Certificate // garrisonctl's client certificate
	foreign tls.Certificate // a client certificate from another CA
	pool    *x509.CertPool
}

func newSite(t *testing.T) *site {
	t.Helper()
	now := time.Now()
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreate(filepath.Join(dir, "ca"), "test-site", now)
	require.NoError(t, err)
	_, _, err = ca.Ensure(dir, "node", pki.Request{CommonName: "app1", DNSNames: []string{"app1", "localhost"},
		IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, Server: true, Client: true}, now)
	require.NoError(t, err)
	s := &site{ca: ca, dir: dir, files: TLSFiles{
		Cert: filepath.Join(dir, "node.crt"), Key: filepath.Join(dir, "node.key"), CA: filepath.Join(dir, "ca", pki.CACertName),
	}}
	s.admin = keyPair(t, ca, pki.Request{CommonName: "garrisonctl", Client: true})
	other, _, err := pki.LoadOrCreate(filepath.Join(dir, "other-ca"), "other-site", now)
	require.NoError(t, err)
	s.foreign = keyPair(t, other, pki.Request{CommonName: "garrisonctl", Client: true})
	s.pool = x509.NewCertPool()
	require.True(t, s.pool.AppendCertsFromPEM(ca.CertPEM()))
	return s
}

func keyPair(t *testing.T, ca *pki.CA, r pki.Request) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(r, time.Now())
	require.NoError(t, err)
	kp, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	require.NoError(t, err)
	return kp
}

// client returns an HTTPS client trusting the site CA, presenting cert
// (nil: none; force: even when the server would not accept it), from the
// local address src ("" for any).
func (s *site) client(cert *tls.Certificate, force bool, src string) *http.Client {
	tc := &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		if force {
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		} else {
			tc.Certificates = []tls.Certificate{*cert}
		}
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil, TLSClientConfig: tc, DialContext: d.DialContext, DisableKeepAlives: true,
	}}
}

// tlsServer is an httptest server with a certificate from the site CA.
func (s *site) tlsServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{keyPair(t, s.ca, pki.Request{
		CommonName: "service", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// replay answers with the recorded HTTP response in testdata/name, and
// records the last request's URL.
type replay struct {
	mu   sync.Mutex // guards the fields below
	file string
	last string
}

func (rp *replay) set(file string) {
	rp.mu.Lock()
	rp.file = file
	rp.mu.Unlock()
}

func (rp *replay) lastURL() string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.last
}

func (rp *replay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rp.mu.Lock()
	file := rp.file
	rp.last = r.URL.String()
	rp.mu.Unlock()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRecorded(w, raw)
}

// writeRecorded writes a recorded response: its status, its headers (but
// Date and Content-Length, which the server sets) and its body.
func writeRecorded(w http.ResponseWriter, raw []byte) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for k, vs := range resp.Header {
		if k == "Date" || k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// recorded returns testdata/file with its JSON body changed by edit: the
// variants other Patroni versions produce.
func recorded(t *testing.T, file string, edit func(body string) string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	require.True(t, ok)
	return append(append(head, "\r\n\r\n"...), edit(string(body))...)
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// parse builds a Config through ParseConfig, as agent.json would.
func parse(t *testing.T, cfg map[string]any) *Config {
	t.Helper()
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	c, err := ParseConfig(b)
	require.NoError(t, err)
	return c
}

// start starts an agent and stops it when the test ends.
func start(t *testing.T, cfg *Config, logger *slog.Logger) *Agent {
	t.Helper()
	a, err := New(cfg, logger)
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, a.Stop(ctx))
	})
	return a
}

func tlsMap(f TLSFiles) map[string]any {
	return map[string]any{"cert": f.Cert, "key": f.Key, "ca": f.CA}
}

func getJSON(t *testing.T, c *http.Client, url string, out any) int {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s", b)
		require.NoError(t, json.Unmarshal(b, out), "%s", b)
	}
	return resp.StatusCode
}

func hasLine(log, substr string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}
