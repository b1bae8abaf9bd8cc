package ws

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPublishFanout measures one channel event from Publish until all 500
// member connections have read it.
func BenchmarkPublishFanout(b *testing.B) {
	const n = 500
	members := make([]string, n)
	sessions := make(map[string]Session, n)
	for i := range members {
		members[i] = "user" + strconv.Itoa(i)
		sessions["tok"+strconv.Itoa(i)] = Session{ID: "s" + strconv.Itoa(i), UserID: members[i]}
	}
	e := newEnv(b, func(o *Options) {
		o.Auth = benchAuth(sessions)
		o.Audience = fakeAudience{channels: map[string][]string{"bench": members}}
		o.Shards = 0
	})

	acks := make(chan struct{}, n)
	errs := make(chan error, n)
	for i := range n {
		c, _ := e.connect(b, "tok"+strconv.Itoa(i), "")
		// The run may outlast the ioTimeout deadline that connect set.
		_ = c.ws.SetReadDeadline(time.Time{})
		go func() { // ends when the client is closed at cleanup
			for {
				if _, _, err := c.ws.NextReader(); err != nil {
					errs <- err
					return
				}
				acks <- struct{}{}
			}
		}()
	}
	ctx := context.Background()
	ev := &Event{Name: "posted", Data: map[string]any{
		"post":         `{"id":"p1","channel_id":"bench","message":"hello, world"}`,
		"channel_type": "O", "channel_name": "bench", "sender_name": "@alice", "team_id": "t1",
	}, Broadcast: Broadcast{ChannelID: "bench"}}

	b.ReportAllocs()
	for b.Loop() {
		if err := e.hub.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
		for range n {
			select {
			case <-acks:
			case err := <-errs:
				b.Fatalf("client stopped reading: %v", err)
			}
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
}

type benchAuth map[string]Session

func (a benchAuth) Authenticate(_ context.Context, token string) (Session, error) {
	s, ok := a[token]
	if !ok {
		return Session{}, context.Canceled
	}
	return s, nil
}
