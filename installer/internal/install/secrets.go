package install

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
)

// Secrets are the site's generated credentials. garrisonctl makes them
// once, keeps them in its state directory (0600) and writes each only to
// the nodes whose services need it; they are never logged or passed on a
// command line.
type Secrets struct {
	PostgresSuperuser string `json:"postgres_superuser"`
	Replication       string `json:"replication"`
	Rewind            string `json:"rewind"`
	Garrison          string `json:"garrison_db"`
	Push              string `json:"push_db"`
	PatroniREST       string `json:"patroni_rest"`
	MinIOUser         string `json:"minio_user"`
	MinIOPassword     string `json:"minio_password"`
	GossipKey         string `json:"gossip_key"`  // base64 of 32 bytes
	PushSender        string `json:"push_sender"` // the garrison → push proxy bearer secret
	AdminPassword     string `json:"admin_password"`
}

// String never shows a secret.
func (Secrets) String() string { return "install.Secrets{…}" }

// GoString never shows a secret either (%#v).
func (s Secrets) GoString() string { return s.String() }

const secretsName = "secrets.json"

// token returns n random bytes as a password made of letters and digits
// only: it goes into env files, YAML, URLs and SQL without quoting.
func token(n int) (string, error) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	out := make([]byte, n)
	for i, c := range b {
		// 256 % 57 != 0: a slight bias, irrelevant at these lengths.
		out[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(out), nil
}

// adminPassword meets any PasswordSettings: it has a lower- and an
// upper-case letter, a digit and a symbol.
func adminPassword() (string, error) {
	t, err := token(20)
	if err != nil {
		return "", err
	}
	return "Gx7-" + t, nil
}

// LoadSecrets reads the site's secrets from dir, generating and keeping
// any that are missing (all of them on the first run).
func LoadSecrets(dir string) (*Secrets, error) {
	path := filepath.Join(dir, secretsName)
	var s Secrets
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("install: %s is damaged (%v); restore it from a backup of the state directory", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("install: %w", err)
	}
	changed, err := s.fill()
	if err != nil {
		return nil, fmt.Errorf("install: generate secrets: %w", err)
	}
	if changed {
		out, err := json.MarshalIndent(&s, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(path, append(out, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("install: keep secrets: %w", err)
		}
	}
	return &s, nil
}

// fill generates every empty field.
func (s *Secrets) fill() (changed bool, err error) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.String() != "" {
			continue
		}
		var val string
		switch v.Type().Field(i).Name {
		case "GossipKey":
			b := make([]byte, 32)
			if _, err = rand.Read(b); err != nil {
				return false, err
			}
			val = base64.StdEncoding.EncodeToString(b)
		case "AdminPassword":
			val, err = adminPassword()
		case "MinIOUser":
			val, err = token(16)
			val = "garrison-" + val
		default:
			val, err = token(32)
		}
		if err != nil {
			return false, err
		}
		f.SetString(val)
		changed = true
	}
	return changed, nil
}

// writeFileAtomic writes path through a temporary file in its directory,
// synced before the rename, so a crash leaves the old or the new file.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
