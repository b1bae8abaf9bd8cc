// Package tlstest makes certificates for tests of listeners that serve
// TLS: a self-signed server certificate and its key, written as the PEM
// files a configuration names.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// KeyPair is a self-signed certificate for 127.0.0.1 and "garrison" (the
// name nginx checks) and its key, as PEM files and in memory.
type KeyPair struct {
	// CertFile and KeyFile are the PEM files: name.crt and name.key.
	CertFile, KeyFile string
	// CertPEM and KeyPEM are their contents (the key in PKCS #8).
	CertPEM, KeyPEM []byte
	// Leaf is the certificate.
	Leaf *x509.Certificate
	// Roots trusts Leaf: a client's RootCAs.
	Roots *x509.CertPool
}

// NewKeyPair generates an ECDSA P-256 key and a certificate valid from an
// hour ago for a day, and writes them as name.crt (0644) and name.key
// (0600) in dir.
func NewKeyPair(t testing.TB, dir, name string) KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generate key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatalf("tlstest: serial: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "garrison " + name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"garrison"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlstest: create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parse certificate: %v", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: marshal key: %v", err)
	}
	kp := KeyPair{
		CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		Leaf:    leaf, Roots: x509.NewCertPool(),
	}
	kp.Roots.AddCert(leaf)
	if err := os.WriteFile(kp.CertFile, kp.CertPEM, 0o644); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	if err := os.WriteFile(kp.KeyFile, kp.KeyPEM, 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	return kp
}
