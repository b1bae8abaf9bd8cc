package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

func ceilingCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8099", "address to listen on")
	if err := parseFlags(fs, args, func() []string { return nil }); err != nil {
		return err
	}
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintln(stderr, "ceiling: warning:", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	c := newCeiling()
	srv := &http.Server{Handler: c.routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "ceiling listening on http://%s\n", ln.Addr())

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); err == nil {
		err = serr
	}
	c.stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	return nil
}

// ceiling is the comparison server for fanout: it answers the set-up calls
// with made-up JSON and broadcasts each post as one frame, serialised once,
// to every socket. No storage, no permissions, no checks.
type ceiling struct {
	upgrader websocket.Upgrader
	wg       sync.WaitGroup // the socket goroutines

	mu      sync.Mutex // guards the fields below
	stopped bool
	socks   map[*ceilingSocket]bool // true once it gets broadcasts
	seq     int64
	recent  []json.RawMessage // the newest posts, newest last
	page    []byte            // the newest pageN posts as a PostList; nil when stale
	pageGz  []byte
	pageN   int
}

// recentPosts is how many posts GET /channels/{id}/posts can return.
const recentPosts = 200

func newCeiling() *ceiling {
	return &ceiling{
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		socks:    make(map[*ceilingSocket]bool),
	}
}

func (c *ceiling) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/v4/users/login", c.login)
	m.HandleFunc("POST /api/v4/users", c.createUser)
	m.HandleFunc("GET /api/v4/users/username/{name}", c.userByName)
	m.HandleFunc("POST /api/v4/teams", c.createTeam)
	m.HandleFunc("GET /api/v4/teams/name/{name}", c.teamByName)
	m.HandleFunc("POST /api/v4/teams/{team_id}/members", c.addTeamMember)
	m.HandleFunc("POST /api/v4/channels", c.createChannel)
	m.HandleFunc("GET /api/v4/teams/{team_id}/channels/name/{name}", c.channelByName)
	m.HandleFunc("POST /api/v4/channels/{channel_id}/members", c.addChannelMember)
	m.HandleFunc("POST /api/v4/posts", c.createPost)
	m.HandleFunc("GET /api/v4/channels/{channel_id}/posts", c.channelPosts)
	m.HandleFunc("GET /api/v4/system/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
	})
	m.HandleFunc("GET /api/v4/websocket", c.websocket)
	return m
}

// fakeID is a stable 26-character Mattermost-looking id for a name.
func fakeID(kind, name string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + name))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:26]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody decodes the request body into a map of strings.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	var m map[string]string
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"id": "api.context.invalid_body_param.app_error", "message": "Invalid body: " + err.Error(), "status_code": http.StatusBadRequest})
		return nil, false
	}
	return m, true
}

func userJSON(name string) map[string]string {
	return map[string]string{"id": fakeID("user", name), "username": name, "email": name + "@example.com", "roles": "system_user"}
}

func (c *ceiling) login(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	w.Header().Set("Token", fakeID("token", b["login_id"]))
	writeJSON(w, http.StatusOK, userJSON(b["login_id"]))
}

func (c *ceiling) createUser(w http.ResponseWriter, r *http.Request) {
	if b, ok := readBody(w, r); ok {
		writeJSON(w, http.StatusCreated, userJSON(b["username"]))
	}
}

func (c *ceiling) userByName(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, userJSON(r.PathValue("name")))
}

func teamJSON(name string) map[string]string {
	return map[string]string{"id": fakeID("team", name), "name": name, "display_name": name, "type": "O"}
}

func (c *ceiling) createTeam(w http.ResponseWriter, r *http.Request) {
	if b, ok := readBody(w, r); ok {
		writeJSON(w, http.StatusCreated, teamJSON(b["name"]))
	}
}

func (c *ceiling) teamByName(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, teamJSON(r.PathValue("name")))
}

func (c *ceiling) addTeamMember(w http.ResponseWriter, r *http.Request) {
	if b, ok := readBody(w, r); ok {
		writeJSON(w, http.StatusCreated, map[string]string{"team_id": r.PathValue("team_id"), "user_id": b["user_id"], "roles": "team_user"})
	}
}

func channelJSON(teamID, name string) map[string]string {
	return map[string]string{"id": fakeID("channel", teamID+"/"+name), "team_id": teamID, "name": name, "display_name": name, "type": "O"}
}

func (c *ceiling) createChannel(w http.ResponseWriter, r *http.Request) {
	if b, ok := readBody(w, r); ok {
		writeJSON(w, http.StatusCreated, channelJSON(b["team_id"], b["name"]))
	}
}

func (c *ceiling) channelByName(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, channelJSON(r.PathValue("team_id"), r.PathValue("name")))
}

func (c *ceiling) addChannelMember(w http.ResponseWriter, r *http.Request) {
	if b, ok := readBody(w, r); ok {
		writeJSON(w, http.StatusCreated, map[string]string{"channel_id": r.PathValue("channel_id"), "user_id": b["user_id"], "roles": "channel_user"})
	}
}

// ceilingPost is model.Post's wire shape.
type ceilingPost struct {
	ID            string            `json:"id"`
	CreateAt      int64             `json:"create_at"`
	UpdateAt      int64             `json:"update_at"`
	EditAt        int64             `json:"edit_at"`
	DeleteAt      int64             `json:"delete_at"`
	IsPinned      bool              `json:"is_pinned"`
	UserID        string            `json:"user_id"`
	ChannelID     string            `json:"channel_id"`
	RootID        string            `json:"root_id"`
	OriginalID    string            `json:"original_id"`
	Message       string            `json:"message"`
	Type          string            `json:"type"`
	Props         map[string]any    `json:"props"`
	Hashtags      string            `json:"hashtags"`
	PendingPostID string            `json:"pending_post_id"`
	ReplyCount    int64             `json:"reply_count"`
	Metadata      map[string]string `json:"metadata"`
}

// ceilingEvent is model.WebSocketEvent's wire shape, fields in its order.
type ceilingEvent struct {
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Broadcast map[string]any `json:"broadcast"`
	Seq       int64          `json:"seq"`
}

// createPost builds the posted event once and queues the same bytes on
// every socket.
func (c *ceiling) createPost(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	now := time.Now().UnixMilli()
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	p := ceilingPost{
		ID: fmt.Sprintf("%026d", seq), CreateAt: now, UpdateAt: now,
		UserID: fakeID("user", r.Header.Get("Authorization")), ChannelID: b["channel_id"],
		Message: b["message"], Props: map[string]any{}, Metadata: map[string]string{},
	}
	postJSON, _ := json.Marshal(p) // cannot fail for these types
	frame, _ := json.Marshal(ceilingEvent{
		Event: "posted",
		Data: map[string]any{
			"channel_display_name": "Fan-out", "channel_name": channelName, "channel_type": "O",
			"post": string(postJSON), "sender_name": "@loadtest", "set_online": true, "team_id": "",
		},
		Broadcast: map[string]any{"omit_users": nil, "user_id": "", "channel_id": p.ChannelID, "team_id": ""},
		Seq:       seq,
	})

	c.mu.Lock()
	for s, live := range c.socks {
		if !live {
			continue
		}
		select {
		case s.out <- frame:
		default: // a slow client is dropped, never waited for
			s.close()
			delete(c.socks, s)
		}
	}
	c.recent = append(c.recent, postJSON)
	if len(c.recent) > 2*recentPosts {
		c.recent = append(c.recent[:0], c.recent[len(c.recent)-recentPosts:]...)
	}
	c.page, c.pageGz = nil, nil
	c.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(postJSON)
}

// channelPosts serves the newest per_page posts (of any channel) from
// memory, as gzip when the client takes it.
func (c *ceiling) channelPosts(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("per_page"))
	if err != nil || n < 1 {
		n = 60
	}
	n = min(n, recentPosts)
	c.mu.Lock()
	if c.page == nil || c.pageN != n {
		c.buildPageLocked(n)
	}
	page, gz := c.page, c.pageGz
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Vary", "Accept-Encoding")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		page = gz
	}
	_, _ = w.Write(page)
}

func (c *ceiling) buildPageLocked(n int) {
	c.pageN = n
	recent := c.recent[max(0, len(c.recent)-n):]
	order := make([]string, 0, len(recent))
	posts := make(map[string]json.RawMessage, len(recent))
	for i := len(recent) - 1; i >= 0; i-- {
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(recent[i], &p)
		order = append(order, p.ID)
		posts[p.ID] = recent[i]
	}
	c.page, _ = json.Marshal(map[string]any{"order": order, "posts": posts, "next_post_id": "", "prev_post_id": ""})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(c.page)
	_ = zw.Close()
	c.pageGz = buf.Bytes()
}

// ceilingSocket is one client; its writer goroutine is the only writer
// after the hello.
type ceilingSocket struct {
	conn      *websocket.Conn
	out       chan []byte
	closeOnce sync.Once
	done      chan struct{}
}

func (s *ceilingSocket) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.conn.Close()
	})
}

// websocket accepts an authentication_challenge (any token), answers OK
// and a hello, then only writes broadcasts.
func (c *ceiling) websocket(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()

	conn, err := c.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	s := &ceilingSocket{conn: conn, out: make(chan []byte, 4096), done: make(chan struct{})}
	if !c.track(s, false) {
		s.close()
		return
	}
	defer func() {
		c.mu.Lock()
		delete(c.socks, s)
		c.mu.Unlock()
		s.close()
	}()

	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var req struct {
		Seq    int64  `json:"seq"`
		Action string `json:"action"`
	}
	if err := conn.ReadJSON(&req); err != nil || req.Action != "authentication_challenge" {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	reply := fmt.Sprintf(`{"status":"OK","seq_reply":%d}`, req.Seq)
	hello := `{"event":"hello","data":{"server_version":"ceiling"},"broadcast":{"omit_users":null,"user_id":"","channel_id":"","team_id":""},"seq":0}`
	if conn.WriteMessage(websocket.TextMessage, []byte(reply)) != nil ||
		conn.WriteMessage(websocket.TextMessage, []byte(hello)) != nil {
		return
	}
	c.wg.Add(1) // this handler's count is still held
	go func() {
		defer c.wg.Done()
		s.write()
	}()
	if !c.track(s, true) {
		return
	}
	// Read until the client goes; frames from it are ignored.
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

// track records s, receiving broadcasts when live; false once stopped.
func (c *ceiling) track(s *ceilingSocket, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.socks[s] = live
	return true
}

func (s *ceilingSocket) write() {
	defer s.close()
	for {
		select {
		case f := <-s.out:
			_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if s.conn.WriteMessage(websocket.TextMessage, f) != nil {
				return
			}
		case <-s.done:
			return
		}
	}
}

// stop closes every socket and waits for the socket goroutines. The HTTP
// server must be shut down first.
func (c *ceiling) stop() {
	c.mu.Lock()
	c.stopped = true
	for s := range c.socks {
		s.close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}
