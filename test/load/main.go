// Command garrison-load measures a Mattermost-API-compatible server: the
// fan-out of posts to many WebSockets, the read throughput of a channel's
// post page, the idle RSS, and a do-nothing ceiling server to compare with.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "garrison-load:", err)
		os.Exit(1)
	}
}
