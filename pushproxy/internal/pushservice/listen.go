package pushservice

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Cross-process wake-ups: every process LISTENs on notifyChannel over a
// connection of its own (a pooled one could not wait), and re-scans its
// sockets' mailboxes now and then, and at once after the LISTEN connection
// comes back, so that a lost notification delays a message but never
// strands it.

const (
	// listenAppName shows the LISTEN connection in pg_stat_activity.
	listenAppName = "garrison-pushproxy-listen"
	// listenCheck is how long the LISTEN connection may be silent before
	// it is pinged, so a dead TCP connection is noticed.
	listenCheck = time.Minute
	// rescanBatch bounds the uaids of one re-scan query.
	rescanBatch = 1000
)

// connectListener opens the dedicated connection and LISTENs.
func (s *Service) connectListener(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// listenLoop dispatches notifications, reconnecting with backoff whenever
// the connection is lost, until ctx ends. It owns conn.
func (s *Service) listenLoop(ctx context.Context, conn *pgx.Conn) {
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	backoff := minBackoff
	for {
		if conn != nil {
			err := s.receive(ctx, conn)
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = conn.Close(closeCtx)
			cancel()
			conn = nil
			if ctx.Err() != nil {
				return
			}
			s.metrics.reconnects.Inc()
			s.log.Warn("push service lost its LISTEN connection; reconnecting", "err", err)
		}
		// Full jitter, so that proxies cut off together do not come back
		// together.
		t := time.NewTimer(rand.N(backoff) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		var err error
		conn, err = s.connectListener(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("push service could not reopen its LISTEN connection", "err", err)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		s.log.Info("push service LISTEN connection restored")
		s.requestRescan() // whatever was notified meanwhile is lost
	}
}

// receive dispatches notifications until the connection fails or ctx ends.
func (s *Service) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.dispatch(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pctx)
			pcancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// dispatch acts on one notification (see notifyChannel) for the sockets
// held here. It never blocks.
func (s *Service) dispatch(payload string) {
	kind, rest, _ := strings.Cut(payload, " ")
	switch kind {
	case "w":
		if validUAID(rest) {
			s.hub.wake(rest)
		}
	case "k":
		uaid, g, _ := strings.Cut(rest, " ")
		if gen, err := strconv.ParseInt(g, 10, 64); err == nil && validUAID(uaid) {
			s.hub.kick(uaid, gen)
		}
	case "d":
		uaid, rest, _ := strings.Cut(rest, " ")
		g, frame, _ := strings.Cut(rest, " ")
		if gen, err := strconv.ParseInt(g, 10, 64); err == nil && validUAID(uaid) && frame != "" {
			s.hub.deliver(uaid, gen, []byte(frame))
		}
	default:
		s.log.Debug("push service ignored a notification", "kind", truncate(kind, 8))
	}
}

// requestRescan makes the re-scan loop run now.
func (s *Service) requestRescan() {
	select {
	case s.rescan <- struct{}{}:
	default:
	}
}

// rescanLoop wakes the sockets whose devices have mail, every
// RescanInterval and when asked, until ctx ends.
func (s *Service) rescanLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.RescanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.rescan:
		}
		if err := s.rescanOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("push service re-scan failed", "err", err)
		}
	}
}

func (s *Service) rescanOnce(ctx context.Context) error {
	uaids := s.hub.uaids()
	now := s.now()
	for len(uaids) > 0 {
		batch := uaids[:min(len(uaids), rescanBatch)]
		uaids = uaids[len(batch):]
		qctx, cancel := context.WithTimeout(ctx, dbTimeout)
		withMail, err := s.devicesWithMail(qctx, batch, now)
		if err == nil {
			err = s.touchDevices(qctx, batch, now)
		}
		cancel()
		if err != nil {
			return err
		}
		for _, u := range withMail {
			s.hub.wake(u)
		}
	}
	return nil
}
