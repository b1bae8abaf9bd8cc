package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func readCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf serverFlags
	sf.register(fs)
	posts := fs.Int("posts", 60, "posts the channel must hold; also the page size")
	conns := fs.Int("connections", 32, "wrk connections")
	threads := fs.Int("threads", 2, "wrk threads")
	duration := fs.Duration("duration", 15*time.Second, "wrk duration")
	wrk := fs.String("wrk", "wrk", "the wrk binary")
	err := parseFlags(fs, args, func() []string {
		p := sf.problems()
		if *posts < 1 || *posts > 200 {
			p = append(p, "-posts must be between 1 and 200")
		}
		if *conns < 1 || *threads < 1 || *threads > *conns {
			p = append(p, "-connections and -threads must be positive, with no more threads than connections")
		}
		if *duration < time.Second {
			p = append(p, "-duration must be at least 1s")
		}
		return p
	})
	if err != nil {
		return err
	}
	wrkPath, err := exec.LookPath(*wrk)
	if err != nil {
		fmt.Fprintf(stderr, "read: wrk is not installed (%v).\nInstall it with: sudo apt-get install wrk   (or pass -wrk PATH)\n", err)
		return errors.New("read: wrk not found")
	}

	c, err := newClient(sf.url, 4)
	if err != nil {
		return err
	}
	defer c.close()
	admin, adminUser, err := c.login(ctx, sf.adminUser, sf.adminPassword)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	_, ch, err := ensureFixture(ctx, admin, adminUser.ID)
	if err != nil {
		return err
	}
	list, err := admin.channelPosts(ctx, ch.ID, *posts)
	if err != nil {
		return fmt.Errorf("read: count posts: %w", err)
	}
	if missing := *posts - len(list.Order); missing > 0 {
		fmt.Fprintf(stderr, "read: adding %d posts to channel %s\n", missing, channelName)
		for i := range missing {
			msg := fmt.Sprintf("read fixture post %d: the quick brown fox jumps over the lazy dog, again and again and again.", i+1)
			if _, err := admin.createPost(ctx, ch.ID, msg); err != nil {
				return fmt.Errorf("read: add posts: %w", err)
			}
		}
	}

	url := fmt.Sprintf("%s/api/v4/channels/%s/posts?per_page=%d", c.base, ch.ID, *posts)
	wrkArgs := []string{
		"-t" + strconv.Itoa(*threads), "-c" + strconv.Itoa(*conns), "-d" + duration.String(), "--latency",
		"-H", "Authorization: Bearer " + admin.token, "-H", "Accept-Encoding: gzip", url,
	}
	shown := strings.Join([]string{wrkPath, wrkArgs[0], wrkArgs[1], wrkArgs[2], wrkArgs[3],
		"-H", "'Authorization: Bearer ****'", "-H", "'Accept-Encoding: gzip'", "'" + url + "'"}, " ")
	fmt.Fprintln(stdout, "$", shown)

	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, wrkPath, wrkArgs...)
	cmd.Stdout = io.MultiWriter(stdout, &out)
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("read: wrk: %w", err)
	}
	s := parseWrk(out.String())
	fmt.Fprintf(stdout, "read: %s req/s, latency avg %s, p50 %s, p90 %s, p99 %s, max %s\n",
		s.reqPerSec, s.avg, s.p50, s.p90, s.p99, s.max)
	if s.non2xx != "" {
		return fmt.Errorf("read: %s responses were not 2xx or 3xx: the figure is not valid", s.non2xx)
	}
	if s.reqPerSec == "" {
		return errors.New("read: no Requests/sec in wrk's output")
	}
	return nil
}

// wrkSummary holds the figures of wrk's report, as wrk printed them.
type wrkSummary struct {
	reqPerSec, avg, max, p50, p90, p99, non2xx string
}

// parseWrk picks the summary out of wrk's report (run with --latency).
func parseWrk(out string) wrkSummary {
	var s wrkSummary
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			s.reqPerSec = f[1]
		case len(f) >= 4 && f[0] == "Latency" && s.avg == "":
			s.avg, s.max = f[1], f[3] // Latency avg stdev max +/-stdev
		case len(f) == 2 && f[0] == "50%":
			s.p50 = f[1]
		case len(f) == 2 && f[0] == "90%":
			s.p90 = f[1]
		case len(f) == 2 && f[0] == "99%":
			s.p99 = f[1]
		case strings.HasPrefix(strings.TrimSpace(sc.Text()), "Non-2xx or 3xx responses:"):
			s.non2xx = f[len(f)-1]
		}
	}
	return s
}
