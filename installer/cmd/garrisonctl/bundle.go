package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/garrison-chat/garrison/installer/internal/bundle"
	"github.com/garrison-chat/garrison/installer/internal/sitekey"
	"github.com/garrison-chat/garrison/internal/buildinfo"
)

// stateDirEnv overrides the state directory, as --state-dir does.
const stateDirEnv = "GARRISONCTL_STATE_DIR"

const verifyUsage = `Usage: garrisonctl bundle verify PATH [flags]

Checks the Garrison bundle at PATH: the .tar file (read once, never extracted),
or a directory: the extracted garrison-<version>/ directory, or a mounted ISO
that holds it.

First the minisign signature of MANIFEST, against the trust anchor (--pubkey,
or the key built into this garrisonctl); then every file against MANIFEST.
Every altered, missing and extra file, symlink or other non-regular entry is
named, and so is a tar with anything outside its garrison-<version>/ directory.

Every run, pass or fail, writes a receipt: a JSON record of what was checked
and found, signed with this machine's site key (made on first use), as
<state dir>/receipts/verify-<UTC time>-<version>.json and .json.minisig.
An auditor checks it with:  minisign -Vm RECEIPT -p <state dir>/site.pub

Exit status: 0 verified; 1 verification failed or could not complete;
2 usage error (including no trust anchor).
`

const inspectUsage = `Usage: garrisonctl bundle inspect PATH [flags]

Describes the Garrison bundle at PATH (a .tar file or a directory, as for
verify): its version, the key that signed it and whether that signature
verifies with the trust anchor (if there is one), its contents, the packages of
its apt repository, and a summary of its SBOM. It does not check the files:
use "garrisonctl bundle verify" for that.
`

func (e *env) bundleVerify(args []string) int {
	fs := flag.NewFlagSet("bundle verify", flag.ContinueOnError)
	pubkey := fs.String("pubkey", "", "minisign public key `FILE` to trust (default: the key built into garrisonctl)")
	stateDir := fs.String("state-dir", "", "garrisonctl's state `DIR`, which holds the site key (default $"+stateDirEnv+", else "+sitekey.DefaultStateDir+")")
	receiptDir := fs.String("receipt-dir", "", "write the receipt to `DIR` (default <state dir>/receipts)")
	asJSON := fs.Bool("json", false, "print the receipt as JSON instead of a summary")
	progress := fs.Bool("progress", false, "report progress on stderr even when it is not a terminal")
	pos, code, ok := e.parseFlags(fs, args, verifyUsage)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError("bundle verify", fmt.Sprintf("want one PATH, have %d arguments", len(pos)), verifyUsage)
	}
	pub, anchor, err := bundle.LoadAnchor(*pubkey)
	if err != nil {
		fmt.Fprintf(e.stderr, "garrisonctl bundle verify: %v\n", err)
		return exitUsage
	}

	// The site key first: better to learn that the receipt cannot be signed
	// before reading a whole DVD.
	dir := e.stateDir(*stateDir)
	key, created, err := sitekey.Open(dir)
	if err != nil {
		return e.fail("bundle verify", fmt.Errorf("%w (the receipt needs the site key; choose another place with --state-dir or $%s)", err, stateDirEnv))
	}
	if created {
		fmt.Fprintf(e.stderr, "garrisonctl: created the site key %s in %s; its public key, for auditors, is %s\n",
			key.ID(), filepath.Join(dir, sitekey.SecretName), key.PublicPath())
	}

	opts := bundle.VerifyOptions{PublicKey: pub, Anchor: anchor, ToolVersion: buildinfo.Read().String()}
	opts.Host, _ = os.Hostname()
	if *progress || isTerminal(e.stderr) {
		opts.Progress = bundle.NewProgress(e.stderr, "verify", nil)
	}
	receipt, err := bundle.Verify(e.ctx, pos[0], opts)
	if err != nil {
		return e.fail("bundle verify", err)
	}

	rdir := *receiptDir
	if rdir == "" {
		rdir = filepath.Join(dir, "receipts")
	}
	if abs, err := filepath.Abs(rdir); err == nil {
		rdir = abs
	}
	path, sigPath, werr := bundle.WriteReceipt(key, rdir, receipt)
	if *asJSON {
		out := struct {
			*bundle.Receipt
			ReceiptPath          string `json:"receipt_path,omitempty"`
			ReceiptSignaturePath string `json:"receipt_signature_path,omitempty"`
			SitePublicKey        string `json:"site_public_key,omitempty"`
		}{receipt, path, sigPath, key.PublicPath()}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return e.fail("bundle verify", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		if err := receipt.WriteText(e.stdout); err != nil {
			return e.fail("bundle verify", err)
		}
		if werr == nil {
			fmt.Fprintf(e.stdout, "Receipt:   %s\n           signed by site key %s; check it with: minisign -Vm %s -p %s\n",
				path, key.ID(), path, key.PublicPath())
		}
	}
	if werr != nil {
		return e.fail("bundle verify", fmt.Errorf("the receipt could not be written: %w", werr))
	}
	if receipt.Result != bundle.ResultPass {
		return exitFail
	}
	return exitOK
}

func (e *env) bundleInspect(args []string) int {
	fs := flag.NewFlagSet("bundle inspect", flag.ContinueOnError)
	pubkey := fs.String("pubkey", "", "minisign public key `FILE` to check the signature with (default: the key built into garrisonctl, if any)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	pos, code, ok := e.parseFlags(fs, args, inspectUsage)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError("bundle inspect", fmt.Sprintf("want one PATH, have %d arguments", len(pos)), inspectUsage)
	}
	var opts bundle.InspectOptions
	pub, anchor, err := bundle.LoadAnchor(*pubkey)
	switch {
	case err == nil:
		opts.PublicKey, opts.Anchor = &pub, anchor
	case errors.Is(err, bundle.ErrNoTrustAnchor):
		// Inspect works without one; the signature is shown as not checked.
	default:
		fmt.Fprintf(e.stderr, "garrisonctl bundle inspect: %v\n", err)
		return exitUsage
	}
	in, err := bundle.Inspect(e.ctx, pos[0], opts)
	if err != nil {
		return e.fail("bundle inspect", err)
	}
	if *asJSON {
		b, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			return e.fail("bundle inspect", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	if err := in.WriteText(e.stdout); err != nil {
		return e.fail("bundle inspect", err)
	}
	return exitOK
}
