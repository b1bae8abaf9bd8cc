package pushservice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the Postgres channel every process LISTENs on. Its
// payloads are:
//
//	w <uaid>          new messages for the device: wake its socket
//	k <uaid> <gen>    the device said hello again (conn_gen gen): close older sockets
//	d <uaid> <gen> <frame>  deliver this TTL 0 notification frame to the
//	                  socket of generation gen, now or never
//
// Every process receives every payload and acts only for the sockets it
// holds.
const notifyChannel = "pushproxy_ps"

// Errors of the storage layer; the edges map them to statuses.
var (
	errNotFound      = errors.New("not found")
	errGone          = errors.New("subscription removed")
	errMailboxFull   = errors.New("mailbox full")
	errKeyConflict   = errors.New("channel registered with another key")
	errTooManySubs   = errors.New("too many subscriptions")
	errDeviceUnknown = errors.New("device unknown")
)

// subscription is a row of ps_subscriptions.
type subscription struct {
	cap       string
	uaid      string
	channelID string
	vapidKey  []byte // nil: not bound to a key
	removed   bool
}

// lookupSubscription finds the subscription a capability names, live or a
// tombstone.
func (s *Service) lookupSubscription(ctx context.Context, capability string) (subscription, error) {
	const q = `SELECT uaid, channel_id, vapid_key, removed_at IS NOT NULL
	FROM ps_subscriptions WHERE cap = $1`
	sub := subscription{cap: capability}
	err := s.pool.QueryRow(ctx, q, capability).Scan(&sub.uaid, &sub.channelID, &sub.vapidKey, &sub.removed)
	if errors.Is(err, pgx.ErrNoRows) {
		return subscription{}, errNotFound
	}
	if err != nil {
		return subscription{}, fmt.Errorf("pushservice: look up subscription: %w", err)
	}
	return sub, nil
}

// inbound is a message accepted by the push resource.
type inbound struct {
	sub      subscription
	id       string
	topic    string // "": none
	urgency  string
	ttl      time.Duration
	received time.Time
	body     []byte
}

// placement says where a stored (or TTL 0) message went.
type placement int

const (
	placedOffline placement = iota // no socket anywhere
	placedLocal                    // the device's socket is on this process
	placedRemote                   // another process holds it and was notified
)

// acceptMessage stores m in the mailbox (or, with TTL 0, hands frame to
// the device's socket if it has one) and notifies the process holding the
// device's socket. It returns where the socket is and its generation. The device row is locked first: that orders the
// device's messages by commit, so seq never goes backwards for a reader,
// and serialises this with unregister and the mailbox caps.
func (s *Service) acceptMessage(ctx context.Context, m inbound, frame []byte) (placement, int64, error) {
	const (
		lockDevice = `SELECT node, conn_gen FROM ps_devices WHERE uaid = $1 FOR UPDATE`
		liveSub    = `SELECT removed_at IS NOT NULL FROM ps_subscriptions WHERE cap = $1`
		dropOld    = `DELETE FROM ps_messages WHERE cap = $1 AND (expires_at <= $2 OR topic = $3)`
		usage      = `SELECT count(*), coalesce(sum(octet_length(body)), 0) FROM ps_messages WHERE cap = $1`
		insert     = `INSERT INTO ps_messages (id, cap, uaid, topic, urgency, received_at, expires_at, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
		notify = `SELECT pg_notify($1, $2)`
	)
	var where placement
	var gen int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var node *string
		if err := tx.QueryRow(ctx, lockDevice, m.sub.uaid).Scan(&node, &gen); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return errGone // the device was forgotten meanwhile
			}
			return err
		}
		var removed bool
		if err := tx.QueryRow(ctx, liveSub, m.sub.cap).Scan(&removed); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return errGone
			}
			return err
		}
		if removed {
			return errGone
		}
		switch {
		case node == nil:
			where = placedOffline
		case *node == s.node:
			where = placedLocal
		default:
			where = placedRemote
		}

		if m.ttl == 0 {
			// Now or never: nothing is stored. A remote socket gets the
			// frame itself through the notification (a 4096-byte body
			// makes a payload of about 5.7 KB, under Postgres' 8000).
			// It names the socket's generation, so that a later socket
			// of the device does not get it as a stale delivery.
			if where == placedRemote {
				payload := "d " + m.sub.uaid + " " + strconv.FormatInt(gen, 10) + " " + string(frame)
				_, err := tx.Exec(ctx, notify, notifyChannel, payload)
				return err
			}
			return nil
		}

		var topic any
		if m.topic != "" {
			topic = m.topic
		}
		if _, err := tx.Exec(ctx, dropOld, m.sub.cap, m.received, topic); err != nil {
			return err
		}
		var count, size int
		if err := tx.QueryRow(ctx, usage, m.sub.cap).Scan(&count, &size); err != nil {
			return err
		}
		if count+1 > s.opts.MaxMessagesPerSubscription || size+len(m.body) > s.opts.MaxBytesPerSubscription {
			return errMailboxFull // rolls back the replacement too
		}
		if _, err := tx.Exec(ctx, insert, m.id, m.sub.cap, m.sub.uaid, topic, m.urgency,
			m.received, m.received.Add(m.ttl), m.body); err != nil {
			return err
		}
		if where == placedRemote {
			_, err := tx.Exec(ctx, notify, notifyChannel, "w "+m.sub.uaid)
			return err
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, errGone) || errors.Is(err, errMailboxFull) {
			return 0, 0, err
		}
		return 0, 0, fmt.Errorf("pushservice: accept message: %w", err)
	}
	return where, gen, nil
}

// cancelMessage deletes a pending message (DELETE /m/{id}).
func (s *Service) cancelMessage(ctx context.Context, id string) error {
	const q = `DELETE FROM ps_messages WHERE id = $1`
	tag, err := s.pool.Exec(ctx, q, id)
	if err != nil {
		return fmt.Errorf("pushservice: cancel message: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errNotFound
	}
	return nil
}

// helloDevice attaches a socket to the device requested, if it is known,
// or to a new device. It returns the uaid and the socket's generation, and
// tells the other processes to close older sockets of a known device.
func (s *Service) helloDevice(ctx context.Context, requested string, now time.Time) (uaid string, gen int64, resumed bool, err error) {
	const (
		resume = `UPDATE ps_devices SET conn_gen = conn_gen + 1, node = $2, last_seen = $3
		WHERE uaid = $1 RETURNING conn_gen`
		create = `INSERT INTO ps_devices (uaid, created_at, last_seen, node, conn_gen)
		VALUES ($1, $2, $2, $3, 1)`
		notify = `SELECT pg_notify($1, $2)`
	)
	if validUAID(requested) {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, resume, requested, s.node, now).Scan(&gen); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, notify, notifyChannel, "k "+requested+" "+strconv.FormatInt(gen, 10))
			return err
		})
		if err == nil {
			return requested, gen, true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", 0, false, fmt.Errorf("pushservice: hello: %w", err)
		}
	}
	uaid = newUAID()
	if _, err := s.pool.Exec(ctx, create, uaid, now, s.node); err != nil {
		return "", 0, false, fmt.Errorf("pushservice: hello: %w", err)
	}
	return uaid, 1, false, nil
}

// disconnectDevice records that the socket of generation gen has gone. A
// device left with no live subscription is forgotten at once: Firefox
// sends its uaid only while it has subscriptions, so nothing would ever
// resume it.
func (s *Service) disconnectDevice(ctx context.Context, uaid string, gen int64, now time.Time) error {
	const (
		forget = `DELETE FROM ps_devices WHERE uaid = $1 AND conn_gen = $2
		AND NOT EXISTS (SELECT 1 FROM ps_subscriptions WHERE uaid = $1 AND removed_at IS NULL)`
		offline = `UPDATE ps_devices SET node = NULL, last_seen = $3 WHERE uaid = $1 AND conn_gen = $2`
	)
	tag, err := s.pool.Exec(ctx, forget, uaid, gen)
	if err == nil && tag.RowsAffected() == 0 {
		_, err = s.pool.Exec(ctx, offline, uaid, gen, now)
	}
	if err != nil {
		return fmt.Errorf("pushservice: disconnect: %w", err)
	}
	return nil
}

// registerChannel returns the capability of the device's subscription for
// channelID, creating it (bound to key, if any) when there is none. A
// channel registered again with the same key keeps its endpoint.
func (s *Service) registerChannel(ctx context.Context, uaid, channelID string, key []byte, now time.Time) (string, error) {
	const (
		lockDevice = `SELECT 1 FROM ps_devices WHERE uaid = $1 FOR UPDATE`
		existing   = `SELECT cap, vapid_key FROM ps_subscriptions
		WHERE uaid = $1 AND channel_id = $2 AND removed_at IS NULL`
		count  = `SELECT count(*) FROM ps_subscriptions WHERE uaid = $1 AND removed_at IS NULL`
		insert = `INSERT INTO ps_subscriptions (cap, uaid, channel_id, vapid_key, created_at)
		VALUES ($1, $2, $3, $4, $5)`
	)
	var capability string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, lockDevice, uaid).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return errDeviceUnknown
			}
			return err
		}
		var bound []byte
		err := tx.QueryRow(ctx, existing, uaid, channelID).Scan(&capability, &bound)
		if err == nil {
			if !bytes.Equal(bound, key) {
				return errKeyConflict
			}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, count, uaid).Scan(&n); err != nil {
			return err
		}
		if n >= s.opts.MaxSubscriptionsPerDevice {
			return errTooManySubs
		}
		capability = newCap()
		_, err = tx.Exec(ctx, insert, capability, uaid, channelID, key, now)
		return err
	})
	if err != nil {
		if errors.Is(err, errDeviceUnknown) || errors.Is(err, errKeyConflict) || errors.Is(err, errTooManySubs) {
			return "", err
		}
		return "", fmt.Errorf("pushservice: register: %w", err)
	}
	return capability, nil
}

// unregisterChannel turns the device's subscription for channelID into a
// tombstone and drops its pending messages. Unregistering a channel that
// is not registered succeeds.
func (s *Service) unregisterChannel(ctx context.Context, uaid, channelID string, now time.Time) error {
	const (
		lockDevice = `SELECT 1 FROM ps_devices WHERE uaid = $1 FOR UPDATE`
		remove     = `UPDATE ps_subscriptions SET removed_at = $3
		WHERE uaid = $1 AND channel_id = $2 AND removed_at IS NULL RETURNING cap`
		drop = `DELETE FROM ps_messages WHERE cap = $1`
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, lockDevice, uaid).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // forgotten, so nothing to remove
			}
			return err
		}
		var capability string
		if err := tx.QueryRow(ctx, remove, uaid, channelID, now).Scan(&capability); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		}
		_, err := tx.Exec(ctx, drop, capability)
		return err
	})
	if err != nil {
		return fmt.Errorf("pushservice: unregister: %w", err)
	}
	return nil
}

// ackMessage deletes a message the device acknowledged and returns when it
// was received. A message of another device is left alone (not found).
func (s *Service) ackMessage(ctx context.Context, uaid, id string) (time.Time, error) {
	const q = `DELETE FROM ps_messages WHERE id = $1 AND uaid = $2 RETURNING received_at`
	var received time.Time
	err := s.pool.QueryRow(ctx, q, id, uaid).Scan(&received)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, errNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("pushservice: ack: %w", err)
	}
	return received, nil
}

// pendingMessage is a mailbox row on its way to a socket.
type pendingMessage struct {
	seq       int64
	id        string
	channelID string
	body      []byte
}

// pendingMessages returns up to limit unexpired messages of the device
// after seq, in receive order.
func (s *Service) pendingMessages(ctx context.Context, uaid string, after int64, now time.Time, limit int) ([]pendingMessage, error) {
	const q = `SELECT m.seq, m.id, s.channel_id, m.body
	FROM ps_messages m JOIN ps_subscriptions s ON s.cap = m.cap
	WHERE m.uaid = $1 AND m.seq > $2 AND m.expires_at > $3
	ORDER BY m.seq LIMIT $4`
	rows, err := s.pool.Query(ctx, q, uaid, after, now, limit)
	if err != nil {
		return nil, fmt.Errorf("pushservice: pending messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingMessage, error) {
		var p pendingMessage
		err := r.Scan(&p.seq, &p.id, &p.channelID, &p.body)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("pushservice: pending messages: %w", err)
	}
	return out, nil
}

// devicesWithMail returns which of uaids have unexpired messages.
func (s *Service) devicesWithMail(ctx context.Context, uaids []string, now time.Time) ([]string, error) {
	const q = `SELECT DISTINCT uaid FROM ps_messages WHERE uaid = ANY($1) AND expires_at > $2`
	rows, err := s.pool.Query(ctx, q, uaids, now)
	if err != nil {
		return nil, fmt.Errorf("pushservice: rescan: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pushservice: rescan: %w", err)
	}
	return out, nil
}

// touchDevices refreshes last_seen of the devices connected here, at most
// hourly each, so that a socket open for months does not look idle.
func (s *Service) touchDevices(ctx context.Context, uaids []string, now time.Time) error {
	const q = `UPDATE ps_devices SET last_seen = $2
	WHERE uaid = ANY($1) AND node = $3 AND last_seen < $4`
	if _, err := s.pool.Exec(ctx, q, uaids, now, s.node, now.Add(-time.Hour)); err != nil {
		return fmt.Errorf("pushservice: touch devices: %w", err)
	}
	return nil
}
