package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/garrison-chat/garrison/internal/manifest"
	"github.com/garrison-chat/garrison/packaging/internal/aptrepo"
	"github.com/garrison-chat/garrison/packaging/internal/archive"
	"github.com/garrison-chat/garrison/packaging/internal/debpkg"
	"github.com/garrison-chat/garrison/packaging/internal/lock"
	"github.com/garrison-chat/garrison/packaging/internal/sbom"
)

const module = "github.com/garrison-chat/garrison"

// options are build's inputs. Everything that reaches the bundle's bytes
// is here or in the source tree, the lock file and the keys.
type options struct {
	src          string // the source tree
	version      string
	epoch        int64 // SOURCE_DATE_EPOCH
	commit       string
	lockFile     string
	out          string
	keysDir      string
	signingKey   string // minisign secret key file
	aptKey       string // armored OpenPGP secret key file
	cacheDir     string
	minioBin     string
	minioVersion string
}

// BuildInfo is written next to the bundle: the inputs a second build needs
// to give the same bytes (docs/bundle.md, "Rebuilding").
type BuildInfo struct {
	Version         string `json:"version"`
	SourceDateEpoch int64  `json:"source_date_epoch"`
	Commit          string `json:"commit"`
	GoVersion       string `json:"go_version"`
	LockSHA256      string `json:"lock_sha256"`
	MinIOVersion    string `json:"minio_version"`
	SigningKeyID    string `json:"signing_key_id"`
	ArchiveKey      string `json:"archive_key_fingerprint"`
	Tar             string `json:"tar"`
	TarSHA256       string `json:"tar_sha256"`
	ISO             string `json:"iso"`
	ISOSHA256       string `json:"iso_sha256"`
}

func runBuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	home, _ := os.UserHomeDir()
	cache := getenv("GARRISON_CACHE")
	if cache == "" {
		cache = filepath.Join(home, ".cache", "garrison")
	}
	fs.StringVar(&o.src, "src", ".", "the source tree")
	versionFile := fs.String("version-file", "VERSION", "the file holding the release version")
	fs.StringVar(&o.lockFile, "lock", "packaging/bookworm.lock", "the pinned third-party closure")
	fs.StringVar(&o.out, "out", "dist", "where the bundle goes")
	fs.StringVar(&o.keysDir, "keys", orDefault(getenv("GARRISON_KEYS_DIR"), ".keys"), "where development keys are kept (git-ignored)")
	fs.StringVar(&o.cacheDir, "cache", cache, "the download cache")
	fs.StringVar(&o.minioBin, "minio", "", "the MinIO server binary built from the pinned source (make minio)")
	fs.StringVar(&o.minioVersion, "minio-version", "", "the MinIO module version it was built from")
	fs.StringVar(&o.commit, "commit", "", "the source revision stamped into the binaries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []error
	// -version-file and -lock name files of the source tree.
	for _, p := range []*string{versionFile, &o.lockFile} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(o.src, *p)
		}
	}
	v, err := os.ReadFile(*versionFile)
	if err != nil {
		problems = append(problems, fmt.Errorf("-version-file: %w", err))
	} else {
		o.version = strings.TrimSpace(string(v))
		if err := manifest.ValidVersion(o.version); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", *versionFile, err))
		}
	}
	sde := getenv("SOURCE_DATE_EPOCH")
	o.epoch, err = strconv.ParseInt(sde, 10, 64)
	if err != nil || o.epoch <= 0 {
		problems = append(problems, fmt.Errorf("SOURCE_DATE_EPOCH %q: want the commit's Unix time in seconds (the Makefile sets it)", sde))
	}
	if o.minioBin == "" || o.minioVersion == "" {
		problems = append(problems, errors.New("-minio and -minio-version are required (make minio builds it)"))
	}
	if o.commit == "" {
		problems = append(problems, errors.New("-commit is required"))
	}
	o.signingKey = getenv("GARRISON_SIGNING_KEY")
	o.aptKey = getenv("GARRISON_APT_SIGNING_KEY")
	if (o.signingKey == "") != (o.aptKey == "") {
		// A release signed with one release key and one development key
		// would verify and still be wrong.
		problems = append(problems, errors.New("set both GARRISON_SIGNING_KEY and GARRISON_APT_SIGNING_KEY (a release), or neither (development keys)"))
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	for _, p := range []*string{&o.src, &o.lockFile, &o.out, &o.keysDir, &o.minioBin} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "mkbundle: "+format+"\n", a...) }
	bi, err := build(ctx, o, logf)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n%s\n%s\n", filepath.Join(o.out, bi.Tar), filepath.Join(o.out, bi.ISO), filepath.Join(o.out, "garrison-signing.pub"))
	return nil
}

func orDefault(v, d string) string {
	if v != "" {
		return v
	}
	return d
}

func build(ctx context.Context, o options, logf func(string, ...any)) (*BuildInfo, error) {
	mtime := time.Unix(o.epoch, 0).UTC()
	l, err := lock.Load(o.lockFile)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(l.Roots, roots) {
		return nil, fmt.Errorf("%s was computed from %q, the bundle needs %q: run make bundle-lock", o.lockFile, l.Roots, roots)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	// A build killed before its deferred clean-up leaves its work tree.
	stale, err := filepath.Glob(filepath.Join(o.out, ".work-*"))
	if err != nil {
		return nil, err
	}
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp(o.out, ".work-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	// Keys: the site's, or development keys made once under keysDir.
	signingKey, err := ensureSigningKey(o, logf)
	if err != nil {
		return nil, err
	}
	priv, err := manifest.LoadSecretKey(signingKey)
	if err != nil {
		return nil, err
	}
	pub := manifest.PublicKeyOf(priv)
	pubText := manifest.MarshalPublicKey(pub)
	aptKey, err := ensureAptKey(ctx, o, logf)
	if err != nil {
		return nil, err
	}
	signer, err := aptrepo.NewSigner(ctx, aptKey)
	if err != nil {
		return nil, err
	}
	defer signer.Close()

	name := "garrison-" + o.version
	tree := filepath.Join(work, name)
	pool := filepath.Join(tree, "repo", "pool")
	for _, d := range []string{pool, filepath.Join(tree, "keys"), filepath.Join(tree, "sbom"), filepath.Join(work, "bin"), filepath.Join(work, "scripts")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}

	// Our binaries.
	bin := filepath.Join(work, "bin")
	anchor := strings.TrimSpace(string(pubText[bytes.IndexByte(pubText, '\n')+1:]))
	goVersion, err := goEnv(ctx, o.src, "GOVERSION")
	if err != nil {
		return nil, err
	}
	binaries := []struct{ name, pkg, deb, extra string }{
		{"garrison", "./server/cmd/garrison", "garrison", ""},
		{"garrison-pushproxy", "./pushproxy/cmd/garrison-pushproxy", "garrison-pushproxy", ""},
		{"garrisonctl", "./installer/cmd/garrisonctl", "garrisonctl", " -X " + module + "/installer/internal/bundle.trustAnchor=" + anchor},
	}
	var sbomBins []sbom.Binary
	for _, b := range binaries {
		logf("building %s", b.name)
		out := filepath.Join(bin, b.name)
		ldflags := "-s -w -buildid= -X " + module + "/internal/buildinfo.version=" + o.version +
			" -X " + module + "/internal/buildinfo.revision=" + o.commit + b.extra
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, b.pkg)
		cmd.Dir = o.src
		cmd.Env = goBuildEnv()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", b.pkg, err, msg)
		}
		sbomBins = append(sbomBins, sbom.Binary{Name: b.name, Path: out, Deb: b.deb})
	}
	sbomBins = append(sbomBins, sbom.Binary{Name: "minio", Path: o.minioBin, Deb: "garrison-minio"})
	for i := range sbomBins {
		if sbomBins[i].SHA256, err = fileSHA256(sbomBins[i].Path); err != nil {
			return nil, err
		}
	}

	// Our packages.
	minioDir, err := moduleDir(ctx, o.src, "github.com/minio/minio@"+o.minioVersion)
	if err != nil {
		return nil, err
	}
	minioSource := filepath.Join(work, "minio-SOURCE")
	if err := os.WriteFile(minioSource, []byte(minioSourceText(o.minioVersion)), 0o644); err != nil {
		return nil, err
	}
	minioDeb := minioDebVersion(o.minioVersion)
	vars := map[string]string{
		"VERSION": o.version, "BIN": bin, "SRC": o.src,
		"MINIO_BIN": o.minioBin, "MINIO_VERSION": o.minioVersion, "MINIO_DEB_VERSION": minioDeb,
		"MINIO_LICENSE": filepath.Join(minioDir, "LICENSE"), "MINIO_SOURCE": minioSource,
	}
	services := []debpkg.Service{
		{Package: "garrison", User: "garrison", Gecos: "Garrison server", Home: "/var/lib/garrison",
			Dirs: []string{"/var/lib/garrison/data"}, Configs: []string{"/etc/garrison/config.json"}, Unit: "garrison.service"},
		{Package: "garrison-pushproxy", User: "garrison-pushproxy", Gecos: "Garrison push proxy", Home: "/var/lib/garrison-pushproxy",
			Configs: []string{"/etc/garrison/pushproxy.json"}, Unit: "garrison-pushproxy.service"},
		{Package: "garrisonctl", User: "garrison-agent", Gecos: "Garrison node agent", Home: "/var/lib/garrison-agent",
			Unit: "garrison-agent.service"},
		{Package: "garrison-minio", User: "garrison-minio", Gecos: "Garrison MinIO", Home: "/var/lib/garrison-minio",
			Dirs: []string{"/var/lib/garrison-minio/data"}, Configs: []string{"/etc/garrison/minio.env"}, Unit: "garrison-minio.service"},
	}
	var debs []sbom.Deb
	for _, s := range services {
		logf("packaging %s", s.Package)
		b := debpkg.Build{Recipe: filepath.Join(o.src, "packaging", "nfpm", s.Package+".yaml"), Vars: vars, Service: s}
		path, err := b.Make(pool, filepath.Join(work, "scripts"), mtime)
		if err != nil {
			return nil, err
		}
		version := o.version
		if s.Package == "garrison-minio" {
			version = minioDeb
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, err
		}
		debs = append(debs, sbom.Deb{Name: s.Package, Version: version, Arch: "amd64", SHA256: sum, Ours: true})
	}

	// The third-party closure, exactly as locked.
	logf("fetching %d third-party packages", len(l.Packages))
	if err := l.Fetch(ctx, pool, filepath.Join(o.cacheDir, "debs"), logf); err != nil {
		return nil, err
	}
	for _, p := range l.Packages {
		debs = append(debs, sbom.Deb{Name: p.Name, Version: p.Version, Arch: p.Arch, SHA256: p.SHA256})
	}

	// The signed repository.
	logf("indexing and signing the repository")
	repo := aptrepo.Repo{Dir: filepath.Join(tree, "repo"), Origin: "Garrison", Label: "Garrison",
		Suite: "garrison", Version: o.version, Date: mtime,
		Description: "Garrison " + o.version + " offline repository (Debian 12 bookworm closure)"}
	if err := repo.Index(ctx); err != nil {
		return nil, err
	}
	if err := signer.Sign(ctx, repo.Dir, mtime); err != nil {
		return nil, err
	}
	if err := signer.ExportPublic(ctx, filepath.Join(tree, "keys", "garrison-archive-keyring.gpg")); err != nil {
		return nil, err
	}

	// SBOM, docs and the top-level files.
	doc, err := sbom.Build(sbom.Input{Version: o.version, Time: mtime, Binaries: sbomBins, Debs: debs})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		filepath.Join("sbom", name+".cdx.json"): doc,
		"VERSION":                               []byte(o.version + "\n"),
		"garrison-signing.pub":                  pubText,
	}
	readme, err := renderReadme(o.version, manifest.KeyID(pub.ID()), signer.Fingerprint())
	if err != nil {
		return nil, err
	}
	files["README.txt"] = readme
	docs, err := filepath.Glob(filepath.Join(o.src, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		data, err := os.ReadFile(d)
		if err != nil {
			return nil, err
		}
		files[filepath.Join("docs", filepath.Base(d))] = data
	}
	for rel, data := range files {
		p := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}

	// MANIFEST and its signature.
	logf("writing and signing MANIFEST")
	if err := archive.Normalize(tree, mtime); err != nil {
		return nil, err
	}
	entries, err := manifest.Build(tree, nil)
	if err != nil {
		return nil, err
	}
	m := manifest.Format(entries)
	sig := manifest.Sign(priv, m, manifest.Trusted{Version: o.version, SourceDateEpoch: o.epoch})
	if err := os.WriteFile(filepath.Join(tree, manifest.FileName), m, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tree, manifest.SignatureName), sig, 0o644); err != nil {
		return nil, err
	}
	if err := archive.Normalize(tree, mtime); err != nil {
		return nil, err
	}

	// The tar and the ISO, written beside and renamed into place.
	base := name + "-bookworm-amd64"
	tarPath := filepath.Join(work, base+".tar")
	isoPath := filepath.Join(work, base+".iso")
	logf("writing %s", base+".tar")
	if err := archive.WriteTar(tree, tarPath, mtime); err != nil {
		return nil, err
	}
	logf("writing %s", base+".iso")
	volID := "GARRISON_" + strings.NewReplacer(".", "_", "-", "_", "+", "_", "~", "_").Replace(o.version)
	if len(volID) > 32 {
		volID = volID[:32]
	}
	if err := archive.WriteISO(ctx, tree, isoPath, volID, mtime); err != nil {
		return nil, err
	}
	bi := &BuildInfo{
		Version: o.version, SourceDateEpoch: o.epoch, Commit: o.commit, GoVersion: goVersion,
		MinIOVersion: o.minioVersion, SigningKeyID: manifest.KeyID(pub.ID()),
		ArchiveKey: signer.Fingerprint(), Tar: base + ".tar", ISO: base + ".iso",
	}
	for _, h := range []struct {
		dst  *string
		path string
	}{{&bi.LockSHA256, o.lockFile}, {&bi.TarSHA256, tarPath}, {&bi.ISOSHA256, isoPath}} {
		if *h.dst, err = fileSHA256(h.path); err != nil {
			return nil, err
		}
	}
	info, err := json.MarshalIndent(bi, "", "  ")
	if err != nil {
		return nil, err
	}
	sums := fmt.Sprintf("%s  %s\n%s  %s\n", bi.ISOSHA256, bi.ISO, bi.TarSHA256, bi.Tar)
	outputs := []struct {
		src, dst string
		data     []byte
	}{
		{src: tarPath, dst: bi.Tar},
		{src: isoPath, dst: bi.ISO},
		{dst: "garrison-signing.pub", data: pubText},
		{dst: name + ".SHA256SUMS", data: []byte(sums)},
		// Last: its presence says the build completed.
		{dst: name + ".buildinfo.json", data: append(info, '\n')},
	}
	for _, f := range outputs {
		dst := filepath.Join(o.out, f.dst)
		if f.src == "" {
			f.src = filepath.Join(work, "out-"+f.dst)
			if err := os.WriteFile(f.src, f.data, 0o644); err != nil {
				return nil, err
			}
		}
		if err := os.Chmod(f.src, 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(f.src, dst); err != nil {
			return nil, err
		}
	}
	logf("bundle %s: %d files, signed by key %s", o.version, len(entries), manifest.KeyID(pub.ID()))
	return bi, nil
}

func ensureSigningKey(o options, logf func(string, ...any)) (string, error) {
	if o.signingKey != "" {
		return o.signingKey, nil
	}
	path := filepath.Join(o.keysDir, "garrison-signing.key")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	logf("generating a development signing key in %s (set GARRISON_SIGNING_KEY for a release)", o.keysDir)
	if err := os.MkdirAll(o.keysDir, 0o700); err != nil {
		return "", err
	}
	pubText, secText, err := manifest.GenerateKey()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(o.keysDir, "garrison-signing.pub"), pubText, 0o644); err != nil {
		return "", err
	}
	if err := writeNew(path, secText, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

func ensureAptKey(ctx context.Context, o options, logf func(string, ...any)) (string, error) {
	if o.aptKey != "" {
		return o.aptKey, nil
	}
	path := filepath.Join(o.keysDir, "archive-signing.asc")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	logf("generating a development archive key in %s (set GARRISON_APT_SIGNING_KEY for a release)", o.keysDir)
	if err := os.MkdirAll(o.keysDir, 0o700); err != nil {
		return "", err
	}
	return path, aptrepo.GenerateKey(ctx, path, "Garrison archive signing key (development) <garrison@localhost>")
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileSHA256(path string) (string, error) {
	sum, _, err := manifest.HashFile(path)
	return hex.EncodeToString(sum[:]), err
}

// goBuildEnv is the environment of every go command the build runs: the
// caller's (for PATH, HOME and the caches) with everything that changes
// what the compiler emits pinned.
func goBuildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "GOEXPERIMENT" || k == "GODEBUG" || k == "CGO_CFLAGS" || k == "CGO_LDFLAGS" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOTOOLCHAIN=local", "GOFLAGS=")
}

func goEnv(ctx context.Context, dir, key string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", key)
	cmd.Env = goBuildEnv()
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// moduleDir downloads a module (from the module cache when it is there)
// and returns its directory.
func moduleDir(ctx context.Context, dir, mod string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	cmd.Dir = dir
	cmd.Env = goBuildEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", err
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, m.Error)
	}
	return m.Dir, nil
}

// minioDebVersion turns a Go pseudo-version (v0.0.0-20260212201848-7aac2a2c5b7c)
// into a Debian version that sorts by date (0.0.0~git20260212201848.7aac2a2c5b7c).
func minioDebVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	parts := strings.Split(v, "-")
	if len(parts) == 3 {
		return parts[0] + "~git" + parts[1] + "." + parts[2]
	}
	return strings.ReplaceAll(v, "-", "~")
}

func minioSourceText(version string) string {
	return "MinIO in this package was built by the Garrison bundle build from the\n" +
		"Go module github.com/minio/minio@" + version + "\n" +
		"(go install github.com/minio/minio@" + version + "; see `make minio`).\n" +
		"MinIO is licensed under the GNU Affero General Public License v3 (see\n" +
		"copyright). Its corresponding source is that module version, which any Go\n" +
		"module proxy serves.\n"
}

var readmeTmpl = template.Must(template.New("").Parse(`Garrison {{.Version}} offline bundle (Debian 12 bookworm, amd64)
==================================================================

This directory is everything a site needs to install Garrison with no
network: an apt repository of Garrison's packages and their Debian
closure (repo/), the key that signed it (keys/), an SBOM (sbom/), the
admin documentation (docs/), and MANIFEST, the SHA-256 of every file,
signed in minisign format (MANIFEST.minisig, key {{.KeyID}}).

1. Verify before you use it
   With garrisonctl (the trust anchor is built in):
       garrisonctl bundle verify garrison-{{.Version}}-bookworm-amd64.tar
   With Debian's tools, in this directory, using the public key you
   received separately (garrison-signing.pub here is a convenience copy,
   not a trust anchor):
       minisign -Vm MANIFEST -p /path/to/garrison-signing.pub
       sha256sum -c --strict --quiet MANIFEST

2. Install
   On one node, with this directory at /media/garrison-{{.Version}}:
       cp keys/garrison-archive-keyring.gpg /usr/share/keyrings/
       echo 'deb [signed-by=/usr/share/keyrings/garrison-archive-keyring.gpg] file:/media/garrison-{{.Version}}/repo ./' \
           > /etc/apt/sources.list.d/garrison.list
       apt-get update && apt-get install garrison garrison-pushproxy garrisonctl garrison-minio
   The repository is signed by OpenPGP key {{.ArchiveKey}}.

Nothing is started by the packages: write /etc/garrison/*.json first
(docs/configuration.md, docs/push.md), then enable the services.
See docs/bundle.md.
`))

func renderReadme(version, keyID, archiveKey string) ([]byte, error) {
	var b bytes.Buffer
	err := readmeTmpl.Execute(&b, struct{ Version, KeyID, ArchiveKey string }{version, keyID, archiveKey})
	return b.Bytes(), err
}
