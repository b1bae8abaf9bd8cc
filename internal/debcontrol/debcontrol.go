// Package debcontrol reads Debian control data: the paragraphs of
// "Field: value" lines separated by blank lines that apt's Packages
// indexes, `apt-cache show` and a .deb's control file are made of. The
// packaging tool (the lock file) and garrisonctl (bundle inspect) both
// read it.
package debcontrol

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Paragraph is one stanza's single-line fields, keyed by their canonical
// names as written ("Package", "Version", ...). A multi-line field keeps
// its first line only.
type Paragraph map[string]string

// Get returns a field, matching its name without regard to case as
// Debian does.
func (p Paragraph) Get(name string) string {
	if v, ok := p[name]; ok {
		return v
	}
	for k, v := range p {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Parse reads every paragraph of r. A line that is neither blank, a
// continuation (leading space or tab) nor "Field: value" is an error
// naming its line number. CRLF line ends are accepted.
func Parse(r io.Reader) ([]Paragraph, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		out  []Paragraph
		cur  Paragraph
		line int
	)
	for {
		s, err := br.ReadString('\n')
		if s == "" && err != nil {
			if err != io.EOF {
				return nil, fmt.Errorf("control data: %w", err)
			}
			break
		}
		line++
		s = strings.TrimRight(s, "\r\n")
		switch {
		case strings.TrimSpace(s) == "":
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
		case s[0] == ' ' || s[0] == '\t':
			if cur == nil {
				return nil, fmt.Errorf("control data: line %d: a continuation line with no field before it", line)
			}
		default:
			key, value, ok := strings.Cut(s, ":")
			if !ok || strings.TrimSpace(key) == "" {
				return nil, fmt.Errorf("control data: line %d: want \"Field: value\"", line)
			}
			if cur == nil {
				cur = Paragraph{}
			}
			cur[key] = strings.TrimSpace(value)
		}
		if err == io.EOF {
			break
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out, nil
}
