package postgres

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPick covers the rules of replicaSet.pick on a hand-made state: the
// lag bound at the moment of the read, a writer's note, the search
// replicas first, and the floor that replaces dropped notes.
func TestPick(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	rs := &replicaSet{lagMax: time.Second, marks: map[string]time.Time{}}
	plain := &replica{name: "r1", fresh: t0}
	search := &replica{name: "s1", search: true, fresh: t0.Add(-500 * time.Millisecond)}
	rs.all = []*replica{search, plain}

	require.Same(t, plain, rs.pick("u", false, t0))
	require.Same(t, search, rs.pick("u", true, t0))
	// 900 ms later the search replica's fresh time is older than the
	// bound; the plain one's is not.
	require.Same(t, plain, rs.pick("u", true, t0.Add(900*time.Millisecond)))
	require.Nil(t, rs.pick("u", false, t0.Add(1100*time.Millisecond)), "everything too old")

	// A write noted after the replicas' fresh times keeps its author off them.
	rs.mark("alice", t0.Add(time.Millisecond))
	require.Nil(t, rs.pick("alice", false, t0))
	require.Same(t, plain, rs.pick("bob", false, t0))
	plain.fresh = t0.Add(2 * time.Millisecond)
	require.Same(t, plain, rs.pick("alice", false, t0.Add(3*time.Millisecond)))

	// A failed probe clears what is known.
	plain.err = ErrNotReplica
	require.Nil(t, rs.pick("bob", false, t0))
	plain.err = nil

	// Notes older than the bound are pruned: rotation alone covers them.
	rs.pruneLocked(t0.Add(2 * time.Second))
	require.Empty(t, rs.marks)

	// Several fit: turn by turn, and a read costs no allocation.
	other := &replica{name: "r2", fresh: t0}
	rs.all = []*replica{search, plain, other}
	first, second := rs.pick("bob", false, t0), rs.pick("bob", false, t0)
	require.ElementsMatch(t, []*replica{plain, other}, []*replica{first, second})
	require.Same(t, first, rs.pick("bob", false, t0))
}

// TestPickDoesNotAllocate: pick runs on every replica read. Not parallel:
// AllocsPerRun counts the whole process's allocations.
func TestPickDoesNotAllocate(t *testing.T) {
	t0 := time.Now()
	rs := &replicaSet{lagMax: time.Second, marks: map[string]time.Time{"alice": t0.Add(-time.Second)}}
	rs.all = []*replica{{name: "s1", search: true, fresh: t0}, {name: "r1", fresh: t0}, {name: "r2", fresh: t0}}
	require.Zero(t, testing.AllocsPerRun(100, func() {
		rs.pick("alice", true, t0)
		rs.pick("bob", false, t0)
	}))
}

func TestMarksAreBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	rs := &replicaSet{lagMax: time.Hour, marks: map[string]time.Time{}}
	r := &replica{fresh: t0.Add(maxMarks * time.Microsecond)}
	rs.all = []*replica{r}
	for i := range maxMarks {
		rs.mark("u"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Microsecond))
	}
	require.Len(t, rs.marks, maxMarks)
	require.True(t, rs.floor.IsZero())
	rs.mark("one more", t0.Add(2*maxMarks*time.Microsecond))
	require.LessOrEqual(t, len(rs.marks), maxMarks)
	require.False(t, rs.floor.IsZero(), "a dropped note holds everyone instead")
	// Everyone is held to the floor: stricter, never staler.
	require.Equal(t, rs.pick("stranger", false, t0.Add(time.Second)) != nil, !r.fresh.Before(rs.floor))
}

func TestNotesEpochHoldsReads(t *testing.T) {
	t.Parallel()
	rs := &replicaSet{lagMax: time.Hour, marks: map[string]time.Time{}}
	s := &Store{replicas: rs}
	before := time.Now()
	s.NotesEpoch(7)
	require.False(t, rs.floor.Before(before), "the first epoch seen: notes sent before may be missing")
	first := rs.floor
	s.NotesEpoch(7)
	require.Equal(t, first, rs.floor)
	s.NotesEpoch(8)
	require.True(t, rs.floor.After(first) || rs.floor.Equal(first))
}

// TestOpenRejectsABadReplicaDSN: the error names the setting and entry to
// fix, and never the DSN, which may hold a password.
func TestOpenRejectsABadReplicaDSN(t *testing.T) {
	t.Parallel()
	const good = "postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable"
	for _, tt := range []struct {
		name string
		o    PoolOptions
		want string
	}{
		{"replica", PoolOptions{Replicas: []string{good, "postgres://u:s3cret@db:notaport/db"}},
			"SqlSettings.DataSourceReplicas entry 1"},
		{"search replica", PoolOptions{SearchReplicas: []string{"host=db port=x password=s3cret"}},
			"SqlSettings.DataSourceSearchReplicas entry 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.o.DataSource, tt.o.ReplicaLagMax = good, time.Second
			s, err := Open(t.Context(), tt.o)
			require.Nil(t, s)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}
