package debroot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecipeKey(t *testing.T) {
	t.Parallel()
	base := defaultRecipe()
	require.Len(t, base.key(), 12)
	require.Equal(t, base.key(), defaultRecipe().key(), "the key is stable")

	tests := []struct {
		name   string
		change func(*recipe)
	}{
		{"version", func(r *recipe) { r.Version++ }},
		{"package added", func(r *recipe) { r.Packages = append(r.Packages, "nginx") }},
		{"package removed", func(r *recipe) { r.Packages = r.Packages[1:] }},
		{"mask added", func(r *recipe) { r.Masked = append(r.Masked, "ssh.service") }},
		{"suite", func(r *recipe) { r.Suite = "trixie" }},
		{"variant", func(r *recipe) { r.Variant = "buildd" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := defaultRecipe()
			tt.change(&r)
			require.NotEqual(t, base.key(), r.key())
			require.NotEqual(t, base.dirName(), r.dirName())
		})
	}
}

// fakeBuild makes a minimal "root" and counts its calls.
func fakeBuild(calls *atomic.Int32, fail error) buildFunc {
	return func(ctx context.Context, tmp string) (string, error) {
		calls.Add(1)
		if err := os.MkdirAll(filepath.Join(tmp, "root", "usr"), 0o755); err != nil {
			return "", err
		}
		if fail != nil {
			return "", fail
		}
		return "http://mirror.invalid/debian", nil
	}
}

func TestEnsureBuildsOnceAndReuses(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	r := defaultRecipe()
	var calls atomic.Int32

	// Concurrent callers (the lock is per open file, so goroutines of one
	// process exclude each other as processes do) get one build.
	const n = 6
	bases := make([]*Base, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := ensure(t.Context(), cache, r, fakeBuild(&calls, nil), t.Logf)
			require.NoError(t, err)
			bases[i] = b
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, calls.Load())
	built := 0
	for _, b := range bases {
		require.Equal(t, bases[0].BuildID, b.BuildID)
		require.Equal(t, filepath.Join(cache, r.dirName(), "root"), b.Root)
		require.Equal(t, r.key(), b.Key)
		if b.Built {
			built++
		}
	}
	require.Equal(t, 1, built, "exactly one call reports the build")

	// A cache hit: no build, the same marker.
	b, err := ensure(t.Context(), cache, r, fakeBuild(&calls, nil), t.Logf)
	require.NoError(t, err)
	require.False(t, b.Built)
	require.Equal(t, bases[0].BuildID, b.BuildID)
	require.EqualValues(t, 1, calls.Load())

	// Another recipe is another root.
	r2 := r
	r2.Version++
	b2, err := ensure(t.Context(), cache, r2, fakeBuild(&calls, nil), t.Logf)
	require.NoError(t, err)
	require.True(t, b2.Built)
	require.NotEqual(t, b.Root, b2.Root)
	require.EqualValues(t, 2, calls.Load())
}

func TestEnsureFailedBuildLeavesNothing(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	r := defaultRecipe()
	var calls atomic.Int32
	boom := errors.New("boom")

	_, err := ensure(t.Context(), cache, r, fakeBuild(&calls, boom), t.Logf)
	require.ErrorIs(t, err, boom)
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	for _, e := range entries {
		require.Equal(t, r.dirName()+".lock", e.Name(), "only the lock file is left")
	}

	b, err := ensure(t.Context(), cache, r, fakeBuild(&calls, nil), t.Logf)
	require.NoError(t, err)
	require.True(t, b.Built)
}

func TestEnsureRemovesUnfinishedBuilds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  func(r recipe) string
	}{
		{"build directory of a dead build", func(r recipe) string { return "." + r.dirName() + ".build-123" }},
		{"final directory without a marker", func(r recipe) string { return r.dirName() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			r := defaultRecipe()
			stale := filepath.Join(cache, tt.dir(r))
			require.NoError(t, os.MkdirAll(filepath.Join(stale, "root", "usr"), 0o755))

			var calls atomic.Int32
			b, err := ensure(t.Context(), cache, r, fakeBuild(&calls, nil), t.Logf)
			require.NoError(t, err)
			require.True(t, b.Built)
			require.EqualValues(t, 1, calls.Load())
			if tt.dir(r) != r.dirName() {
				require.NoDirExists(t, stale)
			}
		})
	}
}

func TestEnsureWaitIsBoundedByContext(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	r := defaultRecipe()
	unlock, err := lockFile(t.Context(), filepath.Join(cache, r.dirName()+".lock"), t.Logf)
	require.NoError(t, err)
	defer unlock()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var calls atomic.Int32
	_, err = ensure(ctx, cache, r, fakeBuild(&calls, nil), t.Logf)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, calls.Load())
}
