package bundle

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/bundle/bundletest"
	"github.com/garrison-chat/garrison/installer/internal/sitekey"
	"github.com/garrison-chat/garrison/internal/manifest"
)

// minisignBin returns Debian's minisign, skipping the test when it is
// missing (failing under CI=true).
func minisignBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("minisign is not installed (apt-get install minisign): %v", err)
		}
		t.Skip("minisign is not installed (apt-get install minisign); skipping")
	}
	return p
}

func TestReceiptSignedAndVerifiable(t *testing.T) {
	t.Parallel()
	bin := minisignBin(t)
	state := t.TempDir()
	key, created, err := sitekey.Open(state)
	require.NoError(t, err)
	require.True(t, created)
	receipts := filepath.Join(state, "receipts")

	good := bundletest.Write(t, version, nil, nil)
	bad := bundletest.Write(t, version, nil, nil)
	bad.WriteFile(t, "docs/install.md", "changed")

	var paths []string
	for _, tc := range []struct {
		b      *bundletest.Bundle
		result string
	}{{good, ResultPass}, {bad, ResultFail}, {good, ResultPass}} {
		r := verifyWith(t, tc.b.Dir, tc.b.Key)
		require.Equal(t, tc.result, r.Result)
		path, sigPath, err := WriteReceipt(key, receipts, r)
		require.NoError(t, err)
		require.Equal(t, path+".minisig", sigPath)
		paths = append(paths, path)

		data, err := os.ReadFile(path)
		require.NoError(t, err)
		sig, err := os.ReadFile(sigPath)
		require.NoError(t, err)

		// Our verifier, with the site key.
		comment, err := manifest.VerifyData(key.Public(), data, sig)
		require.NoError(t, err)
		require.Equal(t, ReceiptComment, comment)

		// Debian's minisign, with site.pub, as an auditor would.
		out, err := exec.Command(bin, "-Vm", path, "-p", key.PublicPath()).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "Trusted comment: "+ReceiptComment)

		var back Receipt
		require.NoError(t, json.Unmarshal(data, &back))
		require.Equal(t, ReceiptKind, back.Kind)
		require.Equal(t, tc.result, back.Result)
		require.Equal(t, key.ID(), back.SiteKeyID)
		require.Equal(t, "2026-05-04T02:02:01Z", back.VerifiedAt)
		require.NotEmpty(t, back.Files)
		if tc.result == ResultFail {
			require.Equal(t, []Problem{{Kind: KindAltered, Path: "docs/install.md", Expected: back.Problems[0].Expected,
				Got: back.Problems[0].Got, Detail: back.Problems[0].Detail}}, back.Problems)
			require.Len(t, back.Problems[0].Expected, 64)
		} else {
			require.Empty(t, back.Problems)
			require.NotNil(t, back.Problems, "an empty list, not null, for auditors' tools")
		}

		// A changed receipt no longer verifies.
		tampered := strings.Replace(string(data), `"result": "`+tc.result, `"result": "pass`+"x", 1)
		_, err = manifest.VerifyData(key.Public(), []byte(tampered), sig)
		require.ErrorIs(t, err, manifest.ErrBadSignature)
	}
	// Same second, same version: the third receipt did not replace the first.
	require.Equal(t, filepath.Join(receipts, "verify-20260504T020201Z-"+version+".json"), paths[0])
	require.Equal(t, filepath.Join(receipts, "verify-20260504T020201Z-"+version+"-2.json"), paths[1])
	require.Equal(t, filepath.Join(receipts, "verify-20260504T020201Z-"+version+"-3.json"), paths[2])

	// No version vouched for: "unknown" in the name.
	r := verifyWith(t, good.Dir, bundletest.NewKey(t))
	path, _, err := WriteReceipt(key, receipts, r)
	require.NoError(t, err)
	require.Equal(t, "verify-20260504T020201Z-unknown.json", filepath.Base(path))

	// Nothing else was left in the directory (no temporary files).
	names, err := os.ReadDir(receipts)
	require.NoError(t, err)
	require.Len(t, names, 8)
}
