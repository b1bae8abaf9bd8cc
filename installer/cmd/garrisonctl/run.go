package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/garrison-chat/garrison/internal/buildinfo"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the check failed or could not complete
	exitUsage = 2 // bad command line
)

// env is what a command may use of the outside world.
type env struct {
	ctx    context.Context
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

const mainUsage = `garrisonctl manages a Garrison appliance.

Usage:
  garrisonctl bundle verify PATH [flags]   check a bundle's signature and every file; write a signed receipt
  garrisonctl bundle inspect PATH [flags]  show a bundle's version, signer, contents, packages and SBOM
  garrisonctl plan INVENTORY               check an inventory and show what an install would do
  garrisonctl preflight INVENTORY          check every node over SSH before an install (pass/warn/fail)
  garrisonctl install INVENTORY BUNDLE     install (or finish installing) the site from a bundle
  garrisonctl health INVENTORY             show every node's and service's health (exit 0 green, 3 yellow, 1 red)
  garrisonctl agent [--config FILE]        run the node agent (the garrison-agent unit does this)
  garrisonctl version                      print garrisonctl's version
  garrisonctl help [COMMAND...]            show help for a command

"garrisonctl help bundle verify" or "garrisonctl bundle verify -h" shows a command's flags.
`

const bundleUsage = `Usage:
  garrisonctl bundle verify PATH [flags]   check a bundle's signature and every file; write a signed receipt
  garrisonctl bundle inspect PATH [flags]  show a bundle's version, signer, contents, packages and SBOM

PATH is the bundle .tar file, the extracted garrison-<version>/ directory, or a
directory that holds exactly one such directory (a mounted ISO).
`

// run is garrisonctl without the process around it; it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return e.help(args[1:])
	case "version", "-version", "--version":
		if len(args) > 1 {
			return e.usageError("version", "takes no arguments", "Usage: garrisonctl version\n")
		}
		fmt.Fprintln(stdout, "garrisonctl", buildinfo.Read())
		return exitOK
	case "bundle":
		return e.bundle(args[1:])
	case "plan":
		return e.plan(args[1:])
	case "preflight":
		return e.preflight(args[1:])
	case "install":
		return e.install(args[1:])
	case "health":
		return e.health(args[1:])
	case "agent":
		return e.agent(args[1:])
	default:
		return e.usageError("", fmt.Sprintf("unknown command %q", args[0]), mainUsage)
	}
}

func (e *env) help(topic []string) int {
	switch strings.Join(topic, " ") {
	case "":
		fmt.Fprint(e.stdout, mainUsage)
		return exitOK
	case "version":
		fmt.Fprint(e.stdout, "Usage: garrisonctl version\n\nPrints garrisonctl's version, source revision and Go version.\n")
		return exitOK
	case "bundle":
		fmt.Fprint(e.stdout, bundleUsage)
		return exitOK
	case "plan":
		fmt.Fprint(e.stdout, planUsage)
		return exitOK
	case "preflight":
		return e.preflight([]string{"-h"})
	case "install":
		return e.install([]string{"-h"})
	case "health":
		return e.health([]string{"-h"})
	case "agent":
		return e.agent([]string{"-h"})
	case "bundle verify", "bundle inspect":
		return e.bundle([]string{topic[1], "-h"})
	default:
		return e.usageError("help", fmt.Sprintf("no help for %q", strings.Join(topic, " ")), mainUsage)
	}
}

func (e *env) bundle(args []string) int {
	if len(args) == 0 {
		return e.usageError("bundle", "missing subcommand", bundleUsage)
	}
	switch args[0] {
	case "verify":
		return e.bundleVerify(args[1:])
	case "inspect":
		return e.bundleInspect(args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, bundleUsage)
		return exitOK
	default:
		return e.usageError("bundle", fmt.Sprintf("unknown subcommand %q", args[0]), bundleUsage)
	}
}

// usageError reports a command-line mistake with the usage text, status 2.
func (e *env) usageError(cmd, msg, usage string) int {
	prefix := "garrisonctl"
	if cmd != "" {
		prefix += " " + cmd
	}
	fmt.Fprintf(e.stderr, "%s: %s\n\n%s", prefix, msg, usage)
	return exitUsage
}

// fail reports an error that stopped a command, status 1.
func (e *env) fail(cmd string, err error) int {
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(e.stderr, "garrisonctl %s: %v\n", cmd, err)
	return exitFail
}

// parseFlags parses args with fs, allowing flags after positional arguments
// ("verify PATH --json"), and returns the positional ones. ok is false when
// the command should stop with status code (after -h, or a bad flag).
func (e *env) parseFlags(fs *flag.FlagSet, args []string, usage string) (positional []string, code int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printUsage(e.stdout)
			return nil, exitOK, false
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "garrisonctl %s: %v\n\n", fs.Name(), err)
			printUsage(e.stderr)
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), exitOK, true // everything after "--" is positional
		}
		if len(rest) == 0 {
			return positional, exitOK, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// isTerminal reports whether w is a terminal (for progress output).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
