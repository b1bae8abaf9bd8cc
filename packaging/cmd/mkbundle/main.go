// Command mkbundle builds Garrison's offline bundle (`make bundle`) and
// refreshes the pinned third-party closure (`make bundle-lock`). See
// docs/bundle.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mkbundle build|lock [flags]")
	}
	switch args[0] {
	case "build":
		return runBuild(ctx, args[1:], getenv, stdout, stderr)
	case "lock":
		return runLock(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q (want build or lock)", args[0])
	}
}
