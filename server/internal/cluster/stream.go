package cluster

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// The stream protocol. Each node dials each peer once and sends its
// messages, pings and pongs on that connection; the peer answers on the
// same connection with acknowledgements only. Streams share the gossip
// port with memberlist: they open with streamMagic, whose first byte no
// memberlist stream starts with (message types are below 16, the
// encryption version 0 or 1, the label marker 244).
//
// Handshake, in the clear:
//
//	dialer:   "GRSN" version epoch[16] salt[32] len(id) id
//	acceptor: version epoch[16] salt[32] len(id) id delivered[8]
//
// delivered is the last sequence number the acceptor handled from the
// dialer's epoch (0 if it does not know it), so the dialer resends from
// there. With a gossip key, each direction then uses AES-GCM under a key
// derived with HKDF from the gossip key and both salts, nonces counting
// up from zero; without one, frames are plain. Either way the first frame
// each side sends is a hello holding the SHA-256 of the handshake, so a
// tampered handshake (or a wrong key) ends the connection before
// anything in it is believed.
//
// Frames are a 4-byte big-endian length and a body: a type byte and its
// fields (see the frame constants).

const (
	streamMagic   = "GRSN"
	streamVersion = 1
	// maxFrame bounds a frame body: a WebSocket event is at most a post
	// of 16k characters with metadata, far below this.
	maxFrame = 8 << 20
)

// Frame types.
const (
	frameHello byte = iota + 1 // sha256 of the handshake
	frameMsg                   // seq u64, event (u16 len), data (u32 len)
	framePing                  // echo u64
	framePong                  // echo u64, last u64: the last seq sent before it
	frameAck                   // delivered u64 (acceptor to dialer)
)

type handshake struct {
	epoch [16]byte
	salt  [32]byte
	id    string
}

func (h handshake) encode(w *bytes.Buffer) {
	w.WriteByte(streamVersion)
	w.Write(h.epoch[:])
	w.Write(h.salt[:])
	w.WriteByte(byte(len(h.id)))
	w.WriteString(h.id)
}

func readHandshake(r io.Reader) (handshake, []byte, error) {
	var h handshake
	head := make([]byte, 1+16+32+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return h, nil, err
	}
	if head[0] != streamVersion {
		return h, nil, fmt.Errorf("stream version %d not supported", head[0])
	}
	copy(h.epoch[:], head[1:17])
	copy(h.salt[:], head[17:49])
	id := make([]byte, head[49])
	if _, err := io.ReadFull(r, id); err != nil {
		return h, nil, err
	}
	h.id = string(id)
	return h, append(head, id...), nil
}

func newHandshake(epoch [16]byte, id string) (handshake, error) {
	h := handshake{epoch: epoch, id: id}
	if len(id) == 0 || len(id) > 255 {
		return h, errors.New("node id must be 1 to 255 bytes")
	}
	_, err := rand.Read(h.salt[:])
	return h, err
}

// codec seals and opens the frames of one direction.
type codec struct {
	aead  cipher.AEAD // nil: plain frames
	nonce uint64
}

func newCodecs(key []byte, dialer, acceptor handshake) (send, recv *codec, err error) {
	if len(key) == 0 {
		return &codec{}, &codec{}, nil
	}
	salt := append(dialer.salt[:], acceptor.salt[:]...)
	mk := func(dir string) (*codec, error) {
		k, err := hkdf.Key(sha256.New, key, salt, "garrison cluster stream v1 "+dir, 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		return &codec{aead: aead}, nil
	}
	d2a, err := mk("dialer to acceptor")
	if err != nil {
		return nil, nil, err
	}
	a2d, err := mk("acceptor to dialer")
	if err != nil {
		return nil, nil, err
	}
	return d2a, a2d, nil
}

func (c *codec) nextNonce() []byte {
	n := make([]byte, c.aead.NonceSize())
	binary.BigEndian.PutUint64(n[len(n)-8:], c.nonce)
	c.nonce++
	return n
}

// appendFrame appends body as one frame to dst.
func (c *codec) appendFrame(dst, body []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	if c.aead == nil {
		dst = append(dst, body...)
	} else {
		dst = c.aead.Seal(dst, c.nextNonce(), body, nil)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// readFrame reads one frame of at most limit bytes and returns its body.
func (c *codec) readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > uint32(limit) {
		return nil, fmt.Errorf("bad frame size %d", size)
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if c.aead == nil {
		return buf, nil
	}
	body, err := c.aead.Open(buf[:0], c.nextNonce(), buf, nil)
	if err != nil {
		return nil, errors.New("frame does not authenticate (wrong gossip key?)")
	}
	return body, nil
}

// frameLimit bounds a frame on the wire: a body and the AEAD tag.
const frameLimit = maxFrame + 64

// helloLimit bounds the first frame, read before the peer is known to hold
// the key: a stranger cannot make this node allocate a large buffer.
const helloLimit = 1 + sha256.Size + 64

// appendHello appends this side's hello frame: the handshake's hash.
func (c *codec) appendHello(dst []byte, sum [sha256.Size]byte) []byte {
	return c.appendFrame(dst, append([]byte{frameHello}, sum[:]...))
}

// checkHello reads the other side's hello frame and checks that it holds
// the same handshake hash, which proves the peer has the key (when there
// is one) and saw the same handshake.
func (c *codec) checkHello(r io.Reader, sum [sha256.Size]byte) error {
	body, err := c.readFrame(r, nil, helloLimit)
	if err != nil || len(body) != 1+sha256.Size || body[0] != frameHello || !bytes.Equal(body[1:], sum[:]) {
		return fmt.Errorf("handshake does not verify (gossip keys differ?): %v", err)
	}
	return nil
}

// Frame bodies.

func msgBody(seq uint64, m Message) []byte {
	b := make([]byte, 0, 1+8+2+len(m.Event)+4+len(m.Data))
	b = append(b, frameMsg)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Event)))
	b = append(b, m.Event...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Data)))
	return append(b, m.Data...)
}

func parseMsg(b []byte) (uint64, Message, error) {
	bad := errors.New("short message frame")
	if len(b) < 8+2 {
		return 0, Message{}, bad
	}
	seq := binary.BigEndian.Uint64(b)
	n := int(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if len(b) < n+4 {
		return 0, Message{}, bad
	}
	ev := string(b[:n])
	b = b[n:]
	d := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if len(b) != d {
		return 0, Message{}, bad
	}
	return seq, Message{Event: ev, Data: bytes.Clone(b)}, nil
}

func u64Body(t byte, vs ...uint64) []byte {
	b := []byte{t}
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

func parseU64s(b []byte, n int) ([]uint64, error) {
	if len(b) != 8*n {
		return nil, errors.New("bad control frame")
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// demuxConn replays the bytes peeked from a connection before the rest.
type demuxConn struct {
	net.Conn
	r io.Reader
}

func (c *demuxConn) Read(p []byte) (int, error) { return c.r.Read(p) }
