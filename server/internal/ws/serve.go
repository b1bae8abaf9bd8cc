package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// ServeHTTP upgrades GET /api/v4/websocket. The session comes from the
// request (TokenFromRequest) or from an authentication_challenge frame; query
// parameters connection_id and sequence_number resume an earlier connection.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		http.Error(w, "websocket hub is not running", http.StatusServiceUnavailable)
		return
	}
	defer h.wg.Done()
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "expected a websocket upgrade", http.StatusBadRequest)
		return
	}
	if !h.checkOrigin(r) {
		// Checked before authenticating so a foreign page cannot make us
		// look up the browser's cookie session.
		http.Error(w, "websocket: request origin not allowed", http.StatusForbidden)
		return
	}
	res := parseResume(r.URL.Query())
	var token string
	fromCookie := false
	if h.opts.TokenFromRequest != nil {
		token, fromCookie = h.opts.TokenFromRequest(r)
	}

	wsConn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.opts.Logger.DebugContext(r.Context(), "ws: upgrade failed", "err", err)
		return // the upgrader has answered
	}
	// ctx ends when the pump does, which it does when the hub stops.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sock := newSocket(wsConn, cancel)
	h.track(sock)
	h.wg.Add(1) // safe: this handler's own count is still held
	go h.pump(sock)

	// Authenticated after the upgrade so that the lookup runs on ctx, under
	// the pump's authentication timeout like a challenge does.
	var sess *Session
	if token != "" {
		s, err := h.authenticate(ctx, token)
		if err != nil {
			// As in Mattermost the connection goes on unauthenticated; the
			// client may still answer with a challenge.
			h.opts.Logger.DebugContext(ctx, "ws: token on upgrade rejected", "from_cookie", fromCookie, "err", err)
		} else {
			sess = &s
		}
	}
	h.read(ctx, sock, sess, res)
}

// opTimeout bounds each call the hub makes into the app: Authenticate,
// HandleAction and Publish's audience lookup.
const opTimeout = 10 * time.Second

// authenticate resolves a token within opTimeout.
func (h *Hub) authenticate(ctx context.Context, token string) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return h.opts.Auth.Authenticate(ctx, token)
}

// resumeParams are the reliable-reconnect query parameters.
type resumeParams struct {
	connID string
	seq    int64
	hasSeq bool
}

func parseResume(q url.Values) resumeParams {
	var p resumeParams
	if id := q.Get("connection_id"); model.IsValidID(id) {
		p.connID = id
	}
	if s := q.Get("sequence_number"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			p.seq, p.hasSeq = n, true
		}
	}
	return p
}

// checkOrigin follows Mattermost's OriginChecker without AllowCorsFrom: no
// Origin is fine (not a browser), "null" is not, anything else must be the
// SiteURL's scheme and host, or the request's Host when SiteURL is empty.
func (h *Hub) checkOrigin(r *http.Request) bool {
	origin := r.Header["Origin"]
	if len(origin) == 0 {
		return true
	}
	if origin[0] == "null" || h.badSiteURL {
		return false
	}
	u, err := url.Parse(origin[0])
	if err != nil || u.Host == "" {
		return false
	}
	if h.siteOrigin != "" {
		return normalizeOrigin(u.Scheme, u.Host) == h.siteOrigin
	}
	return strings.EqualFold(u.Host, r.Host)
}

// normalizeOrigin renders scheme://host in lower case without a default port.
func normalizeOrigin(scheme, host string) string {
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	return scheme + "://" + host
}

// reader is the state of one socket's read loop.
type reader struct {
	h      *Hub
	sock   *socket
	resume resumeParams
	sess   *Session // nil until authenticated
	connID string
}

// read runs the socket's read loop until the client goes away or the pump
// closes the socket.
func (h *Hub) read(ctx context.Context, sock *socket, sess *Session, res resumeParams) {
	defer close(sock.readerDone)
	rd := &reader{h: h, sock: sock, resume: res}
	c := sock.ws
	c.SetReadLimit(h.opts.MaxFrameSize)
	refresh := func() { _ = c.SetReadDeadline(time.Now().Add(h.opts.ReadTimeout)) }
	refresh()
	c.SetPongHandler(func(string) error { refresh(); return nil })

	if sess != nil && !rd.authenticated(*sess, nil) {
		return
	}
	for {
		mt, data, err := c.ReadMessage()
		if err != nil {
			h.opts.Logger.DebugContext(ctx, "ws: read ended", "connection_id", rd.connID, "err", err)
			return
		}
		refresh()
		if !rd.handle(ctx, mt, data) {
			return
		}
	}
}

// authenticated registers the session's connection and hands it to the pump.
func (rd *reader) authenticated(s Session, first []byte) bool {
	h := rd.h
	rd.sock.authenticated()
	req := &registerReq{
		session:   s,
		sock:      rd.sock,
		resumeID:  rd.resume.connID,
		resumeSeq: rd.resume.seq,
		hasSeq:    rd.resume.hasSeq,
		reply:     make(chan registerResult, 1),
	}
	sh := h.shardFor(s.UserID)
	if h.send(sh, shardMsg{op: func(s *shard) { s.register(req) }}) != nil {
		return false
	}
	var res registerResult
	select {
	case res = <-req.reply:
	case <-h.done:
		return false
	}
	if res.err != nil {
		rd.sock.kick(websocket.CloseNormalClosure, "closed by server")
		return false
	}
	a := attachment{conn: res.conn, session: s, mode: res.mode, from: res.from, first: first}
	select {
	case rd.sock.attach <- a:
	case <-rd.sock.pumpDone:
		// The socket died before the pump took the conn: keep it for a resume.
		h.deactivate(res.conn, rd.sock)
		return false
	}
	rd.sess, rd.connID = &s, res.conn.id
	return true
}

// handle serves one client frame; false ends the read loop.
func (rd *reader) handle(ctx context.Context, mt int, data []byte) bool {
	if mt != websocket.TextMessage {
		return rd.reply(failure(0, errBinary))
	}
	req, aerr := parseRequest(data)
	if aerr != nil {
		return rd.reply(failure(req.Seq, *aerr))
	}
	if req.Action == actionChallenge {
		if rd.sess != nil {
			return true // Mattermost ignores a second challenge
		}
		s, err := rd.challenge(ctx, req.Data)
		if err != nil {
			rd.h.opts.Logger.DebugContext(ctx, "ws: authentication challenge failed", "err", err)
			rd.sendReply(reply{data: failure(req.Seq, errSessionExpired), close: true})
			return false
		}
		return rd.authenticated(s, success(req.Seq, nil))
	}
	if rd.sess == nil {
		return rd.reply(failure(req.Seq, errNotAuthenticated))
	}
	rd.h.activity(ctx, rd.sess.UserID, req.Action)
	if req.Action == actionPing {
		return rd.reply(success(req.Seq, map[string]any{
			"text":        "pong",
			"version":     rd.h.opts.ServerVersion,
			"server_time": rd.h.opts.Now().UnixMilli(),
			"node_id":     "",
		}))
	}
	return rd.reply(rd.action(ctx, req))
}

func (rd *reader) challenge(ctx context.Context, data json.RawMessage) (Session, error) {
	var d struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(data, &d); err != nil || d.Token == "" {
		return Session{}, errors.New("ws: challenge without a token")
	}
	return rd.h.authenticate(ctx, d.Token)
}

// action runs the ActionHandler and renders its reply frame.
func (rd *reader) action(ctx context.Context, req request) (frame []byte) {
	h := rd.h
	if h.opts.Actions == nil {
		return failure(req.Seq, errBadAction)
	}
	defer func() {
		if p := recover(); p != nil {
			h.opts.Logger.ErrorContext(ctx, "ws: action handler panicked", "action", req.Action, "err", fmt.Errorf("panic: %v", p))
			frame = failure(req.Seq, errInternal)
		}
	}()
	actx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	out, err := h.opts.Actions.HandleAction(actx, *rd.sess, rd.connID, req.Action, req.Data)
	if err != nil {
		var ae interface{ AppErrorJSON() []byte }
		if errors.As(err, &ae) {
			if b := ae.AppErrorJSON(); json.Valid(b) {
				return failureRaw(req.Seq, b)
			}
		}
		h.opts.Logger.ErrorContext(ctx, "ws: action failed", "action", req.Action, "user_id", rd.sess.UserID, "err", err)
		return failure(req.Seq, errInternal)
	}
	frame = success(req.Seq, out)
	if frame == nil {
		h.opts.Logger.ErrorContext(ctx, "ws: action reply does not marshal", "action", req.Action)
		return failure(req.Seq, errInternal)
	}
	return frame
}

func (rd *reader) reply(frame []byte) bool {
	return rd.sendReply(reply{data: frame})
}

// sendReply queues a reply for the pump; false when the pump is gone.
func (rd *reader) sendReply(r reply) bool {
	select {
	case rd.sock.replies <- r:
		return true
	case <-rd.sock.pumpDone:
		return false
	}
}
