package remote

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// quoteRoundTrip is what sh makes of Quote(s).
func quoteRoundTrip(t *testing.T, s string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
	require.NoError(t, err, "sh -c printf %%s %s", Quote(s))
	return string(out)
}

var quoteCases = []string{
	"",
	"plain",
	"two words",
	"it's",
	"''",
	`"double"`,
	`$HOME ${x:-y} $(id) ` + "`id`",
	`back\slash \\ \n`,
	"new\nline\ttab",
	"-n",
	"%s %d %%",
	"*?[a]~",
	"; rm -rf / #",
	"ünïcödé ✓",
	"\x01\x7f\xff",
}

func TestQuote(t *testing.T) {
	t.Parallel()
	require.Equal(t, `''`, Quote(""))
	require.Equal(t, `'it'\''s'`, Quote("it's"))
	for _, s := range quoteCases {
		require.Equal(t, s, quoteRoundTrip(t, s))
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range quoteCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			t.Skip("an argument cannot hold NUL")
		}
		require.Equal(t, s, quoteRoundTrip(t, s))
	})
}
