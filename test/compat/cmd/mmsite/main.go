// Command mmsite uses an installed Garrison site with the official
// Mattermost Go driver (model.Client4 and model.WebSocketClient), the way
// a Mattermost client would, and exits non-zero naming the first thing
// that did not work. The installer's scenarios run it from the admin's
// network namespace against the machines of the testbed.
//
//	mmsite -site https://chat.lab.test -resolve 10.99.0.5:443 -ca ca.crt \
//	       -user sysadmin [-app https://10.99.0.2:8065 ...]
//
// The password is read from the MMSITE_PASSWORD environment variable, so
// that it never shows in a process listing.
//
// Through the site URL (nginx) it logs in, makes a team and a channel,
// uploads a file, posts with it and reads both back. With two or more
// -app URLs it then checks delivery across the cluster: for every ordered
// pair of app nodes it listens on one node's WebSocket, posts through the
// other node's API, and waits for the posted event.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost/server/public/model"
)

// eventTimeout bounds each wait for a WebSocket event.
const eventTimeout = 30 * time.Second

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type config struct {
	site    string     // the site URL
	resolve string     // host:port the site's host name is dialled at ("" for DNS)
	ca      string     // the CA file the site's certificates chain to
	user    string     // the first admin's username
	apps    stringList // app nodes' own URLs
	team    string     // the team's name (made if missing)
	timeout time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.site, "site", "", "the site URL (through nginx)")
	flag.StringVar(&c.resolve, "resolve", "", "dial the site's host at this host:port instead of resolving it")
	flag.StringVar(&c.ca, "ca", "", "PEM file of the CA the site's certificates chain to")
	flag.StringVar(&c.user, "user", "", "username to log in as (password in $MMSITE_PASSWORD)")
	flag.Var(&c.apps, "app", "an app node's own URL (repeat); two or more check delivery across nodes")
	flag.StringVar(&c.team, "team", "mmsite", "the team to use (made if missing)")
	flag.DurationVar(&c.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	flag.Parse()
	if err := c.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "mmsite: %v\n", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := run(ctx, c, os.Getenv("MMSITE_PASSWORD")); err != nil {
		fmt.Fprintf(os.Stderr, "mmsite: %v\n", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	var errs []error
	if c.site == "" {
		errs = append(errs, errors.New("-site is required"))
	}
	if c.ca == "" {
		errs = append(errs, errors.New("-ca is required"))
	}
	if c.user == "" {
		errs = append(errs, errors.New("-user is required"))
	}
	if os.Getenv("MMSITE_PASSWORD") == "" {
		errs = append(errs, errors.New("MMSITE_PASSWORD is not set"))
	}
	// -app URLs become wss:// WebSocket URLs: only https://host:port.
	for i, a := range c.apps {
		if u, err := url.Parse(a); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("-app %d: %q is not an https://host:port URL", i+1, a))
		}
	}
	if u, err := url.Parse(c.site); c.site != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
		errs = append(errs, fmt.Errorf("-site: %q is not an https:// URL", c.site))
	}
	return errors.Join(errs...)
}

// transport is what the driver's clients dial with: the site CA, and the
// site's host name pinned to resolve.
type transport struct {
	tls      *tls.Config
	siteHost string
	resolve  string
}

func newTransport(c config) (*transport, error) {
	pem, err := os.ReadFile(c.ca)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate in it", c.ca)
	}
	u, err := url.Parse(c.site)
	if err != nil {
		return nil, fmt.Errorf("-site: %w", err)
	}
	return &transport{tls: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, siteHost: u.Host, resolve: c.resolve}, nil
}

func (t *transport) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if t.resolve != "" && (addr == t.siteHost || addr == t.siteHost+":443") {
		addr = t.resolve
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// client is a driver client for base (the site, or one app node).
func (t *transport) client(base string) *model.Client4 {
	c := model.NewAPIv4Client(base)
	c.HTTPClient = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{DialContext: t.dial, TLSClientConfig: t.tls.Clone()},
	}
	return c
}

func run(ctx context.Context, c config, password string) error {
	tr, err := newTransport(c)
	if err != nil {
		return err
	}
	site := tr.client(c.site)
	me, _, err := site.Login(ctx, c.user, password)
	if err != nil {
		return fmt.Errorf("login through %s: %w", c.site, err)
	}
	fmt.Printf("logged in through %s as %s (%s)\n", c.site, me.Username, me.Id)

	team, err := ensureTeam(ctx, site, c.team)
	if err != nil {
		return err
	}
	ch, _, err := site.CreateChannel(ctx, &model.Channel{TeamId: team.Id, Name: "mmsite-" + model.NewId()[:8], DisplayName: "mmsite", Type: model.ChannelTypeOpen})
	if err != nil {
		return fmt.Errorf("create channel: %w", err)
	}
	if err := postWithFile(ctx, site, ch); err != nil {
		return err
	}
	fmt.Printf("posted with a file in ~%s through the site and read both back\n", ch.Name)

	if len(c.apps) < 2 {
		return nil
	}
	for i, listen := range c.apps {
		for j, post := range c.apps {
			if i == j {
				continue
			}
			if err := crossNode(ctx, tr, site.AuthToken, ch, listen, post); err != nil {
				return err
			}
			fmt.Printf("a post made on %s reached a WebSocket on %s\n", post, listen)
		}
	}
	return nil
}

func ensureTeam(ctx context.Context, c *model.Client4, name string) (*model.Team, error) {
	team, resp, err := c.GetTeamByName(ctx, name, "")
	if err == nil {
		return team, nil
	}
	if resp == nil || resp.StatusCode != http.StatusNotFound {
		return nil, fmt.Errorf("get team %s: %w", name, err)
	}
	team, _, err = c.CreateTeam(ctx, &model.Team{Name: name, DisplayName: name, Type: model.TeamOpen})
	if err != nil {
		return nil, fmt.Errorf("create team %s: %w", name, err)
	}
	return team, nil
}

func postWithFile(ctx context.Context, c *model.Client4, ch *model.Channel) error {
	content := bytes.Repeat([]byte("the official driver, through the proxy\n"), 8192)
	up, _, err := c.UploadFile(ctx, content, ch.Id, "driver.txt")
	if err != nil {
		return fmt.Errorf("upload a file: %w", err)
	}
	if len(up.FileInfos) != 1 {
		return fmt.Errorf("upload a file: %d file infos in the answer, want 1", len(up.FileInfos))
	}
	fileID := up.FileInfos[0].Id
	msg := "posted by the Mattermost driver " + model.NewId()
	p, _, err := c.CreatePost(ctx, &model.Post{ChannelId: ch.Id, Message: msg, FileIds: model.StringArray{fileID}})
	if err != nil {
		return fmt.Errorf("create post: %w", err)
	}
	got, _, err := c.GetPost(ctx, p.Id, "")
	if err != nil {
		return fmt.Errorf("get post %s: %w", p.Id, err)
	}
	if got.Message != msg || len(got.FileIds) != 1 || got.FileIds[0] != fileID {
		return fmt.Errorf("get post %s: message %q files %v, want %q [%s]", p.Id, got.Message, got.FileIds, msg, fileID)
	}
	data, _, err := c.GetFile(ctx, fileID)
	if err != nil {
		return fmt.Errorf("get file %s: %w", fileID, err)
	}
	if !bytes.Equal(data, content) {
		return fmt.Errorf("get file %s: %d bytes came back, not the %d uploaded", fileID, len(data), len(content))
	}
	return nil
}

// crossNode listens on listenURL's WebSocket, posts in ch through postURL
// and waits for the posted event of that post.
func crossNode(ctx context.Context, tr *transport, token string, ch *model.Channel, listenURL, postURL string) error {
	wsURL := "wss" + strings.TrimPrefix(strings.TrimSuffix(listenURL, "/"), "https")
	dialer := &websocket.Dialer{NetDialContext: tr.dial, TLSClientConfig: tr.tls.Clone(), HandshakeTimeout: 30 * time.Second}
	ws, err := model.NewWebSocketClient4WithDialer(dialer, wsURL, token)
	if err != nil {
		return fmt.Errorf("websocket on %s: %w", listenURL, err)
	}
	defer ws.Close()
	ws.Listen()
	// Post only once the node has registered the connection (hello), or
	// the event could be broadcast before it is listening.
	if err := waitHello(ctx, ws, listenURL); err != nil {
		return err
	}

	poster := tr.client(postURL)
	poster.SetToken(token)
	msg := fmt.Sprintf("from %s to %s %s", postURL, listenURL, model.NewId())
	p, _, err := poster.CreatePost(ctx, &model.Post{ChannelId: ch.Id, Message: msg})
	if err != nil {
		return fmt.Errorf("create post on %s: %w", postURL, err)
	}

	deadline := time.NewTimer(eventTimeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-ws.EventChannel:
			if !ok {
				return fmt.Errorf("websocket on %s closed before post %s arrived: %v", listenURL, p.Id, ws.ListenError)
			}
			if ev.EventType() != model.WebsocketEventPosted {
				continue
			}
			raw, _ := ev.GetData()["post"].(string)
			var got model.Post
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				return fmt.Errorf("posted event on %s: post %q: %w", listenURL, raw, err)
			}
			if got.Id == p.Id {
				if got.Message != msg {
					return fmt.Errorf("posted event on %s: message %q, want %q", listenURL, got.Message, msg)
				}
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("post %s made on %s did not reach the WebSocket on %s within %s", p.Id, postURL, listenURL, eventTimeout)
		case <-ctx.Done():
			return fmt.Errorf("waiting on %s for post %s: %w", listenURL, p.Id, ctx.Err())
		}
	}
}

// waitHello reads ws until its hello event.
func waitHello(ctx context.Context, ws *model.WebSocketClient, url string) error {
	deadline := time.NewTimer(eventTimeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-ws.EventChannel:
			if !ok {
				return fmt.Errorf("websocket on %s closed before hello: %v", url, ws.ListenError)
			}
			if ev.EventType() == model.WebsocketEventHello {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("no hello on the websocket on %s within %s", url, eventTimeout)
		case <-ctx.Done():
			return fmt.Errorf("waiting for hello on %s: %w", url, ctx.Err())
		}
	}
}
