package ws

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Wire shapes of model.WebSocketEvent, model.WebsocketBroadcast,
// model.WebSocketResponse and model.AppError (mattermost server/public).

type wireEvent struct {
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Broadcast wireBroadcast  `json:"broadcast"`
}

type wireBroadcast struct {
	OmitUsers        map[string]bool `json:"omit_users"`
	UserID           string          `json:"user_id"`
	ChannelID        string          `json:"channel_id"`
	TeamID           string          `json:"team_id"`
	ConnectionID     string          `json:"connection_id"`
	OmitConnectionID string          `json:"omit_connection_id"`
}

// encodeEvent renders the event envelope without its seq and closing brace;
// appendSeq completes it for one connection.
func encodeEvent(name string, data map[string]any, b Broadcast) ([]byte, error) {
	if data == nil {
		data = map[string]any{} // Mattermost events always carry an object
	}
	buf, err := json.Marshal(wireEvent{
		Event: name,
		Data:  data,
		Broadcast: wireBroadcast{
			// omit_users stays null on the wire: the list is the hub's
			// business, and it can name users (e.g. who was mentioned)
			// that the recipients must not learn about.
			OmitUsers:        nil,
			UserID:           b.UserID,
			ChannelID:        b.ChannelID,
			TeamID:           b.TeamID,
			ConnectionID:     b.ConnectionID,
			OmitConnectionID: b.OmitConnectionID,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", name, err)
	}
	return buf[:len(buf)-1], nil // a marshalled struct always ends in '}'
}

func appendSeq(dst []byte, seq int64) []byte {
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, '}')
}

func encodeHello(serverVersion, connID, hostname, userID string) ([]byte, error) {
	return encodeEvent("hello", map[string]any{
		"server_version":  serverVersion,
		"connection_id":   connID,
		"server_hostname": hostname,
	}, Broadcast{UserID: userID})
}

const (
	actionChallenge = "authentication_challenge"
	actionPing      = "ping"
)

// request is a client frame, model.WebSocketRequest.
type request struct {
	Seq    int64           `json:"seq"`
	Action string          `json:"action"`
	Data   json.RawMessage `json:"data"`
}

// parseRequest decodes a client frame and checks it as Mattermost's
// WebSocketRouter does: an action first, then a positive seq.
func parseRequest(b []byte) (request, *appError) {
	var r request
	if err := json.Unmarshal(b, &r); err != nil {
		return request{}, &errNoAction
	}
	if string(r.Data) == "null" {
		r.Data = nil
	}
	if r.Action == "" {
		return r, &errNoAction
	}
	if r.Seq <= 0 {
		return r, &errBadSeq
	}
	return r, nil
}

// appError is model.AppError's JSON.
type appError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
	RequestID     string `json:"request_id,omitempty"`
	StatusCode    int    `json:"status_code,omitempty"`
}

// The errors below are read-only values.
var (
	errNoAction = appError{ID: "api.web_socket_router.no_action.app_error",
		Message: "No websocket action.", StatusCode: http.StatusBadRequest}
	errBadSeq = appError{ID: "api.web_socket_router.bad_seq.app_error",
		Message: "Invalid sequence for WebSocket message.", StatusCode: http.StatusBadRequest}
	errNotAuthenticated = appError{ID: "api.web_socket_router.not_authenticated.app_error",
		Message: "Connection is not authenticated. Please log in and try again.", StatusCode: http.StatusUnauthorized}
	errSessionExpired = appError{ID: "api.context.session_expired.app_error",
		Message: "Invalid or expired session, please login again.", StatusCode: http.StatusUnauthorized}
	errBadAction = appError{ID: "api.web_socket_router.bad_action.app_error",
		Message: "Unknown WebSocket action.", StatusCode: http.StatusInternalServerError}
	errBinary = appError{ID: "api.web_socket_router.binary_not_supported.app_error",
		Message: "Binary WebSocket frames are not supported; send JSON text frames.", StatusCode: http.StatusBadRequest}
	errInternal = appError{ID: "api.web_socket_router.action.app_error",
		Message: "The WebSocket action could not be completed.", StatusCode: http.StatusInternalServerError}
)

// response is model.WebSocketResponse.
type response struct {
	Status   string          `json:"status"`
	SeqReply int64           `json:"seq_reply,omitempty"`
	Data     any             `json:"data,omitempty"`
	Error    json.RawMessage `json:"error,omitempty"`
}

// success renders an OK reply; nil if data does not marshal.
func success(seq int64, data any) []byte {
	b, err := json.Marshal(response{Status: "OK", SeqReply: seq, Data: data})
	if err != nil {
		return nil
	}
	return b
}

func failure(seq int64, e appError) []byte {
	eb, _ := json.Marshal(e) // plain strings and an int: cannot fail
	return failureRaw(seq, eb)
}

func failureRaw(seq int64, errJSON []byte) []byte {
	b, _ := json.Marshal(response{Status: "FAIL", SeqReply: seq, Error: errJSON}) // errJSON is valid JSON
	return b
}
