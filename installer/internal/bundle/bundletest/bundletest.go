// Package bundletest builds small synthetic Garrison bundles for tests: a
// garrison-<V>/ tree with MANIFEST and its signature made by a fresh key, and
// tars of it laid out as the bundle spec says (one top directory, sorted
// entries, root-owned, fixed modes and mtime).
package bundletest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/garrison-chat/garrison/internal/manifest"
)

// Epoch is the SOURCE_DATE_EPOCH of synthetic bundles.
const Epoch = 1700000000

// Key is a signing key pair with its public key file on disk.
type Key struct {
	Private minisign.PrivateKey
	Public  minisign.PublicKey
	PubPath string // minisign public key file
}

// NewKey makes a key pair and writes the public key file to a temp dir.
func NewKey(t testing.TB) *Key {
	t.Helper()
	pubText, secText, err := manifest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k := &Key{PubPath: filepath.Join(t.TempDir(), "garrison-signing.pub")}
	if k.Public, err = manifest.ParsePublicKeyFile(pubText); err != nil {
		t.Fatal(err)
	}
	if k.Private, err = manifest.ParseSecretKey(secText); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.PubPath, pubText, 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// Bundle is a bundle directory on disk.
type Bundle struct {
	Version string
	Parent  string // the directory that holds Dir
	Dir     string // Parent/garrison-<Version>
	Key     *Key
}

// Files returns the default contents of a small bundle of version v.
func Files(v string) map[string]string {
	return map[string]string{
		"VERSION":                                v + "\n",
		"README.txt":                             "Verify with garrisonctl bundle verify.\n",
		"garrison-signing.pub":                   "not a trust anchor\n",
		"repo/Packages":                          Packages,
		"repo/Release":                           "Origin: Garrison\n",
		"repo/pool/garrison_" + v + "_amd64.deb": strings.Repeat("deb", 1000),
		"repo/pool/nginx_1.22.1-9_amd64.deb":     strings.Repeat("ngx", 500),
		"keys/garrison-archive-keyring.gpg":      "\x99\x01\x0dkey",
		"sbom/garrison-" + v + ".cdx.json":       SBOM(v),
		"docs/install.md":                        "# Install\n",
		"docs/upgrade.md":                        "# Upgrade\n",
	}
}

// Packages is a small apt Packages index.
const Packages = `Package: nginx
Version: 1.22.1-9
Architecture: amd64
Description: small, powerful, scalable web/proxy server
 Nginx ("engine X") is a high-performance web and reverse proxy server.
 .
 It was written by Igor Sysoev.
Filename: ./pool/nginx_1.22.1-9_amd64.deb

Package: garrison
Version: 0.1.0
Architecture: amd64
Depends: adduser

package: etcd-server
version: 3.4.23-4+b6
architecture: amd64
`

// SBOM returns a CycloneDX 1.5 JSON SBOM of version v: two Go binaries (one
// with nested modules, one with a dependency graph) and two debs.
func SBOM(v string) string {
	goMod := func(name, ver string) cdx.Component {
		return cdx.Component{Type: cdx.ComponentTypeLibrary, Name: name, Version: ver,
			BOMRef: "pkg:golang/" + name + "@" + ver, PackageURL: "pkg:golang/" + name + "@" + ver}
	}
	nested := []cdx.Component{goMod("github.com/go-chi/chi/v5", "v5.5.0"), goMod("github.com/jackc/pgx/v5", "v5.12.0")}
	pgx, ws := goMod("github.com/jackc/pgx/v5", "v5.12.0"), goMod("github.com/gorilla/websocket", "v1.5.3")
	components := []cdx.Component{
		{Type: cdx.ComponentTypeApplication, Name: "garrison", Version: v, BOMRef: "app-garrison", Components: &nested},
		{Type: cdx.ComponentTypeApplication, Name: "garrison-pushproxy", Version: v, BOMRef: "app-pushproxy"},
		{Type: cdx.ComponentTypeLibrary, Name: "github.com/gorilla/websocket", Version: "v1.5.3", BOMRef: "ws", PackageURL: ws.PackageURL},
		{Type: cdx.ComponentTypeLibrary, Name: "github.com/jackc/pgx/v5", Version: "v5.12.0", BOMRef: "pgx", PackageURL: pgx.PackageURL},
		{Type: cdx.ComponentTypeLibrary, Name: "nginx", Version: "1.22.1-9", PackageURL: "pkg:deb/debian/nginx@1.22.1-9?arch=amd64"},
		{Type: cdx.ComponentTypeLibrary, Name: "etcd-server", Version: "3.4.23-4+b6", PackageURL: "pkg:deb/debian/etcd-server@3.4.23-4%2Bb6?arch=amd64"},
	}
	deps := []cdx.Dependency{
		{Ref: "app-pushproxy", Dependencies: &[]string{"ws"}},
		{Ref: "ws", Dependencies: &[]string{"pgx"}}, // transitive: pushproxy → ws → pgx
	}
	bom := cdx.NewBOM()
	bom.Metadata = &cdx.Metadata{Component: &cdx.Component{Type: cdx.ComponentTypeApplication, Name: "garrison-bundle", Version: v}}
	bom.Components = &components
	bom.Dependencies = &deps
	var b bytes.Buffer
	if err := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON).EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
		panic(err)
	}
	return b.String()
}

// Write creates Parent/garrison-<version>/ with files (Files(version) if
// nil), MANIFEST, and MANIFEST.minisig signed by key (a new one if nil).
func Write(t testing.TB, version string, files map[string]string, key *Key) *Bundle {
	t.Helper()
	if files == nil {
		files = Files(version)
	}
	if key == nil {
		key = NewKey(t)
	}
	parent := t.TempDir()
	b := &Bundle{Version: version, Parent: parent, Dir: filepath.Join(parent, "garrison-"+version), Key: key}
	for p, content := range files {
		full := filepath.Join(b.Dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.Sign(t)
	return b
}

// Sign rebuilds MANIFEST from the tree and signs it with b.Key.
func (b *Bundle) Sign(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := manifest.Build(b.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := manifest.Format(entries)
	sig := manifest.Sign(b.Key.Private, m, manifest.Trusted{Version: b.Version, SourceDateEpoch: Epoch})
	b.WriteFile(t, manifest.FileName, string(m))
	b.WriteFile(t, manifest.SignatureName, string(sig))
}

// WriteFile writes (or replaces) a file of the bundle, slash path.
func (b *Bundle) WriteFile(t testing.TB, rel, content string) {
	t.Helper()
	full := filepath.Join(b.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadFile reads a file of the bundle, slash path.
func (b *Bundle) ReadFile(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.Dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Tar writes b as a tar file in a new temp dir and returns its path.
func (b *Bundle) Tar(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "garrison-"+b.Version+"-bookworm-amd64.tar")
	WriteTar(t, out, b.Parent, filepath.Base(b.Dir))
	return out
}

// WriteTar tars the named directories of parent into out, the way the
// bundle spec lays tars out: entries sorted by name, directories before
// their contents, uid/gid 0, uname/gname root, dirs 0755, files 0644 (0755
// if executable), mtime Epoch. Symlinks are stored as symlinks.
func WriteTar(t testing.TB, out, parent string, tops ...string) {
	t.Helper()
	type item struct {
		name string
		full string
	}
	var items []item
	for _, top := range tops {
		err := filepath.WalkDir(filepath.Join(parent, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(parent, p)
			if err != nil {
				return err
			}
			name := filepath.ToSlash(rel)
			if d.IsDir() {
				name += "/"
			}
			items = append(items, item{name: name, full: p})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })

	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	mtime := time.Unix(Epoch, 0)
	for _, it := range items {
		info, err := os.Lstat(it.full)
		if err != nil {
			t.Fatal(err)
		}
		hdr := &tar.Header{Name: it.name, Uname: "root", Gname: "root", ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case info.IsDir():
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(it.full)
			if err != nil {
				t.Fatal(err)
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, info.Size()
			if info.Mode()&0o111 != 0 {
				hdr.Mode = 0o755
			}
		default:
			t.Fatalf("%s: cannot tar %s", it.full, info.Mode())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			data, err := os.ReadFile(it.full)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// AppendTar adds raw entries to the end of a tar written by WriteTar (it
// rewrites the file without its end-of-archive marker first).
func AppendTar(t testing.TB, path string, entries ...*tar.Header) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(data))
	tw := tar.NewWriter(&b)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(fmt.Errorf("%s: %w", h.Name, err))
		}
		if h.Size > 0 {
			if _, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
