package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func TestNextStatus(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	ms := now.UnixMilli()
	tm := statusTiming{away: 5 * time.Minute, activity: time.Minute}
	const u = "u"
	st := func(status string, manual bool, lastAgo time.Duration) *model.Status {
		return &model.Status{UserID: u, Status: status, Manual: manual, LastActivityAt: ms - lastAgo.Milliseconds()}
	}
	dnd := func(end int64, prev string, prevManual bool) *model.Status {
		s := st(model.StatusDND, true, time.Hour)
		s.DNDEndTime, s.PrevStatus, s.PrevManual = end, prev, prevManual
		return s
	}
	set := func(status string) statusInput { return statusInput{kind: inSet, status: status} }

	tests := []struct {
		name string
		cur  *model.Status
		in   statusInput
		want *model.Status // nil: nothing to write
	}{
		// Activity and connections.
		{"activity with no status goes online", nil, statusInput{kind: inActivity}, st(model.StatusOnline, false, 0)},
		{"activity when offline goes online", st(model.StatusOffline, false, time.Hour), statusInput{kind: inActivity}, st(model.StatusOnline, false, 0)},
		{"activity when away goes online", st(model.StatusAway, false, time.Hour), statusInput{kind: inActivity}, st(model.StatusOnline, false, 0)},
		{"recent activity is not written again", st(model.StatusOnline, false, 30*time.Second), statusInput{kind: inActivity}, nil},
		{"older activity is refreshed", st(model.StatusOnline, false, 2*time.Minute), statusInput{kind: inActivity}, st(model.StatusOnline, false, 0)},
		{"activity leaves manual away", st(model.StatusAway, true, time.Hour), statusInput{kind: inActivity}, nil},
		{"activity leaves manual offline", st(model.StatusOffline, true, time.Hour), statusInput{kind: inActivity}, nil},
		{"activity leaves dnd", dnd(0, model.StatusOnline, false), statusInput{kind: inActivity}, nil},
		{"last socket gone goes offline", st(model.StatusOnline, false, time.Minute), statusInput{kind: inDisconnected}, st(model.StatusOffline, false, 0)},
		{"last socket gone from away goes offline", st(model.StatusAway, false, time.Hour), statusInput{kind: inDisconnected}, st(model.StatusOffline, false, 0)},
		{"last socket gone leaves dnd", dnd(0, model.StatusOnline, false), statusInput{kind: inDisconnected}, nil},
		{"last socket gone leaves manual away", st(model.StatusAway, true, time.Hour), statusInput{kind: inDisconnected}, nil},
		{"disconnect without status writes nothing", nil, statusInput{kind: inDisconnected}, nil},
		{"disconnect when offline writes nothing", st(model.StatusOffline, false, time.Hour), statusInput{kind: inDisconnected}, nil},

		// The away sweep and inactivity.
		{"idle online goes away", st(model.StatusOnline, false, 5*time.Minute), statusInput{kind: inIdle}, st(model.StatusAway, false, 5*time.Minute)},
		{"not yet idle stays online", st(model.StatusOnline, false, 4*time.Minute), statusInput{kind: inIdle}, nil},
		{"idle sweep leaves manual online alone", st(model.StatusOnline, true, time.Hour), statusInput{kind: inIdle}, nil},
		{"idle sweep leaves offline", st(model.StatusOffline, false, time.Hour), statusInput{kind: inIdle}, nil},
		{"idle sweep leaves dnd", dnd(0, "", false), statusInput{kind: inIdle}, nil},
		{"client inactive and idle goes away", st(model.StatusOnline, false, 6*time.Minute), statusInput{kind: inInactive}, st(model.StatusAway, false, 6*time.Minute)},
		{"client inactive but recently active stays", st(model.StatusOnline, false, time.Minute), statusInput{kind: inInactive}, nil},
		{"client inactive leaves dnd", dnd(0, "", false), statusInput{kind: inInactive}, nil},

		// Manual choices.
		{"set online clears manual", st(model.StatusAway, true, time.Hour), set(model.StatusOnline), st(model.StatusOnline, false, 0)},
		{"set away is manual and keeps activity", st(model.StatusOnline, false, time.Minute), set(model.StatusAway), st(model.StatusAway, true, time.Minute)},
		{"set offline is manual", st(model.StatusOnline, false, time.Minute), set(model.StatusOffline), st(model.StatusOffline, true, 0)},
		{"set offline with no status", nil, set(model.StatusOffline), &model.Status{UserID: u, Status: model.StatusOffline, Manual: true, LastActivityAt: ms}},
		{"set dnd remembers the previous status", st(model.StatusOnline, false, time.Minute), set(model.StatusDND),
			&model.Status{UserID: u, Status: model.StatusDND, Manual: true, LastActivityAt: ms - time.Minute.Milliseconds(), PrevStatus: model.StatusOnline}},
		{"timed dnd is rounded to the minute", st(model.StatusAway, true, time.Minute),
			statusInput{kind: inSet, status: model.StatusDND, dndEnd: now.Unix() + 3600 + 45},
			&model.Status{UserID: u, Status: model.StatusDND, Manual: true, LastActivityAt: ms - time.Minute.Milliseconds(),
				DNDEndTime: now.Unix() - 30 + 3600 + 60, PrevStatus: model.StatusAway, PrevManual: true}},
		{"dnd again keeps what the first replaced", dnd(0, model.StatusAway, true), set(model.StatusDND), dnd(0, model.StatusAway, true)},
		{"leaving dnd clears its end", dnd(now.Unix()+600, model.StatusAway, false), set(model.StatusOnline), st(model.StatusOnline, false, 0)},
		{"unknown status writes nothing", nil, set("ooo"), nil},

		// DND expiry.
		{"ended dnd returns to online", dnd(now.Unix(), model.StatusOnline, false), statusInput{kind: inDNDExpired},
			&model.Status{UserID: u, Status: model.StatusOnline, LastActivityAt: ms - time.Hour.Milliseconds()}},
		{"ended dnd returns to manual away", dnd(now.Unix()-60, model.StatusAway, true), statusInput{kind: inDNDExpired},
			&model.Status{UserID: u, Status: model.StatusAway, Manual: true, LastActivityAt: ms - time.Hour.Milliseconds()}},
		{"ended dnd without a previous status is offline", dnd(now.Unix()-60, "", false), statusInput{kind: inDNDExpired},
			&model.Status{UserID: u, Status: model.StatusOffline, LastActivityAt: ms - time.Hour.Milliseconds()}},
		{"dnd not over yet", dnd(now.Unix()+60, model.StatusOnline, false), statusInput{kind: inDNDExpired}, nil},
		{"dnd without end never expires", dnd(0, model.StatusOnline, false), statusInput{kind: inDNDExpired}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var before model.Status
			if tt.cur != nil {
				before = *tt.cur
			}
			got := nextStatus(tt.cur, u, tt.in, now, tm)
			require.Equal(t, tt.want, got)
			if tt.cur != nil {
				require.Equal(t, before, *tt.cur, "cur must not change")
			}
		})
	}
}

func TestStatusMemoSkipsActivity(t *testing.T) {
	t.Parallel()
	tr := newStatusTracker()
	const ms = int64(1_000_000)
	require.False(t, tr.activityIsNoop("u", ms, time.Minute), "unknown users go to the database")

	tr.remember(&model.Status{UserID: "u", Status: model.StatusOnline, LastActivityAt: ms})
	require.True(t, tr.activityIsNoop("u", ms+59_000, time.Minute))
	require.False(t, tr.activityIsNoop("u", ms+60_000, time.Minute))

	tr.remember(&model.Status{UserID: "u", Status: model.StatusAway, LastActivityAt: ms})
	require.False(t, tr.activityIsNoop("u", ms+1, time.Minute), "away becomes online")

	tr.remember(&model.Status{UserID: "u", Status: model.StatusDND, Manual: true})
	require.True(t, tr.activityIsNoop("u", ms+1, time.Minute), "manual statuses ignore activity")
}

func TestStatusTiming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		away         time.Duration
		wantAway     time.Duration
		wantActivity time.Duration
	}{
		{0, 300 * time.Second, time.Minute},
		{90 * time.Second, 90 * time.Second, 30 * time.Second},
		{time.Second, time.Second, time.Second},
	}
	for _, tt := range tests {
		a := &App{set: Settings{UserStatusAwayTimeout: tt.away}}
		got := a.statusTiming()
		require.Equal(t, tt.wantAway, got.away)
		require.Equal(t, tt.wantActivity, got.activity)
		require.LessOrEqual(t, got.activity, got.away, "activity must be written well within the away timeout")
	}
}
