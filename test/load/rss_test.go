package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr string
	}{
		{"status file", "Name:\tgarrison\nVmPeak:\t  900000 kB\nVmRSS:\t   38124 kB\nRssAnon:\t 20000 kB\n", 38124, ""},
		{"kernel thread", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, "no VmRSS line"},
		{"bad unit", "VmRSS:\t 12 MB\n", 0, "bad VmRSS line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseVmRSS(strings.NewReader(tt.status))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
