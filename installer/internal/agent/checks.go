package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Status is a service's or the node's health.
type Status string

// The statuses, from best to worst.
const (
	Green  Status = "green"
	Yellow Status = "yellow"
	Red    Status = "red"
)

// rank orders statuses for "worst of" and is the metric value.
func (s Status) rank() int {
	switch s {
	case Green:
		return 0
	case Yellow:
		return 1
	}
	return 2
}

func worst(a, b Status) Status {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Report is what GET /health answers.
type Report struct {
	Node      string    `json:"node"`
	Status    Status    `json:"status"`
	CheckedAt time.Time `json:"checked_at"`
	Services  []Service `json:"services"`
}

// Service is one check's outcome.
type Service struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason says why, in a few words an admin can act on.
	Reason string `json:"reason"`
	// Details are the kind's figures (HTTP status, Patroni role, lag...).
	Details map[string]any `json:"details"`

	duration time.Duration // how long the check took (metrics)
}

// maxBody bounds what a check reads of a reply.
const maxBody = 1 << 20

// checker runs the configured checks.
type checker struct {
	client  *http.Client
	timeout time.Duration
	checks  []Check
	node    string
	now     func() time.Time
}

// run runs every check at once, each bounded by the timeout, and returns
// them in configuration order.
func (c *checker) run(ctx context.Context) Report {
	services := make([]Service, len(c.checks))
	var wg sync.WaitGroup
	for i, ch := range c.checks {
		wg.Go(func() {
			start := time.Now()
			services[i] = c.one(ctx, ch)
			services[i].duration = time.Since(start)
		})
	}
	wg.Wait()
	r := Report{Node: c.node, Status: Green, CheckedAt: c.now().UTC(), Services: services}
	for _, s := range services {
		r.Status = worst(r.Status, s.Status)
	}
	return r
}

// one runs a single check.
func (c *checker) one(ctx context.Context, ch Check) Service {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s := Service{Name: ch.Name, Details: map[string]any{}}
	if ch.Kind == KindTLS {
		c.handshake(ctx, &s, ch.URL)
		return s
	}
	resp, body, err := c.get(ctx, ch.target())
	if err != nil {
		s.Status, s.Reason = Red, c.describe(ctx, err)
		return s
	}
	s.Details["http_status"] = resp.StatusCode
	switch ch.Kind {
	case KindGarrison:
		garrison(&s, resp, body)
	case KindPatroni:
		patroni(&s, resp, body, ch)
	case KindEtcd:
		etcd(&s, resp, body)
	default:
		plainHTTP(&s, resp)
	}
	return s
}

// handshake completes a TLS handshake with the tls://host:port of target,
// verifying the server against the site CA and offering the node
// certificate, and hangs up.
func (c *checker) handshake(ctx context.Context, s *Service, target string) {
	u, err := url.Parse(target)
	if err != nil {
		s.Status, s.Reason = Red, err.Error()
		return
	}
	cfg := c.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.ServerName = u.Hostname()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		s.Status, s.Reason = Red, c.describe(ctx, err)
		return
	}
	st := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	s.Status, s.Reason = Green, "TLS handshake OK"
	s.Details["tls_version"] = tls.VersionName(st.Version)
}

// get fetches target and reads up to maxBody of the reply.
func (c *checker) get(ctx context.Context, target string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "garrison-agent")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the reply: %w", err)
	}
	return resp, body, nil
}

// describe turns a request error into a reason.
func (c *checker) describe(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", c.timeout)
	}
	if errors.Is(err, context.Canceled) {
		return "check canceled"
	}
	// The URL is the check's own; the cause is what matters.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "unreachable: " + err.Error()
}

func httpStatus(resp *http.Response) string {
	return strings.TrimSpace(fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
}

func ok2xx(resp *http.Response) bool { return resp.StatusCode >= 200 && resp.StatusCode < 300 }

// plainHTTP: any 2xx is green, anything else red.
func plainHTTP(s *Service, resp *http.Response) {
	s.Status, s.Reason = Green, httpStatus(resp)
	if !ok2xx(resp) {
		s.Status = Red
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			s.Reason += " (redirects to " + loc + "; point the check at the final URL)"
		}
	}
}

// garrison reads the server's ping with get_server_status=true: green when
// the database and the file store are OK, yellow when either is not (the
// server answers, degraded), red when there is no ping reply at all. The
// server answers 500 when a status is not OK, with the same body.
func garrison(s *Service, resp *http.Response, body []byte) {
	var ping struct {
		Status          string `json:"status"`
		DatabaseStatus  string `json:"database_status"`
		FilestoreStatus string `json:"filestore_status"`
	}
	if err := json.Unmarshal(body, &ping); err != nil || ping.DatabaseStatus == "" || ping.FilestoreStatus == "" {
		s.Status, s.Reason = Red, httpStatus(resp)+": not a Garrison ping reply with server status"
		return
	}
	s.Details["status"] = ping.Status
	s.Details["database_status"] = ping.DatabaseStatus
	s.Details["filestore_status"] = ping.FilestoreStatus
	var bad []string
	if ping.DatabaseStatus != "OK" {
		bad = append(bad, "database "+ping.DatabaseStatus)
	}
	if ping.FilestoreStatus != "OK" {
		bad = append(bad, "file store "+ping.FilestoreStatus)
	}
	if len(bad) > 0 {
		s.Status, s.Reason = Yellow, strings.Join(bad, ", ")
		return
	}
	s.Status, s.Reason = Green, "database and file store OK"
}

// etcd reads GET /health: {"health":"true"} is green; anything else red
// (no leader, an alarm, or not etcd). etcd 3.5 adds a "reason".
func etcd(s *Service, resp *http.Response, body []byte) {
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Health == "" {
		s.Status, s.Reason = Red, httpStatus(resp)+": not an etcd health reply"
		return
	}
	s.Details["health"] = h.Health
	if h.Health == "true" && ok2xx(resp) {
		s.Status, s.Reason = Green, "healthy"
		return
	}
	s.Status, s.Reason = Red, "etcd reports unhealthy (no leader, or an alarm such as NOSPACE)"
	if h.Reason != "" {
		s.Reason = "etcd reports unhealthy: " + h.Reason
	}
}

// Patroni roles across versions: 3.0.x says "leader" in /cluster, older
// and newer releases "master" or "primary"; a standby cluster's leader is
// "standby_leader".
var (
	leaderRoles  = []string{"leader", "master", "primary", "standby_leader"}
	replicaRoles = []string{"replica", "sync_standby", "quorum_standby", "standby"}
)

// patroniMember is one entry of /cluster's members.
type patroniMember struct {
	Name     string          `json:"name"`
	Role     string          `json:"role"`
	State    string          `json:"state"`
	Timeline *int64          `json:"timeline"`
	Lag      json.RawMessage `json:"lag"`
}

// patroni reads Patroni's GET /cluster and judges this node's member: red
// when it is missing, its Postgres is stopped or failed, or the cluster has
// no leader; yellow when it is not running (starting, stopping...), its
// lag is above the bound or unknown, or the cluster is paused; green
// otherwise.
func patroni(s *Service, resp *http.Response, body []byte, ch Check) {
	var cl struct {
		Members []patroniMember `json:"members"`
		Pause   bool            `json:"pause"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&cl); err != nil || cl.Members == nil || !ok2xx(resp) {
		s.Status, s.Reason = Red, httpStatus(resp)+": not a Patroni /cluster reply"
		return
	}
	var me *patroniMember
	leader := ""
	names := make([]string, 0, len(cl.Members))
	for i, m := range cl.Members {
		names = append(names, m.Name)
		if slices.Contains(leaderRoles, m.Role) {
			leader = m.Name
		}
		if m.Name == ch.Member {
			me = &cl.Members[i]
		}
	}
	s.Details["member"] = ch.Member
	s.Details["leader"] = leader
	s.Details["members"] = len(cl.Members)
	if cl.Pause {
		s.Details["pause"] = true
	}
	if me == nil {
		s.Status, s.Reason = Red, fmt.Sprintf("member %q is not in the cluster (members: %s)", ch.Member, strings.Join(names, ", "))
		return
	}
	s.Details["role"] = me.Role
	s.Details["state"] = me.State
	if me.Timeline != nil {
		s.Details["timeline"] = *me.Timeline
	}
	isLeader := slices.Contains(leaderRoles, me.Role)
	lag, lagKnown, lagText := parseLag(me.Lag)
	switch {
	case lagText != "":
		s.Details["lag"] = lagText
	case lagKnown:
		s.Details["lag"] = lag
	case isLeader:
		s.Details["lag"] = 0 // Patroni gives the leader none: it is the reference
	}

	running := me.State == "running" || me.State == "streaming"
	status, reasons := Green, []string(nil)
	flag := func(st Status, reason string) {
		status = worst(status, st)
		reasons = append(reasons, reason)
	}
	switch {
	case me.State == "stopped" || me.State == "crashed" || strings.Contains(me.State, "failed"):
		flag(Red, fmt.Sprintf("Postgres is %s", me.State))
	case !running:
		flag(Yellow, fmt.Sprintf("Postgres is %s, not running", orUnknown(me.State)))
	}
	if leader == "" {
		flag(Red, "the cluster has no leader")
	}
	if !isLeader && running {
		switch {
		case !slices.Contains(replicaRoles, me.Role):
			flag(Yellow, fmt.Sprintf("unexpected role %q", me.Role))
		case !lagKnown:
			flag(Yellow, "replication lag unknown")
		case lag > ch.MaxLagBytes:
			flag(Yellow, fmt.Sprintf("replication lag %d bytes, above %d", lag, ch.MaxLagBytes))
		}
	}
	if cl.Pause {
		flag(Yellow, "the cluster is paused: no automatic failover")
	}
	if len(reasons) == 0 {
		switch {
		case isLeader:
			reasons = []string{fmt.Sprintf("%s, %s", me.Role, me.State)}
		default:
			reasons = []string{fmt.Sprintf("%s, %s, lag %d bytes", me.Role, me.State, lag)}
		}
	}
	s.Status, s.Reason = status, strings.Join(reasons, "; ")
}

// parseLag reads a member's lag: bytes, "unknown", or absent (the leader).
// text is set when Patroni gave a string.
func parseLag(raw json.RawMessage) (lag int64, known bool, text string) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, ""
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if v, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return v, true, ""
		}
	}
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		if v, err := strconv.ParseInt(str, 10, 64); err == nil {
			return v, true, ""
		}
		return 0, false, str
	}
	return 0, false, string(raw)
}

func orUnknown(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}
