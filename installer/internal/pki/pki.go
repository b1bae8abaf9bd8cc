// Package pki is the site's certificate authority, kept by garrisonctl: it
// issues the certificates every cross-node link uses (Postgres, Patroni
// REST, etcd, MinIO, the node agent, the push proxy).
//
// The CA is either made by garrisonctl on first use (LoadOrCreate: an ECDSA
// P-256 root valid for ten years, in garrisonctl's state directory) or
// provided by the site (Load: usually an intermediate of the site's own PKI,
// with its issuers after it in the certificate file). Issued certificates
// are kept as <name>.crt and <name>.key and renewed only when they must be
// (Ensure), so an install run twice changes nothing.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/atomicfile"
)

const (
	// CACertName and CAKeyName are the files LoadOrCreate keeps in its
	// directory.
	CACertName = "ca.crt"
	CAKeyName  = "ca.key"

	// caYears is how long a CA made by LoadOrCreate is valid.
	caYears = 10
	// DefaultValidity is an issued certificate's lifetime when the Request
	// does not say.
	DefaultValidity = 2 * 365 * 24 * time.Hour
	// RenewBefore is how close to its end Ensure renews a certificate.
	RenewBefore = 30 * 24 * time.Hour

	// backdate lets a certificate be valid on a node whose clock is a
	// little behind the one that issued it.
	backdate = 5 * time.Minute
)

// CA is a certificate authority that can issue certificates: its
// certificate, the issuers that follow it (for a provided intermediate) and
// its private key.
type CA struct {
	cert  *x509.Certificate
	chain []*x509.Certificate // cert's issuers, as the provided file listed them; empty for our own root
	key   crypto.Signer
}

// Request describes a certificate to issue.
type Request struct {
	// CommonName is the subject's CN (a node or service name).
	CommonName string
	// DNSNames and IPs are the subject alternative names, which TLS
	// clients check; a server certificate needs at least one.
	DNSNames []string
	IPs      []net.IP
	// Server and Client choose the extended key usages (TLS server auth,
	// TLS client auth); at least one must be set.
	Server, Client bool
	// Validity is the certificate's lifetime: DefaultValidity when zero,
	// and never past the CA's own end.
	Validity time.Duration
}

// Cert is an issued certificate and its key, PEM-encoded. CertPEM holds the
// certificate followed by the intermediate CAs a verifier needs (none when
// the CA is garrisonctl's own root); KeyPEM holds a PKCS#8 "PRIVATE KEY".
type Cert struct {
	CertPEM, KeyPEM []byte
}

// LoadOrCreate loads the site CA from dir/ca.crt and dir/ca.key, creating
// dir (0700) and the CA first if neither exists: an ECDSA P-256 root,
// CN "Garrison site CA <site>", valid for ten years from now. site is used
// only when creating. created reports whether this call made the CA.
//
// Several garrisonctl processes may start at once: the key file appears
// atomically and only once (link(2) of a complete temporary file), so they
// all end up with the same key, and a certificate made from it.
func LoadOrCreate(dir, site string, now time.Time) (ca *CA, created bool, err error) {
	if dir == "" {
		return nil, false, errors.New("pki: empty CA directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("pki: CA directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("pki: CA directory: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, CACertName), filepath.Join(dir, CAKeyName)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := load(certPath, keyPath, now)
		return ca, false, err
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		// Never a new key under a certificate that nodes may trust already.
		return nil, false, fmt.Errorf("pki: %s exists but its key %s does not; restore the key or remove both to make a new CA", certPath, keyPath)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("pki: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("pki: %w", keyErr)
	}
	if strings.TrimSpace(site) == "" {
		return nil, false, errors.New("pki: empty site name for the new CA")
	}

	// The key first (or the one another process made first), then a
	// certificate for it: a crash in between leaves a key from which the
	// next run makes the certificate.
	key, keyCreated, err := createKey(keyPath)
	if err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	cert, err := selfSign(key, site, now)
	if err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	certCreated := true
	if err := atomicfile.WriteNew(certPath, encodeCerts(cert), 0o644); errors.Is(err, fs.ErrExist) {
		certCreated = false // another garrisonctl got there first: use its certificate
	} else if err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	ca, err = load(certPath, keyPath, now)
	if err != nil {
		return nil, false, err
	}
	return ca, keyCreated || certCreated, nil
}

// createKey writes a new P-256 key to keyPath unless the file exists by
// then, and returns the key now in place.
func createKey(keyPath string) (crypto.Signer, bool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate CA key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("encode CA key: %w", err)
	}
	err = atomicfile.WriteNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	clear(der)
	created := true
	if errors.Is(err, fs.ErrExist) {
		created = false
	} else if err != nil {
		return nil, false, err
	}
	signer, err := readKey(keyPath)
	return signer, created, err
}

func selfSign(key crypto.Signer, site string, now time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Garrison site CA " + site, Organization: []string{"Garrison"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // it signs leaves only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// Load loads a CA the site provides: certFile holds the CA's certificate
// (PEM), optionally followed by its issuers up to the root; keyFile its
// private key (PKCS#8, SEC 1 or PKCS#1 PEM, unencrypted). The certificate
// must be a CA allowed to sign certificates, match the key, and be valid
// now.
func Load(certFile, keyFile string) (*CA, error) {
	return load(certFile, keyFile, time.Now())
}

func load(certFile, keyFile string, now time.Time) (*CA, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certFile, err)
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("pki: %s: certificate %q is not a CA (its basic constraints do not say CA:TRUE)", certFile, cert.Subject.CommonName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: %s: CA certificate %q may not sign certificates (its key usage lacks keyCertSign)", certFile, cert.Subject.CommonName)
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("pki: %s: CA certificate %q expired on %s", certFile, cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("pki: %s: CA certificate %q is not valid before %s (check this machine's clock)", certFile, cert.Subject.CommonName, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("pki: %s: the private key does not match the CA certificate in %s", keyFile, certFile)
	}
	return &CA{cert: cert, chain: certs[1:], key: key}, nil
}

// Certificate is the CA's own certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM is what a verifier should trust: the CA's certificate, followed
// by the issuers it was provided with.
func (ca *CA) CertPEM() []byte {
	return encodeCerts(append([]*x509.Certificate{ca.cert}, ca.chain...)...)
}

// intermediates are the certificates an issued certificate's file carries
// after it: the CA and its issuers, except a self-signed root (verifiers
// have that one already, or must not take it from the peer).
func (ca *CA) intermediates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range append([]*x509.Certificate{ca.cert}, ca.chain...) {
		if !selfSigned(c) {
			out = append(out, c)
		}
	}
	return out
}

// Issue makes a new key pair and a certificate for it, signed by the CA.
func (ca *CA) Issue(r Request, now time.Time) (Cert, error) {
	if err := r.validate(); err != nil {
		return Cert{}, fmt.Errorf("pki: issue %q: %w", r.CommonName, err)
	}
	if !now.Before(ca.cert.NotAfter) {
		return Cert{}, fmt.Errorf("pki: issue %q: the CA certificate %q expired on %s", r.CommonName, ca.cert.Subject.CommonName, ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	validity := r.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	serial, err := newSerial()
	if err != nil {
		return Cert{}, fmt.Errorf("pki: issue %q: %w", r.CommonName, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, fmt.Errorf("pki: issue %q: generate key: %w", r.CommonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: r.CommonName},
		DNSNames:              slices.Clone(r.DNSNames),
		IPAddresses:           slices.Clone(r.IPs),
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           r.extKeyUsage(),
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return Cert{}, fmt.Errorf("pki: issue %q: %w", r.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Cert{}, fmt.Errorf("pki: issue %q: encode key: %w", r.CommonName, err)
	}
	defer clear(keyDER)
	var certPEM bytes.Buffer
	_ = pem.Encode(&certPEM, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPEM.Write(encodeCerts(ca.intermediates()...))
	return Cert{
		CertPEM: certPEM.Bytes(),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func (r Request) validate() error {
	var errs []error
	if strings.TrimSpace(r.CommonName) == "" {
		errs = append(errs, errors.New("empty CommonName"))
	}
	if !r.Server && !r.Client {
		errs = append(errs, errors.New("neither Server nor Client usage"))
	}
	if r.Server && len(r.DNSNames) == 0 && len(r.IPs) == 0 {
		errs = append(errs, errors.New("a server certificate needs DNSNames or IPs (TLS clients do not check the CommonName)"))
	}
	for i, n := range r.DNSNames {
		if n == "" || strings.ContainsAny(n, " \t\r\n/,") {
			errs = append(errs, fmt.Errorf("DNSNames[%d]: %q is not a host name", i, n))
		}
	}
	for i, ip := range r.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			errs = append(errs, fmt.Errorf("IPs[%d]: not an IP address", i))
		}
	}
	if r.Validity < 0 {
		errs = append(errs, fmt.Errorf("negative Validity %s", r.Validity))
	}
	return errors.Join(errs...)
}

func (r Request) extKeyUsage() []x509.ExtKeyUsage {
	var u []x509.ExtKeyUsage
	if r.Server {
		u = append(u, x509.ExtKeyUsageServerAuth)
	}
	if r.Client {
		u = append(u, x509.ExtKeyUsageClientAuth)
	}
	return u
}

// Ensure keeps a certificate for r in dir/<name>.crt and dir/<name>.key
// (0600; dir is made 0700 if missing), issuing a new one only when the files are missing or unreadable,
// the certificate is not signed by this CA or does not match the key, it
// ends within RenewBefore, or its names, IPs or usages differ from r. It
// returns the certificate in place and whether it wrote a new one.
func (ca *CA) Ensure(dir, name string, r Request, now time.Time) (c Cert, changed bool, err error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return Cert{}, false, fmt.Errorf("pki: ensure: bad certificate name %q", name)
	}
	if err := r.validate(); err != nil {
		return Cert{}, false, fmt.Errorf("pki: ensure %s: %w", name, err)
	}
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	have, reason, err := ca.current(certPath, keyPath, r, now)
	if err != nil {
		return Cert{}, false, fmt.Errorf("pki: ensure %s: %w", name, err)
	}
	if reason == "" {
		return have, false, nil
	}
	c, err = ca.Issue(r, now)
	if err != nil {
		return Cert{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Cert{}, false, fmt.Errorf("pki: ensure %s: %w", name, err)
	}
	// The key first: a crash between the two renames leaves a key that does
	// not match the certificate, which the next run replaces.
	if err := atomicfile.Write(keyPath, c.KeyPEM, 0o600); err != nil {
		return Cert{}, false, fmt.Errorf("pki: ensure %s: %w", name, err)
	}
	if err := atomicfile.Write(certPath, c.CertPEM, 0o644); err != nil {
		return Cert{}, false, fmt.Errorf("pki: ensure %s: %w", name, err)
	}
	return c, true, nil
}

// current reads the certificate in place and says why it must be replaced
// ("" when it need not be). Only an I/O error other than a missing file is
// an error: anything garrisonctl cannot use, it replaces.
func (ca *CA) current(certPath, keyPath string, r Request, now time.Time) (Cert, string, error) {
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Cert{}, "missing " + certPath, nil
	} else if err != nil {
		return Cert{}, "", err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Cert{}, "missing " + keyPath, nil
	} else if err != nil {
		return Cert{}, "", err
	}
	have := Cert{CertPEM: certPEM, KeyPEM: keyPEM}
	return have, ca.staleReason(have, r, now), nil
}

// staleReason says why c cannot serve for r any longer, or "".
func (ca *CA) staleReason(c Cert, r Request, now time.Time) string {
	certs, err := parseCerts(c.CertPEM)
	if err != nil {
		return "unreadable certificate: " + err.Error()
	}
	cert := certs[0]
	key, err := parseKey(c.KeyPEM)
	if err != nil {
		return "unreadable key: " + err.Error()
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return "the key does not match the certificate"
	}
	if !bytes.Equal(cert.RawIssuer, ca.cert.RawSubject) || cert.CheckSignatureFrom(ca.cert) != nil {
		return "not signed by this CA"
	}
	if !bytes.Equal(encodeCerts(certs[1:]...), encodeCerts(ca.intermediates()...)) {
		return "the intermediate certificates changed"
	}
	if !now.Before(cert.NotAfter) {
		return "expired " + cert.NotAfter.UTC().Format(time.RFC3339)
	}
	// Renew near the end, unless the CA ends first: a new certificate
	// would end no later, and the installer would replace it every run.
	if !now.Add(RenewBefore).Before(cert.NotAfter) && cert.NotAfter.Before(ca.cert.NotAfter) {
		return "expires " + cert.NotAfter.UTC().Format(time.RFC3339)
	}
	if cert.Subject.CommonName != r.CommonName {
		return fmt.Sprintf("common name %q, want %q", cert.Subject.CommonName, r.CommonName)
	}
	if !sameSet(cert.DNSNames, r.DNSNames) {
		return fmt.Sprintf("DNS names %q, want %q", cert.DNSNames, r.DNSNames)
	}
	if !sameSet(ipStrings(cert.IPAddresses), ipStrings(r.IPs)) {
		return fmt.Sprintf("IPs %q, want %q", ipStrings(cert.IPAddresses), ipStrings(r.IPs))
	}
	if !slices.Equal(sortedUsages(cert.ExtKeyUsage), sortedUsages(r.extKeyUsage())) {
		return "key usages differ"
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

func sortedUsages(u []x509.ExtKeyUsage) []x509.ExtKeyUsage {
	u = slices.Clone(u)
	slices.Sort(u)
	return u
}

// parseCerts returns every CERTIFICATE block in data, in order; there must
// be at least one and nothing else but whitespace.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q (want CERTIFICATE)", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("trailing data after the last certificate")
	}
	return certs, nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	defer clear(data)
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// parseKey reads the first private key in PEM data. Errors never quote the
// data.
func parseKey(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; give garrisonctl an unencrypted key (openssl pkey -in KEY -out PLAIN)")
		case "EC PARAMETERS":
			continue // openssl ecparam -genkey writes these before the key
		default:
			return nil, fmt.Errorf("unexpected PEM block %q (want PRIVATE KEY)", block.Type)
		}
		clear(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func encodeCerts(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil // never 0
}
