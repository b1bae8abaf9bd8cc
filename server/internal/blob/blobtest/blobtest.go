// Package blobtest is the conformance suite every blob.Store implementation
// passes. An implementation's test calls
//
//	blobtest.Run(t, func(t *testing.T) blob.Store { return newEmptyStore(t) })
//
// The factory must return a fresh, empty store for each call; subtests run
// in parallel.
package blobtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/blob"
)

// Run runs the suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Missing", testMissing},
		{"Overwrite", testOverwrite},
		{"RangeViaSeek", testRange},
		{"ServeContent", testServeContent},
		{"List", testList},
		{"ConcurrentPuts", testConcurrentPuts},
		{"FailingReader", testFailingReader},
		{"ShortReader", testShortReader},
		{"CanceledContext", testCanceled},
		{"InvalidKeys", testInvalidKeys},
		{"Check", testCheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// data returns n deterministic pseudo-random bytes.
func data(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n:n]
}

// onlyReader hides any io.Seeker / io.ReaderAt / Len of the underlying
// reader, as a network body would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func put(t *testing.T, s blob.Store, key string, b []byte) {
	t.Helper()
	require.NoError(t, s.Put(t.Context(), key, onlyReader{bytes.NewReader(b)}, int64(len(b)), "application/octet-stream"))
}

func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	o, err := s.Open(t.Context(), key)
	require.NoError(t, err)
	defer func() { require.NoError(t, o.Close()) }()
	b, err := io.ReadAll(o)
	require.NoError(t, err)
	return b
}

func requireMissing(t *testing.T, s blob.Store, key string) {
	t.Helper()
	_, err := s.Stat(t.Context(), key)
	require.ErrorIs(t, err, blob.ErrNotFound, "stat %s", key)
	_, err = s.Open(t.Context(), key)
	require.ErrorIs(t, err, blob.ErrNotFound, "open %s", key)
}

func testRoundTrip(t *testing.T, s blob.Store) {
	tests := []struct {
		name        string
		key         string
		size        int
		knownSize   bool
		contentType string
	}{
		{"empty", "rt/empty", 0, true, "text/plain"},
		{"one byte", "rt/one", 1, true, "text/plain"},
		{"small unknown size", "rt/small-unknown", 1000, false, "image/png"},
		{"1 MiB", "rt/20260101/teams/t/channels/c/users/u/f/big.bin", 1 << 20, true, "application/octet-stream"},
		// Above the 5 MiB part size: a multipart upload on S3.
		{"6 MiB unknown size", "rt/multi-unknown", 6<<20 + 123, false, "application/zip"},
		{"odd name", "rt/dir with space/fïlé (1).png", 10, true, "image/png"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := data(tt.size, uint64(i))
			size := int64(-1)
			if tt.knownSize {
				size = int64(len(want))
			}
			before := time.Now().Add(-time.Minute)
			require.NoError(t, s.Put(t.Context(), tt.key, onlyReader{bytes.NewReader(want)}, size, tt.contentType))

			info, err := s.Stat(t.Context(), tt.key)
			require.NoError(t, err)
			require.Equal(t, tt.key, info.Key)
			require.Equal(t, int64(len(want)), info.Size)
			require.True(t, info.ModTime.After(before), "mod time %v", info.ModTime)
			if info.ContentType != "" {
				require.Equal(t, tt.contentType, info.ContentType)
			}

			o, err := s.Open(t.Context(), tt.key)
			require.NoError(t, err)
			defer o.Close()
			require.Equal(t, info.Key, o.Info().Key)
			require.Equal(t, info.Size, o.Info().Size)
			got, err := io.ReadAll(o)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "contents differ: %d bytes written, %d read", len(want), len(got))
		})
	}
}

func testMissing(t *testing.T, s blob.Store) {
	ctx := t.Context()
	requireMissing(t, s, "nope")
	requireMissing(t, s, "no/such/dir/file")
	require.NoError(t, s.Delete(ctx, "nope"))
	require.NoError(t, s.Delete(ctx, "no/such/dir/file"))

	put(t, s, "gone/file", []byte("x"))
	requireMissing(t, s, "gone") // a "directory" is not an object
	requireMissing(t, s, "gone/file/below")
	require.NoError(t, s.Delete(ctx, "gone"))
	require.NoError(t, s.Delete(ctx, "gone/file"))
	requireMissing(t, s, "gone/file")
	require.NoError(t, s.Delete(ctx, "gone/file"), "second delete")
	list, err := s.List(ctx, "gone/")
	require.NoError(t, err)
	require.Empty(t, list)
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "ow/f", data(5000, 1))
	want := data(300, 2)
	put(t, s, "ow/f", want)
	require.Equal(t, want, get(t, s, "ow/f"))
	info, err := s.Stat(t.Context(), "ow/f")
	require.NoError(t, err)
	require.Equal(t, int64(300), info.Size)
	list, err := s.List(t.Context(), "ow/")
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func testRange(t *testing.T, s blob.Store) {
	want := data(100_000, 3)
	put(t, s, "range/f", want)
	o, err := s.Open(t.Context(), "range/f")
	require.NoError(t, err)
	defer o.Close()

	steps := []struct {
		offset int64
		whence int
		pos    int64
		n      int
	}{
		{1000, io.SeekStart, 1000, 500},
		{-10, io.SeekEnd, 99_990, 10},
		{50_000, io.SeekStart, 50_000, 7},
		{100, io.SeekCurrent, 50_107, 1000},
		{0, io.SeekStart, 0, 3},
		{99_999, io.SeekStart, 99_999, 1},
	}
	for _, st := range steps {
		pos, err := o.Seek(st.offset, st.whence)
		require.NoError(t, err)
		require.Equal(t, st.pos, pos)
		got := make([]byte, st.n)
		_, err = io.ReadFull(o, got)
		require.NoError(t, err)
		require.Equal(t, want[st.pos:st.pos+int64(st.n)], got, "read %d at %d", st.n, st.pos)
	}
	// At the end: EOF.
	_, err = o.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	n, err := o.Read(make([]byte, 10))
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, io.EOF)
}

func testServeContent(t *testing.T, s blob.Store) {
	want := data(20_000, 4)
	put(t, s, "serve/f.bin", want)
	tests := []struct {
		rangeHdr string
		status   int
		body     []byte
	}{
		{"", http.StatusOK, want},
		{"bytes=0-99", http.StatusPartialContent, want[:100]},
		{"bytes=19990-", http.StatusPartialContent, want[19990:]},
		{"bytes=-5", http.StatusPartialContent, want[19995:]},
		{"bytes=30000-", http.StatusRequestedRangeNotSatisfiable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.rangeHdr, func(t *testing.T) {
			o, err := s.Open(t.Context(), "serve/f.bin")
			require.NoError(t, err)
			defer o.Close()
			req := httptest.NewRequest(http.MethodGet, "/f", nil)
			if tt.rangeHdr != "" {
				req.Header.Set("Range", tt.rangeHdr)
			}
			rec := httptest.NewRecorder()
			http.ServeContent(rec, req, "f.bin", o.Info().ModTime, o)
			require.Equal(t, tt.status, rec.Code)
			if tt.body != nil {
				require.Equal(t, tt.body, rec.Body.Bytes())
			}
		})
	}
}

func testList(t *testing.T, s blob.Store) {
	keys := []string{"l/a/b/1", "l/a/b/2", "l/a/bc/3", "l/a/b.txt", "l/a/x", "l/b/1", "l/ab"}
	for i, k := range keys {
		put(t, s, k, data(i+1, uint64(i)))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"l/a/b/", []string{"l/a/b/1", "l/a/b/2"}},
		{"l/a/b", []string{"l/a/b.txt", "l/a/b/1", "l/a/b/2", "l/a/bc/3"}},
		{"l/a/", []string{"l/a/b.txt", "l/a/b/1", "l/a/b/2", "l/a/bc/3", "l/a/x"}},
		{"l/a", []string{"l/a/b.txt", "l/a/b/1", "l/a/b/2", "l/a/bc/3", "l/a/x", "l/ab"}},
		{"l/b/1", []string{"l/b/1"}},
		{"l/zzz/", nil},
		{"nothing", nil},
		{"", []string{"l/a/b.txt", "l/a/b/1", "l/a/b/2", "l/a/bc/3", "l/a/x", "l/ab", "l/b/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			list, err := s.List(t.Context(), tt.prefix)
			require.NoError(t, err)
			var got []string
			for _, info := range list {
				got = append(got, info.Key)
				i := indexOf(keys, info.Key)
				require.Equal(t, int64(i+1), info.Size, info.Key)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func indexOf(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

func testConcurrentPuts(t *testing.T, s blob.Store) {
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			b := data(10_000+i, uint64(100+i))
			errs <- s.Put(context.Background(), fmt.Sprintf("conc/own/%d", i), bytes.NewReader(b), int64(len(b)), "")
			errs <- s.Put(context.Background(), "conc/shared", onlyReader{bytes.NewReader(b)}, -1, "")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range n {
		require.Equal(t, data(10_000+i, uint64(100+i)), get(t, s, fmt.Sprintf("conc/own/%d", i)))
	}
	// The shared key holds exactly one of the writes, whole.
	got := get(t, s, "conc/shared")
	i := len(got) - 10_000
	require.True(t, i >= 0 && i < n, "shared object has %d bytes", len(got))
	require.Equal(t, data(10_000+i, uint64(100+i)), got)
	list, err := s.List(t.Context(), "conc/")
	require.NoError(t, err)
	require.Len(t, list, n+1, "no stray temporary objects")
}

var errBroken = errors.New("reader broke")

// failingReader yields n bytes, then errBroken.
type failingReader struct {
	r io.Reader
}

func newFailingReader(n int) io.Reader {
	return &failingReader{r: io.LimitReader(bytes.NewReader(data(n, 9)), int64(n))}
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errBroken
	}
	return n, err
}

func testFailingReader(t *testing.T, s blob.Store) {
	old := []byte("old contents")
	put(t, s, "fail/existing", old)
	tests := []struct {
		name  string
		key   string
		after int
		size  int64
	}{
		{"unknown size", "fail/a", 1000, -1},
		{"known size", "fail/b", 1000, 5000},
		{"multipart unknown size", "fail/c", 6<<20 + 10, -1},
		{"multipart known size", "fail/d", 6<<20 + 10, 20 << 20},
		{"overwrite keeps old", "fail/existing", 1000, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Put(t.Context(), tt.key, newFailingReader(tt.after), tt.size, "")
			require.Error(t, err)
			if tt.key == "fail/existing" {
				require.Equal(t, old, get(t, s, tt.key))
				return
			}
			requireMissing(t, s, tt.key)
		})
	}
	list, err := s.List(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, list, 1, "only fail/existing: %v", list)
}

func testShortReader(t *testing.T, s blob.Store) {
	err := s.Put(t.Context(), "short/f", bytes.NewReader(make([]byte, 50)), 100, "")
	require.Error(t, err)
	requireMissing(t, s, "short/f")
	err = s.Put(t.Context(), "short/g", onlyReader{bytes.NewReader(make([]byte, 50))}, 100, "")
	require.Error(t, err)
	requireMissing(t, s, "short/g")
}

func testCanceled(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Put(ctx, "canceled/f", bytes.NewReader([]byte("x")), 1, "")
	require.ErrorIs(t, err, context.Canceled)
	requireMissing(t, s, "canceled/f")
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	put(t, s, "valid/inside", []byte("x"))
	keys := []string{
		"", "/abs", "/", "a/../b", "..", "../escape", "valid/../../escape", "a/./b", ".",
		"a//b", "a/", "a\x00b", `a\b`, `..\escape`, ".garrison-tmp-x", "a/.garrison-tmp-1",
		strings.Repeat("k", 2000),
	}
	ctx := t.Context()
	for _, k := range keys {
		t.Run(fmt.Sprintf("%q", k), func(t *testing.T) {
			require.ErrorIs(t, s.Put(ctx, k, strings.NewReader("x"), 1, ""), blob.ErrInvalidKey)
			_, err := s.Open(ctx, k)
			require.ErrorIs(t, err, blob.ErrInvalidKey)
			_, err = s.Stat(ctx, k)
			require.ErrorIs(t, err, blob.ErrInvalidKey)
			require.ErrorIs(t, s.Delete(ctx, k), blob.ErrInvalidKey)
		})
	}
	for _, p := range []string{"/abs", "../", "a/../", "a\x00"} {
		_, err := s.List(ctx, p)
		require.ErrorIs(t, err, blob.ErrInvalidKey, "list %q", p)
	}
	list, err := s.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func testCheck(t *testing.T, s blob.Store) {
	require.NoError(t, s.Check(t.Context()))
	require.NoError(t, s.Check(t.Context()))
	list, err := s.List(t.Context(), "")
	require.NoError(t, err)
	require.Empty(t, list, "the probe is deleted")
}
