// Package logging builds the slog logger every Garrison binary uses: JSON
// (or text) to stderr for journald, and optionally to a file.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Options choose where logs go and how much.
type Options struct {
	Console      bool
	ConsoleLevel string
	ConsoleJSON  bool
	File         bool
	FileLevel    string
	FileJSON     bool
	FilePath     string
	// Stderr receives console output; nil means os.Stderr.
	Stderr io.Writer
}

// ParseLevel maps Mattermost's level names (DEBUG, INFO, WARN, ERROR) to
// slog levels, case-insensitively.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG", "TRACE":
		return slog.LevelDebug, nil
	case "", "INFO":
		return slog.LevelInfo, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR", "CRITICAL", "FATAL", "PANIC":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging: unknown level %q", s)
}

// New returns a logger and a close function for the file, if any.
func New(o Options) (*slog.Logger, func() error, error) {
	var handlers []slog.Handler
	closeFn := func() error { return nil }
	if o.Console {
		lvl, err := ParseLevel(o.ConsoleLevel)
		if err != nil {
			return nil, nil, err
		}
		w := o.Stderr
		if w == nil {
			w = os.Stderr
		}
		handlers = append(handlers, newHandler(w, o.ConsoleJSON, lvl))
	}
	if o.File && o.FilePath != "" {
		lvl, err := ParseLevel(o.FileLevel)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.OpenFile(o.FilePath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("logging: open %s: %w", o.FilePath, err)
		}
		closeFn = f.Close
		handlers = append(handlers, newHandler(f, o.FileJSON, lvl))
	}
	switch len(handlers) {
	case 0:
		return slog.New(slog.DiscardHandler), closeFn, nil
	case 1:
		return slog.New(handlers[0]), closeFn, nil
	}
	return slog.New(slog.NewMultiHandler(handlers...)), closeFn, nil
}

func newHandler(w io.Writer, json bool, lvl slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: lvl}
	if json {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}
