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

// Parse reads every paragraph of r into memory; for input that may be
// large or hostile, Scan stops as soon as the caller has seen enough.
func Parse(r io.Reader) ([]Paragraph, error) {
	var out []Paragraph
	err := Scan(r, func(p Paragraph) error {
		out = append(out, p)
		return nil
	})
	return out, err
}

// Scan calls f with each paragraph of r in turn and stops at f's first
// error, which it returns. A line that is neither blank, a continuation
// (leading space or tab) nor "Field: value" is an error naming its line
// number. CRLF line ends are accepted.
func Scan(r io.Reader, f func(Paragraph) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		cur  Paragraph
		line int
	)
	for {
		s, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("control data: %w", err)
		}
		if s == "" && err == io.EOF {
			break
		}
		line++
		s = strings.TrimRight(s, "\r\n")
		switch {
		case strings.TrimSpace(s) == "":
			if cur != nil {
				if err := f(cur); err != nil {
					return err
				}
				cur = nil
			}
		case s[0] == ' ' || s[0] == '\t':
			if cur == nil {
				return fmt.Errorf("control data: line %d: a continuation line with no field before it", line)
			}
		default:
			key, value, ok := strings.Cut(s, ":")
			if !ok || key == "" || strings.ContainsAny(key, " \t") {
				return fmt.Errorf("control data: line %d: want \"Field: value\"", line)
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
		return f(cur)
	}
	return nil
}
