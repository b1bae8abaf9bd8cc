// Package aptrepo turns a directory of .debs into a flat apt repository
// signed with an OpenPGP key, so that nodes can use it with
//
//	deb [signed-by=/path/garrison-archive-keyring.gpg] file:/path/repo ./
//
// and never [trusted=yes]. Everything it writes is a function of the
// .debs, the key and the given time: Packages comes from
// dpkg-scanpackages, Packages.gz is written without a name or mtime,
// Release is rendered here with Date set to SOURCE_DATE_EPOCH, and gpg
// signs with that time frozen (--faked-system-time), so an Ed25519 key
// gives the same signatures on every build.
package aptrepo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Repo describes the repository's Release fields.
type Repo struct {
	Dir         string // holds pool/; Packages, Release and signatures go here
	Origin      string
	Label       string
	Suite       string
	Version     string
	Description string
	Date        time.Time
}

// Index writes Packages, Packages.gz and Release.
func (r Repo) Index(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "dpkg-scanpackages", "--multiversion", "pool", "/dev/null")
	cmd.Dir = r.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	packages, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("aptrepo: dpkg-scanpackages: %w: %s", err, stderr.String())
	}
	if len(packages) == 0 {
		return fmt.Errorf("aptrepo: no packages under %s/pool", r.Dir)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(packages); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{{"Packages", packages}, {"Packages.gz", gz.Bytes()}}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(r.Dir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}

	var rel bytes.Buffer
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&rel, "%s: %s\n", k, v)
		}
	}
	field("Origin", r.Origin)
	field("Label", r.Label)
	field("Suite", r.Suite)
	field("Version", r.Version)
	field("Architectures", "amd64 all")
	field("Date", r.Date.UTC().Format(time.RFC1123Z))
	field("Description", r.Description)
	rel.WriteString("MD5Sum:\n")
	for _, f := range files {
		sum := md5.Sum(f.data)
		fmt.Fprintf(&rel, " %s %d %s\n", hex.EncodeToString(sum[:]), len(f.data), f.name)
	}
	rel.WriteString("SHA256:\n")
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&rel, " %s %d %s\n", hex.EncodeToString(sum[:]), len(f.data), f.name)
	}
	return os.WriteFile(filepath.Join(r.Dir, "Release"), rel.Bytes(), 0o644)
}

// Signer signs with an OpenPGP secret key through gpg, in a throwaway
// GNUPGHOME so the build machine's keyrings are neither read nor changed.
type Signer struct {
	keyFile string // named in errors
	home    string
	fpr     string
	created time.Time // the key's creation time
}

// NewSigner imports the armored, unencrypted secret key in keyFile.
// Close removes the temporary keyring.
func NewSigner(ctx context.Context, keyFile string) (*Signer, error) {
	home, err := os.MkdirTemp("", "garrison-gnupg-")
	if err != nil {
		return nil, err
	}
	s := &Signer{home: home, keyFile: keyFile}
	if _, err := s.gpg(ctx, time.Time{}, "--import", keyFile); err != nil {
		s.Close()
		return nil, fmt.Errorf("aptrepo: import %s: %w", keyFile, err)
	}
	out, err := s.gpg(ctx, time.Time{}, "--list-secret-keys", "--with-colons")
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		switch {
		case len(f) > 5 && f[0] == "sec" && s.created.IsZero():
			if sec, err := strconv.ParseInt(f[5], 10, 64); err == nil {
				s.created = time.Unix(sec, 0)
			}
		case len(f) > 9 && f[0] == "fpr" && s.fpr == "":
			s.fpr = f[9]
		}
	}
	if s.fpr == "" {
		s.Close()
		return nil, fmt.Errorf("aptrepo: %s holds no secret key", keyFile)
	}
	return s, nil
}

// Fingerprint is the signing key's fingerprint.
func (s *Signer) Fingerprint() string { return s.fpr }

// Close stops the gpg-agent gpg started for the temporary keyring and
// removes the keyring.
func (s *Signer) Close() error {
	_ = exec.Command("gpgconf", "--homedir", s.home, "--kill", "all").Run()
	return os.RemoveAll(s.home)
}

// Sign writes InRelease and Release.gpg for dir/Release, as of t, or of
// the key's creation if that is later (gpg refuses to sign with a key
// from the future): either way a fixed time, so the same signature.
func (s *Signer) Sign(ctx context.Context, dir string, t time.Time) error {
	if t.Before(s.created) {
		t = s.created
	}
	rel := filepath.Join(dir, "Release")
	if _, err := s.gpg(ctx, t, "--local-user", s.fpr, "--clearsign", "--output", filepath.Join(dir, "InRelease"), rel); err != nil {
		return fmt.Errorf("aptrepo: sign InRelease with %s (an unencrypted key that can sign?): %w", s.keyFile, err)
	}
	if _, err := s.gpg(ctx, t, "--local-user", s.fpr, "--armor", "--detach-sign", "--output", filepath.Join(dir, "Release.gpg"), rel); err != nil {
		return fmt.Errorf("aptrepo: sign Release.gpg with %s: %w", s.keyFile, err)
	}
	return nil
}

// ExportPublic writes the public key in binary form, the format apt's
// signed-by option takes.
func (s *Signer) ExportPublic(ctx context.Context, path string) error {
	out, err := s.gpg(ctx, time.Time{}, "--export", s.fpr)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

func (s *Signer) gpg(ctx context.Context, t time.Time, args ...string) ([]byte, error) {
	base := []string{"--homedir", s.home, "--batch", "--no-tty", "--quiet", "--yes",
		"--pinentry-mode", "loopback", "--passphrase", "", "--no-emit-version",
		"--digest-algo", "SHA512"}
	if !t.IsZero() {
		base = append(base, "--faked-system-time", strconv.FormatInt(t.Unix(), 10)+"!")
	}
	cmd := exec.CommandContext(ctx, "gpg", append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("gpg %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// GenerateKey creates an unencrypted Ed25519 signing key for a
// development build and writes it armored to path (0600). Releases sign
// with the site's key from GARRISON_APT_SIGNING_KEY instead.
func GenerateKey(ctx context.Context, path, uid string) error {
	home, err := os.MkdirTemp("", "garrison-gnupg-")
	if err != nil {
		return err
	}
	s := &Signer{home: home}
	defer s.Close()
	if _, err := s.gpg(ctx, time.Time{}, "--quick-generate-key", uid, "ed25519", "sign", "never"); err != nil {
		return fmt.Errorf("aptrepo: generate key: %w", err)
	}
	out, err := s.gpg(ctx, time.Time{}, "--armor", "--export-secret-keys")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
