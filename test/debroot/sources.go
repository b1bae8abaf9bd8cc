package debroot

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// aptSource is one (URI, suite) pair of the host's apt configuration.
type aptSource struct {
	Types      []string // "deb", "deb-src"
	URI        string
	Suite      string
	Components []string
	SignedBy   string // a keyring path, or "" (also when the key is inline)
	File       string // where it was found, for error messages
}

// hostSources reads the apt sources configured under etc (normally
// /etc/apt): sources.list and sources.list.d/*.list (one-line format) and
// sources.list.d/*.sources (deb822). The mirror is taken from there and
// never hard-coded, so a machine with a local mirror uses it.
func hostSources(etc string) ([]aptSource, error) {
	var out []aptSource
	// sources.list first, then sources.list.d in name order, as apt.
	lists, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.list"))
	deb822, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.sources"))
	parts := append(lists, deb822...)
	slices.Sort(parts)
	for _, f := range append([]string{filepath.Join(etc, "sources.list")}, parts...) {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(f, ".sources") {
			out = append(out, parseDeb822(string(b), f)...)
		} else {
			out = append(out, parseOneLine(string(b), f)...)
		}
	}
	return out, nil
}

// parseDeb822 parses a .sources file: stanzas of "Field: value" lines
// (continuation lines start with white space), separated by blank lines.
// Every URI x Suite of an enabled stanza is one aptSource.
func parseDeb822(data, file string) []aptSource {
	var out []aptSource
	flush := func(st map[string]string) {
		if len(st) == 0 || strings.EqualFold(strings.TrimSpace(st["enabled"]), "no") {
			return
		}
		signedBy := strings.TrimSpace(st["signed-by"])
		if strings.ContainsAny(signedBy, "\n") || !strings.HasPrefix(signedBy, "/") {
			signedBy = "" // an inline key or a fingerprint list
		}
		for _, uri := range strings.Fields(st["uris"]) {
			for _, suite := range strings.Fields(st["suites"]) {
				out = append(out, aptSource{
					Types:      strings.Fields(st["types"]),
					URI:        uri,
					Suite:      suite,
					Components: strings.Fields(st["components"]),
					SignedBy:   signedBy,
					File:       file,
				})
			}
		}
	}
	st := map[string]string{}
	last := ""
	for _, line := range strings.Split(data, "\n") {
		if strings.TrimSpace(line) == "" {
			flush(st)
			st, last = map[string]string{}, ""
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				st[last] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		st[last] = strings.TrimSpace(v)
	}
	flush(st)
	return out
}

// parseOneLine parses the classic format:
//
//	deb [opt=value ...] uri suite [component ...]
func parseOneLine(data, file string) []aptSource {
	var out []aptSource
	for _, line := range strings.Split(data, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "deb" && f[0] != "deb-src") {
			continue
		}
		s := aptSource{Types: []string{f[0]}, File: file}
		rest := f[1:]
		if strings.HasPrefix(rest[0], "[") {
			// Options may be written "[a=b c=d]" or "[ a=b ]".
			var opts []string
			for len(rest) > 0 {
				w := rest[0]
				rest = rest[1:]
				end := strings.HasSuffix(w, "]")
				if w = strings.Trim(w, "[]"); w != "" {
					opts = append(opts, w)
				}
				if end {
					break
				}
			}
			for _, o := range opts {
				if k, v, ok := strings.Cut(o, "="); ok && k == "signed-by" && strings.HasPrefix(v, "/") {
					s.SignedBy = v
				}
			}
		}
		if len(rest) < 2 {
			continue
		}
		s.URI, s.Suite, s.Components = rest[0], rest[1], rest[2:]
		out = append(out, s)
	}
	return out
}

// pickMirror returns the binary ("deb") source of suite's main component:
// the mirror debootstrap downloads from.
func pickMirror(srcs []aptSource, suite string) (aptSource, error) {
	for _, s := range srcs {
		if s.Suite == suite && slices.Contains(s.Types, "deb") && slices.Contains(s.Components, "main") {
			if err := checkMirrorURI(s.URI); err != nil {
				return aptSource{}, fmt.Errorf("%s: %w", s.File, err)
			}
			return s, nil
		}
	}
	return aptSource{}, fmt.Errorf("no `deb` entry for %s main in /etc/apt/sources.list or /etc/apt/sources.list.d/ (the base root is downloaded from the mirror apt uses)", suite)
}

func checkMirrorURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("mirror URI %q: %w", uri, err)
	}
	switch u.Scheme {
	case "http", "https", "file":
		return nil
	}
	return fmt.Errorf("mirror URI %q: debootstrap cannot use scheme %q (http, https or file)", uri, u.Scheme)
}

// rootSourcesList renders the sources.list of the base root: the host's
// binary sources of suite, suite-updates and suite-security, main only,
// so that the root gets the same (security) updates as the host.
func rootSourcesList(srcs []aptSource, suite string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, want := range []string{suite, suite + "-updates", suite + "-security"} {
		for _, s := range srcs {
			if s.Suite != want || !slices.Contains(s.Types, "deb") || !slices.Contains(s.Components, "main") || checkMirrorURI(s.URI) != nil {
				continue
			}
			line := fmt.Sprintf("deb %s %s main\n", s.URI, s.Suite)
			if !seen[line] {
				seen[line] = true
				b.WriteString(line)
			}
		}
	}
	return b.String()
}
