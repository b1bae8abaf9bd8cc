package sitekey

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/internal/manifest"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	info, err := os.Stat(p)
	require.NoError(t, err)
	return info.Mode().Perm()
}

func TestOpenCreatesOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", "garrisonctl")
	k, created, err := Open(dir)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, os.FileMode(0o700), mode(t, dir))
	require.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(dir, SecretName)))
	require.Equal(t, os.FileMode(0o644), mode(t, k.PublicPath()))
	// minisign's key id: up to 16 upper-case hex digits, no leading zeros.
	require.Regexp(t, `^[1-9A-F][0-9A-F]{0,15}$`, k.ID())
	require.Equal(t, manifest.KeyID(k.Public().ID()), k.ID())

	pub, err := manifest.LoadPublicKey(k.PublicPath())
	require.NoError(t, err)
	require.True(t, pub.Equal(k.Public()))

	again, created, err := Open(dir)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, k.ID(), again.ID())

	// site.pub is put back if it goes missing or is replaced.
	require.NoError(t, os.WriteFile(k.PublicPath(), []byte("junk"), 0o644))
	_, _, err = Open(dir)
	require.NoError(t, err)
	pub, err = manifest.LoadPublicKey(k.PublicPath())
	require.NoError(t, err)
	require.True(t, pub.Equal(k.Public()))

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary files left behind")
}

func TestOpenConcurrent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	const n = 16
	var (
		wg      sync.WaitGroup
		ids     [n]string
		created [n]bool
		errs    [n]error
	)
	for i := range n {
		wg.Go(func() {
			var k *Key
			k, created[i], errs[i] = Open(dir)
			if k != nil {
				ids[i] = k.ID()
			}
		})
	}
	wg.Wait()
	makers := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i], "every process uses the same key")
		if created[i] {
			makers++
		}
	}
	require.Equal(t, 1, makers)
}

func TestOpenRefusesADamagedKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, SecretName)
	require.NoError(t, os.WriteFile(secret, []byte("untrusted comment: x\nnot a key\n"), 0o600))
	_, _, err := Open(dir)
	require.ErrorContains(t, err, secret)
	data, err := os.ReadFile(secret)
	require.NoError(t, err)
	require.Equal(t, "untrusted comment: x\nnot a key\n", string(data), "never replaced")

	_, _, err = Open("")
	require.Error(t, err)
}

func TestWriteSigned(t *testing.T) {
	t.Parallel()
	k, _, err := Open(t.TempDir())
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "docs")
	p1, s1, err := k.WriteSigned(out, "doc", ".json", []byte(`{"a":1}`+"\n"), "garrison-receipt kind=test")
	require.NoError(t, err)
	p2, _, err := k.WriteSigned(out, "doc", ".json", []byte(`{"a":2}`+"\n"), "garrison-receipt kind=test")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(out, "doc.json"), p1)
	require.Equal(t, filepath.Join(out, "doc-2.json"), p2)
	data, err := os.ReadFile(p1)
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`+"\n", string(data))
	sig, err := os.ReadFile(s1)
	require.NoError(t, err)
	comment, err := manifest.VerifyData(k.Public(), data, sig)
	require.NoError(t, err)
	require.Equal(t, "garrison-receipt kind=test", comment)

	bin, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("minisign is not installed")
		}
		t.Skip("minisign is not installed; skipping the check with it")
	}
	cmdOut, err := exec.Command(bin, "-Vm", p1, "-p", k.PublicPath()).CombinedOutput()
	require.NoError(t, err, "%s", cmdOut)
}
