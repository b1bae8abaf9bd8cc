package install

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The repository copy logs each tenth of a node's bytes once, counting
// resumed prefixes and finished files.
func TestCopyProgress(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	lg, err := openLogger(filepath.Join(t.TempDir(), "install.log"), &out)
	require.NoError(t, err)
	defer lg.Close()
	p := &copyProgress{log: lg, node: "app1", total: 100 << 20}

	small := p.file(10 << 20) // uploaded in two reads
	small(0, 10<<20)
	small(5<<20, 10<<20)
	small(10<<20, 10<<20)
	big := p.file(90 << 20) // resumed at 45 MiB
	big(45<<20, 90<<20)
	big(90<<20, 90<<20)
	big(0, 90<<20) // Upload started it over: it counted already
	big(90<<20, 90<<20)

	require.Equal(t, []string{
		"  app1: copying the repository: 10.0 MiB of 100.0 MiB (10%)",
		"  app1: copying the repository: 55.0 MiB of 100.0 MiB (55%)",
		"  app1: copying the repository: 100.0 MiB of 100.0 MiB (100%)",
	}, strings.Split(strings.TrimRight(out.String(), "\n"), "\n"))
}
