package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Result is what a command left behind.
type Result struct {
	Stdout, Stderr []byte
	// ExitStatus is the command's exit status; 128+n when signal n killed
	// it, -1 when it did not end (cancelled, connection lost).
	ExitStatus int
}

// ExitError is the error of a command that ran and exited with a non-zero
// status.
type ExitError struct {
	Node    string // Target.Name
	Command string // the command's first line, shortened
	Status  int    // exit status (128+n for signal n)
	Signal  string // the signal that killed the command ("TERM"), if one did
	Stderr  string // the end of its standard error, trimmed
}

// stderrTail is how much of a failed command's standard error its
// ExitError keeps.
const stderrTail = 2048

func (e *ExitError) Error() string {
	return fmt.Sprintf("remote: %s: %q: %s", e.Node, e.Command, e.detail())
}

// detail is the error without node and command, for operations that name
// themselves.
func (e *ExitError) detail() string {
	s := fmt.Sprintf("exit status %d", e.Status)
	if e.Signal != "" {
		s = "killed by SIG" + e.Signal
	}
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

// opError is the error of an operation (upload, write, read) that names
// itself.
type opError struct {
	node, op string
	err      error
}

func (e *opError) Error() string {
	var exit *ExitError
	if errors.As(e.err, &exit) {
		return fmt.Sprintf("remote: %s: %s: %s", e.node, e.op, exit.detail())
	}
	return fmt.Sprintf("remote: %s: %s: %v", e.node, e.op, e.err)
}

func (e *opError) Unwrap() error { return e.err }

// Run runs cmd on the node with sh -c, as root, and waits for it to end.
// stdin, if not nil, is copied to the command's standard input until it
// ends (a reader that never ends keeps a goroutine reading it); if reading
// it fails, the command is stopped as if ctx had been cancelled, rather
// than given a truncated input.
//
// A command that exits non-zero returns its Result and an *ExitError.
// Cancelling ctx sends SIGTERM to the command's process group on the node,
// SIGKILL 5s later if it is still running, closes the session and returns
// ctx's error.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader) (Result, error) {
	res, err := c.run(ctx, cmd, stdin)
	var exit *ExitError
	if err != nil && !errors.As(err, &exit) {
		err = &opError{node: c.target.Name, op: fmt.Sprintf("run %q", firstLine(cmd)), err: err}
	}
	return res, err
}

// run is Run with unwrapped errors, for the operations built on it.
func (c *Client) run(ctx context.Context, cmd string, stdin io.Reader) (Result, error) {
	res := Result{ExitStatus: -1}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if c.onCommand != nil {
		c.onCommand(cmd)
	}
	sess, err := c.ssh.NewSession()
	if err != nil {
		return res, c.connErr(fmt.Errorf("open session: %w", err))
	}
	defer sess.Close()
	var stdout, stderr lockedBuffer
	errw := &pgidWriter{w: &stderr, pgid: make(chan string, 1)}
	sess.Stdout, sess.Stderr = &stdout, errw
	var in io.WriteCloser
	if stdin != nil {
		// A pipe rather than Session.Stdin: Wait would wait for the copy
		// to finish, and a cancelled Run must not wait on the caller's
		// reader.
		if in, err = sess.StdinPipe(); err != nil {
			return res, c.connErr(err)
		}
	}
	if err := sess.Start(shellCommand(c.target.User, cmd)); err != nil {
		return res, c.connErr(err)
	}
	stdinErr := make(chan error, 1)
	if stdin != nil {
		go copyStdin(in, stdin, stdinErr)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		c.stop(sess, done, errw.pgid)
		res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
		return res, ctx.Err()
	case err := <-stdinErr:
		c.stop(sess, done, errw.pgid)
		res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
		if ctx.Err() != nil { // the Upload progress reader noticed first
			return res, ctx.Err()
		}
		return res, fmt.Errorf("read standard input: %w", err)
	}
	errw.flush()
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	var exit *ssh.ExitError
	switch {
	case waitErr == nil:
		res.ExitStatus = 0
		return res, nil
	case errors.As(waitErr, &exit):
		res.ExitStatus = exit.ExitStatus()
		return res, &ExitError{
			Node:    c.target.Name,
			Command: firstLine(cmd),
			Status:  exit.ExitStatus(),
			Signal:  exit.Signal(),
			Stderr:  tail(res.Stderr),
		}
	default:
		return res, c.connErr(waitErr)
	}
}

// copyStdin copies stdin to the command's standard input, w, and closes w
// at the end. When reading stdin fails it sends the error to failed and
// leaves w open: the command must be stopped, not handed an EOF that makes
// it take what it got for the whole input. It returns when stdin ends or
// fails, or when w fails because the command is gone.
func copyStdin(w io.WriteCloser, stdin io.Reader, failed chan<- error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		switch {
		case err == io.EOF:
			w.Close()
			return
		case err != nil:
			failed <- err
			return
		}
	}
}

// stop ends the command of a session whose context was cancelled: SIGTERM
// to its process group (so that children like a backgrounded `sleep` end
// too), SIGKILL after killGrace, then closes the session. done receives
// when Session.Wait returns; pgid the command's process group.
func (c *Client) stop(sess *ssh.Session, done <-chan error, pgid <-chan string) {
	grace := time.NewTimer(killGrace)
	defer grace.Stop()
	var group string
	select {
	case <-done:
		return
	case group = <-pgid:
	case <-grace.C:
	}
	if group != "" {
		c.signalGroup("TERM", group)
		grace.Reset(killGrace)
		select {
		case <-done:
			return
		case <-grace.C:
		}
		c.signalGroup("KILL", group)
	}
	_ = sess.Close()
	// OpenSSH closes the channel once the command has exited; a command
	// that escaped its process group is left to itself.
	grace.Reset(killGrace)
	select {
	case <-done:
	case <-grace.C:
	}
}

// signalGroup sends a signal to a process group on the node, from a
// session of its own.
func (c *Client) signalGroup(sig, group string) {
	// Never 0 (our own group), 1 (-1 is every process) or junk.
	if n, err := strconv.Atoi(group); err != nil || n < 2 {
		return
	}
	sess, err := c.ssh.NewSession()
	if err != nil {
		return
	}
	defer sess.Close()
	// sh's kill: a node may have no kill(1) for sudo to run.
	_ = sess.Run(asRoot(c.target.User, "sh -c "+Quote("kill -"+sig+" -"+group)))
}

// pgidWriter passes a command's standard error through, minus the line
// the wrapper writes first, whose process group it sends to pgid. Only the
// session's stderr copier writes to it.
type pgidWriter struct {
	w    io.Writer
	pgid chan string // buffered; receives at most once
	line []byte      // the first line, until its newline arrives
	seen bool        // the first line is behind us
}

func (p *pgidWriter) Write(b []byte) (int, error) {
	n := len(b)
	if !p.seen {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			return n, nil
		}
		p.line = append(p.line, b[:i+1]...)
		b = b[i+1:]
		p.seen = true
		if group, ok := bytes.CutPrefix(p.line, []byte(pgidMarker)); ok {
			p.pgid <- string(bytes.TrimSpace(group))
		} else if _, err := p.w.Write(p.line); err != nil { // sudo's complaint, say
			return n, err
		}
	}
	if _, err := p.w.Write(b); err != nil {
		return n, err
	}
	return n, nil
}

// flush passes on a first line that never ended; call it once the session
// is over.
func (p *pgidWriter) flush() {
	if !p.seen && len(p.line) > 0 {
		p.seen = true
		_, _ = p.w.Write(p.line)
	}
}

// lockedBuffer is a bytes.Buffer that a session's copier may still write
// to while a cancelled Run returns.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes is a copy of what was written so far.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// firstLine is cmd's first non-blank line, shortened for error messages.
func firstLine(cmd string) string {
	line := strings.TrimSpace(cmd)
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = strings.TrimSpace(line[:i]) + " …"
	}
	if r := []rune(line); len(r) > 80 {
		line = string(r[:79]) + "…"
	}
	return line
}

// tail is the end of a command's standard error, trimmed.
func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > stderrTail {
		b = append([]byte("…"), b[len(b)-stderrTail:]...)
	}
	return strings.ToValidUTF8(string(b), "�")
}
