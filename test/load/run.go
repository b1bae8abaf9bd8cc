package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const usage = `usage:
  garrison-load fanout -url URL -admin-user U -admin-password P [-users 500] [-posters 4]
                       [-posts 2000] [-duration 60s] [-size 100] [-json]
        posts to one channel that every user watches over its own WebSocket;
        reports posts/s accepted and the delivery latency over every socket x post
  garrison-load ceiling [-listen 127.0.0.1:8099]
        a server that only broadcasts one pre-serialised frame per post: run
        fanout against it for the ceiling of this machine
  garrison-load read -url URL -admin-user U -admin-password P [-posts 60]
                     [-connections 32] [-duration 15s] [-wrk wrk]
        wrk against GET /api/v4/channels/{id}/posts?per_page=60
  garrison-load rss -pid N
        the resident set size (VmRSS) of a process
`

// run is the whole program; main only supplies the process's context,
// arguments and streams.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "fanout":
		return fanoutCmd(ctx, args, stdout, stderr)
	case "ceiling":
		return ceilingCmd(ctx, args, stdout, stderr)
	case "read":
		return readCmd(ctx, args, stdout, stderr)
	case "rss":
		return rssCmd(args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// serverFlags are the flags of every command that talks to a server.
type serverFlags struct {
	url, adminUser, adminPassword string
}

func (s *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.url, "url", "http://127.0.0.1:8065", "server base URL")
	fs.StringVar(&s.adminUser, "admin-user", "", "username or email of a system admin")
	fs.StringVar(&s.adminPassword, "admin-password", "", "the admin's password")
}

// problems lists what is missing, for one error naming every bad flag.
func (s *serverFlags) problems() []string {
	var p []string
	if s.url == "" {
		p = append(p, "-url is required")
	}
	if s.adminUser == "" {
		p = append(p, "-admin-user is required")
	}
	if s.adminPassword == "" {
		p = append(p, "-admin-password is required")
	}
	return p
}

// parseFlags parses args and reports unexpected arguments and every problem
// check finds at once.
func parseFlags(fs *flag.FlagSet, args []string, check func() []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := check()
	if fs.NArg() > 0 {
		p = append(p, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if len(p) > 0 {
		return fmt.Errorf("%s: %s", fs.Name(), strings.Join(p, "; "))
	}
	return nil
}
