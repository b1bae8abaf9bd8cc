package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Hash returns the hex SHA-256 of the canonical JSON of c: fields in declaration order, empty
// lists as [] whether nil or not, settings tagged `node:"local"` left out. Two nodes with equal
// settings have equal hashes.
func (c *Config) Hash() string {
	cp := c.clone()
	for _, sec := range walk(cp) {
		for _, s := range sec.settings {
			if s.local {
				s.value.SetZero()
			}
			if s.value.Kind() == reflect.Slice && s.value.IsNil() {
				s.value.Set(reflect.MakeSlice(s.value.Type(), 0, 0))
			}
		}
	}
	// Marshalling a struct of strings, booleans, integers and string lists cannot fail.
	b, _ := json.Marshal(cp)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Redacted returns a copy of c that is safe to log or show: settings tagged `secret:"full"` are
// replaced by FakeSetting when set, and DSNs (`secret:"dsn"`) keep everything but the password.
// A DSN that cannot be parsed is replaced whole.
func (c *Config) Redacted() *Config {
	cp := c.clone()
	for _, sec := range walk(cp) {
		for _, s := range sec.settings {
			if s.secret != "" {
				redactValue(s.value, s.secret)
			}
		}
	}
	return cp
}

// LogValue implements slog.LogValuer so that logging a Config or *Config never prints a
// secret. The value receiver is deliberate: it puts the method on both types.
func (c Config) LogValue() slog.Value {
	// plainConfig has no LogValue method, so slog does not resolve it again.
	type plainConfig Config
	return slog.AnyValue(plainConfig(*c.Redacted()))
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	cp := *c
	for _, sec := range walk(&cp) {
		for _, s := range sec.settings {
			if s.value.Kind() == reflect.Slice && !s.value.IsNil() {
				s.value.Set(reflect.AppendSlice(reflect.MakeSlice(s.value.Type(), 0, s.value.Len()), s.value))
			}
		}
	}
	return &cp
}

// redactValue masks a string or list of strings in place; mode is the `secret` tag.
func redactValue(v reflect.Value, mode string) {
	mask := func(s string) string {
		if mode == "dsn" {
			return RedactDSN(s)
		}
		if s == "" {
			return ""
		}
		return FakeSetting
	}
	switch {
	case v.Kind() == reflect.String:
		v.SetString(mask(v.String()))
	case v.Type() == stringSliceType:
		for i := range v.Len() {
			e := v.Index(i)
			e.SetString(mask(e.String()))
		}
	default:
		// A secret of another type (a number?) is replaced by its zero value.
		v.SetZero()
	}
}

// urlDSN matches a DSN in URL form: a scheme, then "://" (pgx wants postgres or postgresql;
// any scheme is masked the same way).
var urlDSN = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// passwordKeys are the DSN parameters that hold secrets (pgx and libpq names).
var passwordKeys = []string{"password", "sslpassword"}

// RedactDSN returns dsn with its password, if any, replaced by FakeSetting. It understands the
// URL form (postgres://user:password@host/db?password=...) and libpq's key=value form
// (host=db user=u password='p w'); anything else is replaced whole, as it may be a password.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	var (
		out string
		ok  bool
	)
	if urlDSN.MatchString(dsn) {
		out, ok = redactURLDSN(dsn)
	} else {
		out, ok = redactKeyValueDSN(dsn)
	}
	if !ok {
		return FakeSetting
	}
	return out
}

// redactURLDSN masks the password in the user information and in the query of a URL DSN,
// leaving the rest of the string byte for byte. It cuts the string the way url.Parse does:
// fragment first, then query, then the authority up to the first slash.
func redactURLDSN(dsn string) (string, bool) {
	if _, err := url.Parse(dsn); err != nil {
		return "", false
	}
	rest, fragment, hasFragment := strings.Cut(dsn, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	n := len(urlDSN.FindString(rest)) // the scheme has no '#' or '?', so rest still starts with it
	scheme, authority, path := rest[:n], rest[n:], ""
	if j := strings.IndexByte(authority, '/'); j >= 0 {
		authority, path = authority[:j], authority[j:]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if user, _, hasPassword := strings.Cut(authority[:at], ":"); hasPassword {
			authority = user + ":" + FakeSetting + authority[at:]
		}
	}

	var b strings.Builder
	b.WriteString(scheme + authority + path)
	if hasQuery {
		params := strings.Split(query, "&")
		for k, p := range params {
			key, _, hasValue := strings.Cut(p, "=")
			if uk, err := url.QueryUnescape(key); err == nil {
				key = uk
			}
			if hasValue && slices.Contains(passwordKeys, strings.ToLower(key)) {
				params[k] = p[:strings.IndexByte(p, '=')+1] + FakeSetting
			}
		}
		b.WriteString("?" + strings.Join(params, "&"))
	}
	if hasFragment {
		b.WriteString("#" + fragment)
	}
	return b.String(), true
}

// redactKeyValueDSN masks the password values of a libpq key=value DSN, following libpq's
// conninfo_parse: values are bare words or single-quoted, with backslash escapes in both.
func redactKeyValueDSN(dsn string) (string, bool) {
	var b strings.Builder
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	isKey := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	i, n := 0, len(dsn)
	for {
		start := i
		for i < n && isSpace(dsn[i]) {
			i++
		}
		if i == n {
			b.WriteString(dsn[start:])
			return b.String(), true
		}
		keyStart := i
		for i < n && isKey(dsn[i]) {
			i++
		}
		key := dsn[keyStart:i]
		for i < n && isSpace(dsn[i]) {
			i++
		}
		if key == "" || i == n || dsn[i] != '=' {
			return "", false
		}
		i++
		for i < n && isSpace(dsn[i]) {
			i++
		}
		valueStart := i
		if i < n && dsn[i] == '\'' {
			i++
			for i < n && dsn[i] != '\'' {
				if dsn[i] == '\\' {
					i++
				}
				i++
			}
			if i >= n {
				return "", false // unterminated quote
			}
			i++
		} else {
			for i < n && !isSpace(dsn[i]) {
				if dsn[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, n)
		}
		b.WriteString(dsn[start:valueStart])
		if slices.Contains(passwordKeys, strings.ToLower(key)) {
			b.WriteString(FakeSetting)
		} else {
			b.WriteString(dsn[valueStart:i])
		}
	}
}
