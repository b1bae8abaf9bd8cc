package pushservice

import (
	"context"
	"fmt"
	"time"
)

// The sweeper: every process runs it; the deletes skip rows another
// process's sweeper holds, so they neither wait for nor deadlock with each
// other, and whatever one misses the next sweep takes.

const (
	sweepBatch      = 1000
	sweepMaxBatches = 100 // per kind and sweep: a backlog is worked off over several sweeps
)

func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		if _, err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("push service sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepResult counts what one sweep removed.
type sweepResult struct {
	expired    int64 // messages past their TTL
	devices    int64 // devices idle past DeviceIdleTimeout
	tombstones int64 // tombstones older than TombstoneRetention
}

// sweep deletes expired messages, forgets idle devices (their
// subscriptions become tombstones) and deletes old tombstones, then
// refreshes the mailbox depth gauge and drops idle rate-limit buckets.
func (s *Service) sweep(ctx context.Context) (sweepResult, error) {
	now := s.now()
	var res sweepResult
	const (
		expired = `DELETE FROM ps_messages WHERE id IN (
		SELECT id FROM ps_messages WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
		idle = `WITH d AS (
			DELETE FROM ps_devices WHERE uaid IN (
				SELECT uaid FROM ps_devices WHERE last_seen < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
			RETURNING uaid
		), t AS (
			UPDATE ps_subscriptions SET removed_at = $3
			WHERE uaid IN (SELECT uaid FROM d) AND removed_at IS NULL
		), m AS (
			DELETE FROM ps_messages WHERE uaid IN (SELECT uaid FROM d)
		)
		SELECT count(*) FROM d`
		tombstones = `DELETE FROM ps_subscriptions WHERE cap IN (
		SELECT cap FROM ps_subscriptions WHERE removed_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
		depth = `SELECT count(*) FROM ps_messages WHERE expires_at > $1`
	)
	for range sweepMaxBatches {
		tag, err := s.pool.Exec(ctx, expired, now, sweepBatch)
		if err != nil {
			return res, fmt.Errorf("pushservice: sweep expired messages: %w", err)
		}
		res.expired += tag.RowsAffected()
		if tag.RowsAffected() < sweepBatch {
			break
		}
	}
	for range sweepMaxBatches {
		var n int64
		if err := s.pool.QueryRow(ctx, idle, now.Add(-s.opts.DeviceIdleTimeout), sweepBatch, now).Scan(&n); err != nil {
			return res, fmt.Errorf("pushservice: sweep idle devices: %w", err)
		}
		res.devices += n
		if n < sweepBatch {
			break
		}
	}
	for range sweepMaxBatches {
		tag, err := s.pool.Exec(ctx, tombstones, now.Add(-s.opts.TombstoneRetention), sweepBatch)
		if err != nil {
			return res, fmt.Errorf("pushservice: sweep tombstones: %w", err)
		}
		res.tombstones += tag.RowsAffected()
		if tag.RowsAffected() < sweepBatch {
			break
		}
	}
	var n int64
	if err := s.pool.QueryRow(ctx, depth, now).Scan(&n); err != nil {
		return res, fmt.Errorf("pushservice: mailbox depth: %w", err)
	}
	s.metrics.depth.Set(float64(n))
	s.metrics.expired.Add(float64(res.expired))
	s.subRate.prune(now)
	s.keyRate.prune(now)
	if res != (sweepResult{}) {
		s.log.Info("push service swept", "expired_messages", res.expired, "idle_devices", res.devices, "tombstones", res.tombstones)
	}
	return res, nil
}
