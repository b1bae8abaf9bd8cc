package bundle_test

import (
	"archive/tar"
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/garrison-chat/garrison/internal/manifest"
	"github.com/stretchr/testify/require"
)

// report is the part of `garrisonctl bundle verify --json` the tests read.
type report struct {
	Result       string `json:"result"`
	Version      string `json:"version"`
	SigningKeyID string `json:"signing_key_id"`
	FilesChecked int    `json:"files_checked"`
	Problems     []struct {
		Kind string `json:"kind"`
		Path string `json:"path"`
	} `json:"problems"`
}

func verifyJSON(t *testing.T, bin string, args ...string) (result, report, string) {
	t.Helper()
	r, state := verify(t, bin, append([]string{"--json"}, args...)...)
	var rep report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "%s", r)
	return r, rep, state
}

func TestBothArchivesHoldTheSignedTree(t *testing.T) {
	needTools(t, "xorriso", "minisign", "sha256sum")
	t.Parallel()
	b := theBundle(t)
	fromTar := filepath.Join(extractedTree(t, b), b.top())
	fromISO := t.TempDir()
	out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", b.iso, "-extract", "/", fromISO).CombinedOutput()
	require.NoError(t, err, "%s", out)
	// The ISO holds exactly the tar's directory.
	ents, err := os.ReadDir(fromISO)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{b.top()}, names)
	a, err := manifest.Build(fromTar, nil)
	require.NoError(t, err)
	c, err := manifest.Build(filepath.Join(fromISO, b.top()), nil)
	require.NoError(t, err)
	require.Equal(t, manifest.Format(a), manifest.Format(c), "same files, same bytes")
	listed, err := os.ReadFile(filepath.Join(fromTar, manifest.FileName))
	require.NoError(t, err)
	require.Equal(t, string(manifest.Format(a)), string(listed), "MANIFEST lists every file")

	// Debian's tools verify it on their own.
	r := runCmd(t, nil, "minisign", "-Vm", filepath.Join(fromTar, "MANIFEST"), "-p", b.pub)
	require.Zero(t, r.code, "%s", r)
	require.Contains(t, r.stdout+r.stderr, "Trusted comment: garrison-bundle version="+b.info.Version+
		" source_date_epoch="+strconv.FormatInt(b.info.SourceDateEpoch, 10))
	cmd := exec.Command("sha256sum", "-c", "--strict", "--quiet", "MANIFEST")
	cmd.Dir = fromTar
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)))

	// The layout the docs promise.
	for _, p := range []string{"VERSION", "README.txt", "garrison-signing.pub", "repo/InRelease", "repo/Release.gpg",
		"repo/Packages.gz", "keys/garrison-archive-keyring.gpg", "sbom/" + b.top() + ".cdx.json"} {
		_, err := os.Stat(filepath.Join(fromTar, p))
		require.NoError(t, err, p)
	}
	for _, deb := range []string{"garrison", "garrison-pushproxy", "garrisonctl"} {
		_, err := os.Stat(filepath.Join(fromTar, "repo", "pool", deb+"_"+b.info.Version+"_amd64.deb"))
		require.NoError(t, err, deb)
	}
}

func TestGarrisonctlVerifiesTarAndDirectoryAndSignsAReceipt(t *testing.T) {
	needTools(t, "minisign")
	t.Parallel()
	b := theBundle(t)
	bin := garrisonctl(t)
	tree := extractedTree(t, b)
	for _, path := range []string{b.tar, tree, filepath.Join(tree, b.top())} {
		r, rep, state := verifyJSON(t, bin, "--pubkey", b.pub, path)
		require.Zero(t, r.code, "%s: %s", path, r)
		require.Equal(t, "pass", rep.Result)
		require.Equal(t, b.info.Version, rep.Version)
		require.Equal(t, b.info.SigningKeyID, rep.SigningKeyID)
		require.Greater(t, rep.FilesChecked, 100)
		rs := receipts(t, state)
		require.Len(t, rs, 1)
		v := runCmd(t, nil, "minisign", "-Vm", rs[0], "-p", filepath.Join(state, "site.pub"))
		require.Zero(t, v.code, "the receipt verifies with Debian's minisign: %s", v)
	}
}

// The garrisonctl inside the bundle trusts the bundle's key by itself, and
// no other.
func TestBuiltInTrustAnchor(t *testing.T) {
	needTools(t, "dpkg-deb")
	t.Parallel()
	b := theBundle(t)
	tree := filepath.Join(extractedTree(t, b), b.top())
	root := t.TempDir()
	out, err := exec.Command("dpkg-deb", "-x", filepath.Join(tree, "repo", "pool", "garrisonctl_"+b.info.Version+"_amd64.deb"), root).CombinedOutput()
	require.NoError(t, err, "%s", out)
	shipped := filepath.Join(root, "usr", "bin", "garrisonctl")

	r, rep, _ := verifyJSON(t, shipped, b.tar)
	require.Zero(t, r.code, "%s", r)
	require.Equal(t, "pass", rep.Result)

	other := filepath.Join(t.TempDir(), "other.pub")
	pub, _, err := manifest.GenerateKey()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(other, pub, 0o644))
	r, rep, _ = verifyJSON(t, shipped, "--pubkey", other, b.tar)
	require.Equal(t, 1, r.code, "%s", r)
	require.Equal(t, "signature", rep.Problems[0].Kind)
}

// copyTree links the extracted bundle into a fresh directory: files are
// hard links, so a case must replace a file (write + rename), never edit
// it in place.
func copyTree(t *testing.T, b built) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), b.top())
	out, err := exec.Command("cp", "-al", filepath.Join(extractedTree(t, b), b.top()), dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return dst
}

func replaceFile(t *testing.T, path string, change func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, change(data), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func flipByte(data []byte) []byte {
	out := append([]byte(nil), data...)
	out[len(out)/2] ^= 0x01
	return out
}

func TestTamperingIsDetectedAndNamed(t *testing.T) {
	t.Parallel()
	b := theBundle(t)
	bin := garrisonctl(t)
	deb := "repo/pool/garrison_" + b.info.Version + "_amd64.deb"

	// Signatures by the bundle's key over other content, and by another key.
	_, otherSec, err := manifest.GenerateKey()
	require.NoError(t, err)
	otherKey, err := manifest.ParseSecretKey(otherSec)
	require.NoError(t, err)

	type want struct{ kind, path string }
	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   []want
	}{
		{"flip one byte of a package", func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, deb), flipByte)
		}, []want{{"altered", deb}}},
		{"flip one byte of the repository index", func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, "repo", "Packages"), flipByte)
		}, []want{{"altered", "repo/Packages"}}},
		{"add a file", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "repo", "pool", "evil_1.0_all.deb"), []byte("x"), 0o644))
		}, []want{{"extra", "repo/pool/evil_1.0_all.deb"}}},
		{"remove a file", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "keys", "garrison-archive-keyring.gpg")))
		}, []want{{"missing", "keys/garrison-archive-keyring.gpg"}}},
		{"swap MANIFEST for one matching an altered file", func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, deb), flipByte)
			entries, err := manifest.Build(dir, nil)
			require.NoError(t, err)
			replaceFile(t, filepath.Join(dir, "MANIFEST"), func([]byte) []byte { return manifest.Format(entries) })
		}, []want{{"signature", ""}}},
		{"swap the signature for another bundle's", func(t *testing.T, dir string) {
			// A genuine signature by the bundle's own key, over another
			// bundle's MANIFEST.
			key := signingKey(t)
			m, err := os.ReadFile(filepath.Join(dir, "MANIFEST"))
			require.NoError(t, err)
			other := append(m, "0000000000000000000000000000000000000000000000000000000000000000  other\n"...)
			sig := manifest.Sign(key, other, manifest.Trusted{Version: b.info.Version, SourceDateEpoch: b.info.SourceDateEpoch})
			replaceFile(t, filepath.Join(dir, "MANIFEST.minisig"), func([]byte) []byte { return sig })
		}, []want{{"signature", ""}}},
		{"re-sign everything with another key", func(t *testing.T, dir string) {
			replaceFile(t, filepath.Join(dir, deb), flipByte)
			entries, err := manifest.Build(dir, nil)
			require.NoError(t, err)
			m := manifest.Format(entries)
			replaceFile(t, filepath.Join(dir, "MANIFEST"), func([]byte) []byte { return m })
			sig := manifest.Sign(otherKey, m, manifest.Trusted{Version: b.info.Version, SourceDateEpoch: b.info.SourceDateEpoch})
			replaceFile(t, filepath.Join(dir, "MANIFEST.minisig"), func([]byte) []byte { return sig })
		}, []want{{"signature", ""}}},
		{"a symlink", func(t *testing.T, dir string) {
			require.NoError(t, os.Symlink("/etc/shadow", filepath.Join(dir, "docs", "shadow.md")))
		}, []want{{"not_regular", "docs/shadow.md"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := copyTree(t, b)
			tc.tamper(t, dir)
			r, rep, state := verifyJSON(t, bin, "--pubkey", b.pub, dir)
			require.Equal(t, 1, r.code, "%s", r)
			require.Equal(t, "fail", rep.Result)
			for _, w := range tc.want {
				found := false
				for _, p := range rep.Problems {
					if p.Kind == w.kind && (w.path == "" || p.Path == w.path) {
						found = true
					}
				}
				require.True(t, found, "want a %q problem naming %q in %+v", w.kind, w.path, rep.Problems)
			}
			require.Len(t, receipts(t, state), 1, "a failed verification leaves a receipt too")
		})
	}
	t.Run("another key's signature names both key ids", func(t *testing.T) {
		t.Parallel()
		dir := copyTree(t, b)
		m, err := os.ReadFile(filepath.Join(dir, "MANIFEST"))
		require.NoError(t, err)
		sig := manifest.Sign(otherKey, m, manifest.Trusted{Version: b.info.Version, SourceDateEpoch: b.info.SourceDateEpoch})
		replaceFile(t, filepath.Join(dir, "MANIFEST.minisig"), func([]byte) []byte { return sig })
		r, _ := verify(t, bin, "--pubkey", b.pub, dir)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stdout+r.stderr, manifest.KeyID(manifest.PublicKeyOf(otherKey).ID()))
		require.Contains(t, r.stdout+r.stderr, b.info.SigningKeyID)
	})
}

// A byte flipped inside the tar itself (not an extracted copy) is caught
// in the streaming pass and named.
func TestTamperedTarIsNamed(t *testing.T) {
	t.Parallel()
	b := theBundle(t)
	bin := garrisonctl(t)
	target := b.top() + "/repo/pool/garrisonctl_" + b.info.Version + "_amd64.deb"
	bad := filepath.Join(t.TempDir(), "tampered.tar")
	in, err := os.Open(b.tar)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(bad)
	require.NoError(t, err)
	bw := bufio.NewWriter(out)
	tr, tw := tar.NewReader(in), tar.NewWriter(bw)
	seen := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.NoError(t, tw.WriteHeader(h))
		if h.Name == target {
			data, err := io.ReadAll(tr)
			require.NoError(t, err)
			_, err = tw.Write(flipByte(data))
			require.NoError(t, err)
			seen = true
			continue
		}
		_, err = io.Copy(tw, tr)
		require.NoError(t, err)
	}
	require.True(t, seen, "the tar holds %s", target)
	require.NoError(t, tw.Close())
	require.NoError(t, bw.Flush())
	require.NoError(t, out.Close())

	r, rep, _ := verifyJSON(t, bin, "--pubkey", b.pub, bad)
	require.Equal(t, 1, r.code, "%s", r)
	require.Len(t, rep.Problems, 1, "%+v", rep.Problems)
	require.Equal(t, "altered", rep.Problems[0].Kind)
	require.Equal(t, "repo/pool/garrisonctl_"+b.info.Version+"_amd64.deb", rep.Problems[0].Path)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	sum, _, err := manifest.HashFile(path)
	require.NoError(t, err)
	return hex.EncodeToString(sum[:])
}

// signingKey is the secret key the bundle was signed with: a build's
// development key, or GARRISON_SIGNING_KEY.
func signingKey(t *testing.T) minisign.PrivateKey {
	t.Helper()
	path := os.Getenv("GARRISON_SIGNING_KEY")
	if path == "" {
		path = filepath.Join(os.Getenv("GARRISON_KEYS_DIR"), "garrison-signing.key")
	}
	if _, err := os.Stat(path); err != nil {
		need(t, "the bundle's signing key is not here (%v): set GARRISON_KEYS_DIR or GARRISON_SIGNING_KEY", err)
	}
	key, err := manifest.LoadSecretKey(path)
	require.NoError(t, err)
	return key
}
