package config

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEverySettingIsSupported guards the reflection in Load: a new field must have a type that
// the file decoder, the environment parser and Hash understand, and Mattermost's name.
func TestEverySettingIsSupported(t *testing.T) {
	t.Parallel()
	vars := map[string]string{}
	for _, sec := range walk(Default()) {
		require.NotEmpty(t, sec.settings, sec.name)
		for _, s := range sec.settings {
			require.NotEmpty(t, typeName(s.value.Type()), "%s has an unsupported type", s.path())
			require.Contains(t, []string{"", "dsn", "full"}, s.secret, s.path())
			prev, dup := vars[s.envVar()]
			require.False(t, dup, "%s and %s share %s", prev, s.path(), s.envVar())
			vars[s.envVar()] = s.path()
		}
	}
	// Field names are Mattermost's, so the json tag and the Go name agree.
	for _, st := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		require.Equal(t, st.Name, jsonName(st))
		for _, ft := range reflect.VisibleFields(st.Type) {
			require.Equal(t, ft.Name, jsonName(ft), "%s.%s", st.Name, ft.Name)
		}
	}
}

func TestRedactValueFull(t *testing.T) {
	t.Parallel()
	s, empty, list, n := "hunter2", "", []string{"a", ""}, 42
	redactValue(reflect.ValueOf(&s).Elem(), "full")
	redactValue(reflect.ValueOf(&empty).Elem(), "full")
	redactValue(reflect.ValueOf(&list).Elem(), "full")
	redactValue(reflect.ValueOf(&n).Elem(), "full")
	require.Equal(t, FakeSetting, s)
	require.Empty(t, empty, "an unset secret stays visibly unset")
	require.Equal(t, []string{FakeSetting, ""}, list)
	require.Zero(t, n)
}
