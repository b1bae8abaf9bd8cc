package pushservice

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// The Firefox push WebSocket protocol (PushServiceWebSocket.sys.mjs; see
// /work/shared/reference/firefox-push.md): JSON text frames, each an
// object with a messageType, and the literal {} as a ping.

// subprotocol is the WebSocket subprotocol Firefox offers; it is echoed
// when offered (Firefox does not require it).
const subprotocol = "push-notification"

// maxClientFrame bounds what a device may send in one frame. The largest
// real frame is a register with its key (about 200 bytes) or an ack with a
// few updates.
const maxClientFrame = 32 << 10

// maxAckUpdates bounds the updates of one ack frame.
const maxAckUpdates = 256

// Message types.
const (
	typeHello        = "hello"
	typeRegister     = "register"
	typeUnregister   = "unregister"
	typeAck          = "ack"
	typeNack         = "nack"
	typeNotification = "notification"
	typeBroadcastSub = "broadcast_subscribe"
	typePing         = "" // the literal {}
)

// clientFrame is a frame from a device, decoded. Only the fields of its
// type are set.
type clientFrame struct {
	Type      string
	UAID      string      // hello
	ChannelID string      // register, unregister
	Key       string      // register: the applicationServerKey, padded base64url
	Version   string      // nack
	Code      int         // unregister, nack
	Updates   []ackUpdate // ack
}

// ackUpdate is one acknowledged notification.
type ackUpdate struct {
	ChannelID string `json:"channelID"`
	Version   string `json:"version"`
	Code      int    `json:"code"`
}

var errFrame = errors.New("invalid frame")

// parseClientFrame decodes a text frame. An empty object is a ping; any
// other object must carry a string messageType. Fields a type does not use
// are ignored, and a frame whose type is unknown decodes to that type
// with no fields, for the caller to ignore.
func parseClientFrame(data []byte) (clientFrame, error) {
	if len(data) > maxClientFrame {
		return clientFrame{}, fmt.Errorf("%w: too large", errFrame)
	}
	var raw map[string]json.RawMessage
	if err := strictUnmarshal(data, &raw); err != nil || raw == nil {
		return clientFrame{}, fmt.Errorf("%w: not a JSON object", errFrame)
	}
	if len(raw) == 0 {
		return clientFrame{Type: typePing}, nil
	}
	var f clientFrame
	mt, ok := raw["messageType"]
	if !ok || json.Unmarshal(mt, &f.Type) != nil || f.Type == "" {
		return clientFrame{}, fmt.Errorf("%w: no messageType", errFrame)
	}
	// str and num read optional fields: absent or null leave the zero
	// value; a value of the wrong type is an error.
	str := func(name string, dst *string) error {
		if v, ok := raw[name]; ok && !bytes.Equal(v, []byte("null")) {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("%w: %s: %v", errFrame, name, err)
			}
		}
		return nil
	}
	num := func(name string, dst *int) error {
		if v, ok := raw[name]; ok && !bytes.Equal(v, []byte("null")) {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("%w: %s: %v", errFrame, name, err)
			}
		}
		return nil
	}
	var err error
	switch f.Type {
	case typeHello:
		err = str("uaid", &f.UAID)
	case typeRegister:
		err = errors.Join(str("channelID", &f.ChannelID), str("key", &f.Key))
	case typeUnregister:
		err = errors.Join(str("channelID", &f.ChannelID), num("code", &f.Code))
	case typeNack:
		err = errors.Join(str("version", &f.Version), num("code", &f.Code))
	case typeAck:
		if v, ok := raw["updates"]; ok && !bytes.Equal(v, []byte("null")) {
			if e := json.Unmarshal(v, &f.Updates); e != nil {
				err = fmt.Errorf("%w: updates: %v", errFrame, e)
			} else if len(f.Updates) > maxAckUpdates {
				err = fmt.Errorf("%w: more than %d updates", errFrame, maxAckUpdates)
			}
		}
	}
	if err != nil {
		return clientFrame{}, err
	}
	return f, nil
}

// validChannelID accepts what Firefox sends (a UUID) and anything of the
// same alphabet up to 64 characters.
func validChannelID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Server frames. Field order follows what Firefox was observed to accept.

type helloReply struct {
	MessageType string         `json:"messageType"`
	Status      int            `json:"status"`
	UAID        string         `json:"uaid"`
	UseWebPush  bool           `json:"use_webpush"`
	Broadcasts  map[string]any `json:"broadcasts"`
}

type registerReply struct {
	MessageType  string `json:"messageType"`
	ChannelID    string `json:"channelID"`
	Status       int    `json:"status"`
	PushEndpoint string `json:"pushEndpoint,omitempty"`
}

type unregisterReply struct {
	MessageType string `json:"messageType"`
	ChannelID   string `json:"channelID"`
	Status      int    `json:"status"`
}

type notificationFrame struct {
	MessageType string            `json:"messageType"`
	ChannelID   string            `json:"channelID"`
	Version     string            `json:"version"`
	Data        string            `json:"data"`
	Headers     map[string]string `json:"headers"`
}

var pingReply = []byte("{}")

// encodeNotification builds the notification frame of a message: the body
// as unpadded base64url, as Firefox decodes it.
func encodeNotification(channelID, id string, body []byte) []byte {
	b, _ := json.Marshal(notificationFrame{
		MessageType: typeNotification,
		ChannelID:   channelID,
		Version:     id,
		Data:        base64.RawURLEncoding.EncodeToString(body),
		Headers:     map[string]string{"encoding": "aes128gcm"},
	})
	return b
}

// encode marshals one of the reply types above; they hold only strings,
// numbers and string maps, which always marshal.
func encode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
