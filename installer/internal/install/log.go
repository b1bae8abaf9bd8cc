package install

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// logger writes progress lines to the admin's terminal and, with a UTC
// timestamp, to the site's install log, which keeps every run.
type logger struct {
	mu   sync.Mutex // guards the writes below
	file *os.File
	out  io.Writer
}

func openLogger(path string, out io.Writer) (*logger, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("install: log: %w", err)
	}
	return &logger{file: f, out: out}, nil
}

// Printf logs one line. Callers never pass secrets.
func (l *logger) Printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.out, line)
	fmt.Fprintf(l.file, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

func (l *logger) Close() error { return l.file.Close() }
