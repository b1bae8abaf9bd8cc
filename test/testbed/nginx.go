package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/garrison-chat/garrison/nginx"
)

// StartNginx renders c with the nginx package into <node dir>/nginx and
// runs `nginx -c nginx.conf -p <node dir>/nginx/ -e stderr -g 'daemon off;'`
// in the node's namespace as process "nginx", then waits until it accepts
// connections. Fields left empty are filled for the testbed: Listen is
// the node's address, port 80; ErrorLog is stderr, so it lands in the
// process's log; WorkerProcesses is 1. c.App.Servers are typically the
// app nodes' HostPort(8065).
func (n *Node) StartNginx(ctx context.Context, c nginx.Config) (*Process, error) {
	prefix := filepath.Join(n.dir, "nginx")
	for _, d := range []string{prefix, filepath.Join(prefix, "logs"), filepath.Join(prefix, "tmp")} {
		if err := mkdirAll(d); err != nil {
			return nil, fmt.Errorf("testbed: %s: nginx: %w", n.name, err)
		}
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{n.HostPort(80)}
	}
	if c.ErrorLog == "" {
		c.ErrorLog = "stderr"
	}
	if c.WorkerProcesses == 0 {
		c.WorkerProcesses = 1
	}
	conf, err := nginx.Render(c)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", n.name, err)
	}
	file := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(file, conf, 0o644); err != nil {
		return nil, fmt.Errorf("testbed: %s: nginx: %w", n.name, err)
	}
	bin, err := lookTool("nginx")
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: %w (apt-get install nginx)", n.name, err)
	}
	p, err := n.Start("nginx", bin, []string{"-c", file, "-p", prefix + "/", "-e", "stderr", "-g", "daemon off;"}, nil)
	if err != nil {
		return nil, err
	}
	if err := p.WaitListening(ctx, n, c.Listen[0]); err != nil {
		_ = p.Kill(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("testbed: %s: nginx did not start: %w", n.name, err)
	}
	return p, nil
}
