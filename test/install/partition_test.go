package install

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/test/testbed"
)

// dbNodes are the HA site's database nodes.
var dbNodes = []string{"app1", "app2", "app3"}

// member is one member of Patroni's GET /cluster.
type member struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Timeline int    `json:"timeline"`
	Lag      any    `json:"lag"`
}

// patroni reads GET /cluster from the Patroni REST API of node.
func (s *haSite) patroni(ctx context.Context, node string) ([]member, error) {
	var c struct{ Members []member }
	err := s.patroniGet(ctx, node, "/cluster", &c)
	return c.Members, err
}

// patroniGet reads path from the Patroni REST API of node, from the
// admin's workstation, trusting the site CA.
func (s *haSite) patroniGet(ctx context.Context, node, path string, v any) error {
	caPEM, err := os.ReadFile(s.caFile())
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	from := s.nodes["admin"]
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:     from.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+s.nodes[node].HostPort(8008)+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// /patroni answers 503 on a node whose Postgres is not running, with
	// the same body.
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return fmt.Errorf("%s: GET %s: %s", node, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// settled returns the leader when, seen from node, every db node is a
// member, one of them the leader, and the others stream from it with no
// lag (in synchronous mode one of them as the sync standby).
func (s *haSite) settled(ctx context.Context, node string) (string, error) {
	ms, err := s.patroni(ctx, node)
	if err != nil {
		return "", err
	}
	leader, streaming, sync := "", 0, 0
	for _, m := range ms {
		switch {
		case m.Role == "leader" && m.State == "running":
			leader = m.Name
		// Patroni 3.0.2 says "running" for a replica ("streaming" is
		// newer); the lag says it is caught up.
		case (m.Role == "replica" || m.Role == "sync_standby") && (m.State == "running" || m.State == "streaming") && fmt.Sprint(m.Lag) == "0":
			streaming++
			if m.Role == "sync_standby" {
				sync++
			}
		}
	}
	if leader == "" || streaming != len(dbNodes)-1 || sync == 0 {
		return "", fmt.Errorf("not settled: %+v", ms)
	}
	return leader, nil
}

// psql runs one query as postgres over the node's local socket (outside
// any pg_hba network rule) and returns its unaligned output.
func (s *haSite) psql(ctx context.Context, node, db, query string) (string, error) {
	out, err := s.machines[node].Exec(ctx, "runuser", "-u", "postgres", "--", "psql", "-XqtA", "-d", db, "-c", query)
	return strings.TrimSpace(out), err
}

// primaries probes every db node at once and returns those that are
// writable primaries: they accept a connection and are not in recovery.
func (s *haSite) primaries(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out []string
	)
	for _, n := range dbNodes {
		wg.Go(func() {
			if v, err := s.psql(ctx, n, "postgres", "select pg_is_in_recovery()"); err == nil && v == "f" {
				mu.Lock()
				out = append(out, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// writer posts to a channel through nginx, one post per tick, and keeps
// the ids of the posts the site acknowledged (201 Created).
type writer struct {
	r      *rest
	chanID string

	mu     sync.Mutex
	acked  []string
	failed int
	last   error
}

func (w *writer) run(ctx context.Context, maxPosts int, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := 0; i < maxPosts; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, err := w.post(ctx, i)
		w.mu.Lock()
		if err != nil {
			w.failed++
			w.last = err
		} else {
			w.acked = append(w.acked, id)
		}
		w.mu.Unlock()
	}
}

func (w *writer) post(ctx context.Context, seq int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"channel_id": w.chanID, "message": fmt.Sprintf("write %d", seq)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.r.base+"/api/v4/posts", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.r.token)
	resp, err := w.r.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%s: %s", resp.Status, data)
	}
	var p struct{ ID string }
	if err := json.Unmarshal(data, &p); err != nil || p.ID == "" {
		return "", fmt.Errorf("created post without an id: %s", data)
	}
	return p.ID, nil
}

func (w *writer) counts() (acked, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked), w.failed
}

// Scenario 3: the split-brain guard. Under a steady write load in
// synchronous mode, the Patroni leader is cut off from the other db nodes
// (the admin and nginx still reach it). A new leader takes over; at no
// probe is more than one node a writable primary; after the heal the old
// leader rejoins as a replica through pg_rewind; no acknowledged post is
// missing and every node's posts equal the primary's.
func partitionLeader(ctx context.Context, t *testing.T, s *haSite, r *rest, chanID string) {
	old, err := s.settled(ctx, "app1")
	require.NoError(t, err, "the database tier is settled before the partition")
	t.Logf("leader before the partition: %s", old)

	w := &writer{r: r, chanID: chanID}
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.run(wctx, 3000, 100*time.Millisecond) })
	defer func() { stopWriter(); wg.Wait() }()

	// The probe: every 200 ms, which nodes are writable primaries.
	var (
		pmu      sync.Mutex
		rounds   int
		overlaps []string
	)
	pctx, stopProbe := context.WithCancel(ctx)
	var pg sync.WaitGroup
	pg.Go(func() {
		for i := 0; i < 3000; i++ {
			select {
			case <-pctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			p := s.primaries(pctx)
			pmu.Lock()
			rounds++
			if len(p) > 1 {
				overlaps = append(overlaps, fmt.Sprintf("%s: %v", time.Now().Format(time.TimeOnly), p))
			}
			pmu.Unlock()
		}
	})
	defer func() { stopProbe(); pg.Wait() }()

	require.NoError(t, poll(ctx, time.Minute, "acknowledged writes before the partition", func(context.Context) error {
		if a, _ := w.counts(); a < 20 {
			return fmt.Errorf("%d acknowledged", a)
		}
		return nil
	}))

	var others []*testbed.Node
	for _, n := range dbNodes {
		if n != old {
			others = append(others, s.nodes[n])
		}
	}
	cut := time.Now()
	require.NoError(t, s.tb.Partition(ctx, s.nodes[old], others...))
	t.Logf("partitioned %s from %v", old, others)

	var newLeader string
	require.NoError(t, poll(ctx, 3*time.Minute, "a new leader among the others", func(ctx context.Context) error {
		for _, o := range others {
			ms, err := s.patroni(ctx, o.Name())
			if err != nil {
				continue
			}
			for _, m := range ms {
				if m.Role == "leader" && m.State == "running" && m.Name != old {
					newLeader = m.Name
					return nil
				}
			}
		}
		return errors.New("none yet")
	}))
	t.Logf("new leader %s after %s", newLeader, time.Since(cut).Round(100*time.Millisecond))

	ackedAtPromotion, _ := w.counts()
	require.NoError(t, poll(ctx, 2*time.Minute, "writes acknowledged by the new leader", func(context.Context) error {
		if a, _ := w.counts(); a < ackedAtPromotion+20 {
			return fmt.Errorf("%d acknowledged since the promotion", a-ackedAtPromotion)
		}
		return nil
	}))

	require.NoError(t, s.tb.Heal(ctx))
	healed := time.Now()
	// From the new leader's side: the old leader's own Patroni keeps
	// showing the cluster as it last saw it until its next loop.
	var leader string
	require.NoError(t, poll(ctx, 3*time.Minute, "the old leader streaming again", func(ctx context.Context) error {
		l, err := s.settled(ctx, newLeader)
		if err != nil {
			return err
		}
		if l == old {
			return fmt.Errorf("%s is the leader again", old)
		}
		leader = l
		var self struct{ Role, State string }
		if err := s.patroniGet(ctx, old, "/patroni", &self); err != nil {
			return err
		}
		if self.Role != "replica" || self.State != "running" {
			return fmt.Errorf("%s says it is %s, %s", old, self.Role, self.State)
		}
		return nil
	}))
	require.NoError(t, poll(ctx, time.Minute, "the old leader streaming from the new one", func(ctx context.Context) error {
		st, err := s.psql(ctx, leader, "postgres", "select state from pg_stat_replication where application_name = '"+old+"'")
		if err != nil || st != "streaming" {
			return fmt.Errorf("%s in %s's pg_stat_replication: %q %v", old, leader, st, err)
		}
		return nil
	}))
	t.Logf("settled %s after the heal, leader %s", time.Since(healed).Round(100*time.Millisecond), leader)

	stopWriter()
	wg.Wait()
	stopProbe()
	pg.Wait()

	acked, failed := w.counts()
	pmu.Lock()
	t.Logf("writer: %d acknowledged, %d failed (last error: %v); probe: %d rounds", acked, failed, w.last, rounds)
	require.Empty(t, overlaps, "more than one writable primary at once")
	require.Greater(t, rounds, 50, "the probe ran throughout")
	pmu.Unlock()

	journal, err := s.machines[old].Journal(ctx, "patroni.service", 0)
	require.NoError(t, err)
	require.Contains(t, journal, "running pg_rewind", "the old leader rejoined through pg_rewind")

	// Every node holds every acknowledged post, and the same posts.
	want := "'" + strings.Join(w.acked, "','") + "'"
	sums := map[string]string{}
	require.NoError(t, poll(ctx, time.Minute, "every replica equal to the primary", func(ctx context.Context) error {
		for _, n := range dbNodes {
			out, err := s.psql(ctx, n, "garrison", fmt.Sprintf(`select
  (select count(*) from unnest(array[%s]) as a(id) where not exists (select 1 from posts p where p.id = a.id)),
  (select count(*) || ' ' || md5(coalesce(string_agg(id || ':' || message, ',' order by id), '')) from posts)`, want))
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			missing, sum, _ := strings.Cut(out, "|")
			if missing != "0" {
				return fmt.Errorf("%s: %s acknowledged posts missing (%q)", n, missing, out)
			}
			sums[n] = sum
		}
		for _, n := range dbNodes[1:] {
			if sums[n] != sums[dbNodes[0]] {
				return fmt.Errorf("posts differ: %v", sums)
			}
		}
		return nil
	}))
	t.Logf("posts on every node: %s", sums[dbNodes[0]])
}
