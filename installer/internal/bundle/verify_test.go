package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/bundle/bundletest"
	"github.com/garrison-chat/garrison/internal/manifest"
)

const version = "1.4.0"

func verifyWith(t *testing.T, path string, key *bundletest.Key) *Receipt {
	t.Helper()
	r, err := Verify(context.Background(), path, VerifyOptions{
		PublicKey: key.Public,
		Anchor:    Anchor{KeyID: manifest.KeyID(key.Public.ID()), Source: "--pubkey " + key.PubPath},
		Now:       func() time.Time { return time.Date(2026, 5, 4, 3, 2, 1, 0, time.FixedZone("x", 3600)) },
		Host:      "testhost",
	})
	require.NoError(t, err)
	return r
}

// want is an expected problem: kind, path, and a piece of its detail.
type want struct{ kind, path, detail string }

func requireProblems(t *testing.T, r *Receipt, wants []want) {
	t.Helper()
	var got []string
	for _, p := range r.Problems {
		got = append(got, p.Kind+" "+p.Path)
	}
	var exp []string
	for _, w := range wants {
		exp = append(exp, w.kind+" "+w.path)
	}
	require.ElementsMatch(t, exp, got, "problems: %v", r.Problems)
	for _, w := range wants {
		i := slices.IndexFunc(r.Problems, func(p Problem) bool { return p.Kind == w.kind && p.Path == w.path })
		require.Contains(t, r.Problems[i].Detail, w.detail, "%+v", r.Problems[i])
	}
	if len(wants) == 0 {
		require.Equal(t, ResultPass, r.Result)
	} else {
		require.Equal(t, ResultFail, r.Result)
	}
}

func TestVerifyGood(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, version, nil, nil)
	tarPath := b.Tar(t)
	for label, path := range map[string]string{"tar": tarPath, "bundle directory": b.Dir, "directory holding it": b.Parent} {
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			r := verifyWith(t, path, b.Key)
			requireProblems(t, r, nil)
			require.Equal(t, ReceiptKind, r.Kind)
			require.Equal(t, "2026-05-04T02:02:01Z", r.VerifiedAt)
			require.Equal(t, "testhost", r.Host)
			require.Equal(t, version, r.Version)
			require.Equal(t, int64(bundletest.Epoch), *r.SourceDateEpoch)
			require.True(t, r.SignatureValid)
			require.Equal(t, manifest.KeyID(b.Key.Public.ID()), r.SigningKeyID)
			require.Equal(t, r.SigningKeyID, r.TrustAnchor.KeyID)
			files := bundletest.Files(version)
			require.Equal(t, len(files), r.FilesChecked)
			require.Equal(t, len(files), r.ManifestEntries)
			require.Len(t, r.Files, len(files))
			var total int64
			for _, f := range r.Files {
				sum := sha256.Sum256([]byte(files[f.Path]))
				require.Equal(t, hex.EncodeToString(sum[:]), f.SHA256, f.Path)
				total += int64(len(files[f.Path]))
			}
			require.Equal(t, total, r.BytesChecked)
			m := sha256.Sum256(b.ReadFile(t, manifest.FileName))
			require.Equal(t, hex.EncodeToString(m[:]), r.ManifestSHA256)
			abs, _ := filepath.Abs(path)
			require.Equal(t, abs, r.Bundle.Path)
			if path == tarPath {
				data, err := os.ReadFile(tarPath)
				require.NoError(t, err)
				whole := sha256.Sum256(data)
				require.Equal(t, FormatTar, r.Bundle.Format)
				require.Equal(t, hex.EncodeToString(whole[:]), r.Bundle.SHA256)
				require.Equal(t, int64(len(data)), r.Bundle.Size)
				require.Equal(t, "garrison-"+version, r.Bundle.Dir)
			} else {
				require.Equal(t, FormatDirectory, r.Bundle.Format)
				require.Equal(t, b.Dir, r.Bundle.Dir)
				require.Empty(t, r.Bundle.SHA256)
			}
		})
	}
}

func TestVerifyProblems(t *testing.T) {
	t.Parallel()
	deb := "repo/pool/garrison_" + version + "_amd64.deb"
	tests := []struct {
		name   string
		mutate func(t *testing.T, b *bundletest.Bundle)
		want   []want
		// dirWant, if set, replaces want for the directory form.
		dirWant []want
	}{
		{
			name: "one byte flipped",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				data := b.ReadFile(t, deb)
				data[100] ^= 1
				b.WriteFile(t, deb, string(data))
			},
			want: []want{{KindAltered, deb, "sha256 expected "}},
		},
		{
			name:   "file added",
			mutate: func(t *testing.T, b *bundletest.Bundle) { b.WriteFile(t, "repo/pool/evil_1_all.deb", "evil") },
			want:   []want{{KindExtra, "repo/pool/evil_1_all.deb", "not listed in MANIFEST"}},
		},
		{
			name: "files removed",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				require.NoError(t, os.Remove(filepath.Join(b.Dir, "docs", "install.md")))
				require.NoError(t, os.RemoveAll(filepath.Join(b.Dir, "keys")))
			},
			want: []want{
				{KindMissing, "docs/install.md", "listed in MANIFEST, not in the bundle"},
				{KindMissing, "keys/garrison-archive-keyring.gpg", "not in the bundle"},
			},
		},
		{
			name: "everything at once, all named",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				b.WriteFile(t, "VERSION", "9.9.9\n")
				b.WriteFile(t, "docs/extra.md", "x")
				require.NoError(t, os.Remove(filepath.Join(b.Dir, "README.txt")))
			},
			want: []want{
				{KindAltered, "VERSION", "sha256 expected"},
				{KindExtra, "docs/extra.md", ""},
				{KindMissing, "README.txt", ""},
			},
		},
		{
			name: "MANIFEST of another bundle",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				other := bundletest.Write(t, version, map[string]string{"VERSION": "x\n"}, b.Key)
				b.WriteFile(t, manifest.FileName, string(other.ReadFile(t, manifest.FileName)))
			},
			want: []want{
				{KindSignature, manifest.SignatureName, "signed data was altered"},
				{KindSkipped, "", "MANIFEST cannot be trusted"},
			},
		},
		{
			name: "signature of another bundle, same key",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				other := bundletest.Write(t, version, map[string]string{"VERSION": "x\n"}, b.Key)
				b.WriteFile(t, manifest.SignatureName, string(other.ReadFile(t, manifest.SignatureName)))
			},
			want: []want{
				{KindSignature, manifest.SignatureName, "signature is invalid"},
				{KindSkipped, "", ""},
			},
		},
		{
			name: "MANIFEST edited to match an altered file",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				b.WriteFile(t, "docs/install.md", "# Install\ncurl evil | sh\n")
				entries, err := manifest.Build(b.Dir, nil)
				require.NoError(t, err)
				b.WriteFile(t, manifest.FileName, string(manifest.Format(entries)))
			},
			want: []want{
				{KindSignature, manifest.SignatureName, "signed data was altered"},
				{KindSkipped, "", ""},
			},
		},
		{
			name: "signed with another key",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				b.Key = bundletest.NewKey(t) // re-signed: the MANIFEST is fine, the key is not the anchor
				b.Sign(t)
			},
			want: []want{
				{KindSignature, manifest.SignatureName, "signed by a different key: signature is from key "},
				{KindSkipped, "", ""},
			},
		},
		{
			name: "trusted comment altered",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				sig := strings.Replace(string(b.ReadFile(t, manifest.SignatureName)), "version="+version, "version=9.9.9", 1)
				b.WriteFile(t, manifest.SignatureName, sig)
			},
			want: []want{
				{KindSignature, manifest.SignatureName, "trusted comment was altered"},
				{KindSkipped, "", ""},
			},
		},
		{
			name: "signature missing",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				require.NoError(t, os.Remove(filepath.Join(b.Dir, manifest.SignatureName)))
			},
			want: []want{
				{KindSignature, manifest.SignatureName, "missing"},
				{KindSkipped, "", ""},
			},
		},
		{
			name:   "signature garbage",
			mutate: func(t *testing.T, b *bundletest.Bundle) { b.WriteFile(t, manifest.SignatureName, "hello\n") },
			want: []want{
				{KindSignature, manifest.SignatureName, "signature file is malformed"},
				{KindSkipped, "", ""},
			},
		},
		{
			name: "symlink in the tree",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				require.NoError(t, os.Symlink("/etc/shadow", filepath.Join(b.Dir, "docs", "shadow.md")))
			},
			want: []want{{KindNotRegular, "docs/shadow.md", "symlink to /etc/shadow"}},
		},
		{
			name: "a listed file replaced by a symlink",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				p := filepath.Join(b.Dir, "docs", "install.md")
				require.NoError(t, os.Remove(p))
				require.NoError(t, os.Symlink("upgrade.md", p))
			},
			want: []want{{KindNotRegular, "docs/install.md", "symlink"}},
		},
		{
			name: "a listed file replaced by a directory",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				p := filepath.Join(b.Dir, "docs", "install.md")
				require.NoError(t, os.Remove(p))
				require.NoError(t, os.Mkdir(p, 0o755))
			},
			want: []want{{KindMissing, "docs/install.md", "but is a directory"}},
		},
		{
			name: "directory named for another version",
			mutate: func(t *testing.T, b *bundletest.Bundle) {
				newDir := filepath.Join(b.Parent, "garrison-9.9.9")
				require.NoError(t, os.Rename(b.Dir, newDir))
				b.Dir = newDir
			},
			want: []want{{KindLayout, "garrison-9.9.9/", "must be garrison-" + version + "/"}},
		},
	}
	for _, tc := range tests {
		for _, format := range []string{FormatTar, FormatDirectory} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				t.Parallel()
				b := bundletest.Write(t, version, nil, nil)
				anchor := b.Key
				tc.mutate(t, b)
				path := b.Dir
				if format == FormatTar {
					path = b.Tar(t)
				}
				r := verifyWith(t, path, anchor)
				w := tc.want
				if format == FormatDirectory && tc.dirWant != nil {
					w = tc.dirWant
				}
				requireProblems(t, r, w)
				if r.SignatureValid {
					require.Equal(t, version, r.Version)
				} else {
					require.Empty(t, r.Version)
				}
			})
		}
	}
}

func TestVerifyKeyMismatchNamesBothKeys(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, version, nil, nil)
	anchor := bundletest.NewKey(t)
	r := verifyWith(t, b.Dir, anchor)
	require.False(t, r.SignatureValid)
	require.Equal(t, manifest.KeyID(b.Key.Public.ID()), r.SigningKeyID)
	require.Contains(t, r.Problems[0].Detail, "signature is from key "+manifest.KeyID(b.Key.Public.ID())+", the trusted key is "+manifest.KeyID(anchor.Public.ID()))
	// The directory form does not read the files once the signature fails.
	require.Zero(t, r.FilesChecked)
	require.Empty(t, r.Files)
}

func TestVerifyTarLayout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(t *testing.T, b *bundletest.Bundle) string
		want  []want
	}{
		{
			name: "two top-level directories",
			build: func(t *testing.T, b *bundletest.Bundle) string {
				require.NoError(t, os.MkdirAll(filepath.Join(b.Parent, "other"), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(b.Parent, "other", "x"), []byte("x"), 0o644))
				out := filepath.Join(t.TempDir(), "b.tar")
				bundletest.WriteTar(t, out, b.Parent, "garrison-"+version, "other")
				return out
			},
			want: []want{{KindLayout, "other/", "a second top-level directory (1 entries)"}},
		},
		{
			name: "a file at the top",
			build: func(t *testing.T, b *bundletest.Bundle) string {
				out := b.Tar(t)
				bundletest.AppendTar(t, out, &tar.Header{Name: "install.sh", Typeflag: tar.TypeReg, Size: 5, Mode: 0o755})
				return out
			},
			want: []want{{KindLayout, "install.sh", "outside the bundle directory"}},
		},
		{
			name: "unsafe names",
			build: func(t *testing.T, b *bundletest.Bundle) string {
				out := b.Tar(t)
				bundletest.AppendTar(t, out,
					&tar.Header{Name: "garrison-" + version + "/../../etc/cron.d/x", Typeflag: tar.TypeReg, Size: 1},
					&tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg, Size: 1})
				return out
			},
			want: []want{
				{KindLayout, "garrison-" + version + "/../../etc/cron.d/x", "unsafe entry name"},
				{KindLayout, "/etc/passwd", "absolute"},
			},
		},
		{
			name: "a file twice",
			build: func(t *testing.T, b *bundletest.Bundle) string {
				out := b.Tar(t)
				bundletest.AppendTar(t, out, &tar.Header{Name: "garrison-" + version + "/VERSION", Typeflag: tar.TypeReg, Size: 4})
				return out
			},
			want: []want{{KindLayout, "VERSION", "appears more than once"}},
		},
		{
			name: "hard link, device, fifo",
			build: func(t *testing.T, b *bundletest.Bundle) string {
				out := b.Tar(t)
				top := "garrison-" + version + "/"
				bundletest.AppendTar(t, out,
					&tar.Header{Name: top + "docs/hard", Typeflag: tar.TypeLink, Linkname: top + "VERSION"},
					&tar.Header{Name: top + "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
					&tar.Header{Name: top + "fifo", Typeflag: tar.TypeFifo})
				return out
			},
			want: []want{
				{KindNotRegular, "docs/hard", "hard link to garrison-" + version + "/VERSION"},
				{KindNotRegular, "dev", "device"},
				{KindNotRegular, "fifo", "named pipe"},
			},
		},
		{
			name: "sparse file claiming a terabyte",
			build: func(t *testing.T, b *bundletest.Bundle) string {
				out := b.Tar(t)
				data, err := os.ReadFile(out)
				require.NoError(t, err)
				data = append(data[:len(data)-1024], sparseMember(t, "garrison-"+version+"/docs/huge", 1<<40)...)
				require.NoError(t, os.WriteFile(out, data, 0o644))
				return out
			},
			want: []want{{KindNotRegular, "docs/huge", "sparse file"}},
		},
		{
			name: "./ prefixes are accepted",
			build: func(t *testing.T, b *bundletest.Bundle) string {
				out := filepath.Join(t.TempDir(), "b.tar")
				bundletest.WriteTar(t, out, b.Parent, "garrison-"+version)
				data, err := os.ReadFile(out)
				require.NoError(t, err)
				var buf strings.Builder
				tr := tar.NewReader(strings.NewReader(string(data)))
				tw := tar.NewWriter(&buf)
				for {
					hdr, err := tr.Next()
					if err != nil {
						break
					}
					hdr.Name = "./" + hdr.Name
					require.NoError(t, tw.WriteHeader(hdr))
					_, err = tw.Write(mustRead(t, tr))
					require.NoError(t, err)
				}
				require.NoError(t, tw.Close())
				require.NoError(t, os.WriteFile(out, []byte(buf.String()), 0o644))
				return out
			},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := bundletest.Write(t, version, nil, nil)
			r := verifyWith(t, tc.build(t, b), b.Key)
			requireProblems(t, r, tc.want)
		})
	}
}

// sparseMember returns a tar (member and end marker) holding a PAX GNU
// sparse 0.1 file of the given size that is all hole: archive/tar's writer
// cannot make one, so the extended header is patched in by hand.
func sparseMember(t *testing.T, name string, size int64) []byte {
	t.Helper()
	record := func(k, v string) string {
		n := len(k) + len(v) + 3 // " ", "=", "\n"
		l := n + len(strconv.Itoa(n))
		if len(strconv.Itoa(l)) != len(strconv.Itoa(n)) {
			l++
		}
		return strconv.Itoa(l) + " " + k + "=" + v + "\n"
	}
	records := record("GNU.sparse.major", "0") + record("GNU.sparse.minor", "1") + record("GNU.sparse.numblocks", "1") +
		record("GNU.sparse.map", "0,0") + record("GNU.sparse.size", strconv.FormatInt(size, 10))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "PaxHeaders/huge", Typeflag: tar.TypeReg, Size: int64(len(records)), Format: tar.FormatUSTAR}))
	_, err := tw.Write([]byte(records))
	require.NoError(t, err)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}))
	require.NoError(t, tw.Close())
	data := buf.Bytes()
	data[156] = tar.TypeXHeader
	copy(data[148:156], "        ")
	sum := 0
	for _, c := range data[:512] {
		sum += int(c)
	}
	copy(data[148:156], fmt.Sprintf("%06o\x00 ", sum))

	// Make sure the stream is what it claims: a terabyte of zeros to archive/tar.
	tr := tar.NewReader(bytes.NewReader(data))
	hdr, err := tr.Next()
	require.NoError(t, err)
	require.Equal(t, size, hdr.Size)
	return data
}

func mustRead(t *testing.T, tr *tar.Reader) []byte {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := tr.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return []byte(b.String())
		}
	}
}

func TestVerifyTruncatedTar(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, version, nil, nil)
	full := b.Tar(t)
	data, err := os.ReadFile(full)
	require.NoError(t, err)
	// len-1024 drops just the end-of-archive marker: the stream stops
	// cleanly between two members, which the tar reader alone calls EOF.
	for _, cut := range []int{len(data) / 2, len(data) - 1024, 700, 100} {
		p := filepath.Join(t.TempDir(), "cut.tar")
		require.NoError(t, os.WriteFile(p, data[:cut], 0o644))
		r := verifyWith(t, p, b.Key)
		require.Equal(t, ResultFail, r.Result)
		i := slices.IndexFunc(r.Problems, func(p Problem) bool { return p.Kind == KindCorrupt })
		require.GreaterOrEqual(t, i, 0, "%v", r.Problems)
		require.Contains(t, r.Problems[i].Detail, "tar is truncated")
		whole := sha256.Sum256(data[:cut])
		require.Equal(t, hex.EncodeToString(whole[:]), r.Bundle.SHA256)
	}

	// Cut inside a file: that file is named, and so is every file after it.
	at := strings.Index(string(data), strings.Repeat("deb", 10)) + 100
	p := filepath.Join(t.TempDir(), "cut.tar")
	require.NoError(t, os.WriteFile(p, data[:at], 0o644))
	r := verifyWith(t, p, b.Key)
	deb := "repo/pool/garrison_" + version + "_amd64.deb"
	requireProblems(t, r, []want{
		{KindCorrupt, "", "tar is truncated after"},
		{KindCorrupt, deb, "the tar breaks off inside this file"},
		{KindMissing, "repo/pool/nginx_1.22.1-9_amd64.deb", "not in the bundle"},
		{KindMissing, "sbom/garrison-" + version + ".cdx.json", "not in the bundle"},
	})

	// Not a tar at all.
	p = filepath.Join(t.TempDir(), "junk.tar")
	require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("junk", 300)), 0o644))
	r = verifyWith(t, p, b.Key)
	require.Equal(t, ResultFail, r.Result)
	require.Equal(t, KindCorrupt, r.Problems[0].Kind)
	require.Contains(t, r.Problems[0].Detail, "not a tar file?")
}

func TestVerifyNotABundle(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, version, nil, nil)
	dir := t.TempDir()
	gz := filepath.Join(dir, "b.tar.gz")
	require.NoError(t, os.WriteFile(gz, []byte{0x1f, 0x8b, 8, 0, 0, 0}, 0o644))
	iso := filepath.Join(dir, "b.iso")
	isoData := make([]byte, 0x9000)
	copy(isoData[0x8001:], "CD001")
	require.NoError(t, os.WriteFile(iso, isoData, 0o644))
	two := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(two, "garrison-1"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(two, "garrison-2"), 0o755))

	for path, msg := range map[string]string{
		gz:                            "gzip-compressed",
		iso:                           "an ISO image; mount it",
		filepath.Join(dir, "missing"): "no such file",
		t.TempDir():                   "no MANIFEST here and no garrison-<version>/ directory",
		two:                           "several bundle directories (garrison-1, garrison-2)",
	} {
		_, err := Verify(context.Background(), path, VerifyOptions{PublicKey: b.Key.Public})
		require.ErrorContains(t, err, msg)
	}
}

func TestVerifyProgress(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, version, nil, nil)
	for _, path := range []string{b.Tar(t), b.Dir} {
		var calls int
		var last, lastTotal int64
		r, err := Verify(context.Background(), path, VerifyOptions{PublicKey: b.Key.Public, Progress: func(done, total int64) {
			calls++
			require.GreaterOrEqual(t, done, last)
			last, lastTotal = done, total
		}})
		require.NoError(t, err)
		require.Equal(t, ResultPass, r.Result, "%v", r.Problems)
		require.Positive(t, calls)
		require.Equal(t, lastTotal, last, "progress ends at 100%%")
	}
}

func TestVerifyCancelled(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, version, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, path := range []string{b.Tar(t), b.Dir} {
		_, err := Verify(ctx, path, VerifyOptions{PublicKey: b.Key.Public})
		require.ErrorIs(t, err, context.Canceled)
	}
}

func TestLoadAnchor(t *testing.T) {
	t.Parallel()
	k := bundletest.NewKey(t)
	pub, a, err := LoadAnchor(k.PubPath)
	require.NoError(t, err)
	require.True(t, pub.Equal(k.Public))
	require.Equal(t, Anchor{KeyID: manifest.KeyID(k.Public.ID()), Source: "--pubkey " + k.PubPath}, a)

	_, _, err = LoadAnchor(filepath.Join(t.TempDir(), "nope.pub"))
	require.ErrorContains(t, err, "nope.pub")

	if DefaultTrustAnchor() == "" { // a dev build, as tests are
		_, _, err = LoadAnchor("")
		require.ErrorIs(t, err, ErrNoTrustAnchor)
		require.ErrorContains(t, err, "pass --pubkey")
	}
}

func TestProgressPrinter(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	now := time.Unix(0, 0)
	p := NewProgress(&out, "verify", func() time.Time { return now })
	const total = 1000
	for done := int64(0); done <= total; done += 10 { // a slow medium: 10 bytes a second
		now = now.Add(time.Second)
		p(done, total)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 21) // 0%, every 5%, 100%
	require.Equal(t, "verify: 100% (1000 B of 1000 B)", lines[len(lines)-1])

	out.Reset()
	p = NewProgress(&out, "verify", func() time.Time { return now }) // a fast disk: no time passes
	for done := int64(0); done <= total; done++ {
		p(done, total)
	}
	require.Equal(t, "verify:   0% (0 B of 1000 B)\nverify: 100% (1000 B of 1000 B)\n", out.String())
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, s := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 400 << 20: "400.0 MiB", 5 << 30: "5.0 GiB"} {
		require.Equal(t, s, HumanBytes(n))
	}
}
