package main

import (
	"math"
	"slices"
	"time"
)

// latencySummary is the distribution of delivery latencies, in
// milliseconds.
type latencySummary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// summarize sorts lat (nanoseconds) in place and returns its percentiles.
func summarize(lat []int64) latencySummary {
	slices.Sort(lat)
	ms := func(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
	s := latencySummary{Count: len(lat)}
	if len(lat) == 0 {
		return s
	}
	s.P50 = ms(percentile(lat, 50))
	s.P90 = ms(percentile(lat, 90))
	s.P99 = ms(percentile(lat, 99))
	s.Max = ms(lat[len(lat)-1])
	return s
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest value that at least p% of the values are at or
// below. It is 0 for no values.
func percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p*n first: exact for whole p, so 99% of 100 values is rank 99, not 100.
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
