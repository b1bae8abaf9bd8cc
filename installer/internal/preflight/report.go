package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Counts returns how many checks passed, warned and failed.
func (r *Report) Counts() (pass, warn, fail int) {
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			pass++
		case Warn:
			warn++
		default:
			fail++
		}
	}
	return pass, warn, fail
}

// Summary is one line: how many checks on how many nodes, and how they
// ended.
func (r *Report) Summary() string {
	nodes := map[string]bool{}
	for _, c := range r.Checks {
		nodes[c.Node] = true
	}
	pass, warn, fail := r.Counts()
	verdict := "no check failed"
	if fail > 0 {
		verdict = "an install refuses to start until every failure is fixed (or it is forced)"
	}
	return fmt.Sprintf("%s on %s: %d pass, %d warn, %d fail; %s", plural(len(r.Checks), "check"), plural(len(nodes), "node"), pass, warn, fail, verdict)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// WriteTable writes the report as aligned columns, one row per node and
// check, then the summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCHECK\tSTATUS\tDETAIL")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Node, c.Name, c.Status, oneLine(c.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", r.Summary())
	return err
}

// oneLine keeps a detail (which may quote a node's error output) on its
// row, and strips control characters a node could use to rewrite the
// admin's terminal.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return -1
		}
		return r
	}, s)
}

// reportJSON is the JSON shape of a report.
type reportJSON struct {
	Checks []Check `json:"checks"`
	Pass   int     `json:"pass"`
	Warn   int     `json:"warn"`
	Fail   int     `json:"fail"`
	Failed bool    `json:"failed"`
}

// MarshalJSON writes {"checks": [{"node", "check", "status", "detail"}...],
// "pass": n, "warn": n, "fail": n, "failed": bool}.
func (r *Report) MarshalJSON() ([]byte, error) {
	j := reportJSON{Checks: r.Checks, Failed: r.Failed()}
	if j.Checks == nil {
		j.Checks = []Check{}
	}
	j.Pass, j.Warn, j.Fail = r.Counts()
	return json.Marshal(j)
}
