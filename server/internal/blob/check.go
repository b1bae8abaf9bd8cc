package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
)

// checkPrefixKey is where health probes are written.
const checkPrefixKey = "garrison-health-check/"

// check writes a random probe to s, reads it back and deletes it.
func check(ctx context.Context, s Store) error {
	var b [12]byte
	_, _ = rand.Read(b[:])
	key := checkPrefixKey + hex.EncodeToString(b[:])
	want := []byte("garrison health check " + key)
	if err := s.Put(ctx, key, bytes.NewReader(want), int64(len(want)), "text/plain"); err != nil {
		return fmt.Errorf("blob: check: write: %w", err)
	}
	got, rerr := readAll(ctx, s, key)
	derr := s.Delete(ctx, key)
	switch {
	case rerr != nil:
		return fmt.Errorf("blob: check: read: %w", rerr)
	case !bytes.Equal(got, want):
		return fmt.Errorf("blob: check: read back %d bytes that differ from the %d written", len(got), len(want))
	case derr != nil:
		return fmt.Errorf("blob: check: delete: %w", derr)
	}
	return nil
}

func readAll(ctx context.Context, s Store, key string) ([]byte, error) {
	o, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
