package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// job is one outbox row with its registration: a notification to deliver.
type job struct {
	ID    int64
	Claim int64 // the claims value of our claim; fences our updates
	Reg   registration

	AckID   string
	Type    string
	Urgency string
	Topic   string
	// Exactly one of Payload (id_only: ids, re-encrypted per attempt) and
	// Ciphertext (full: sealed once at acceptance) is set.
	Payload    []byte
	Ciphertext []byte

	CreatedAt time.Time
	ExpiresAt time.Time
	Attempts  int // failed attempts before this one
}

// dbTimeout bounds the outbox's own statements, which must run even when
// the attempt that led to them was cancelled.
const dbTimeout = 10 * time.Second

func dbContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), dbTimeout)
}

const sqlSupersede = `
DELETE FROM pushproxy_outbox
WHERE registration_id = $1 AND topic = $2 AND (lease_owner = '' OR next_attempt_at <= $3)`

const sqlInsertJob = `
INSERT INTO pushproxy_outbox (registration_id, ack_id, type, urgency, topic, payload, ciphertext,
	created_at, expires_at, next_attempt_at, claims, lease_owner)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id`

// insert stores j in the outbox, replacing notifications of the same topic
// to the same registration that no live worker holds (RFC 8030 §5.4 at our
// end too). With claimed, the row is inserted already leased to this proxy
// for the synchronous first attempt. It returns errNotFound when the
// registration is gone.
func (p *Proxy) insert(ctx context.Context, j *job, claimed bool) error {
	now := j.CreatedAt
	next, claims, owner := now, int64(0), ""
	if claimed {
		next, claims, owner = now.Add(p.lease), 1, p.instance
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if j.Topic != "" {
			if _, err := tx.Exec(ctx, sqlSupersede, j.Reg.ID, j.Topic, now); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, sqlInsertJob, j.Reg.ID, j.AckID, j.Type, j.Urgency, j.Topic, j.Payload, j.Ciphertext,
			j.CreatedAt, j.ExpiresAt, next, claims, owner).Scan(&j.ID)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation: deleted meanwhile
		return errNotFound
	}
	if err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	j.Claim = claims
	return nil
}

// sqlClaim takes up to $2 due rows no other worker holds, and leases them
// by moving their due time to the end of the lease: a worker that dies
// simply lets them fall due again.
const sqlClaim = `
WITH due AS (
	SELECT id FROM pushproxy_outbox
	WHERE next_attempt_at <= $1
	ORDER BY next_attempt_at
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)
UPDATE pushproxy_outbox AS o
SET next_attempt_at = $3, claims = o.claims + 1, lease_owner = $4
FROM due, pushproxy_registrations AS r
WHERE o.id = due.id AND r.id = o.registration_id
RETURNING o.id, o.claims, r.id, r.endpoint, r.p256dh, r.auth, r.vapid_key, r.created_at, r.expires_at,
	o.ack_id, o.type, o.urgency, o.topic, o.payload, o.ciphertext, o.created_at, o.expires_at, o.attempts`

func (p *Proxy) claim(ctx context.Context, limit int) ([]job, error) {
	now := p.now()
	rows, err := p.pool.Query(ctx, sqlClaim, now, limit, now.Add(p.lease), p.instance)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (job, error) {
		var j job
		err := row.Scan(&j.ID, &j.Claim, &j.Reg.ID, &j.Reg.Endpoint, &j.Reg.P256dh, &j.Reg.Auth, &j.Reg.VAPIDKey,
			&j.Reg.CreatedAt, &j.Reg.ExpiresAt, &j.AckID, &j.Type, &j.Urgency, &j.Topic, &j.Payload, &j.Ciphertext,
			&j.CreatedAt, &j.ExpiresAt, &j.Attempts)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	return jobs, nil
}

const sqlDeleteJob = `DELETE FROM pushproxy_outbox WHERE id = $1`

// remove deletes a finished row: sent, refused or expired. It is not
// fenced: whoever finishes a row first finishes it for everyone.
func (p *Proxy) remove(j job) error {
	ctx, cancel := dbContext()
	defer cancel()
	if _, err := p.pool.Exec(ctx, sqlDeleteJob, j.ID); err != nil {
		return fmt.Errorf("outbox: delete: %w", err)
	}
	return nil
}

const sqlReschedule = `
UPDATE pushproxy_outbox
SET next_attempt_at = $3, attempts = attempts + $4, last_status = $5, lease_owner = ''
WHERE id = $1 AND claims = $2`

// reschedule ends our claim with the row due again at next. failed counts
// the attempt towards the backoff; a released claim (shutdown) does not.
// A claim that was lost meanwhile (our lease ran out and another worker
// took the row) changes nothing.
func (p *Proxy) reschedule(j job, next time.Time, failed bool, status int) error {
	ctx, cancel := dbContext()
	defer cancel()
	inc := 0
	if failed {
		inc = 1
	}
	if _, err := p.pool.Exec(ctx, sqlReschedule, j.ID, j.Claim, next, inc, status); err != nil {
		return fmt.Errorf("outbox: reschedule: %w", err)
	}
	return nil
}

const sqlStats = `
SELECT (SELECT count(*) FROM pushproxy_outbox),
       (SELECT min(created_at) FROM pushproxy_outbox),
       (SELECT count(*) FROM pushproxy_registrations)`

// stats refreshes the outbox and registration gauges.
func (p *Proxy) refreshStats(ctx context.Context) error {
	var depth, regs int64
	var oldest *time.Time
	if err := p.pool.QueryRow(ctx, sqlStats).Scan(&depth, &oldest, &regs); err != nil {
		return fmt.Errorf("outbox: stats: %w", err)
	}
	p.depth.Store(depth)
	p.m.outboxDepth.Set(float64(depth))
	p.m.registrations.Set(float64(regs))
	age := 0.0
	if oldest != nil {
		age = max(p.now().Sub(*oldest).Seconds(), 0)
	}
	p.m.outboxOldest.Set(age)
	return nil
}
