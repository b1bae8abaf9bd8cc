package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/garrison-chat/garrison/installer/internal/bundle"
	"github.com/garrison-chat/garrison/installer/internal/install"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/installer/internal/sitekey"
	"github.com/garrison-chat/garrison/internal/buildinfo"
	"github.com/garrison-chat/garrison/internal/manifest"
)

const planUsage = `Usage: garrisonctl plan INVENTORY

Reads and checks the inventory (every problem at once) and prints what an
install would do, step by step, on which nodes. It contacts no node.
`

const installUsage = `Usage: garrisonctl install INVENTORY BUNDLE [flags]

Installs the site the inventory describes from BUNDLE (the .tar, or the
extracted garrison-<version>/ directory, or a mounted ISO) over SSH: it
verifies the bundle, copies its signed repository to every node, installs
each node's packages, issues certificates, brings up etcd, PostgreSQL under
Patroni, MinIO, garrison, the push proxy, nginx and the node agents, waits
for health at each stage, and writes a receipt signed with the site key.
Every step looks before it changes anything: running it again changes
nothing, and a run stopped anywhere finishes on the next.

Flags:
`

// installReceiptComment is the trusted comment of install receipts.
const installReceiptComment = "garrison-install-receipt"

// stateDir is garrisonctl's state directory: the flag, else
// $GARRISONCTL_STATE_DIR, else the default; absolute, so that the paths
// printed for auditors work from anywhere.
func (e *env) stateDir(flagValue string) string {
	dir := flagValue
	if dir == "" {
		dir = e.getenv(stateDirEnv)
	}
	if dir == "" {
		dir = sitekey.DefaultStateDir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir
}

func (e *env) plan(args []string) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	pos, code, ok := e.parseFlags(fs, args, planUsage)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError("plan", fmt.Sprintf("want one INVENTORY, have %d arguments", len(pos)), planUsage)
	}
	inv, err := inventory.Load(pos[0])
	if err != nil {
		return e.fail("plan", err)
	}
	install.PrintPlan(e.stdout, install.NewSite(inv), "")
	return exitOK
}

func (e *env) install(args []string) int {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	pubkey := fs.String("pubkey", "", "minisign public key `FILE` to verify the bundle with (default: the key built into garrisonctl)")
	stateDir := fs.String("state-dir", "", "garrisonctl's state `DIR` (default $"+stateDirEnv+", else "+sitekey.DefaultStateDir+")")
	force := fs.Bool("force", false, "install even over a newer Garrison on a node")
	stopAfter := fs.String("stop-after", "", "stop, successfully, after `STEP` (see garrisonctl plan); the next run goes on from there")
	relaxed := fs.Bool("relaxed-timings", false, "slower etcd and Patroni failure detection, for oversubscribed test machines")
	pos, code, ok := e.parseFlags(fs, args, installUsage)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return e.usageError("install", fmt.Sprintf("want INVENTORY and BUNDLE, have %d arguments", len(pos)), installUsage)
	}
	inv, err := inventory.Load(pos[0])
	if err != nil {
		return e.fail("install", err)
	}
	pub, anchor, err := bundle.LoadAnchor(*pubkey)
	if err != nil {
		fmt.Fprintf(e.stderr, "garrisonctl install: %v\n", err)
		return exitUsage
	}
	dir := e.stateDir(*stateDir)
	key, created, err := sitekey.Open(dir)
	if err != nil {
		return e.fail("install", err)
	}
	if created {
		fmt.Fprintf(e.stderr, "garrisonctl: created the site key %s; its public key, for auditors, is %s\n", key.ID(), key.PublicPath())
	}
	site := install.NewSite(inv)
	if *relaxed {
		site.Timings = install.RelaxedTimings()
	}

	fmt.Fprintf(e.stdout, "verifying %s\n", pos[1])
	opts := bundle.VerifyOptions{PublicKey: pub, Anchor: anchor, ToolVersion: buildinfo.Read().String()}
	opts.Host, _ = os.Hostname()
	bdir, receipt, err := install.PrepareBundle(e.ctx, pos[1], install.SiteDir(dir, inv.Site), opts)
	if err != nil {
		return e.fail("install", err)
	}
	fmt.Fprintf(e.stdout, "bundle %s verified (signed by %s, %d files)\n", receipt.Version, receipt.SigningKeyID, receipt.FilesChecked)

	in, err := install.New(site, install.Options{
		StateDir: dir, BundleDir: bdir, Version: receipt.Version,
		Force: *force, StopAfter: *stopAfter, Log: e.stdout,
	})
	if err != nil {
		return e.fail("install", err)
	}
	defer in.Close()
	start := time.Now()
	err = in.Run(e.ctx)
	if errors.Is(err, install.ErrStopped) {
		return exitOK
	}
	if err != nil {
		return e.fail("install", err)
	}
	r := in.Receipt()
	r.Manifest = receipt.ManifestSHA256
	if sum, _, err := manifest.HashFile(pos[0]); err == nil {
		r.Inventory = hex.EncodeToString(sum[:])
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return e.fail("install", err)
	}
	base := "install-" + time.Now().UTC().Format("20060102T150405Z") + "-" + inv.Site
	path, _, err := key.WriteSigned(filepath.Join(dir, "receipts"), base, ".json", append(data, '\n'), installReceiptComment+" site="+inv.Site+" version="+receipt.Version)
	if err != nil {
		return e.fail("install", fmt.Errorf("write the receipt: %w", err))
	}
	fmt.Fprintf(e.stdout, "\nSite %s is up at %s (%.0fs).\n", inv.Site, inv.SiteURL, time.Since(start).Seconds())
	fmt.Fprintf(e.stdout, "Receipt: %s\n         check it with: minisign -Vm %s -p %s\n", path, path, key.PublicPath())
	if in.AdminCreated() {
		fmt.Fprintf(e.stdout, "\nFirst admin: %s\nPassword:    %s\n(kept in %s, readable by root only; change it after the first login)\n",
			inv.Admin.Username, in.Secrets().AdminPassword, filepath.Join(install.SiteDir(dir, inv.Site), "secrets.json"))
	} else {
		fmt.Fprintf(e.stdout, "First admin: %s (its initial password is in %s)\n", inv.Admin.Username, filepath.Join(install.SiteDir(dir, inv.Site), "secrets.json"))
	}
	return exitOK
}
