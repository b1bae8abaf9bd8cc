package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// client calls the Mattermost API v4 of one server with one token.
type client struct {
	base  string // scheme://host[:port], no trailing slash
	hc    *http.Client
	token string // empty for anonymous calls
}

// newClient returns an anonymous client whose keep-alive pool holds conns
// connections, enough for the callers that share it.
func newClient(base string, conns int) (*client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bad -url %q: want http://host:port", base)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &client{
		base: strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"),
		hc:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}, nil
}

// as returns a client sharing c's connections that calls with token.
func (c *client) as(token string) *client {
	c2 := *c
	c2.token = token
	return &c2
}

// close drops the idle connections.
func (c *client) close() { c.hc.CloseIdleConnections() }

// apiError is a failed call: the request, the status and the server's
// AppError body (id, message, detailed_error) when it sent one.
type apiError struct {
	Method, Path string
	Status       int
	ID           string
	Message      string
	Detail       string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s %s: %d", e.Method, e.Path, e.Status)
	if e.ID != "" {
		s += " " + e.ID
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// isExists reports whether err is the server refusing to create something
// that already exists: 409, or Mattermost's 400 with an "...exists..." id
// (app.user.save.username_exists.app_error,
// store.sql_team.save_team.existing.app_error,
// store.sql_channel.save_channel.exists.app_error).
func isExists(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Status == http.StatusConflict || (ae.Status == http.StatusBadRequest && strings.Contains(ae.ID, "exist"))
}

// do sends in as JSON (when not nil) and decodes a 2xx body into out (when
// not nil). Any other status is an *apiError.
func (c *client) do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
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
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		var body struct {
			ID            string `json:"id"`
			Message       string `json:"message"`
			DetailedError string `json:"detailed_error"`
		}
		if json.Unmarshal(raw, &body) == nil && body.ID != "" {
			ae.ID, ae.Message, ae.Detail = body.ID, body.Message, body.DetailedError
		} else {
			ae.Message = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		return nil, ae
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body) // read to the end so the connection is reused
	} else {
		err = json.NewDecoder(resp.Body).Decode(out)
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	return resp.Header, nil
}

// The few fields of model.User, model.Team, model.Channel, model.Post and
// model.PostList the load tool needs.
type (
	user struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}
	team struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	channel struct {
		ID     string `json:"id"`
		TeamID string `json:"team_id"`
		Name   string `json:"name"`
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
)

// login returns a client acting as the user and the user.
func (c *client) login(ctx context.Context, loginID, password string) (*client, user, error) {
	var u user
	h, err := c.do(ctx, http.MethodPost, "/api/v4/users/login", map[string]string{"login_id": loginID, "password": password}, &u)
	if err != nil {
		return nil, user{}, err
	}
	token := h.Get("Token")
	if token == "" || u.ID == "" {
		return nil, user{}, fmt.Errorf("POST /api/v4/users/login: no Token header or user id in the answer for %q", loginID)
	}
	return c.as(token), u, nil
}

func (c *client) createUser(ctx context.Context, username, email, password string) (user, error) {
	var u user
	_, err := c.do(ctx, http.MethodPost, "/api/v4/users",
		map[string]string{"username": username, "email": email, "password": password}, &u)
	return u, err
}

func (c *client) userByUsername(ctx context.Context, username string) (user, error) {
	var u user
	_, err := c.do(ctx, http.MethodGet, "/api/v4/users/username/"+url.PathEscape(username), nil, &u)
	return u, err
}

func (c *client) createTeam(ctx context.Context, name, displayName string) (team, error) {
	var t team
	_, err := c.do(ctx, http.MethodPost, "/api/v4/teams",
		map[string]string{"name": name, "display_name": displayName, "type": "O"}, &t)
	return t, err
}

func (c *client) teamByName(ctx context.Context, name string) (team, error) {
	var t team
	_, err := c.do(ctx, http.MethodGet, "/api/v4/teams/name/"+url.PathEscape(name), nil, &t)
	return t, err
}

func (c *client) addTeamMember(ctx context.Context, teamID, userID string) error {
	_, err := c.do(ctx, http.MethodPost, "/api/v4/teams/"+url.PathEscape(teamID)+"/members",
		map[string]string{"team_id": teamID, "user_id": userID}, nil)
	return err
}

func (c *client) createChannel(ctx context.Context, teamID, name, displayName string) (channel, error) {
	var ch channel
	_, err := c.do(ctx, http.MethodPost, "/api/v4/channels",
		map[string]string{"team_id": teamID, "name": name, "display_name": displayName, "type": "O"}, &ch)
	return ch, err
}

func (c *client) channelByName(ctx context.Context, teamID, name string) (channel, error) {
	var ch channel
	_, err := c.do(ctx, http.MethodGet,
		"/api/v4/teams/"+url.PathEscape(teamID)+"/channels/name/"+url.PathEscape(name), nil, &ch)
	return ch, err
}

func (c *client) addChannelMember(ctx context.Context, channelID, userID string) error {
	_, err := c.do(ctx, http.MethodPost, "/api/v4/channels/"+url.PathEscape(channelID)+"/members",
		map[string]string{"user_id": userID}, nil)
	return err
}

func (c *client) createPost(ctx context.Context, channelID, message string) (post, error) {
	var p post
	_, err := c.do(ctx, http.MethodPost, "/api/v4/posts",
		map[string]string{"channel_id": channelID, "message": message}, &p)
	return p, err
}

func (c *client) channelPosts(ctx context.Context, channelID string, perPage int) (postList, error) {
	var l postList
	_, err := c.do(ctx, http.MethodGet,
		"/api/v4/channels/"+url.PathEscape(channelID)+"/posts?page=0&per_page="+strconv.Itoa(perPage), nil, &l)
	return l, err
}
