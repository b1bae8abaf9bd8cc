package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Paths Lookup tries when neither --config nor MM_CONFIG is set.
const (
	LocalPath  = "./config/config.json"
	SystemPath = "/etc/garrison/config.json"
)

// Lookup returns the path of the config file to load: flagPath (the --config flag) if set, then
// $MM_CONFIG, then LocalPath or SystemPath if stat finds it. It returns "" when there is no
// file, meaning defaults and environment only. Mattermost also accepts a database DSN in both
// places; Garrison reads configuration only from files and says so. A nil stat means os.Stat.
func Lookup(flagPath string, getenv func(string) string, stat func(string) error) (string, error) {
	if stat == nil {
		stat = func(p string) error { _, err := os.Stat(p); return err }
	}
	for _, c := range []struct{ source, path string }{
		{"--config", flagPath},
		{"MM_CONFIG", getenv("MM_CONFIG")},
	} {
		if c.path == "" {
			continue
		}
		if isDatabaseDSN(c.path) {
			// The DSN is not quoted: it holds a password.
			return "", fmt.Errorf("config: %s is a database DSN: configuration in the database is not supported, give the path of a config.json file", c.source)
		}
		return c.path, nil
	}
	for _, p := range []string{LocalPath, SystemPath} {
		err := stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("config: lookup: %w", err)
		}
	}
	return "", nil
}

func isDatabaseDSN(s string) bool {
	s = strings.ToLower(s)
	for _, prefix := range []string{"postgres://", "postgresql://", "mysql://"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// Load builds the configuration: Default, then the file at path (none if path is ""), then the
// MM_<SECTION>_<FIELD> variables from getenv, then Validate. Sections and fields Garrison does
// not use, as in any stock Mattermost config.json, are ignored with one warning; JSON null keeps
// the default. Every bad setting is reported at once: the error wraps FieldErrors (use
// errors.As) unless the file cannot be read or is not a JSON object at all. An empty variable
// counts as unset. A nil getenv reads no variables; a nil logger discards the warning.
func Load(path string, getenv func(string) string, logger *slog.Logger) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := Default()
	var errs FieldErrors
	source := "defaults and environment"
	if path != "" {
		source = path
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: load: %w", err)
		}
		ignored, err := decodeFile(cfg, data, &errs)
		if err != nil {
			return nil, fmt.Errorf("config: load %s: %w", path, err)
		}
		if len(ignored) > 0 {
			logger.Warn("config: ignoring settings garrison does not use", "path", path, "ignored", ignored)
		}
	}
	applyEnv(cfg, getenv, &errs)

	var invalid FieldErrors
	if errors.As(cfg.Validate(), &invalid) {
		// A field that failed to decode still holds its default; do not report it twice.
		for _, fe := range invalid {
			if !slices.ContainsFunc(errs, func(e FieldError) bool { return e.Field == fe.Field }) {
				errs = append(errs, fe)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: load %s:\n%w", source, errs)
	}
	return cfg, nil
}

var utf8BOM = []byte("\xef\xbb\xbf")

// decodeFile overwrites the settings of cfg that data sets. Bad values go to errs; the returned
// error is only for data that is not a JSON object. ignored lists, sorted, the fields of known
// sections and the whole unknown sections that Garrison does not use.
func decodeFile(cfg *Config, data []byte, errs *FieldErrors) (ignored []string, err error) {
	data = bytes.TrimPrefix(data, utf8BOM) // Windows editors add one; encoding/json rejects it.
	if k := jsonKind(data); k != "object" {
		return nil, fmt.Errorf("top-level value must be a JSON object, got %s", k)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, syntaxError(data, err)
	}
	for _, sec := range walk(cfg) {
		raw, ok := top[sec.name]
		if !ok {
			continue
		}
		delete(top, sec.name)
		kind := jsonKind(raw)
		if kind == "null" {
			continue
		}
		var fields map[string]json.RawMessage
		if kind != "object" || json.Unmarshal(raw, &fields) != nil {
			errs.add(sec.name, "expected object, got %s", kind)
			continue
		}
		for _, s := range sec.settings {
			raw, ok := fields[s.name]
			if !ok {
				continue
			}
			delete(fields, s.name)
			if msg := decodeValue(s.value, raw); msg != "" {
				errs.add(s.path(), "%s", msg)
			}
		}
		for name := range fields {
			ignored = append(ignored, sec.name+"."+name)
		}
	}
	for name := range top {
		ignored = append(ignored, name)
	}
	slices.Sort(ignored)
	return ignored, nil
}

// decodeValue sets v from raw unless raw is null, and returns why it could not, or "".
// The message quotes numbers but never strings, which may be secrets.
func decodeValue(v reflect.Value, raw json.RawMessage) string {
	kind := jsonKind(raw)
	if kind == "null" {
		return ""
	}
	p := reflect.New(v.Type())
	if err := json.Unmarshal(raw, p.Interface()); err != nil {
		want := typeName(v.Type())
		switch {
		case kind == "number" && want == "integer":
			n := strings.TrimSpace(string(raw))
			if len(n) > 40 {
				n = n[:40] + "…"
			}
			return fmt.Sprintf("expected integer, got %s", n)
		case kind == "array" && v.Kind() == reflect.Slice:
			return fmt.Sprintf("expected %s, got an array with an element of another type", want)
		}
		return fmt.Sprintf("expected %s, got %s", want, kind)
	}
	v.Set(p.Elem())
	return ""
}

// syntaxError adds the line and column to a JSON syntax error.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	before := data[:min(int(se.Offset), len(data))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - 1 - bytes.LastIndexByte(before, '\n') // Offset is just past the bad byte
	return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
}

// applyEnv applies the MM_<SECTION>_<FIELD> overrides as Mattermost does: strings as they are,
// booleans and integers parsed, lists split on white space.
func applyEnv(cfg *Config, getenv func(string) string, errs *FieldErrors) {
	for _, sec := range walk(cfg) {
		for _, s := range sec.settings {
			name := s.envVar()
			val := getenv(name)
			if val == "" {
				continue
			}
			if msg := parseEnv(s.value, val); msg != "" {
				errs.add(s.path(), "%s: %s", name, msg)
			}
		}
	}
}

// parseEnv sets v from an environment value and returns why it could not, or "".
// Only booleans and integers are quoted in the message; strings may be secrets.
func parseEnv(v reflect.Value, val string) string {
	switch v.Kind() {
	case reflect.String:
		v.SetString(val)
	case reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Sprintf("expected boolean (true or false), got %q", val)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(val, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Sprintf("integer %q is out of range", val)
		}
		if err != nil {
			return fmt.Sprintf("expected integer, got %q", val)
		}
		v.SetInt(n)
	default:
		if v.Type() != stringSliceType {
			return fmt.Sprintf("settings of type %s cannot be set from the environment", v.Type())
		}
		v.Set(reflect.ValueOf(strings.Fields(val)))
	}
	return ""
}
