package install

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/agent"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/pki"
)

// A stand-in agent with the real mTLS setup: the point here is how
// garrisonctl reads agents (the agent itself has its own tests, and the
// testbed scenarios run the real one).
func TestCheckHealthOverMutualTLS(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	inv, err := inventory.Parse([]byte(`
site: s
site_url: https://chat.example
admin: {username: admin, email: a@example.org}
ssh: {key: k}
nodes:
  - {name: a, address: 10.0.0.1, roles: [app, db, proxy]}
  - {name: b, address: 10.0.0.2, roles: [backup]}
  - {name: c, address: 10.0.0.3, roles: [storage], drives: [/d1, /d2, /d3, /d4]}
`))
	require.NoError(t, err)
	now := time.Now()
	dir := SiteDir(state, inv.Site)
	ca, _, err := pki.LoadOrCreate(filepath.Join(dir, "ca"), inv.Site, now)
	require.NoError(t, err)
	_, err = ClientCert(ca, dir, now)
	require.NoError(t, err)

	_, err = CheckHealth(t.Context(), inv, t.TempDir(), HealthOptions{})
	require.ErrorContains(t, err, "was the site installed from this machine?")

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	serve := func(node string, status agent.Status) *httptest.Server {
		c, err := ca.Issue(pki.Request{CommonName: node, DNSNames: []string{node}, Server: true}, now)
		require.NoError(t, err)
		pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/health" {
				http.NotFound(w, r) // the report then fails to decode: red
				return
			}
			json.NewEncoder(w).Encode(agent.Report{Node: node, Status: status, Services: []agent.Service{{Name: "garrison", Status: status, Reason: "reason of " + node}}})
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	servers := map[string]string{
		"10.0.0.1:9100": serve("a", agent.Green).Listener.Addr().String(),
		"10.0.0.2:9100": serve("b", agent.Yellow).Listener.Addr().String(),
		// c's agent is down.
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if real, ok := servers[addr]; ok {
			return (&net.Dialer{}).DialContext(ctx, network, real)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	hs, err := CheckHealth(t.Context(), inv, state, HealthOptions{Dial: dial})
	require.NoError(t, err)
	require.Equal(t, agent.Green, hs[0].Status)
	require.Equal(t, agent.Yellow, hs[1].Status)
	require.Equal(t, agent.Red, hs[2].Status)
	require.Contains(t, hs[2].Services[0].Reason, "agent unreachable")
	require.Equal(t, agent.Red, Worst(hs))
	require.Equal(t, agent.Yellow, Worst(hs[:2]))
	require.Equal(t, agent.Green, Worst(hs[:1]))

	var b strings.Builder
	require.NoError(t, WriteHealthTable(&b, hs))
	require.Contains(t, b.String(), "b     garrison  yellow  reason of b")
	require.Contains(t, b.String(), "site: RED")

	// An agent answering with another node's name is not trusted.
	servers["10.0.0.3:9100"] = serve("a", agent.Green).Listener.Addr().String()
	hs, err = CheckHealth(t.Context(), inv, state, HealthOptions{Dial: dial})
	require.NoError(t, err)
	require.Equal(t, agent.Red, hs[2].Status)
}
