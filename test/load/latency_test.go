package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1) // 1..100
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 50, 0},
		{"one value", []int64{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50},
		{"p90 of 1..100", hundred, 90, 90},
		{"p99 of 1..100 is rank 99, not 100", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"tiny p is the min", hundred, 0.001, 1},
		{"p50 of two rounds down", []int64{1, 2}, 50, 1},
		{"p50 of three is the middle", []int64{1, 2, 3}, 50, 2},
		{"p99 of ten is the max", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
		{"p90 of ten", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, percentile(tt.sorted, tt.p))
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	ms := int64(time.Millisecond)
	// Unsorted on purpose: summarize sorts.
	lat := []int64{40 * ms, 10 * ms, 30 * ms, 20 * ms, 100 * ms, 60 * ms, 50 * ms, 90 * ms, 70 * ms, 80 * ms}
	require.Equal(t, latencySummary{Count: 10, P50: 50, P90: 90, P99: 100, Max: 100}, summarize(lat))
	require.Equal(t, latencySummary{}, summarize(nil))
}
