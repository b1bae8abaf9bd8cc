package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/bundle"
	"github.com/garrison-chat/garrison/installer/internal/bundle/bundletest"
	"github.com/garrison-chat/garrison/installer/internal/sitekey"
	"github.com/garrison-chat/garrison/internal/manifest"
)

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

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

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 2, "", "Usage:"},
		{[]string{"help"}, 0, "garrisonctl bundle verify PATH", ""},
		{[]string{"-h"}, 0, "garrisonctl bundle verify PATH", ""},
		{[]string{"help", "bundle"}, 0, "garrisonctl bundle inspect PATH", ""},
		{[]string{"help", "bundle", "verify"}, 0, "-receipt-dir DIR", ""},
		{[]string{"help", "version"}, 0, "Usage: garrisonctl version", ""},
		{[]string{"help", "nope"}, 2, "", `no help for "nope"`},
		{[]string{"bundle", "verify", "-h"}, 0, "Exit status: 0 verified", ""},
		{[]string{"bundle", "verify", "--help"}, 0, "-pubkey FILE", ""},
		{[]string{"bundle", "inspect", "-h"}, 0, "does not check the files", ""},
		{[]string{"bundle", "-h"}, 0, "garrisonctl bundle verify PATH", ""},
		{[]string{"version"}, 0, "garrisonctl 0.1.0", ""},
		{[]string{"version", "x"}, 2, "", "takes no arguments"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"bundle"}, 2, "", "missing subcommand"},
		{[]string{"bundle", "sign"}, 2, "", `unknown subcommand "sign"`},
		{[]string{"bundle", "verify"}, 2, "", "want one PATH, have 0 arguments"},
		{[]string{"bundle", "verify", "a", "b"}, 2, "", "want one PATH, have 2 arguments"},
		{[]string{"bundle", "verify", "--bogus", "a"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"bundle", "inspect"}, 2, "", "want one PATH"},
		// A development build has no built-in key: verify says what to do.
		{[]string{"bundle", "verify", "x.tar"}, 2, "", "pass --pubkey FILE"},
		{[]string{"bundle", "verify", "--pubkey", "/nonexistent.pub", "x.tar"}, 2, "", "/nonexistent.pub"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, tc.args...)
			require.Equal(t, tc.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Contains(t, r.stdout, tc.stdout)
			require.Contains(t, r.stderr, tc.stderr)
			if tc.code == 0 {
				require.Empty(t, r.stderr)
			}
		})
	}
}

var receiptLine = regexp.MustCompile(`(?m)^Receipt:   (\S+)$`)

func TestVerifyEndToEnd(t *testing.T) {
	t.Parallel()
	bin := minisignBin(t)
	b := bundletest.Write(t, "2.0.1", nil, nil)
	tarPath := b.Tar(t)
	state := filepath.Join(t.TempDir(), "state")

	// Pass, tar, flags after the path. The site key is made on first use.
	r := runCLI(t, nil, "bundle", "verify", tarPath, "--pubkey", b.Key.PubPath, "--state-dir", state)
	require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "Version:   2.0.1 (source_date_epoch 1700000000, 2023-11-14T22:13:20Z)")
	require.Contains(t, r.stdout, "Signed by: key "+manifest.KeyID(b.Key.Public.ID())+", signature valid")
	require.Contains(t, r.stdout, "Files:     11 checked")
	require.Contains(t, r.stdout, "Result:    PASS")
	require.Contains(t, r.stderr, "created the site key")
	require.NotContains(t, r.stderr, "verify:", "no progress lines when stderr is not a terminal")
	m := receiptLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	receiptPath := m[1]
	require.Equal(t, filepath.Join(state, "receipts"), filepath.Dir(receiptPath))
	require.Regexp(t, `^verify-\d{8}T\d{6}Z-2\.0\.1\.json$`, filepath.Base(receiptPath))
	out, err := exec.Command(bin, "-Vm", receiptPath, "-p", filepath.Join(state, sitekey.PublicName)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "Trusted comment: garrison-receipt kind=bundle-verification")

	// The secret never shows.
	secret, err := os.ReadFile(filepath.Join(state, sitekey.SecretName))
	require.NoError(t, err)
	secretLine := strings.Split(string(secret), "\n")[1]
	require.NotContains(t, r.stdout+r.stderr, secretLine)

	// Second run, the directory form, state dir from the environment, JSON, progress forced.
	env := map[string]string{stateDirEnv: state}
	r = runCLI(t, env, "bundle", "verify", "--json", "--progress", "--pubkey", b.Key.PubPath, b.Parent)
	require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.NotContains(t, r.stderr, "created the site key")
	require.Contains(t, r.stderr, "verify: 100% (")
	var doc struct {
		bundle.Receipt
		ReceiptPath          string `json:"receipt_path"`
		ReceiptSignaturePath string `json:"receipt_signature_path"`
		SitePublicKey        string `json:"site_public_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
	require.Equal(t, bundle.ResultPass, doc.Result)
	require.Equal(t, bundle.FormatDirectory, doc.Bundle.Format)
	require.Equal(t, "2.0.1", doc.Version)
	require.Len(t, doc.Files, 11)
	require.Equal(t, doc.ReceiptPath+".minisig", doc.ReceiptSignaturePath)
	data, err := os.ReadFile(doc.ReceiptPath)
	require.NoError(t, err)
	var onDisk bundle.Receipt
	require.NoError(t, json.Unmarshal(data, &onDisk))
	require.Equal(t, doc.Receipt, onDisk, "stdout shows what was signed")

	// Fail: exit 1, every problem named, and a receipt all the same, in --receipt-dir.
	b.WriteFile(t, "repo/pool/nginx_1.22.1-9_amd64.deb", "tampered")
	b.WriteFile(t, "repo/pool/extra.deb", "extra")
	require.NoError(t, os.Remove(filepath.Join(b.Dir, "docs", "upgrade.md")))
	receipts := t.TempDir()
	r = runCLI(t, env, "bundle", "verify", "--pubkey", b.Key.PubPath, "--receipt-dir", receipts, b.Tar(t))
	require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "Result:    FAIL: 3 problems\n")
	require.Regexp(t, `altered\s+repo/pool/nginx_1\.22\.1-9_amd64\.deb: sha256 expected [0-9a-f]{12}…, got [0-9a-f]{12}…`, r.stdout)
	require.Regexp(t, `extra\s+repo/pool/extra\.deb: not listed in MANIFEST`, r.stdout)
	require.Regexp(t, `missing\s+docs/upgrade\.md: listed in MANIFEST, not in the bundle`, r.stdout)
	m = receiptLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.Equal(t, receipts, filepath.Dir(m[1]))
	out, err = exec.Command(bin, "-Vm", m[1], "-p", filepath.Join(state, sitekey.PublicName)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	data, err = os.ReadFile(m[1])
	require.NoError(t, err)
	require.Contains(t, string(data), `"result": "fail"`)

	// Another key: exit 1, both key ids named.
	other := bundletest.NewKey(t)
	r = runCLI(t, env, "bundle", "verify", "--pubkey", other.PubPath, tarPath)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "signature is from key "+manifest.KeyID(b.Key.Public.ID())+", the trusted key is "+manifest.KeyID(other.Public.ID()))
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, "1.0.0", nil, nil)
	state := t.TempDir()

	// The bundle is not there: exit 1, no receipt.
	r := runCLI(t, nil, "bundle", "verify", "--pubkey", b.Key.PubPath, "--state-dir", state, filepath.Join(t.TempDir(), "nope.tar"))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "nope.tar: no such file or directory")
	_, err := os.Stat(filepath.Join(state, "receipts"))
	require.ErrorIs(t, err, os.ErrNotExist)

	// The state directory cannot be made: exit 1 before reading the bundle, with a hint.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	r = runCLI(t, nil, "bundle", "verify", "--pubkey", b.Key.PubPath, "--state-dir", filepath.Join(file, "state"), b.Dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "--state-dir or $GARRISONCTL_STATE_DIR")

	// The receipt cannot be written: the result is shown, then exit 1.
	r = runCLI(t, nil, "bundle", "verify", "--pubkey", b.Key.PubPath, "--state-dir", state, "--receipt-dir", filepath.Join(file, "r"), b.Dir)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "Result:    PASS")
	require.Contains(t, r.stderr, "the receipt could not be written")

	// An encrypted --pubkey? No: a secret key given as --pubkey is refused, exit 2.
	r = runCLI(t, nil, "bundle", "verify", "--pubkey", filepath.Join(state, sitekey.SecretName), "--state-dir", state, b.Dir)
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "not a minisign public key")
}

func TestInspectCLI(t *testing.T) {
	t.Parallel()
	b := bundletest.Write(t, "3.1.4", nil, nil)
	tarPath := b.Tar(t)

	r := runCLI(t, nil, "bundle", "inspect", tarPath)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Version:    3.1.4 (source_date_epoch 1700000000")
	require.Contains(t, r.stdout, "(claimed; not checked: no trust anchor, pass --pubkey)")
	require.Contains(t, r.stdout, "Packages:   3 in repo/Packages")

	r = runCLI(t, nil, "bundle", "inspect", "--json", b.Dir, "--pubkey", b.Key.PubPath)
	require.Equal(t, 0, r.code, r.stderr)
	var in bundle.Inspection
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &in))
	require.Equal(t, bundle.SignatureValid, in.Signature)
	require.Equal(t, "3.1.4", in.Version)
	require.Len(t, in.Packages, 3)
	require.Len(t, in.SBOMs, 1)

	r = runCLI(t, nil, "bundle", "inspect", filepath.Join(t.TempDir(), "nope"))
	require.Equal(t, 1, r.code)
}

// TestBuiltInTrustAnchor links a key in with -ldflags -X, as release builds
// do, and verifies without --pubkey.
func TestBuiltInTrustAnchor(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds garrisonctl; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build garrisonctl with")
	}
	b := bundletest.Write(t, "1.0.0", nil, nil)
	exe := filepath.Join(t.TempDir(), "garrisonctl")
	build := exec.Command(goBin, "build", "-o", exe, "-ldflags",
		"-X github.com/garrison-chat/garrison/installer/internal/bundle.trustAnchor="+b.Key.Public.String(), ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	state := t.TempDir()
	cmd := exec.Command(exe, "bundle", "verify", b.Tar(t))
	cmd.Env = append(os.Environ(), stateDirEnv+"="+state)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "(trust anchor "+manifest.KeyID(b.Key.Public.ID())+", built-in)")

	// Another key's bundle fails against the built-in anchor: exit status 1.
	other := bundletest.Write(t, "1.0.0", nil, nil)
	cmd = exec.Command(exe, "bundle", "verify", other.Dir)
	cmd.Env = append(os.Environ(), stateDirEnv+"="+state)
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Equal(t, 1, exit.ExitCode())

	// Inspect checks the signature with it too.
	out, err = exec.Command(exe, "bundle", "inspect", b.Dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "MANIFEST signature valid with trust anchor "+manifest.KeyID(b.Key.Public.ID())+" (built-in)")
}
