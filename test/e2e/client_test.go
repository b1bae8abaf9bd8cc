package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// A small Mattermost API v4 client: just the calls the scenarios make,
// with the wire shapes of model.Client4 and model.WebSocketClient (the
// official driver lives in test/compat's own module and cannot be
// imported here).

// requestTimeout bounds every REST call unless its context ends sooner.
const requestTimeout = 15 * time.Second

// api calls the REST API at one base URL (a node or nginx) with one
// token, through an HTTP client that dials from the client node.
type api struct {
	base    string // http://host:port, no trailing slash
	hc      *http.Client
	token   string        // empty for anonymous calls
	timeout time.Duration // of each call; 0 means requestTimeout
}

// as returns a client sharing c's connections that calls with token.
func (c *api) as(token string) *api {
	c2 := *c
	c2.token = token
	return &c2
}

// at returns a client with c's token that calls base instead.
func (c *api) at(base string) *api {
	c2 := *c
	c2.base = base
	return &c2
}

// apiError is a call answered with a status other than the expected one:
// the status and Mattermost's AppError id and message, when sent.
type apiError struct {
	Method, Path string
	Status       int
	ID, Message  string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.ID, e.Message)
}

// statusOf returns the HTTP status of a failed call, or 0 when the call
// got no answer at all (the error is then the transport's).
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// do sends in as JSON (when not nil) and decodes the answer into out
// (when not nil). An answer other than want (any 2xx when want is 0) is
// an *apiError.
func (c *api) do(ctx context.Context, method, path string, want int, in, out any) (http.Header, error) {
	timeout := c.timeout
	if timeout == 0 {
		timeout = requestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v4"+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s%s: %w", method, c.base, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s%s: read the answer: %w", method, c.base, path, err)
	}
	if (want == 0 && resp.StatusCode/100 != 2) || (want != 0 && resp.StatusCode != want) {
		ae := &apiError{Method: method, Path: c.base + path, Status: resp.StatusCode}
		var e struct {
			ID      string `json:"id"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &e) == nil && e.ID != "" {
			ae.ID, ae.Message = e.ID, e.Message
		} else {
			ae.Message = strings.Join(strings.Fields(string(raw[:min(len(raw), 200)])), " ")
		}
		return nil, ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s%s: decode %.200q: %w", method, c.base, path, raw, err)
		}
	}
	return resp.Header, nil
}

// The fields of model.User, Team, Channel, Post, PostList and
// ClusterInfo the scenarios read.
type (
	user struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Roles    string `json:"roles"`
	}
	team struct {
		ID string `json:"id"`
	}
	channel struct {
		ID string `json:"id"`
	}
	post struct {
		ID        string `json:"id"`
		ChannelID string `json:"channel_id"`
		UserID    string `json:"user_id"`
		Message   string `json:"message"`
		CreateAt  int64  `json:"create_at"`
	}
	postList struct {
		Order []string        `json:"order"`
		Posts map[string]post `json:"posts"`
	}
	session struct {
		ID       string `json:"id"`
		CreateAt int64  `json:"create_at"`
	}
	clusterNode struct {
		ID            string `json:"id"`
		Version       string `json:"version"`
		SchemaVersion string `json:"schema_version"`
		ConfigHash    string `json:"config_hash"`
		IPAddress     string `json:"ipaddress"`
		Hostname      string `json:"hostname"`
	}
)

func (c *api) createUser(ctx context.Context, username, password string) (user, error) {
	var u user
	_, err := c.do(ctx, http.MethodPost, "/users", http.StatusCreated,
		map[string]string{"username": username, "email": username + "@e2e.example.com", "password": password}, &u)
	return u, err
}

// login returns a client acting as the user, and the user.
func (c *api) login(ctx context.Context, username, password string) (*api, user, error) {
	var u user
	h, err := c.do(ctx, http.MethodPost, "/users/login", http.StatusOK,
		map[string]string{"login_id": username, "password": password}, &u)
	if err != nil {
		return nil, user{}, err
	}
	token := h.Get("Token")
	if token == "" {
		return nil, user{}, fmt.Errorf("POST /users/login: no Token header for %s", username)
	}
	return c.as(token), u, nil
}

func (c *api) me(ctx context.Context) (user, error) {
	var u user
	_, err := c.do(ctx, http.MethodGet, "/users/me", http.StatusOK, nil, &u)
	return u, err
}

func (c *api) logout(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/users/logout", http.StatusOK, nil, nil)
	return err
}

func (c *api) sessions(ctx context.Context, userID string) ([]session, error) {
	var s []session
	_, err := c.do(ctx, http.MethodGet, "/users/"+userID+"/sessions", http.StatusOK, nil, &s)
	return s, err
}

func (c *api) revokeSession(ctx context.Context, userID, sessionID string) error {
	_, err := c.do(ctx, http.MethodPost, "/users/"+userID+"/sessions/revoke", http.StatusOK,
		map[string]string{"session_id": sessionID}, nil)
	return err
}

func (c *api) createTeam(ctx context.Context, name string) (team, error) {
	var t team
	_, err := c.do(ctx, http.MethodPost, "/teams", http.StatusCreated,
		map[string]string{"name": name, "display_name": name, "type": "O"}, &t)
	return t, err
}

func (c *api) addTeamMember(ctx context.Context, teamID, userID string) error {
	_, err := c.do(ctx, http.MethodPost, "/teams/"+teamID+"/members", http.StatusCreated,
		map[string]string{"team_id": teamID, "user_id": userID}, nil)
	return err
}

// createChannel creates an open ("O") or private ("P") channel.
func (c *api) createChannel(ctx context.Context, teamID, name, kind string) (channel, error) {
	var ch channel
	_, err := c.do(ctx, http.MethodPost, "/channels", http.StatusCreated,
		map[string]string{"team_id": teamID, "name": name, "display_name": name, "type": kind}, &ch)
	return ch, err
}

func (c *api) addChannelMember(ctx context.Context, channelID, userID string) error {
	_, err := c.do(ctx, http.MethodPost, "/channels/"+channelID+"/members", http.StatusCreated,
		map[string]string{"user_id": userID}, nil)
	return err
}

func (c *api) removeChannelMember(ctx context.Context, channelID, userID string) error {
	_, err := c.do(ctx, http.MethodDelete, "/channels/"+channelID+"/members/"+userID, http.StatusOK, nil, nil)
	return err
}

// createPost succeeds only on 201 Created: the acknowledgement that the
// post is stored.
func (c *api) createPost(ctx context.Context, channelID, message string) (post, error) {
	var p post
	_, err := c.do(ctx, http.MethodPost, "/posts", http.StatusCreated,
		map[string]string{"channel_id": channelID, "message": message}, &p)
	return p, err
}

// postsSince returns the channel's posts changed after since (Unix
// milliseconds), the resync a Mattermost client makes after a reconnect
// that lost its events.
func (c *api) postsSince(ctx context.Context, channelID string, since int64) (postList, error) {
	var l postList
	_, err := c.do(ctx, http.MethodGet, "/channels/"+channelID+"/posts?since="+strconv.FormatInt(max(since, 1), 10),
		http.StatusOK, nil, &l)
	return l, err
}

func (c *api) channelPosts(ctx context.Context, channelID string) (postList, error) {
	var l postList
	_, err := c.do(ctx, http.MethodGet, "/channels/"+channelID+"/posts?per_page=60", http.StatusOK, nil, &l)
	return l, err
}

func (c *api) addReaction(ctx context.Context, userID, postID, emoji string) error {
	_, err := c.do(ctx, http.MethodPost, "/reactions", http.StatusOK,
		map[string]string{"user_id": userID, "post_id": postID, "emoji_name": emoji}, nil)
	return err
}

func (c *api) removeReaction(ctx context.Context, userID, postID, emoji string) error {
	_, err := c.do(ctx, http.MethodDelete, "/users/"+userID+"/posts/"+postID+"/reactions/"+url.PathEscape(emoji),
		http.StatusOK, nil, nil)
	return err
}

func (c *api) clusterStatus(ctx context.Context) ([]clusterNode, error) {
	var n []clusterNode
	_, err := c.do(ctx, http.MethodGet, "/cluster/status", http.StatusOK, nil, &n)
	return n, err
}

// event is a frame from the server: an event (model.WebSocketEvent,
// with seq) or the reply to an action (model.WebSocketResponse, with
// seq_reply).
type event struct {
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Broadcast struct {
		UserID    string `json:"user_id"`
		ChannelID string `json:"channel_id"`
	} `json:"broadcast"`
	Seq int64 `json:"seq"`

	Status   string `json:"status"`
	SeqReply int64  `json:"seq_reply"`
	Error    *struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"error"`
}

func (e event) isReply() bool { return e.Event == "" && e.SeqReply > 0 }

// str returns data[key] when it is a string.
func (e event) str(key string) string {
	s, _ := e.Data[key].(string)
	return s
}

// post decodes data.post, which Mattermost sends as a JSON string.
func (e event) post() (post, error) {
	var p post
	err := json.Unmarshal([]byte(e.str("post")), &p)
	return p, err
}

// resume asks a reconnect to continue connection connID from event seq
// next (Mattermost's connection_id and sequence_number parameters).
type resume struct {
	connID string
	next   int64
}

// dialWS opens base's /api/v4/websocket with the token in the
// Authorization header, as the official WebSocket client does, resuming
// a connection when r is not nil.
func dialWS(ctx context.Context, d *websocket.Dialer, base, token string, r *resume) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/api/v4/websocket"
	if r != nil {
		u += "?connection_id=" + url.QueryEscape(r.connID) + "&sequence_number=" + strconv.FormatInt(r.next, 10)
	}
	conn, resp, err := d.DialContext(ctx, u, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket %s: %s: %w", u, resp.Status, err)
		}
		return nil, fmt.Errorf("websocket %s: %w", u, err)
	}
	return conn, nil
}

// readEvent reads one frame before deadline.
func readEvent(conn *websocket.Conn, deadline time.Time) (event, error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return event{}, err
	}
	_, b, err := conn.ReadMessage()
	if err != nil {
		return event{}, err
	}
	var ev event
	if err := json.Unmarshal(b, &ev); err != nil {
		return event{}, fmt.Errorf("bad frame %.200q: %w", b, err)
	}
	return ev, nil
}
