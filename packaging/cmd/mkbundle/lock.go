package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/garrison-chat/garrison/packaging/internal/lock"
)

// roots is what a node may need from Debian. Our own packages' Depends
// (adduser) are among them, so the closure covers them too.
var roots = []string{"nginx", "postgresql-15", "patroni", "python3-etcd", "etcd-server", "pgbackrest", "adduser"}

func runLock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "packaging/bookworm.lock", "the lock file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := lock.Resolve(ctx, roots)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, l.Format("Debian 12 bookworm, amd64"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	var size int64
	for _, p := range l.Packages {
		size += p.Size
	}
	fmt.Fprintf(stdout, "%s: %d packages, %.1f MB, from %s\n", *out, len(l.Packages), float64(size)/1e6, strings.Join(roots, " "))
	return nil
}
