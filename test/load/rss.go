package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

func rssCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "process id")
	if err := parseFlags(fs, args, func() []string {
		if *pid <= 0 {
			return []string{"-pid is required"}
		}
		return nil
	}); err != nil {
		return err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", *pid))
	if err != nil {
		return fmt.Errorf("rss: %w", err)
	}
	defer f.Close()
	kb, err := parseVmRSS(f)
	if err != nil {
		return fmt.Errorf("rss: pid %d: %w", *pid, err)
	}
	fmt.Fprintf(stdout, "pid %d VmRSS %d kB (%.1f MiB)\n", *pid, kb, float64(kb)/1024)
	return nil
}

// parseVmRSS returns the VmRSS line of /proc/PID/status, in kB.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bad VmRSS line %q", sc.Text())
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line (a kernel thread or a zombie?)")
}
