package model_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := model.NewID()
		require.True(t, model.IsValidID(id), id)
		require.Regexp(t, `^[ybndrfg8ejkmcpqxot1uwisza345h769]{26}$`, id)
		require.False(t, seen[id])
		seen[id] = true
	}
}

func TestIsValidID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"abcdefghijklmnopqrstuvwxyz", true},
		{"ABCDEFGHIJKLMNOPQRSTUVWXY1", true},
		{"abcdefghijklmnopqrstuvwxy", false},
		{"abcdefghijklmnopqrstuvwxyz1", false},
		{"abcdefghijklmnopqrstuvwxy-", false},
		{"", false},
		{"abcdefghijklmnopqrstuvwxyé", false},
	} {
		require.Equal(t, tc.ok, model.IsValidID(tc.id), tc.id)
	}
}
