// Command garrison-pushproxy is Garrison's push proxy: the Mattermost
// push-proxy protocol in, Web Push out, and the site's own push service
// (RFC 8030 and Firefox's push WebSocket) so that nothing needs the
// internet.
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
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "garrison-pushproxy:", err)
		os.Exit(1)
	}
}
