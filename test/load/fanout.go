package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// fanoutConfig is the fanout command's flags.
type fanoutConfig struct {
	serverFlags
	users       int
	posters     int
	posts       int
	duration    time.Duration
	wait        time.Duration
	size        int
	concurrency int
	json        bool
}

func fanoutCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg fanoutConfig
	cfg.register(fs)
	fs.IntVar(&cfg.users, "users", 500, "users, each with one WebSocket, all members of the channel")
	fs.IntVar(&cfg.posters, "posters", 4, "concurrent posters (the first users)")
	fs.IntVar(&cfg.posts, "posts", 2000, "stop after this many posts were accepted")
	fs.DurationVar(&cfg.duration, "duration", 60*time.Second, "stop posting after this long")
	fs.DurationVar(&cfg.wait, "wait", 10*time.Second, "after the last post, wait this long at most for missing deliveries")
	fs.IntVar(&cfg.size, "size", 100, "message size in bytes")
	fs.IntVar(&cfg.concurrency, "concurrency", 8, "concurrent calls during set-up")
	fs.BoolVar(&cfg.json, "json", false, "print the result as JSON")
	err := parseFlags(fs, args, func() []string {
		p := cfg.problems()
		if cfg.users < 1 {
			p = append(p, "-users must be at least 1")
		}
		if cfg.posters < 1 || cfg.posters > cfg.users {
			p = append(p, "-posters must be between 1 and -users")
		}
		if cfg.posts < 1 {
			p = append(p, "-posts must be at least 1")
		}
		if cfg.duration <= 0 || cfg.wait < 0 {
			p = append(p, "-duration must be positive and -wait not negative")
		}
		if cfg.size < 0 || cfg.size > 16000 {
			p = append(p, "-size must be between 0 and 16000")
		}
		if cfg.concurrency < 1 {
			p = append(p, "-concurrency must be at least 1")
		}
		return p
	})
	if err != nil {
		return err
	}
	// One socket per user, the HTTP pool, and some slack.
	if n, err := raiseNoFile(); err != nil || n < uint64(cfg.users+cfg.concurrency+cfg.posters+64) {
		fmt.Fprintf(stderr, "fanout: warning: open-file limit %d may be too low for %d sockets (%v); raise it with ulimit -n\n", n, cfg.users, err)
	}
	res, err := fanout(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		res.writeText(stdout)
	}
	if res.PostsAccepted == 0 {
		return fmt.Errorf("fanout: no post was accepted: %s", res.FirstError)
	}
	return ctx.Err()
}

// raiseNoFile lifts the soft limit on open files to the hard limit and
// returns the limit in force.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}

// fanoutResult is what the fanout command measured.
type fanoutResult struct {
	URL            string  `json:"url"`
	RunID          string  `json:"run_id"`
	Users          int     `json:"users"`
	Posters        int     `json:"posters"`
	Size           int     `json:"size"`
	SetupSeconds   float64 `json:"setup_seconds"`
	PostsAccepted  int     `json:"posts_accepted"`
	PostErrors     int     `json:"post_errors"`
	FirstError     string  `json:"first_error,omitempty"`
	PostingSeconds float64 `json:"posting_seconds"`
	PostsPerSecond float64 `json:"posts_per_second"`
	// DeliveriesExpected is accepted posts × sockets; Received counts the
	// distinct (socket, accepted post) pairs that arrived; Extra counts
	// duplicates and posts the server created but did not confirm.
	DeliveriesExpected  int64          `json:"deliveries_expected"`
	DeliveriesReceived  int64          `json:"deliveries_received"`
	DeliveriesExtra     int64          `json:"deliveries_extra"`
	SocketsMissingPosts int            `json:"sockets_missing_posts"`
	SocketsLost         int            `json:"sockets_lost"`
	FirstSocketError    string         `json:"first_socket_error,omitempty"`
	WaitSeconds         float64        `json:"wait_seconds"`
	Latency             latencySummary `json:"latency_ms"`
}

func (r *fanoutResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "fanout %s (run %s)\n", r.URL, r.RunID)
	fmt.Fprintf(w, "  set-up      %d users, one socket each, in %.1fs\n", r.Users, r.SetupSeconds)
	fmt.Fprintf(w, "  posts       %d accepted in %.2fs = %.1f posts/s (%d posters, %d bytes), %d errors\n",
		r.PostsAccepted, r.PostingSeconds, r.PostsPerSecond, r.Posters, r.Size, r.PostErrors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "              first error: %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  deliveries  %d of %d expected (%d extra), %d sockets missing posts, %d sockets lost; waited %.2fs after the last post\n",
		r.DeliveriesReceived, r.DeliveriesExpected, r.DeliveriesExtra, r.SocketsMissingPosts, r.SocketsLost, r.WaitSeconds)
	if r.FirstSocketError != "" {
		fmt.Fprintf(w, "              first socket error: %s\n", r.FirstSocketError)
	}
	l := r.Latency
	fmt.Fprintf(w, "  latency     p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (%d deliveries)\n",
		l.P50, l.P90, l.P99, l.Max, l.Count)
}

// fanout sets up users, sockets, team and channel, posts, and measures.
// Progress goes to logw.
func fanout(ctx context.Context, cfg fanoutConfig, logw io.Writer) (*fanoutResult, error) {
	res := &fanoutResult{URL: cfg.url, RunID: newRunID(), Users: cfg.users, Posters: cfg.posters, Size: cfg.size}
	setupStart := time.Now()
	c, err := newClient(cfg.url, cfg.concurrency+cfg.posters+4)
	if err != nil {
		return nil, err
	}
	defer c.close()
	admin, adminUser, err := c.login(ctx, cfg.adminUser, cfg.adminPassword)
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	t, ch, err := ensureFixture(ctx, admin, adminUser.ID)
	if err != nil {
		return nil, err
	}

	// A post may be retried after an error, so sequence numbers go up to
	// twice -posts; posting stops when they run out.
	maxSeq := int64(2 * cfg.posts)
	tl := &tally{done: make(chan struct{})}
	tl.target.Store(-1)
	var closing atomic.Bool // set before the sockets are closed on purpose
	var readers sync.WaitGroup
	socks := make([]*loadSocket, cfg.users)
	posters := make([]*client, cfg.posters)
	defer func() {
		closing.Store(true)
		for _, s := range socks {
			if s != nil {
				s.close()
			}
		}
		readers.Wait()
	}()

	wsURL := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v4/websocket"
	var ready atomic.Int64
	err = forEach(ctx, cfg.users, cfg.concurrency, func(ctx context.Context, i int) error {
		u, err := ensureUser(ctx, admin, i)
		if err != nil {
			return err
		}
		if err := join(ctx, admin, t, ch, u); err != nil {
			return err
		}
		uc, _, err := c.login(ctx, u.Username, userPassword)
		if err != nil {
			return fmt.Errorf("user %s: login: %w", u.Username, err)
		}
		conn, err := dialSocket(ctx, wsURL, uc.token)
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Username, err)
		}
		s := &loadSocket{conn: conn, got: make([]uint64, (maxSeq+63)/64), lat: make([]int64, 0, cfg.posts)}
		socks[i] = s
		if i < cfg.posters {
			posters[i] = uc
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			s.read(ch.ID, res.RunID, tl, &closing)
		}()
		if n := ready.Add(1); n%100 == 0 || int(n) == cfg.users {
			fmt.Fprintf(logw, "fanout: set-up: %d/%d users have a socket\n", n, cfg.users)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("set-up: %w", err)
	}
	res.SetupSeconds = time.Since(setupStart).Seconds()

	fmt.Fprintf(logw, "fanout: posting %d posts with %d posters for at most %s\n", cfg.posts, cfg.posters, cfg.duration)
	accepted, perr := postAll(ctx, posters, ch.ID, res.RunID, cfg, maxSeq, res)
	res.PostsAccepted = len(accepted)
	if res.PostingSeconds > 0 {
		res.PostsPerSecond = float64(res.PostsAccepted) / res.PostingSeconds
	}
	if perr != nil {
		res.FirstError = perr.Error()
	}

	res.DeliveriesExpected = int64(res.PostsAccepted) * int64(cfg.users)
	waitStart := time.Now()
	tl.expect(res.DeliveriesExpected)
	timer := time.NewTimer(cfg.wait)
	select {
	case <-tl.done:
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	res.WaitSeconds = time.Since(waitStart).Seconds()

	closing.Store(true)
	for _, s := range socks {
		s.close()
	}
	readers.Wait()

	acceptedBits := make([]uint64, (maxSeq+63)/64)
	for _, seq := range accepted {
		acceptedBits[seq/64] |= 1 << (seq % 64)
	}
	var lat []int64
	for _, s := range socks {
		var got, all int64
		for i, w := range s.got {
			got += int64(bits.OnesCount64(w & acceptedBits[i]))
			all += int64(bits.OnesCount64(w))
		}
		res.DeliveriesReceived += got
		res.DeliveriesExtra += all - got + s.dups
		if got < int64(res.PostsAccepted) {
			res.SocketsMissingPosts++
		}
		if s.err != nil {
			res.SocketsLost++
			if res.FirstSocketError == "" {
				res.FirstSocketError = s.err.Error()
			}
		}
		lat = append(lat, s.lat...)
	}
	res.Latency = summarize(lat)
	return res, nil
}

// postAll runs the posters until -posts posts were accepted, -duration
// passed, or the sequence numbers ran out. It returns the accepted
// sequence numbers and the first error, and fills in the counts of res.
func postAll(ctx context.Context, posters []*client, channelID, runID string, cfg fanoutConfig, maxSeq int64, res *fanoutResult) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var (
		slots   atomic.Int64 // posts still to be accepted, less those in flight
		nextSeq atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex // guards the fields below
		ok      []int64
		nerr    int
		first   error
	)
	slots.Store(int64(cfg.posts))
	start := time.Now()
	for _, pc := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if slots.Add(-1) < 0 {
					slots.Add(1) // a failing poster may give its slot back
					return
				}
				seq := nextSeq.Add(1) - 1
				if seq >= maxSeq {
					return
				}
				sent := time.Now().UnixNano()
				_, err := pc.createPost(ctx, channelID, postMessage(sent, runID, seq, cfg.size))
				mu.Lock()
				switch {
				case err == nil:
					ok = append(ok, seq)
				case ctx.Err() != nil:
					// Cut off by -duration: not the server's error.
				default:
					nerr++
					if first == nil {
						first = err
					}
				}
				mu.Unlock()
				if err != nil {
					slots.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.PostingSeconds = time.Since(start).Seconds()
	res.PostErrors = nerr
	return ok, first
}

// postMessage is "<unix nanos of the send> <run id>:<seq> xxxx…", padded
// to size bytes.
func postMessage(sent int64, runID string, seq int64, size int) string {
	b := make([]byte, 0, max(size, 64))
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, ' ')
	b = append(b, runID...)
	b = append(b, ':')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, 'x')
	}
	return string(b)
}

// parseMessage is the reverse of postMessage; ok is false for a message
// of another run.
func parseMessage(msg, runID string) (seq, sent int64, ok bool) {
	sentStr, rest, _ := strings.Cut(msg, " ")
	id, _, _ := strings.Cut(rest, " ")
	run, seqStr, found := strings.Cut(id, ":")
	if !found || run != runID {
		return 0, 0, false
	}
	sent, err1 := strconv.ParseInt(sentStr, 10, 64)
	seq, err2 := strconv.ParseInt(seqStr, 10, 64)
	if err1 != nil || err2 != nil || seq < 0 {
		return 0, 0, false
	}
	return seq, sent, true
}

// parsePosted returns the message of a posted event in the channel; ok is
// false for any other frame. Every socket parses every frame on the
// machine the server runs on, so the compact form Mattermost and Garrison
// write is read by a scan; anything else takes the full JSON decoding.
func parsePosted(frame []byte, channelID string) (message string, ok bool) {
	if !bytes.Contains(frame, []byte("posted")) {
		return "", false
	}
	if m, ok := scanPosted(frame, channelID); ok {
		return m, true
	}
	return decodePosted(frame, channelID)
}

// scanPosted finds the message in a compact posted event whose message
// needs no escaping, as the load tool's own do; false sends the frame to
// decodePosted.
func scanPosted(frame []byte, channelID string) (string, bool) {
	// An unescaped quote cannot occur inside a JSON string: this is a
	// field of an object, not text.
	if !bytes.Contains(frame, []byte(`"event":"posted"`)) {
		return "", false
	}
	// data.post is a string, so the post's quotes are escaped once.
	if !bytes.Contains(frame, []byte(`\"channel_id\":\"`+channelID+`\"`)) {
		return "", false
	}
	const key = `\"message\":\"`
	i := bytes.Index(frame, []byte(key))
	if i < 0 || bytes.Contains(frame[i+1:], []byte(key)) {
		return "", false // no message, or a second one nested somewhere
	}
	rest := frame[i+len(key):]
	end := bytes.IndexByte(rest, '\\')
	if end < 0 || !bytes.HasPrefix(rest[end:], []byte(`\"`)) {
		return "", false // an escape inside the message: decode it properly
	}
	return string(rest[:end]), true
}

// decodePosted is parsePosted by the book: data.post is the post's JSON as
// a string.
func decodePosted(frame []byte, channelID string) (string, bool) {
	var ev struct {
		Event string `json:"event"`
		Data  struct {
			Post string `json:"post"`
		} `json:"data"`
	}
	if json.Unmarshal(frame, &ev) != nil || ev.Event != "posted" {
		return "", false
	}
	var p post
	if json.Unmarshal([]byte(ev.Data.Post), &p) != nil || p.ChannelID != channelID {
		return "", false
	}
	return p.Message, true
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// tally counts deliveries and closes done once the expected number
// arrived.
type tally struct {
	n, target atomic.Int64 // target is -1 until the posting is over
	once      sync.Once
	done      chan struct{}
}

func (t *tally) add() {
	n := t.n.Add(1)
	if tg := t.target.Load(); tg >= 0 && n >= tg {
		t.once.Do(func() { close(t.done) })
	}
}

// expect sets the target. Together with add's load after its increment,
// the last delivery or this call sees the other, so done cannot be missed.
func (t *tally) expect(target int64) {
	t.target.Store(target)
	if t.n.Load() >= target {
		t.once.Do(func() { close(t.done) })
	}
}

// loadSocket is one user's WebSocket. After dialSocket, the fields below
// conn belong to the read goroutine until it returns.
type loadSocket struct {
	conn      *websocket.Conn
	closeOnce sync.Once

	got  []uint64 // bit seq: the post arrived
	lat  []int64  // delivery latencies, nanoseconds
	dups int64
	err  error // why the socket ended before it was closed on purpose
}

// read records the posted events of the run until the socket ends.
func (s *loadSocket) read(channelID, runID string, tl *tally, closing *atomic.Bool) {
	var buf bytes.Buffer // reused: the reader runs on the server's machine
	for {
		_, r, err := s.conn.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if !closing.Load() {
				s.err = err
			}
			return
		}
		now := time.Now().UnixNano()
		msg, ok := parsePosted(buf.Bytes(), channelID)
		if !ok {
			continue
		}
		seq, sent, ok := parseMessage(msg, runID)
		if !ok || seq >= int64(len(s.got))*64 {
			continue
		}
		if s.got[seq/64]&(1<<(seq%64)) != 0 {
			s.dups++
			continue
		}
		s.got[seq/64] |= 1 << (seq % 64)
		s.lat = append(s.lat, now-sent)
		tl.add()
	}
}

func (s *loadSocket) close() {
	s.closeOnce.Do(func() {
		_ = s.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = s.conn.Close()
	})
}

// dialSocket opens /api/v4/websocket, authenticates with an
// authentication_challenge frame, and returns once the hello event came.
func dialSocket(ctx context.Context, wsURL, token string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	conn, resp, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket: dial: %s: %w", resp.Status, err)
		}
		return nil, fmt.Errorf("websocket: dial: %w", err)
	}
	if err := handshake(ctx, conn, token); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("websocket: %w", err)
	}
	return conn, nil
}

func handshake(ctx context.Context, conn *websocket.Conn, token string) error {
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetWriteDeadline(deadline)
	_ = conn.SetReadDeadline(deadline)
	challenge := map[string]any{"seq": 1, "action": "authentication_challenge", "data": map[string]string{"token": token}}
	if err := conn.WriteJSON(challenge); err != nil {
		return fmt.Errorf("send authentication_challenge: %w", err)
	}
	for {
		_, frame, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("wait for hello: %w", err)
		}
		var m struct {
			Event    string `json:"event"`
			Status   string `json:"status"`
			SeqReply int64  `json:"seq_reply"`
			Error    *struct {
				ID      string `json:"id"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(frame, &m); err != nil {
			return fmt.Errorf("wait for hello: bad frame %.100q: %w", frame, err)
		}
		if m.Status == "FAIL" && m.SeqReply == 1 {
			if m.Error != nil {
				return fmt.Errorf("authentication_challenge: %s: %s", m.Error.ID, m.Error.Message)
			}
			return errors.New("authentication_challenge: FAIL")
		}
		if m.Event == "hello" {
			break
		}
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn.SetReadDeadline(time.Time{})
}

// forEach calls fn for 0..n-1 from at most workers goroutines and returns
// the first error, which stops the others.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}
