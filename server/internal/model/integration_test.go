package model_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/model"
)

func TestRenderAttachments(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
	}{
		{"none", `[]`, ""},
		{"nil entries", `[null,{"fields":[null]}]`, ""},
		{"full", `[{"pretext":"pre","author_name":"ann","title":"T","title_link":"http://t","text":"body",
			"fields":[{"title":"A","value":"1"},{"title":"B","value":2.5},{"title":"C","value":true},{"title":"","value":"bare"},{"title":"only title"}],
			"footer":"foot","fallback":"unused"}]`, "pre\nann\n[T](http://t)\nbody\nA: 1\nB: 2.5\nC: true\nbare\nonly title\nfoot"},
		{"title without link", `[{"title":"T"}]`, "T"},
		{"fallback only", `[{"fallback":"fb","color":"good"}]`, "fb"},
		{"blank lines trimmed", `[{"text":"  x  ","pretext":"   "}]`, "x"},
		{"two", `[{"text":"a"},{"text":"b"}]`, "a\n\nb"},
		{"object value", `[{"fields":[{"title":"o","value":{"k":[1]}}]}]`, `o: {"k":[1]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var atts []*model.MessageAttachment
			require.NoError(t, json.Unmarshal([]byte(c.in), &atts))
			require.Equal(t, c.want, model.RenderAttachments(atts))
		})
	}
}

func FuzzRenderAttachments(f *testing.F) {
	f.Add(`[{"pretext":"p","title":"t","title_link":"l","text":"x","fields":[{"title":"a","value":1}]}]`)
	f.Add(`[null,{"fallback":"f"}]`)
	f.Fuzz(func(t *testing.T, in string) {
		var atts []*model.MessageAttachment
		if json.Unmarshal([]byte(in), &atts) != nil {
			return
		}
		_ = model.RenderAttachments(atts) // must not panic
	})
}
