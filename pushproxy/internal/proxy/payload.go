package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// ContentPolicy chooses what a push carries to the device.
type ContentPolicy string

const (
	// ContentIDOnly (the default) builds the payload from an allow-list of
	// id fields: message text, sender and channel names and overrides are
	// dropped even when the server sends them. The device fetches the
	// content over the authenticated API (POST /api/v4/notifications/ack).
	ContentIDOnly ContentPolicy = "id_only"
	// ContentFull also carries message, sender_name, channel_name and the
	// override fields, as mattermost-push-proxy does to FCM.
	ContentFull ContentPolicy = "full"
)

// maxPayload is the largest plaintext webpush-go fits in its one 4096-byte
// record (4096 - 16 tag - 1 delimiter - 86 header).
const maxPayload = 3993

// Upstream's truncation of the text fields (in bytes), kept on a rune
// boundary here.
const (
	maxMessage     = 2046
	maxChannelName = 64
)

// devicePayload is the JSON the device decrypts. It mirrors the data map
// mattermost-push-proxy sends to FCM — same keys, every value a string —
// so client code can treat both alike.
type devicePayload struct {
	AckID        string `json:"ack_id,omitempty"`
	Type         string `json:"type,omitempty"`
	SubType      string `json:"sub_type,omitempty"`
	Version      string `json:"version,omitempty"`
	ServerID     string `json:"server_id,omitempty"`
	TeamID       string `json:"team_id,omitempty"`
	ChannelID    string `json:"channel_id,omitempty"`
	PostID       string `json:"post_id,omitempty"`
	RootID       string `json:"root_id,omitempty"`
	SenderID     string `json:"sender_id,omitempty"`
	IsCRTEnabled string `json:"is_crt_enabled"`
	IDLoaded     string `json:"id_loaded,omitempty"`
	Badge        string `json:"badge,omitempty"`
	Category     string `json:"category,omitempty"`
	Signature    string `json:"signature"`

	// ContentFull only.
	Message          string `json:"message,omitempty"`
	SenderName       string `json:"sender_name,omitempty"`
	ChannelName      string `json:"channel_name,omitempty"`
	OverrideUsername string `json:"override_username,omitempty"`
	OverrideIconURL  string `json:"override_icon_url,omitempty"`
	FromWebhook      string `json:"from_webhook,omitempty"`
}

// errPayload marks a notification that cannot become a device payload; its
// message is safe to return to the sender.
var errPayload = errors.New("payload")

// buildPayload makes the device payload of n under policy, at most
// maxPayload bytes.
func buildPayload(n *PushNotification, policy ContentPolicy) ([]byte, error) {
	p := devicePayload{
		AckID:        n.AckID,
		Type:         n.Type,
		SubType:      n.SubType,
		Version:      n.Version,
		ServerID:     n.ServerID,
		TeamID:       n.TeamID,
		ChannelID:    n.ChannelID,
		PostID:       n.PostID,
		RootID:       n.RootID,
		SenderID:     n.SenderID,
		IsCRTEnabled: strconv.FormatBool(n.IsCRTEnabled),
		Category:     n.Category,
		Signature:    n.Signature,
	}
	if p.Signature == "" {
		p.Signature = "NO_SIGNATURE" // as upstream, so clients can tell "unsigned" from "missing"
	}
	if n.Badge != -1 { // -1 means "leave the badge alone"
		p.Badge = strconv.Itoa(n.Badge)
	}

	switch policy {
	case ContentFull:
		if n.IsIDLoaded {
			p.IDLoaded = "true"
		}
		p.Message = truncate(n.Message, maxMessage)
		p.SenderName = n.SenderName
		p.ChannelName = truncate(n.ChannelName, maxChannelName)
		p.OverrideUsername = n.OverrideUsername
		p.OverrideIconURL = n.OverrideIconURL
		p.FromWebhook = n.FromWebhook
	default:
		// Content is never in the payload, so a message is always to be
		// fetched: the device acks with is_id_loaded and gets the post.
		if err := checkIDFields(n); err != nil {
			return nil, err
		}
		if n.Type == TypeMessage || n.Type == TypeSession || n.Type == "" || n.IsIDLoaded {
			p.IDLoaded = "true"
		}
	}

	// Over the limit, cut the message (on a rune boundary), then drop the
	// icon URL (a cut URL is useless), then cut the names. Each cut
	// removes at least as many JSON bytes as raw bytes, so one cut per
	// field is enough.
	cut := func(f *string) func(over int) {
		return func(over int) { *f = truncate(*f, max(len(*f)-over, 0)) }
	}
	shrink := []func(over int){
		cut(&p.Message),
		func(int) { p.OverrideIconURL = "" },
		cut(&p.SenderName), cut(&p.OverrideUsername), cut(&p.ChannelName),
	}
	for i := 0; ; i++ {
		b, err := marshalCompact(&p)
		if err != nil {
			return nil, err
		}
		over := len(b) - maxPayload
		if over <= 0 {
			return b, nil
		}
		if i == len(shrink) {
			return nil, fmt.Errorf("%w: the notification is %d bytes over the Web Push limit of %d without any text", errPayload, over, maxPayload)
		}
		shrink[i](over)
	}
}

func marshalCompact(p *devicePayload) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<" as \u003c would cost 5 bytes of a 3993-byte budget
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkIDFields refuses, under id_only, a notification whose id fields
// could carry text: a misconfigured server must not leak content through
// post_id. Ids are short tokens of letters, digits and a few separators.
func checkIDFields(n *PushNotification) error {
	fields := []struct {
		name, value string
		max         int
	}{
		{"ack_id", n.AckID, 64}, {"server_id", n.ServerID, 64}, {"team_id", n.TeamID, 64},
		{"channel_id", n.ChannelID, 64}, {"post_id", n.PostID, 64}, {"root_id", n.RootID, 64},
		{"sender_id", n.SenderID, 64}, {"type", n.Type, 32}, {"sub_type", n.SubType, 32},
		{"version", n.Version, 32}, {"category", n.Category, 32},
	}
	for _, f := range fields {
		if len(f.value) > f.max || !isToken(f.value, false) {
			return fmt.Errorf("%w: %s is not an id (the id_only content policy allows %d letters, digits, '-', '_', '.' or ':')", errPayload, f.name, f.max)
		}
	}
	if len(n.Signature) > 2048 || !isToken(n.Signature, true) {
		return fmt.Errorf("%w: signature is not a base64 token of at most 2048 bytes", errPayload)
	}
	return nil
}

func isToken(s string, base64Chars bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		case base64Chars && (c == '+' || c == '/' || c == '='):
		default:
			return false
		}
	}
	return true
}

// Web Push delivery parameters per notification type (push.md §4.3).
const (
	ttlMessage = 24 * time.Hour
	ttlShort   = time.Hour
	ttlTest    = 60 * time.Second
)

// deliveryParams gives the TTL, Urgency and Topic of a notification type.
// A message must survive, so it has no topic; a newer clear of a channel
// or badge update replaces an older one still waiting.
func deliveryParams(n *PushNotification) (ttl time.Duration, urgency, topic string) {
	switch n.Type {
	case TypeClear:
		if n.ChannelID == "" {
			return ttlShort, "normal", ""
		}
		return ttlShort, "normal", channelTopic(n.ChannelID)
	case TypeUpdateBadge:
		return ttlShort, "normal", "badge"
	case TypeTest:
		return ttlTest, "normal", ""
	default: // message, session and anything newer: deliver, and soon
		return ttlMessage, "high", ""
	}
}

// channelTopic is "c" and the channel id, or a digest of an id that does
// not fit RFC 8030's 32 characters of the base64url alphabet.
func channelTopic(channelID string) string {
	if len(channelID) <= 31 && isBase64URL(channelID) {
		return "c" + channelID
	}
	sum := sha256.Sum256([]byte(channelID))
	return "c" + base64.RawURLEncoding.EncodeToString(sum[:])[:31]
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
