// Command searchbench measures post search over a generated chat corpus:
// it starts a throwaway PostgreSQL cluster (or uses -dsn), migrates it
// with the real migrations (`garrison migrate up`), fills it by COPY
// with users, channels, memberships and posts drawn from a Zipf
// vocabulary, starts garrison on it and times POST
// /api/v4/teams/{id}/posts/search as a user who belongs to ~30 channels.
// It is `make bench-search`, not part of `make test`.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/internal/pgcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("searchbench", flag.ContinueOnError)
	var spec corpusSpec
	fs.IntVar(&spec.Posts, "posts", 1_000_000, "posts to generate")
	fs.IntVar(&spec.Channels, "channels", 200, "channels")
	fs.IntVar(&spec.Users, "users", 2000, "users")
	fs.IntVar(&spec.Vocab, "vocab", 50_000, "vocabulary size")
	fs.IntVar(&spec.MinMember, "min-member", 10, "fewest channels per user")
	fs.IntVar(&spec.MaxMember, "max-member", 50, "most channels per user")
	fs.IntVar(&spec.SearcherChannels, "searcher-channels", 30, "channels of the searching user")
	fs.Uint64Var(&spec.Seed, "seed", 1, "random seed")
	perKind := fs.Int("queries", 40, "queries of each kind")
	slowest := fs.Int("slowest", 0, "also print this many of the slowest queries")
	dsn := fs.String("dsn", "", "an empty database to use instead of a throwaway cluster")
	pgDir := fs.String("pgdir", "", "keep the cluster's data in this directory instead of a throwaway one (start it again on later runs)")
	reuse := fs.Bool("reuse", false, "if the database already holds posts, measure them instead of generating a corpus (the corpus flags must be those that generated it)")
	bin := fs.String("garrison", "bin/garrison", "the garrison binary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	garrison, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stdout, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}

	dir, err := os.MkdirTemp("", "garrison-searchbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	if *dsn == "" {
		pd := filepath.Join(dir, "pg")
		if *pgDir != "" {
			if pd, err = filepath.Abs(*pgDir); err != nil {
				return err
			}
		}
		_, statErr := os.Stat(pd)
		pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: pd})
		if err != nil {
			return err
		}
		defer func() { _ = pg.Stop(context.WithoutCancel(ctx)) }()
		if statErr != nil || !*reuse {
			if err := pg.CreateDatabase(ctx, "searchbench", ""); err != nil {
				return err
			}
		}
		*dsn = pg.DSN("searchbench")
	}
	env := append(os.Environ(), "MM_SQLSETTINGS_DATASOURCE="+*dsn, "MM_LOGSETTINGS_CONSOLELEVEL=WARN",
		"MM_RATELIMITSETTINGS_ENABLE=false", "MM_FILESETTINGS_DIRECTORY="+filepath.Join(dir, "data"))
	mig := exec.CommandContext(ctx, garrison, "migrate", "up")
	mig.Dir, mig.Env = dir, env
	if out, err := mig.CombinedOutput(); err != nil {
		return fmt.Errorf("garrison migrate up: %w\n%s", err, out)
	}

	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t0 := time.Now()
	var existing bool
	if *reuse {
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM posts)`).Scan(&existing); err != nil {
			return err
		}
	}
	var c *corpus
	if existing {
		// The generator is deterministic: run it again without a
		// database to get the corpus the queries are drawn from.
		if c, err = generate(ctx, nil, spec, logf); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `ANALYZE posts`); err != nil {
			return err
		}
		logf("reused the existing corpus")
	} else {
		if c, err = load(ctx, conn, spec, logf); err != nil {
			return err
		}
		logf("generated and indexed in %s", time.Since(t0).Round(time.Second))
	}
	var table, tsIdx, tsCol string
	if err := conn.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('posts')),
		pg_size_pretty(pg_relation_size('posts_message_tsv_idx')),
		pg_size_pretty(sum(pg_column_size(message_tsv))) FROM posts`).Scan(&table, &tsIdx, &tsCol); err != nil {
		return err
	}
	logf("posts table with indexes %s; GIN index %s; tsvector column %s", table, tsIdx, tsCol)

	addr, stopServer, err := startServer(ctx, garrison, dir, env)
	if err != nil {
		return err
	}
	defer stopServer()
	token, err := login(ctx, addr)
	if err != nil {
		return err
	}
	return measure(ctx, stdout, addr, token, c, *perKind, *slowest, spec.Seed)
}

// load generates the corpus with the posts indexes dropped, then builds
// them again from their own definitions: one sort per index instead of a
// million index insertions.
func load(ctx context.Context, conn *pgx.Conn, spec corpusSpec, logf func(string, ...any)) (*corpus, error) {
	rows, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE tablename = 'posts' AND indexname <> 'posts_pkey'`)
	if err != nil {
		return nil, err
	}
	type index struct{ name, def string }
	idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var i index
		return i, r.Scan(&i.name, &i.def)
	})
	if err != nil {
		return nil, err
	}
	for _, i := range idx {
		if _, err := conn.Exec(ctx, `DROP INDEX `+pgx.Identifier{i.name}.Sanitize()); err != nil {
			return nil, err
		}
	}
	c, err := generate(ctx, conn, spec, logf)
	if err != nil {
		return nil, err
	}
	logf("posts copied; building %d indexes", len(idx))
	if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '1GB'`); err != nil {
		return nil, err
	}
	for _, i := range idx {
		if _, err := conn.Exec(ctx, i.def); err != nil {
			return nil, fmt.Errorf("%s: %w", i.name, err)
		}
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return nil, err
	}
	return c, nil
}

func startServer(ctx context.Context, bin, dir string, env []string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(env, "MM_SERVICESETTINGS_LISTENADDRESS="+addr, "MM_SERVICESETTINGS_SITEURL=http://"+addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/v4/system/ping")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addr, stop, nil
			}
		}
		select {
		case <-exited:
			return "", nil, errors.New("garrison exited before answering ping")
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("garrison did not answer ping within 60s")
		}
	}
}

func login(ctx context.Context, url string) (string, error) {
	body, _ := json.Marshal(map[string]string{"login_id": searcherName, "password": searcherPassword})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v4/users/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login: %s: %s", resp.Status, b)
	}
	return resp.Header.Get("Token"), nil
}

// queries builds n searches of each kind from the corpus.
func queries(c *corpus, n int, seed uint64) map[string][]string {
	r := rand.New(rand.NewPCG(seed, 77))
	word := func(lo, hi int) string { return c.vocab[lo+r.IntN(hi-lo)] }
	member := func() (string, string) {
		ch := c.searcherChans[r.IntN(len(c.searcherChans))]
		ms := c.members[ch]
		return c.channelNames[ch], c.usernames[ms[r.IntN(len(ms))]]
	}
	out := map[string][]string{}
	for range n {
		ch, user := member()
		sample := strings.Fields(c.samples[r.IntN(len(c.samples))])
		i := r.IntN(len(sample) - 1)
		mid := word(500, 3000)
		out["common word (rank <50)"] = append(out["common word (rank <50)"], word(0, 50))
		out["mid word (rank 500-3k)"] = append(out["mid word (rank 500-3k)"], mid)
		out["rare word (rank >10k)"] = append(out["rare word (rank >10k)"], word(10000, len(c.vocab)))
		out["common AND mid"] = append(out["common AND mid"], word(0, 50)+" "+mid)
		out["two common, OR"] = append(out["two common, OR"], word(0, 50)+" "+word(0, 50)+" |or")
		out["phrase"] = append(out["phrase"], `"`+sample[i]+" "+sample[i+1]+`"`)
		out["prefix*"] = append(out["prefix*"], mid[:min(4, len(mid))]+"*")
		out["from: + common"] = append(out["from: + common"], "from:"+user+" "+word(0, 50))
		out["in: + mid"] = append(out["in: + mid"], "in:"+ch+" "+mid)
		out["#hashtag"] = append(out["#hashtag"], "#"+word(100, 500))
	}
	return out
}

func measure(ctx context.Context, w io.Writer, url, token string, c *corpus, n, slowest int, seed uint64) error {
	qs := queries(c, n, seed)
	kinds := make([]string, 0, len(qs))
	for k := range qs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	search := func(terms string) (time.Duration, int, error) {
		or := strings.HasSuffix(terms, " |or")
		terms = strings.TrimSuffix(terms, " |or")
		body, _ := json.Marshal(map[string]any{"terms": terms, "is_or_search": or, "per_page": 60})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v4/teams/"+c.teamID+"/posts/search", bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		t := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		d := time.Since(t)
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("search %q: %s: %s", terms, resp.Status, b)
		}
		var res struct{ Order []string }
		if err := json.Unmarshal(b, &res); err != nil {
			return 0, 0, err
		}
		return d, len(res.Order), nil
	}
	// Warm the caches once with every query; the figures are the second
	// pass, in a shuffled order.
	type job struct{ kind, terms string }
	var jobs []job
	for _, k := range kinds {
		for _, q := range qs[k] {
			jobs = append(jobs, job{k, q})
			if _, _, err := search(q); err != nil {
				return err
			}
		}
	}
	rand.New(rand.NewPCG(seed, 99)).Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	lat := map[string][]time.Duration{}
	hits := map[string]int{}
	var all []time.Duration
	type timed struct {
		job
		d time.Duration
		n int
	}
	var times []timed
	for _, j := range jobs {
		d, n, err := search(j.terms)
		if err != nil {
			return err
		}
		times = append(times, timed{j, d, n})
		lat[j.kind] = append(lat[j.kind], d)
		hits[j.kind] += n
		all = append(all, d)
	}
	pct := func(ds []time.Duration, p float64) string {
		s := slices.Clone(ds)
		slices.Sort(s)
		return strconv.FormatFloat(float64(s[int(p*float64(len(s)-1))].Microseconds())/1000, 'f', 1, 64)
	}
	fmt.Fprintf(w, "\n| query kind | n | avg results | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|\n")
	for _, k := range kinds {
		fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %s |\n", k, len(lat[k]), float64(hits[k])/float64(len(lat[k])),
			pct(lat[k], 0.5), pct(lat[k], 0.95), pct(lat[k], 1))
	}
	fmt.Fprintf(w, "| **all** | %d | | %s | %s | %s |\n", len(all), pct(all, 0.5), pct(all, 0.95), pct(all, 1))
	slices.SortFunc(times, func(a, b timed) int { return int(b.d - a.d) })
	for _, t := range times[:min(slowest, len(times))] {
		fmt.Fprintf(w, "%8.1f ms %3d results  %s: %s\n", float64(t.d.Microseconds())/1000, t.n, t.kind, t.terms)
	}
	return nil
}
