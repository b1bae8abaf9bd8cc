package debcontrol

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	ps, err := Parse(strings.NewReader("\r\n\r\nPackage: b\r\nVersion: 2\r\nDescription: short\r\n long: text\r\n\r\n\r\npackage: a\nArchitecture: all"))
	require.NoError(t, err)
	require.Len(t, ps, 2)
	require.Equal(t, "b", ps[0].Get("Package"))
	require.Equal(t, "short", ps[0].Get("description"), "continuation lines are not fields")
	require.Len(t, ps[0], 3)
	require.Equal(t, "a", ps[1].Get("Package"), "field names match without case")
	require.Equal(t, "", ps[1].Get("Version"))

	ps, err = Parse(strings.NewReader(""))
	require.NoError(t, err)
	require.Empty(t, ps)

	for input, want := range map[string]string{
		"Package: a\nno colon here\n": "line 2: want \"Field: value\"",
		" leading continuation\n":     "line 1: a continuation line with no field",
		"Package: a\n: no name\n":     "line 2: want",
	} {
		_, err := Parse(strings.NewReader(input))
		require.ErrorContains(t, err, want, input)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("Package: a\nVersion: 1\n\nPackage: b\n")
	f.Add(" x\n")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range ps {
			require.NotEmpty(t, p, "no empty paragraphs")
		}
	})
}

func TestScanStopsAtTheCallersError(t *testing.T) {
	t.Parallel()
	seen := 0
	err := Scan(strings.NewReader("A: 1\n\nA: 2\n\nA: 3\n"), func(p Paragraph) error {
		seen++
		if p.Get("A") == "2" {
			return errStop
		}
		return nil
	})
	require.ErrorIs(t, err, errStop)
	require.Equal(t, 2, seen)
	_, err = Parse(strings.NewReader("Package : a\n"))
	require.ErrorContains(t, err, "line 1: want", "a field name with a space is malformed")
}

var errStop = errors.New("stop")
