package config

import (
	"reflect"
	"strings"
)

// section is one top-level section of Config, found by reflection so that a new field needs
// no code besides its declaration and its default.
type section struct {
	name     string // JSON name, e.g. "SqlSettings"
	settings []setting
}

// setting is one leaf field of a section.
type setting struct {
	section string        // JSON name of the section
	name    string        // JSON name of the field, e.g. "DataSource"
	value   reflect.Value // addressable; setting it changes the Config walked
	secret  string        // the `secret` tag: "" (not secret), "dsn" or "full"
	local   bool          // tagged `node:"local"`: differs between cluster nodes by design
}

// path is the name used in errors and warnings, e.g. "SqlSettings.DataSource".
func (s setting) path() string { return s.section + "." + s.name }

// envVar is the Mattermost override variable, e.g. "MM_SQLSETTINGS_DATASOURCE".
func (s setting) envVar() string {
	return "MM_" + strings.ToUpper(s.section) + "_" + strings.ToUpper(s.name)
}

// walk lists the sections and settings of c in declaration order.
func walk(c *Config) []section {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	sections := make([]section, 0, t.NumField())
	for i := range t.NumField() {
		sv, st := v.Field(i), t.Field(i)
		sec := section{name: jsonName(st)}
		for j := range st.Type.NumField() {
			ft := st.Type.Field(j)
			sec.settings = append(sec.settings, setting{
				section: sec.name,
				name:    jsonName(ft),
				value:   sv.Field(j),
				secret:  ft.Tag.Get("secret"),
				local:   ft.Tag.Get("node") == "local",
			})
		}
		sections = append(sections, sec)
	}
	return sections
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

var stringSliceType = reflect.TypeFor[[]string]()

// typeName describes the JSON type a setting expects, for error messages, or returns "" for
// a type Load does not support.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	}
	if t == stringSliceType {
		return "array of strings"
	}
	return "" // unsupported; TestEverySettingIsSupported keeps this unreachable
}

// jsonKind names the JSON type of a raw value, for error messages.
func jsonKind(raw []byte) string {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	if s == "" {
		return "nothing"
	}
	switch s[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
