package ws

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Mirrors of the JSON shapes in mattermost server/public v0.4.2
// (model.webSocketEventJSON, WebsocketBroadcast, WebSocketResponse, AppError),
// decoded strictly so that a field we add or misname fails the test.
type mmEvent struct {
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Broadcast *mmBroadcast   `json:"broadcast"`
	Sequence  int64          `json:"seq"`
}

type mmBroadcast struct {
	OmitUsers             map[string]bool `json:"omit_users"`
	UserID                string          `json:"user_id"`
	ChannelID             string          `json:"channel_id"`
	TeamID                string          `json:"team_id"`
	ConnectionID          string          `json:"connection_id"`
	OmitConnectionID      string          `json:"omit_connection_id"`
	ContainsSanitizedData bool            `json:"contains_sanitized_data,omitempty"`
	ContainsSensitiveData bool            `json:"contains_sensitive_data,omitempty"`
}

type mmResponse struct {
	Status   string         `json:"status"`
	SeqReply int64          `json:"seq_reply,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
	Error    *mmAppError    `json:"error,omitempty"`
}

type mmAppError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
	RequestID     string `json:"request_id,omitempty"`
	StatusCode    int    `json:"status_code,omitempty"`
}

func strictDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	require.NoError(t, d.Decode(v), "%s", b)
}

// keys returns the top-level keys of a JSON object in order.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	tok, err := d.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var out []string
	for d.More() {
		k, err := d.Token()
		require.NoError(t, err)
		out = append(out, k.(string))
		var skip json.RawMessage
		require.NoError(t, d.Decode(&skip))
	}
	return out
}

func TestWireShapesMatchMattermost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, hello := e.connect(t, "tok-alice", "")

	var ev mmEvent
	strictDecode(t, hello.raw, &ev)
	require.Equal(t, []string{"event", "data", "broadcast", "seq"}, keys(t, hello.raw))
	require.Equal(t, []string{"omit_users", "user_id", "channel_id", "team_id", "connection_id", "omit_connection_id"},
		keys(t, mustField(t, hello.raw, "broadcast")))
	require.Equal(t, "hello", ev.Event)
	require.Zero(t, ev.Sequence)
	require.Equal(t, []string{"connection_id", "server_hostname", "server_version"}, slices.Sorted(maps.Keys(ev.Data)))
	require.Equal(t, "alice", ev.Broadcast.UserID)
	require.Contains(t, string(hello.raw), `"omit_users":null`)

	e.publish(t, "posted", map[string]any{"post": `{"id":"p1","message":"<hi>"}`, "set_online": true},
		Broadcast{ChannelID: "town", OmitUsers: map[string]bool{"bob": true}, OnlyNonAdmins: true})
	posted := c.read()
	ev = mmEvent{}
	strictDecode(t, posted.raw, &ev)
	require.Equal(t, "posted", ev.Event)
	require.EqualValues(t, 1, ev.Sequence)
	// omit_users is kept off the wire: it could name mentioned users.
	require.Equal(t, mmBroadcast{ChannelID: "town"}, *ev.Broadcast)
	require.Equal(t, `{"id":"p1","message":"<hi>"}`, ev.Data["post"]) // a JSON string inside data

	c.send("ping", nil)
	var ok mmResponse
	strictDecode(t, c.read().raw, &ok)
	require.Equal(t, "OK", ok.Status)
	require.Equal(t, "pong", ok.Data["text"])

	c.send("app_fail", nil)
	var fail mmResponse
	strictDecode(t, c.read().raw, &fail)
	require.Equal(t, "FAIL", fail.Status)
	require.Equal(t, "api.test.forbidden.app_error", fail.Error.ID)
}

func mustField(t *testing.T, b []byte, key string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	return m[key]
}

// The pre-serialised prefix plus appendSeq is byte for byte what a single
// json.Marshal of the whole envelope gives.
func TestPrefixEncodingEqualsMarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data map[string]any
		b    Broadcast
	}{
		{"empty", nil, Broadcast{}},
		{"data and broadcast", map[string]any{"a": 1, "b": "x\"y", "c": []int{1}}, Broadcast{
			UserID: "u", ChannelID: "c", TeamID: "t", ConnectionID: "k", OmitConnectionID: "o",
			OmitUsers: map[string]bool{"z": true, "a": true}, OnlyAdmins: true,
		}},
		{"html escaping", map[string]any{"m": "<b>&</b>"}, Broadcast{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prefix, err := encodeEvent("posted", tt.data, tt.b)
			require.NoError(t, err)
			for _, seq := range []int64{0, 7, 1 << 40} {
				data := tt.data
				if data == nil {
					data = map[string]any{}
				}
				want, err := json.Marshal(struct {
					wireEvent
					Seq int64 `json:"seq"`
				}{wireEvent{"posted", data, wireBroadcast{
					// omit_users is never sent (it can name mentioned users).
					UserID: tt.b.UserID, ChannelID: tt.b.ChannelID, TeamID: tt.b.TeamID,
					ConnectionID: tt.b.ConnectionID, OmitConnectionID: tt.b.OmitConnectionID,
				}}, seq})
				require.NoError(t, err)
				require.Equal(t, string(want), string(appendSeq(append([]byte(nil), prefix...), seq)))
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"action":"authentication_challenge","data":{"token":"x"}}`,
		`{"seq":0,"action":"ping"}`, `{"seq":2}`, `nope`, `{"seq":"1","action":1}`, `{"data":null,"seq":3,"action":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, aerr := parseRequest(b)
		if aerr == nil {
			require.NotEmpty(t, r.Action)
			require.Positive(t, r.Seq)
			if r.Data != nil {
				require.True(t, json.Valid(r.Data))
			}
			require.True(t, json.Valid(success(r.Seq, r.Data)))
			return
		}
		require.True(t, json.Valid(failure(r.Seq, *aerr)))
	})
}
