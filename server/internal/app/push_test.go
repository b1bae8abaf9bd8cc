package app

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/push"
)

// blockingSender acknowledges nothing until its context ends.
type blockingSender struct {
	push.Sender
	started chan struct{}
	once    sync.Once
}

func (b *blockingSender) Ack(ctx context.Context, _ *push.Ack) error {
	b.once.Do(func() { close(b.started) })
	<-ctx.Done()
	return ctx.Err()
}

func testQueueApp() *App { return &App{log: slog.New(slog.DiscardHandler), now: time.Now} }

func ackJob(id string) pushJob {
	return pushJob{kind: jobAck, ack: &push.Ack{ID: id, Platform: "android", Type: push.TypeMessage}}
}

func TestPushQueueDropsWhenFull(t *testing.T) {
	t.Parallel()
	a := testQueueApp()
	q := newPushQueue(a, push.NewFake(push.FakeOptions{}), 2, 1)
	// Not started: nothing drains, and enqueueing still never waits.
	var accepted int
	for i := range 5 {
		if q.enqueue(ackJob(string(rune('a' + i)))) {
			accepted++
		}
	}
	require.Equal(t, 2, accepted)
	require.Equal(t, PushStats{Queued: 2, Dropped: 3}, q.Stats())

	var nilQueue *PushQueue
	require.False(t, nilQueue.enqueue(ackJob("x")), "push off")
	require.Equal(t, PushStats{}, nilQueue.Stats())
	require.NoError(t, nilQueue.Start(context.Background()))
	require.NoError(t, nilQueue.Stop(context.Background()))
}

func TestPushQueueDrainsOnStop(t *testing.T) {
	t.Parallel()
	fake := push.NewFake(push.FakeOptions{})
	q := newPushQueue(testQueueApp(), fake, 100, 2)
	for i := range 20 {
		require.True(t, q.enqueue(ackJob(string(rune('a'+i)))))
	}
	require.NoError(t, q.Start(context.Background()))
	require.Error(t, q.Start(context.Background()), "started twice")
	require.NoError(t, q.Stop(context.Background()))
	require.Len(t, fake.Acks(), 20, "every queued job ran before Stop returned")
	require.False(t, q.enqueue(ackJob("late")), "a stopped queue takes nothing")
	require.Equal(t, uint64(1), q.Stats().Dropped)
	require.NoError(t, q.Stop(context.Background()), "stopping twice is harmless")
}

func TestPushQueueStopCancelsWhenOutOfTime(t *testing.T) {
	t.Parallel()
	b := &blockingSender{started: make(chan struct{})}
	q := newPushQueue(testQueueApp(), b, 10, 1)
	require.NoError(t, q.Start(context.Background()))
	require.True(t, q.enqueue(ackJob("stuck")))
	require.True(t, q.enqueue(ackJob("waiting")))
	<-b.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The stuck send is cancelled; Stop returns, saying it ran out of time.
	require.ErrorIs(t, q.Stop(ctx), context.DeadlineExceeded)
}
