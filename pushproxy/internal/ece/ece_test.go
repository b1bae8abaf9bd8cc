package ece

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/stretchr/testify/require"
)

// The worked example of RFC 8291 §5 with the intermediate values of its
// Appendix A (base64url, no padding).
const (
	rfcPlaintext = "When I grow up, I want to be a watermelon"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcBody      = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

func rfcSubscriber(t testing.TB) *Subscriber {
	t.Helper()
	key, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	require.NoError(t, err)
	return &Subscriber{Key: key, Auth: b64(t, rfcAuth)}
}

func TestRFC8291Vector(t *testing.T) {
	t.Parallel()
	s := rfcSubscriber(t)
	// The published public key is the private key's: the vector is read right.
	require.Equal(t, rfcUAPublic, s.P256dh())

	pt, err := s.Decrypt(b64(t, rfcBody))
	require.NoError(t, err)
	require.Equal(t, rfcPlaintext, string(pt))

	// Our test encryptor reproduces the RFC's ciphertext byte for byte, so
	// the multi-record cases below are built by a checked implementation.
	as, err := ecdh.P256().NewPrivateKey(b64(t, rfcASPrivate))
	require.NoError(t, err)
	body := seal(t, as, s.Key.PublicKey(), s.Auth, b64(t, rfcSalt), []byte(rfcPlaintext), 4096, 0)
	require.Equal(t, rfcBody, base64.RawURLEncoding.EncodeToString(body))
}

func TestDecryptRecords(t *testing.T) {
	t.Parallel()
	s, err := NewSubscriber()
	require.NoError(t, err)
	long := bytes.Repeat([]byte("0123456789abcdef"), 40) // 640 bytes

	tests := []struct {
		name      string
		plaintext []byte
		rs        uint32
		pad       int
	}{
		{"one record", []byte("hello"), 4096, 0},
		{"one record padded", []byte("hello"), 4096, 1000},
		{"empty message", []byte{}, 4096, 0},
		{"many records", long, 64, 0},
		{"many records and padding", long, 64, 300},
		{"smallest record size", []byte("tiny records"), 18, 5},
		{"ends on a record boundary", bytes.Repeat([]byte("x"), 3*(100-17)), 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			as, err := ecdh.P256().GenerateKey(rand.Reader)
			require.NoError(t, err)
			body := seal(t, as, s.Key.PublicKey(), s.Auth, randomSalt(t), tt.plaintext, tt.rs, tt.pad)
			got, err := s.Decrypt(body)
			require.NoError(t, err)
			require.Equal(t, tt.plaintext, got)
		})
	}
}

func TestDecryptRejects(t *testing.T) {
	t.Parallel()
	s, err := NewSubscriber()
	require.NoError(t, err)
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	msg := bytes.Repeat([]byte("payload "), 30)
	good := seal(t, as, s.Key.PublicKey(), s.Auth, randomSalt(t), msg, 64, 0)
	hdr := headerLen + keyLen

	other, err := NewSubscriber()
	require.NoError(t, err)

	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		body []byte
		auth []byte
		key  *ecdh.PrivateKey
		want error
	}{
		{"empty body", nil, s.Auth, s.Key, ErrHeader},
		{"header only", good[:hdr], s.Auth, s.Key, ErrTruncated},
		{"record size too small", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[16:], 17); return b }), s.Auth, s.Key, ErrHeader},
		{"key id not a point", mutate(func(b []byte) []byte { b[20] = 64; return b }), s.Auth, s.Key, ErrHeader},
		{"key id off the curve", mutate(func(b []byte) []byte { b[headerLen+10] ^= 1; return b }), s.Auth, s.Key, ErrHeader},
		{"last record dropped", good[:hdr+64*2], s.Auth, s.Key, ErrTruncated},
		{"last record cut", good[:len(good)-3], s.Auth, s.Key, ErrAuth},
		{"ciphertext flipped", mutate(func(b []byte) []byte { b[hdr+70] ^= 0x80; return b }), s.Auth, s.Key, ErrAuth},
		{"salt changed", mutate(func(b []byte) []byte { b[0] ^= 1; return b }), s.Auth, s.Key, ErrAuth},
		{"records swapped", mutate(func(b []byte) []byte {
			r0 := bytes.Clone(b[hdr : hdr+64])
			copy(b[hdr:hdr+64], b[hdr+64:hdr+128])
			copy(b[hdr+64:hdr+128], r0)
			return b
		}), s.Auth, s.Key, ErrAuth},
		{"wrong auth secret", good, other.Auth, s.Key, ErrAuth},
		{"wrong key", good, s.Auth, other.Key, ErrAuth},
		{"tiny trailing record", append(bytes.Clone(good), make([]byte, 10)...), s.Auth, s.Key, ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decrypt(tt.key, tt.auth, tt.body)
			require.ErrorIs(t, err, tt.want)
		})
	}

	t.Run("bad arguments", func(t *testing.T) {
		t.Parallel()
		_, err := Decrypt(s.Key, s.Auth[:15], good)
		require.ErrorContains(t, err, "auth secret is 15 bytes")
		_, err = Decrypt(nil, s.Auth, good)
		require.Error(t, err)
	})

	t.Run("padding without delimiter", func(t *testing.T) {
		t.Parallel()
		body := sealRaw(t, as, s.Key.PublicKey(), s.Auth, randomSalt(t), 4096, [][]byte{make([]byte, 20)})
		_, err := s.Decrypt(body)
		require.ErrorIs(t, err, ErrPadding)
	})
	t.Run("last delimiter on a middle record", func(t *testing.T) {
		t.Parallel()
		body := sealRaw(t, as, s.Key.PublicKey(), s.Auth, randomSalt(t), 40, [][]byte{
			append(bytes.Repeat([]byte("a"), 23), 2), append([]byte("b"), 2),
		})
		_, err := s.Decrypt(body)
		require.ErrorIs(t, err, ErrPadding)
	})
}

// TestWebpushGo decrypts what the proxy's sender library produces.
func TestWebpushGo(t *testing.T) {
	t.Parallel()
	s, err := NewSubscriber()
	require.NoError(t, err)
	body, _ := webpushGoBody(t, s, []byte(rfcPlaintext))
	require.Len(t, body, 4096) // webpush-go always pads to the record size
	got, err := s.Decrypt(body)
	require.NoError(t, err)
	require.Equal(t, rfcPlaintext, string(got))
}

func TestSubscription(t *testing.T) {
	t.Parallel()
	s, err := NewSubscriber()
	require.NoError(t, err)
	var sub struct {
		Endpoint       string                        `json:"endpoint"`
		ExpirationTime *int64                        `json:"expirationTime"`
		Keys           struct{ P256dh, Auth string } `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(s.Subscription("https://push.example/push/abc"), &sub))
	require.Equal(t, "https://push.example/push/abc", sub.Endpoint)
	require.Nil(t, sub.ExpirationTime)
	require.Len(t, b64(t, sub.Keys.P256dh), 65)
	require.Len(t, b64(t, sub.Keys.Auth), 16)
}

// webpushGoBody encrypts plaintext for s with webpush-go, capturing the
// request instead of sending it.
func webpushGoBody(t testing.TB, s *Subscriber, plaintext []byte) ([]byte, http.Header) {
	t.Helper()
	priv, pub, err := webpush.GenerateVAPIDKeys()
	require.NoError(t, err)
	rec := &recorder{}
	resp, err := webpush.SendNotification(plaintext[:len(plaintext):len(plaintext)], &webpush.Subscription{
		Endpoint: "https://push.example/push/x",
		Keys:     webpush.Keys{P256dh: s.P256dh(), Auth: s.AuthSecret()},
	}, &webpush.Options{HTTPClient: rec, TTL: 60, Subscriber: "ops@example.org", VAPIDPublicKey: pub, VAPIDPrivateKey: priv})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return rec.body, rec.header
}

type recorder struct {
	body   []byte
	header http.Header
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(req.Body); err != nil {
		return nil, err
	}
	r.body, r.header = buf.Bytes(), req.Header.Clone()
	return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
}

func randomSalt(t testing.TB) []byte {
	t.Helper()
	salt := make([]byte, saltLen)
	_, err := rand.Read(salt)
	require.NoError(t, err)
	return salt
}

// seal is a test-only RFC 8291 encryptor: it splits plaintext into records
// of rs bytes, spreading pad bytes of zero padding over them as http_ece
// does. It exists to build multi-record inputs; its output for the RFC's
// inputs is checked against the RFC above.
func seal(t testing.TB, as *ecdh.PrivateKey, ua *ecdh.PublicKey, auth, salt, plaintext []byte, rs uint32, pad int) []byte {
	t.Helper()
	per := int(rs) - tagLen - 1 // data plus padding per record
	var recs [][]byte
	for start := 0; ; {
		recPad := min(pad, per-1)
		if pad > 0 && recPad == 0 {
			recPad = 1 // a record of padding alone, as http_ece writes when rs leaves no room
		}
		pad -= recPad
		end := min(start+per-recPad, len(plaintext))
		last := end == len(plaintext) && pad == 0
		rec := append(bytes.Clone(plaintext[start:end]), 1)
		if last {
			rec[len(rec)-1] = 2
		}
		rec = append(rec, make([]byte, recPad)...)
		recs = append(recs, rec)
		start = end
		if last {
			break
		}
	}
	return sealRaw(t, as, ua, auth, salt, rs, recs)
}

// sealRaw encrypts ready-made record plaintexts (data, delimiter, padding).
func sealRaw(t testing.TB, as *ecdh.PrivateKey, ua *ecdh.PublicKey, auth, salt []byte, rs uint32, recs [][]byte) []byte {
	t.Helper()
	gcm, nonce := sealKeys(t, as, ua, auth, salt)
	out := append([]byte{}, salt...)
	out = binary.BigEndian.AppendUint32(out, rs)
	out = append(out, keyLen)
	out = append(out, as.PublicKey().Bytes()...)
	iv := make([]byte, 12)
	for i, rec := range recs {
		copy(iv, nonce)
		binary.BigEndian.PutUint64(iv[4:], binary.BigEndian.Uint64(nonce[4:])^uint64(i))
		out = gcm.Seal(out, iv, rec, nil)
	}
	return out
}

// sealKeys derives the sender's side of the keys (the same schedule as
// keys, from the other end of the ECDH).
func sealKeys(t testing.TB, as *ecdh.PrivateKey, ua *ecdh.PublicKey, auth, salt []byte) (cipher.AEAD, []byte) {
	t.Helper()
	secret, err := as.ECDH(ua)
	require.NoError(t, err)
	info := "WebPush: info\x00" + string(ua.Bytes()) + string(as.PublicKey().Bytes())
	ikm := hkdfKey(t, secret, auth, info, 32)
	cek := hkdfKey(t, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	nonce := hkdfKey(t, ikm, salt, "Content-Encoding: nonce\x00", 12)
	block, err := aes.NewCipher(cek)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return gcm, nonce
}

func hkdfKey(t testing.TB, secret, salt []byte, info string, n int) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, secret, salt, info, n)
	require.NoError(t, err)
	return k
}

func TestSealRawRejectsOversizedRecord(t *testing.T) {
	t.Parallel()
	// A record longer than rs is read as two records; the first then fails
	// authentication. Guards the record split in Decrypt.
	s, err := NewSubscriber()
	require.NoError(t, err)
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	body := sealRaw(t, as, s.Key.PublicKey(), s.Auth, randomSalt(t), 20, [][]byte{append([]byte(strings.Repeat("z", 10)), 2)})
	_, err = s.Decrypt(body)
	require.ErrorIs(t, err, ErrAuth)
}

func FuzzDecrypt(f *testing.F) {
	s := rfcSubscriber(f)
	f.Add(b64(f, rfcBody))
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(f, err)
	f.Add(seal(f, as, s.Key.PublicKey(), s.Auth, randomSalt(f), []byte("multi record message"), 18, 7))
	f.Add(seal(f, as, s.Key.PublicKey(), s.Auth, randomSalt(f), nil, 4096, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		pt, err := s.Decrypt(body)
		if err == nil && len(pt) > len(body) {
			t.Fatalf("plaintext of %d bytes from a %d-byte body", len(pt), len(body))
		}
	})
}
