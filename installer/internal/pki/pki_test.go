package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, created, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca"), "example-site", t0)
	require.NoError(t, err)
	require.True(t, created)
	return ca
}

func parseLeaf(t *testing.T, c Cert) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	certs, err := parseCerts(c.CertPEM)
	require.NoError(t, err)
	return certs[0], certs[1:]
}

func pool(t *testing.T, pemData []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	require.True(t, p.AppendCertsFromPEM(pemData))
	return p
}

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki", "ca")
	ca, created, err := LoadOrCreate(dir, "example-site", t0)
	require.NoError(t, err)
	require.True(t, created)

	c := ca.Certificate()
	require.Equal(t, "Garrison site CA example-site", c.Subject.CommonName)
	require.True(t, c.IsCA)
	require.True(t, c.BasicConstraintsValid)
	require.NotZero(t, c.KeyUsage&x509.KeyUsageCertSign)
	require.Equal(t, t0.AddDate(10, 0, 0), c.NotAfter)
	require.False(t, c.NotBefore.After(t0))
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "%T", c.PublicKey)
	require.Equal(t, elliptic.P256(), pub.Curve)
	require.NoError(t, c.CheckSignatureFrom(c), "self-signed")

	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {filepath.Join(dir, CAKeyName), 0o600}, {filepath.Join(dir, CACertName), 0o644}} {
		fi, err := os.Stat(f.path)
		require.NoError(t, err)
		require.Equal(t, f.mode, fi.Mode(), f.path)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, CACertName))
	require.NoError(t, err)
	require.Equal(t, onDisk, ca.CertPEM())
	leftovers, err := filepath.Glob(filepath.Join(dir, ".*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "temporary files left behind")

	// A second call, even years later and for another name, loads it.
	again, created, err := LoadOrCreate(dir, "other", t0.AddDate(3, 0, 0))
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, ca.CertPEM(), again.CertPEM())

	// After the CA's end, loading it says so.
	_, _, err = LoadOrCreate(dir, "example-site", t0.AddDate(11, 0, 0))
	require.ErrorContains(t, err, filepath.Join(dir, CACertName))
	require.ErrorContains(t, err, "expired")
}

func TestLoadOrCreateRecovery(t *testing.T) {
	t.Parallel()
	t.Run("a certificate without its key is an error", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, _, err := LoadOrCreate(dir, "s", t0)
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(dir, CAKeyName)))
		_, _, err = LoadOrCreate(dir, "s", t0)
		require.ErrorContains(t, err, filepath.Join(dir, CAKeyName))
		require.NoFileExists(t, filepath.Join(dir, CAKeyName), "no new key under the old certificate")
	})
	t.Run("a key without its certificate gets one", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		first, _, err := LoadOrCreate(dir, "s", t0)
		require.NoError(t, err)
		leaf, err := first.Issue(Request{CommonName: "n", DNSNames: []string{"n"}, Server: true}, t0)
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(dir, CACertName)))
		second, created, err := LoadOrCreate(dir, "s", t0.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, created)
		// Same name and key: what the first certificate signed still verifies.
		l, _ := parseLeaf(t, leaf)
		_, err = l.Verify(x509.VerifyOptions{Roots: pool(t, second.CertPEM()), CurrentTime: t0.Add(time.Hour)})
		require.NoError(t, err)
	})
	t.Run("an empty site name", func(t *testing.T) {
		t.Parallel()
		_, _, err := LoadOrCreate(t.TempDir(), " ", t0)
		require.ErrorContains(t, err, "empty site name")
	})
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 8
	cas := make([]*CA, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { cas[i], _, errs[i] = LoadOrCreate(dir, "s", t0) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.True(t, publicKeysEqual(cas[0].Certificate().PublicKey, cas[i].key.Public()), "every process ends up with the same key")
	}
}

func TestIssueVerifies(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	roots := pool(t, ca.CertPEM())
	tests := []struct {
		name           string
		req            Request
		server, client bool // which verifications must pass
	}{
		{"server", Request{CommonName: "app1", DNSNames: []string{"app1", "app1.example.mil"}, IPs: []net.IP{net.ParseIP("10.0.0.11")}, Server: true}, true, false},
		{"client", Request{CommonName: "garrisonctl", Client: true}, false, true},
		{"both", Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true, Client: true}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ca.Issue(tc.req, t0)
			require.NoError(t, err)
			leaf, rest := parseLeaf(t, c)
			require.Empty(t, rest, "our own root is not sent along")
			key, err := parseKey(c.KeyPEM)
			require.NoError(t, err)
			require.True(t, publicKeysEqual(leaf.PublicKey, key.Public()))
			require.Equal(t, tc.req.CommonName, leaf.Subject.CommonName)
			require.False(t, leaf.IsCA)
			require.Equal(t, t0.Add(DefaultValidity), leaf.NotAfter)

			verify := func(usage x509.ExtKeyUsage, name string) error {
				_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: t0.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{usage}})
				return err
			}
			if tc.server {
				require.NoError(t, verify(x509.ExtKeyUsageServerAuth, tc.req.DNSNames[0]))
				require.Error(t, verify(x509.ExtKeyUsageServerAuth, "elsewhere"), "a name it was not issued for")
				for _, ip := range tc.req.IPs {
					require.NoError(t, verify(x509.ExtKeyUsageServerAuth, ip.String()))
				}
			} else {
				require.Error(t, verify(x509.ExtKeyUsageServerAuth, ""))
			}
			if tc.client {
				require.NoError(t, verify(x509.ExtKeyUsageClientAuth, ""))
			} else {
				require.Error(t, verify(x509.ExtKeyUsageClientAuth, ""))
			}
			// Another CA's pool does not verify it.
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool(t, newCA(t).CertPEM()), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			require.Error(t, err)
		})
	}
}

func TestIssueValidity(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	tests := []struct {
		name     string
		validity time.Duration
		now      time.Time
		want     time.Time
	}{
		{"default", 0, t0, t0.Add(DefaultValidity)},
		{"given", 90 * 24 * time.Hour, t0, t0.Add(90 * 24 * time.Hour)},
		{"never past the CA", 0, t0.AddDate(9, 6, 0), ca.Certificate().NotAfter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ca.Issue(Request{CommonName: "x", Client: true, Validity: tc.validity}, tc.now)
			require.NoError(t, err)
			leaf, _ := parseLeaf(t, c)
			require.Equal(t, tc.want, leaf.NotAfter)
		})
	}
	_, err := ca.Issue(Request{CommonName: "x", Client: true}, t0.AddDate(10, 0, 1))
	require.ErrorContains(t, err, "expired")
}

func TestIssueBadRequest(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	tests := []struct {
		req  Request
		want []string
	}{
		{Request{}, []string{"empty CommonName", "neither Server nor Client"}},
		{Request{CommonName: "a", Server: true}, []string{"needs DNSNames or IPs"}},
		{Request{CommonName: "a", Client: true, DNSNames: []string{"ok", "bad name"}}, []string{`DNSNames[1]: "bad name"`}},
		{Request{CommonName: "a", Client: true, IPs: []net.IP{{1, 2}}}, []string{"IPs[0]"}},
		{Request{CommonName: "a", Client: true, Validity: -time.Hour}, []string{"negative Validity"}},
	}
	for _, tc := range tests {
		_, err := ca.Issue(tc.req, t0)
		for _, w := range tc.want {
			require.ErrorContains(t, err, w)
		}
	}
}

func TestEnsure(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	req := Request{CommonName: "app1", DNSNames: []string{"app1", "app1.example.mil"}, IPs: []net.IP{net.ParseIP("10.0.0.11")}, Server: true, Client: true}

	t.Run("idempotent", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "certs")
		first, changed, err := ca.Ensure(dir, "app1", req, t0)
		require.NoError(t, err)
		require.True(t, changed)
		fi, err := os.Stat(filepath.Join(dir, "app1.key"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode())

		// Same request, later, names in another order, another validity: nothing to do.
		same := req
		same.DNSNames = []string{"app1.example.mil", "app1"}
		same.Validity = time.Hour
		second, changed, err := ca.Ensure(dir, "app1", same, t0.AddDate(1, 0, 0))
		require.NoError(t, err)
		require.False(t, changed)
		require.Equal(t, first, second)
		onDisk, err := os.ReadFile(filepath.Join(dir, "app1.crt"))
		require.NoError(t, err)
		require.Equal(t, first.CertPEM, onDisk)
		leftovers, err := filepath.Glob(filepath.Join(dir, ".*"))
		require.NoError(t, err)
		require.Empty(t, leftovers)
	})

	other := newCA(t)
	otherCert, err := other.Issue(req, t0)
	require.NoError(t, err)
	unrelated, err := ca.Issue(req, t0)
	require.NoError(t, err)

	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string) // after a first Ensure
		req    Request
		now    time.Time
		reason string
	}{
		{name: "missing certificate", setup: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "app1.crt"))) }, reason: "missing"},
		{name: "missing key", setup: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, "app1.key"))) }, reason: "missing"},
		{name: "garbage certificate", setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "app1.crt"), []byte("junk")) }, reason: "unreadable certificate"},
		{name: "garbage key", setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "app1.key"), []byte("junk")) }, reason: "unreadable key"},
		{name: "another CA", setup: func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "app1.crt"), otherCert.CertPEM)
			write(t, filepath.Join(dir, "app1.key"), otherCert.KeyPEM)
		}, reason: "not signed by this CA"},
		{name: "key of another certificate", setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "app1.key"), unrelated.KeyPEM) }, reason: "key does not match"},
		{name: "expires within 30 days", now: t0.Add(DefaultValidity - 29*24*time.Hour), reason: "expires"},
		{name: "expired", now: t0.Add(DefaultValidity + time.Hour), reason: "expired"},
		{name: "common name", req: with(req, func(r *Request) { r.CommonName = "app2" }), reason: "common name"},
		{name: "DNS name added", req: with(req, func(r *Request) { r.DNSNames = append(r.DNSNames, "chat.example.mil") }), reason: "DNS names"},
		{name: "IP changed", req: with(req, func(r *Request) { r.IPs = []net.IP{net.ParseIP("10.0.0.12")} }), reason: "IPs"},
		{name: "client usage dropped", req: with(req, func(r *Request) { r.Client = false }), reason: "key usages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, _, err := ca.Ensure(dir, "app1", req, t0)
			require.NoError(t, err)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			r, now := req, t0
			if tc.req.CommonName != "" {
				r = tc.req
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			_, reason, err := ca.current(filepath.Join(dir, "app1.crt"), filepath.Join(dir, "app1.key"), r, now)
			require.NoError(t, err)
			require.Contains(t, reason, tc.reason)

			c, changed, err := ca.Ensure(dir, "app1", r, now)
			require.NoError(t, err)
			require.True(t, changed)
			require.Empty(t, ca.staleReason(c, r, now), "the new certificate serves")
			_, changed, err = ca.Ensure(dir, "app1", r, now)
			require.NoError(t, err)
			require.False(t, changed, "and is kept")
		})
	}

	t.Run("no renewal loop at the CA's end", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		late := ca.Certificate().NotAfter.Add(-10 * 24 * time.Hour)
		_, changed, err := ca.Ensure(dir, "app1", req, late)
		require.NoError(t, err)
		require.True(t, changed)
		_, changed, err = ca.Ensure(dir, "app1", req, late.Add(time.Hour))
		require.NoError(t, err)
		require.False(t, changed, "a new certificate could end no later than the CA")
	})

	t.Run("bad names", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"", "../x", "a/b", ".hidden"} {
			_, _, err := ca.Ensure(t.TempDir(), name, req, t0)
			require.ErrorContains(t, err, "bad certificate name", name)
		}
	})
}

func with(r Request, f func(*Request)) Request {
	r.DNSNames = append([]string(nil), r.DNSNames...)
	f(&r)
	return r
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// certSpec describes a certificate the tests make without this package,
// as a site's own PKI would.
type certSpec struct {
	cn                  string
	isCA                bool
	keyUsage            x509.KeyUsage
	notBefore, notAfter time.Time
	parent              *x509.Certificate
	parentKey           crypto.Signer
	leavesOnly          bool // MaxPathLen 0
}

func makeCert(t *testing.T, s certSpec) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	if s.notBefore.IsZero() {
		s.notBefore = t0.Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = t0.AddDate(5, 0, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: s.cn},
		NotBefore: s.notBefore, NotAfter: s.notAfter, IsCA: s.isCA, BasicConstraintsValid: true,
		KeyUsage: s.keyUsage, MaxPathLenZero: s.leavesOnly,
	}
	parent, parentKey := tmpl, crypto.Signer(key)
	if s.parent != nil {
		parent, parentKey = s.parent, s.parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func TestLoadProvidedIntermediate(t *testing.T) {
	t.Parallel()
	root, rootKey, rootPEM, _ := makeCert(t, certSpec{cn: "Site Root", isCA: true, keyUsage: x509.KeyUsageCertSign})
	_, _, interPEM, interKey := makeCert(t, certSpec{cn: "Site Garrison Issuing CA", isCA: true, keyUsage: x509.KeyUsageCertSign,
		parent: root, parentKey: rootKey, leavesOnly: true, notAfter: time.Now().AddDate(5, 0, 0)})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "issuing.crt"), filepath.Join(dir, "issuing.key")
	write(t, certFile, append(append([]byte{}, interPEM...), rootPEM...))
	write(t, keyFile, interKey)

	ca, err := Load(certFile, keyFile)
	require.NoError(t, err)
	require.Equal(t, "Site Garrison Issuing CA", ca.Certificate().Subject.CommonName)
	require.Equal(t, append(append([]byte{}, interPEM...), rootPEM...), ca.CertPEM())

	now := time.Now()
	c, err := ca.Issue(Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true}, now)
	require.NoError(t, err)
	leaf, inter := parseLeaf(t, c)
	require.Len(t, inter, 1, "the leaf file carries the intermediate, not the root")
	require.Equal(t, "Site Garrison Issuing CA", inter[0].Subject.CommonName)
	ip := x509.NewCertPool()
	ip.AddCert(inter[0])
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool(t, rootPEM), Intermediates: ip, DNSName: "app1", CurrentTime: now})
	require.NoError(t, err, "verifies against the site's root alone")

	dir2 := t.TempDir()
	_, changed, err := ca.Ensure(dir2, "app1", Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true}, now)
	require.NoError(t, err)
	require.True(t, changed)
	_, changed, err = ca.Ensure(dir2, "app1", Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true}, now)
	require.NoError(t, err)
	require.False(t, changed)
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, _, caPEM, caKey := makeCert(t, certSpec{cn: "Good CA", isCA: true, keyUsage: x509.KeyUsageCertSign, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(1, 0, 0)})
	_, _, _, otherKey := makeCert(t, certSpec{cn: "Other CA", isCA: true, keyUsage: x509.KeyUsageCertSign, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(1, 0, 0)})
	_, _, leafPEM, leafKey := makeCert(t, certSpec{cn: "just a server", keyUsage: x509.KeyUsageDigitalSignature, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(1, 0, 0)})
	_, _, expiredPEM, expiredKey := makeCert(t, certSpec{cn: "Old CA", isCA: true, keyUsage: x509.KeyUsageCertSign, notBefore: now.AddDate(-3, 0, 0), notAfter: now.AddDate(0, 0, -1)})
	_, _, futurePEM, futureKey := makeCert(t, certSpec{cn: "Future CA", isCA: true, keyUsage: x509.KeyUsageCertSign, notBefore: now.AddDate(0, 1, 0), notAfter: now.AddDate(2, 0, 0)})
	_, _, noSignPEM, noSignKey := makeCert(t, certSpec{cn: "No-sign CA", isCA: true, keyUsage: x509.KeyUsageDigitalSignature, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(1, 0, 0)})

	tests := []struct {
		name       string
		cert, key  []byte
		wantFile   string // "cert" or "key": the file the message must name
		wantSubstr string
	}{
		{"not a CA", leafPEM, leafKey, "cert", `"just a server" is not a CA`},
		{"key does not match", caPEM, otherKey, "key", "does not match the CA certificate"},
		{"expired", expiredPEM, expiredKey, "cert", `"Old CA" expired on`},
		{"not yet valid", futurePEM, futureKey, "cert", "is not valid before"},
		{"may not sign", noSignPEM, noSignKey, "cert", "lacks keyCertSign"},
		{"not PEM", []byte("hello"), caKey, "cert", "no PEM CERTIFICATE"},
		{"key file holds a certificate", caPEM, caPEM, "key", `unexpected PEM block "CERTIFICATE"`},
		{"encrypted key", caPEM, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "key", "encrypted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "site-ca.crt"), filepath.Join(dir, "site-ca.key")
			write(t, certFile, tc.cert)
			write(t, keyFile, tc.key)
			_, err := Load(certFile, keyFile)
			require.Error(t, err)
			require.ErrorContains(t, err, tc.wantSubstr)
			name := certFile
			if tc.wantFile == "key" {
				name = keyFile
			}
			require.ErrorContains(t, err, name)
			require.NotContains(t, err.Error(), "PRIVATE KEY-----", "no key material in errors")
		})
	}
	t.Run("missing files", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, err := Load(filepath.Join(dir, "nope.crt"), filepath.Join(dir, "nope.key"))
		require.ErrorContains(t, err, filepath.Join(dir, "nope.crt"))
		write(t, filepath.Join(dir, "ca.crt"), caPEM)
		_, err = Load(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "nope.key"))
		require.ErrorContains(t, err, filepath.Join(dir, "nope.key"))
	})
}

// openssl returns the openssl binary, or skips (fails under CI=true).
func openssl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is not installed (apt-get install openssl): %v", err)
		}
		t.Skip("openssl is not installed (apt-get install openssl); skipping the interop check")
	}
	return p
}

func runOpenSSL(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// TestOpenSSLVerify checks issued certificates with another implementation:
// `openssl verify` with the purposes nginx, Postgres and etcd check.
func TestOpenSSLVerify(t *testing.T) {
	t.Parallel()
	bin := openssl(t)
	now := time.Now()
	ca, _, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca"), "example-site", now)
	require.NoError(t, err)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	write(t, caFile, ca.CertPEM())

	tests := []struct {
		name           string
		req            Request
		server, client bool
	}{
		{"server", Request{CommonName: "app1", DNSNames: []string{"app1"}, IPs: []net.IP{net.ParseIP("10.0.0.11")}, Server: true}, true, false},
		{"client", Request{CommonName: "garrisonctl", Client: true}, false, true},
		{"both", Request{CommonName: "db1", DNSNames: []string{"db1"}, Server: true, Client: true}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, changed, err := ca.Ensure(dir, tc.name, tc.req, now)
			require.NoError(t, err)
			require.True(t, changed)
			leafFile := filepath.Join(dir, tc.name+".crt")
			for _, p := range []struct {
				purpose string
				ok      bool
			}{{"sslserver", tc.server}, {"sslclient", tc.client}} {
				out, err := runOpenSSL(t, bin, "verify", "-CAfile", caFile, "-purpose", p.purpose, leafFile)
				if p.ok {
					require.NoError(t, err, out)
					require.Equal(t, leafFile+": OK\n", out)
				} else {
					require.Error(t, err, "purpose %s: %s", p.purpose, out)
				}
			}
			// openssl reads the key too, and it is the certificate's.
			out, err := runOpenSSL(t, bin, "pkey", "-in", filepath.Join(dir, tc.name+".key"), "-pubout")
			require.NoError(t, err, out)
			leaf, _ := parseLeaf(t, c)
			pubDER, err := x509.MarshalPKIXPublicKey(leaf.PublicKey)
			require.NoError(t, err)
			require.Equal(t, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), out)
		})
	}
	t.Run("another CA", func(t *testing.T) {
		t.Parallel()
		other, _, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca"), "other-site", now)
		require.NoError(t, err)
		c, err := other.Issue(Request{CommonName: "x", DNSNames: []string{"x"}, Server: true}, now)
		require.NoError(t, err)
		f := filepath.Join(t.TempDir(), "x.crt")
		write(t, f, c.CertPEM)
		out, err := runOpenSSL(t, bin, "verify", "-CAfile", caFile, f)
		require.Error(t, err, out)
	})
}

// TestOpenSSLProvidedCA loads CAs made by openssl, as a site provides them
// (RSA and EC keys, PKCS#8 and SEC 1), issues from them and verifies with
// openssl.
func TestOpenSSLProvidedCA(t *testing.T) {
	t.Parallel()
	bin := openssl(t)
	tests := []struct {
		name    string
		keyArgs []string
		sec1    bool // convert the key to "EC PRIVATE KEY"
	}{
		{"rsa", []string{"-newkey", "rsa:2048"}, false},
		{"ec pkcs8", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}, false},
		{"ec sec1", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
			args := append([]string{"req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=Site CA " + tc.name,
				"-keyout", keyFile, "-out", certFile,
				"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"}, tc.keyArgs...)
			out, err := runOpenSSL(t, bin, args...)
			require.NoError(t, err, out)
			if tc.sec1 {
				out, err := runOpenSSL(t, bin, "ec", "-in", keyFile, "-out", keyFile)
				require.NoError(t, err, out)
				b, err := os.ReadFile(keyFile)
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(string(b), "-----BEGIN EC PRIVATE KEY-----"), "%.40s", b)
			}
			ca, err := Load(certFile, keyFile)
			require.NoError(t, err)
			now := time.Now()
			_, _, err = ca.Ensure(dir, "app1", Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true, Client: true}, now)
			require.NoError(t, err)
			leaf, err := parseCertsFile(filepath.Join(dir, "app1.crt"))
			require.NoError(t, err)
			require.False(t, leaf[0].NotAfter.After(ca.Certificate().NotAfter), "not past the provided CA's end")
			for _, purpose := range []string{"sslserver", "sslclient"} {
				out, err := runOpenSSL(t, bin, "verify", "-CAfile", certFile, "-purpose", purpose, filepath.Join(dir, "app1.crt"))
				require.NoError(t, err, out)
			}
		})
	}
	t.Run("intermediate", func(t *testing.T) {
		t.Parallel()
		root, rootKey, rootPEM, _ := makeCert(t, certSpec{cn: "Site Root", isCA: true, keyUsage: x509.KeyUsageCertSign, notAfter: time.Now().AddDate(1, 0, 0)})
		_, _, interPEM, interKey := makeCert(t, certSpec{cn: "Issuing CA", isCA: true, keyUsage: x509.KeyUsageCertSign,
			parent: root, parentKey: rootKey, leavesOnly: true, notAfter: time.Now().AddDate(1, 0, 0)})
		dir := t.TempDir()
		certFile, keyFile, rootFile := filepath.Join(dir, "issuing.crt"), filepath.Join(dir, "issuing.key"), filepath.Join(dir, "root.crt")
		write(t, certFile, interPEM)
		write(t, keyFile, interKey)
		write(t, rootFile, rootPEM)
		ca, err := Load(certFile, keyFile)
		require.NoError(t, err)
		_, _, err = ca.Ensure(dir, "app1", Request{CommonName: "app1", DNSNames: []string{"app1"}, Server: true}, time.Now())
		require.NoError(t, err)
		leafFile := filepath.Join(dir, "app1.crt")
		// The leaf's file carries the intermediate: the root is all a verifier needs.
		out, err := runOpenSSL(t, bin, "verify", "-CAfile", rootFile, "-untrusted", leafFile, "-purpose", "sslserver", leafFile)
		require.NoError(t, err, out)
		require.Equal(t, leafFile+": OK\n", out)
	})
	t.Run("an openssl leaf is not a CA", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
		out, err := runOpenSSL(t, bin, "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=leaf", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
			"-keyout", keyFile, "-out", certFile, "-addext", "basicConstraints=critical,CA:FALSE")
		require.NoError(t, err, out)
		_, err = Load(certFile, keyFile)
		require.ErrorContains(t, err, certFile+`: certificate "leaf" is not a CA`)
	})
}

func parseCertsFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCerts(b)
}
