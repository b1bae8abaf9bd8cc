package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/server/internal/config"
)

// listenerTLS returns the TLS settings of the API listener, which the
// metrics listener shares, or nil when ServiceSettings.ConnectionSecurity
// asks for plain HTTP. It reads
// TLSCertFile and TLSKeyFile now, so a missing, unreadable, malformed or
// mismatched file stops the start-up with an error naming the setting
// and the file.
func (d *Daemon) listenerTLS(now time.Time) (*tls.Config, error) {
	ss := d.cfg.ServiceSettings
	if ss.ConnectionSecurity != config.ConnectionSecurityTLS {
		if ss.TLSCertFile != "" || ss.TLSKeyFile != "" {
			d.log.Warn("ServiceSettings.TLSCertFile and TLSKeyFile are ignored: ConnectionSecurity is not \"TLS\", the API and metrics listeners serve plain HTTP")
		}
		return nil, nil
	}
	cert, err := loadKeyPair(ss.TLSCertFile, ss.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	leaf := cert.Leaf
	log := d.log.With("cert_file", ss.TLSCertFile, "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	switch {
	case now.After(leaf.NotAfter):
		// Not fatal: refusing to start would turn an expired certificate
		// into an outage of the whole node; clients that check it refuse
		// it anyway.
		log.Error("ServiceSettings.TLSCertFile has expired: clients will refuse the API listener")
	case now.Before(leaf.NotBefore):
		log.Error("ServiceSettings.TLSCertFile is not valid yet (is the clock right?)", "not_before", leaf.NotBefore.UTC().Format(time.RFC3339))
	default:
		log.Info("API listener serves TLS", "min_version", ss.TLSMinVer)
	}
	minVersion := uint16(tls.VersionTLS12)
	if ss.TLSMinVer == "1.3" {
		minVersion = tls.VersionTLS13
	}
	return &tls.Config{
		// Go's default cipher suites and curves: only AEAD suites with
		// forward secrecy for TLS 1.2, and every TLS 1.3 suite.
		MinVersion: minVersion,
		// The pair is read once, at start: a renewed certificate takes a
		// restart. GetCertificate, not Certificates, so that reloading it
		// later only has to change what this returns.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
	}, nil
}

// loadKeyPair reads and checks a PEM certificate chain and its private
// key. Errors name the setting and the file at fault and never quote the
// key.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certField := fmt.Sprintf("ServiceSettings.TLSCertFile %q", certFile)
	keyField := fmt.Sprintf("ServiceSettings.TLSKeyFile %q", keyFile)
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certField, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyField, err)
	}
	if err := checkCertPEM(certPEM); err != nil {
		return nil, fmt.Errorf("%s: %w", certField, err)
	}
	if err := checkKeyPEM(keyPEM); err != nil {
		return nil, fmt.Errorf("%s: %w", keyField, err)
	}
	// Both files parse on their own: what is left is a key that is not
	// the certificate's.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s does not belong to the certificate in %s: %w", keyField, certField, err)
	}
	return &cert, nil
}

// checkCertPEM checks that data holds at least one certificate and that
// every certificate in it parses.
func checkCertPEM(data []byte) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fmt.Errorf("certificate %d: %w", n+1, err)
			}
			n++
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			return errors.New("holds a private key: the certificate goes here and the key in TLSKeyFile")
		}
	}
	if n == 0 {
		return errors.New("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return nil
}

// checkKeyPEM checks that data holds an unencrypted private key that
// parses, as crypto/tls reads it: the first PEM block whose type ends in
// PRIVATE KEY, in PKCS #1, PKCS #8 or SEC 1 form.
func checkKeyPEM(data []byte) error {
	other := false // a PEM block of another type
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		other = true
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return errors.New("holds an encrypted private key: the server cannot ask for its passphrase, give it the key unencrypted (readable only by the garrison user)")
		}
		if b.Type != "PRIVATE KEY" && !strings.HasSuffix(b.Type, " PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return nil
		}
		return fmt.Errorf("the %s block is not a PKCS #1, PKCS #8 or SEC 1 private key", b.Type)
	}
	if other {
		return errors.New("holds no PEM private key, only other PEM blocks (a certificate? the key goes here and the certificate in TLSCertFile)")
	}
	return errors.New("holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
}
