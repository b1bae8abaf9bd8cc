// Package sitekey keeps the site's own minisign key pair in garrisonctl's
// state directory and signs the documents garrisonctl writes there
// (verification receipts, later install receipts), so that an auditor can
// check with `minisign -Vm FILE -p site.pub` that a receipt is the one this
// machine wrote.
//
// The key is generated on first use. Several garrisonctl processes may start
// at once: the secret key file appears atomically (link(2) of a complete
// temporary file, which fails if the name exists), so they all end up with
// the same key.
package sitekey

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"aead.dev/minisign"

	"github.com/garrison-chat/garrison/installer/internal/atomicfile"
	"github.com/garrison-chat/garrison/internal/manifest"
)

const (
	// SecretName is the secret key file in the state directory (mode 0600).
	SecretName = "site.key"
	// PublicName is the public key file in the state directory (mode 0644).
	PublicName = "site.pub"
	// DefaultStateDir is garrisonctl's state directory when neither
	// --state-dir nor GARRISONCTL_STATE_DIR says otherwise.
	DefaultStateDir = "/var/lib/garrisonctl"
)

// Key is the site key pair, loaded from a state directory.
type Key struct {
	dir     string
	private minisign.PrivateKey
	public  minisign.PublicKey
}

// Open loads the site key from dir, creating dir (0700) and the key pair
// first if they do not exist. created reports whether this call made the key.
func Open(dir string) (k *Key, created bool, err error) {
	if dir == "" {
		return nil, false, errors.New("sitekey: empty state directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("sitekey: state directory: %w", err)
	}
	secretPath := filepath.Join(dir, SecretName)
	key, err := manifest.LoadSecretKey(secretPath)
	if errors.Is(err, fs.ErrNotExist) {
		key, created, err = create(secretPath)
	}
	if err != nil {
		return nil, false, fmt.Errorf("sitekey: %w", err)
	}
	k = &Key{dir: dir, private: key, public: manifest.PublicKeyOf(key)}
	if err := k.writePublic(); err != nil {
		return nil, false, fmt.Errorf("sitekey: %w", err)
	}
	return k, created, nil
}

// create writes a new secret key under secretPath unless another process got
// there first, and returns whichever key is now in place.
func create(secretPath string) (minisign.PrivateKey, bool, error) {
	_, secText, err := manifest.GenerateKey()
	if err != nil {
		return minisign.PrivateKey{}, false, err
	}
	defer clear(secText)
	created := true
	if err := atomicfile.WriteNew(secretPath, secText, 0o600); errors.Is(err, fs.ErrExist) {
		created = false // another garrisonctl made the key between our load and our link: use theirs
	} else if err != nil {
		return minisign.PrivateKey{}, false, err
	}
	key, err := manifest.LoadSecretKey(secretPath)
	return key, created, err
}

// writePublic (re)writes site.pub from the secret key when it is missing or
// different, so the public file can never disagree with the key in use.
func (k *Key) writePublic() error {
	want := manifest.MarshalPublicKey(k.public)
	path := k.PublicPath()
	if have, err := os.ReadFile(path); err == nil && string(have) == string(want) {
		return nil
	}
	return atomicfile.Write(path, want, 0o644)
}

// PublicPath is the path of the public key file, site.pub.
func (k *Key) PublicPath() string { return filepath.Join(k.dir, PublicName) }

// ID is the key id as minisign prints it.
func (k *Key) ID() string { return manifest.KeyID(k.public.ID()) }

// Public is the public half of the site key.
func (k *Key) Public() minisign.PublicKey { return k.public }

// Sign signs data with the site key; see manifest.SignData.
func (k *Key) Sign(data []byte, trustedComment string) []byte {
	return manifest.SignData(k.private, data, trustedComment)
}

// WriteSigned writes data as dir/<base><ext> and its signature as
// dir/<base><ext>.minisig, creating dir (0755) if needed. It never replaces
// an existing document: if the name is taken, it tries <base>-2<ext>,
// <base>-3<ext> and so on. Each file appears complete or not at all.
func (k *Key) WriteSigned(dir, base, ext string, data []byte, trustedComment string) (path, sigPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("sitekey: %w", err)
	}
	sig := k.Sign(data, trustedComment)
	for i := 1; ; i++ {
		name := base + ext
		if i > 1 {
			name = base + "-" + strconv.Itoa(i) + ext
		}
		path = filepath.Join(dir, name)
		err = atomicfile.WriteNew(path, data, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i == 1000 {
			return "", "", fmt.Errorf("sitekey: %w", err)
		}
	}
	sigPath = path + ".minisig"
	if err := atomicfile.Write(sigPath, sig, 0o644); err != nil {
		return "", "", fmt.Errorf("sitekey: %w", err)
	}
	return path, sigPath, nil
}
