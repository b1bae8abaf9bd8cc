package push

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
)

// FakeOptions configure a Fake.
type FakeOptions struct {
	// Secret, when set, is the sender secret the fake requires, as the
	// proxy's SenderSecret does.
	Secret string
	// AllowedHosts are the hosts (host or host:port) a subscription's
	// endpoint may point to; empty allows any.
	AllowedHosts []string
}

// Fake is an in-process push proxy for tests: it answers as
// garrison-pushproxy does (webpush registrations, legacy platforms
// refused) and records what it was sent. The Fake itself is a Sender
// presenting the right secret; WithSecret gives one presenting another.
type Fake struct {
	secret  string
	allowed []string
	vapid   string

	mu      sync.Mutex // guards the fields below
	regs    map[string]Subscription
	sent    []Notification
	acks    []Ack
	answers map[string]Response
	failing error
	changed chan struct{}
}

var _ Sender = (*Fake)(nil)

// NewFake returns a fake proxy with a fresh VAPID key.
func NewFake(o FakeOptions) *Fake {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("push: fake: generate VAPID key: %v", err)) // crypto/rand does not fail
	}
	return &Fake{
		secret: o.Secret, allowed: o.AllowedHosts,
		vapid:   base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		regs:    map[string]Subscription{},
		answers: map[string]Response{},
		changed: make(chan struct{}),
	}
}

// WithSecret returns a Sender for this fake that presents secret.
func (f *Fake) WithSecret(secret string) Sender { return fakeClient{f: f, secret: secret} }

// Send implements Sender with the right secret.
func (f *Fake) Send(ctx context.Context, n *Notification) (Response, error) {
	return f.WithSecret(f.secret).Send(ctx, n)
}

// Ack implements Sender with the right secret.
func (f *Fake) Ack(ctx context.Context, a *Ack) error { return f.WithSecret(f.secret).Ack(ctx, a) }

// VAPIDPublicKey implements Sender with the right secret.
func (f *Fake) VAPIDPublicKey(ctx context.Context) (string, error) {
	return f.WithSecret(f.secret).VAPIDPublicKey(ctx)
}

// Register implements Sender with the right secret.
func (f *Fake) Register(ctx context.Context, s Subscription) (string, error) {
	return f.WithSecret(f.secret).Register(ctx, s)
}

// Unregister implements Sender with the right secret.
func (f *Fake) Unregister(ctx context.Context, id string) error {
	return f.WithSecret(f.secret).Unregister(ctx, id)
}

// Sent returns a copy of every notification the fake answered, in order.
func (f *Fake) Sent() []Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// Acks returns a copy of every acknowledgement received, in order.
func (f *Fake) Acks() []Ack {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acks)
}

// Registered reports whether id is a live registration.
func (f *Fake) Registered(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.regs[id]
	return ok
}

// Answer makes the fake answer r to every notification for the device
// token (the part of a device id after the platform).
func (f *Fake) Answer(token string, r Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[token] = r
}

// FailWith makes every call fail with err until it is called with nil.
func (f *Fake) FailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = err
}

// Changed returns a channel closed at the next call the fake records
// (a send or an ack), so a test can wait for one without sleeping.
func (f *Fake) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// notifyLocked wakes the waiters of Changed.
func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// fakeClient is a Sender for a Fake presenting one secret.
type fakeClient struct {
	f      *Fake
	secret string
}

// check applies the failures every call shares: the context, a forced
// error and the secret.
func (c fakeClient) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("push: %s at fake: %w", op, err)
	}
	c.f.mu.Lock()
	failing := c.f.failing
	c.f.mu.Unlock()
	if failing != nil {
		return failing
	}
	if c.f.secret != "" && c.secret != c.f.secret {
		return &Error{Op: op, URL: "fake", Kind: ErrUnauthorized, Status: http.StatusUnauthorized, Msg: "bad sender secret"}
	}
	return nil
}

func (c fakeClient) Send(ctx context.Context, n *Notification) (Response, error) {
	if err := c.check(ctx, "send_push"); err != nil {
		return Response{}, err
	}
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.answerLocked(n)
	f.sent = append(f.sent, *n)
	f.notifyLocked()
	return r, nil
}

// answerLocked is what garrison-pushproxy answers to n.
func (f *Fake) answerLocked(n *Notification) Response {
	if r, ok := f.answers[n.DeviceID]; ok {
		return r
	}
	switch platform := BasePlatform(n.Platform); {
	case n.ServerID == "":
		return Response{Status: StatusFail, Error: "missing server Id"}
	case n.DeviceID == "":
		return Response{Status: StatusFail, Error: "missing device Id"}
	case platform == PlatformWebPush:
		if _, ok := f.regs[n.DeviceID]; ok {
			return Response{Status: StatusOK}
		}
		return Response{Status: StatusRemove}
	case IsLegacyPlatform(platform):
		return Response{Status: StatusFail, Error: "platform not available on this network"}
	default:
		return Response{Status: StatusFail, Error: "unknown platform"}
	}
}

func (c fakeClient) Ack(ctx context.Context, a *Ack) error {
	if err := c.check(ctx, "ack"); err != nil {
		return err
	}
	if a.ID == "" || a.Platform == "" || a.Type == "" {
		return &Error{Op: "ack", URL: "fake", Kind: ErrRejected, Status: http.StatusBadRequest, Msg: "id, platform and type are required"}
	}
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, *a)
	f.notifyLocked()
	return nil
}

func (c fakeClient) VAPIDPublicKey(ctx context.Context) (string, error) {
	if err := c.check(ctx, "vapid_public_key"); err != nil {
		return "", err
	}
	return c.f.vapid, nil
}

func (c fakeClient) Register(ctx context.Context, s Subscription) (string, error) {
	const op = "register"
	if err := c.check(ctx, op); err != nil {
		return "", err
	}
	rejected := func(msg string) error {
		return &Error{Op: op, URL: "fake", Kind: ErrRejected, Status: http.StatusBadRequest, Msg: msg}
	}
	if err := s.Validate(); err != nil {
		return "", rejected(err.Error())
	}
	f := c.f
	if u, _ := url.Parse(s.Endpoint); len(f.allowed) > 0 && !slices.Contains(f.allowed, u.Host) && !slices.Contains(f.allowed, u.Hostname()) {
		return "", rejected("push host not allowed: " + u.Host)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// As the proxy does: a browser registering its endpoint again (new
	// keys, or another user on the same browser) keeps its registration.
	for id, old := range f.regs {
		if old.Endpoint == s.Endpoint {
			f.regs[id] = s
			return id, nil
		}
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand does not fail
	id := base64.RawURLEncoding.EncodeToString(b)
	f.regs[id] = s
	return id, nil
}

func (c fakeClient) Unregister(ctx context.Context, id string) error {
	if err := c.check(ctx, "unregister"); err != nil {
		return err
	}
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.regs, id)
	return nil
}
