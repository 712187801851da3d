package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// clientFrame encodes a frame as a client sends it: masked, its length in
// the shortest form.
func clientFrame(fin bool, opcode byte, payload []byte, mask [4]byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// FuzzReadFrame reads arbitrary bytes as client frames: readFrame never
// panics, never allocates what the header merely claims, and every frame
// it returns keeps the protocol's limits.
func FuzzReadFrame(f *testing.F) {
	f.Add(clientFrame(true, wsText, []byte(`{"type":"cancel"}`), [4]byte{1, 2, 3, 4}))
	f.Add(clientFrame(true, wsPing, []byte("hi"), [4]byte{}))
	f.Add(append(clientFrame(false, wsText, []byte("a"), [4]byte{9}), clientFrame(true, wsContinuation, []byte("b"), [4]byte{7})...))
	f.Add(clientFrame(true, wsClose, []byte{0x03, 0xe8}, [4]byte{5, 5, 5, 5}))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // claims 2^63-1 bytes
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'})                        // unmasked
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for room := maxClientMessage; ; {
			fr, why, err := readFrame(r, room)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("readFrame: %v; want a read error only", err)
				}
				return
			}
			if why != 0 {
				return
			}
			control := fr.opcode >= wsClose
			switch {
			case control && (len(fr.payload) > 125 || !fr.fin):
				t.Fatalf("control frame %x of %d bytes, fin %v", fr.opcode, len(fr.payload), fr.fin)
			case !control && len(fr.payload) > room:
				t.Fatalf("data frame of %d bytes with room for %d", len(fr.payload), room)
			case fr.opcode > wsBinary && fr.opcode < wsClose, fr.opcode > wsPong:
				t.Fatalf("reserved opcode %x accepted", fr.opcode)
			}
			if !control {
				room -= len(fr.payload)
			}
		}
	})
}

// FuzzReadFrameRoundTrip encodes frames as a client would: a frame that
// keeps the protocol's rules reads back as it was sent, and one that does
// not is refused before its payload is read.
func FuzzReadFrameRoundTrip(f *testing.F) {
	f.Add(true, byte(wsText), []byte(`{"type":"cancel"}`), uint32(0x01020304))
	f.Add(false, byte(wsPing), []byte("x"), uint32(0))
	f.Add(true, byte(wsBinary), bytes.Repeat([]byte{0xAB}, 300), uint32(0xdeadbeef))
	f.Add(true, byte(3), []byte{}, uint32(1))
	f.Fuzz(func(t *testing.T, fin bool, opcode byte, payload []byte, mask uint32) {
		opcode &= 0x0f
		var m [4]byte
		binary.BigEndian.PutUint32(m[:], mask)
		fr, why, err := readFrame(bytes.NewReader(clientFrame(fin, opcode, payload, m)), maxClientMessage)
		if err != nil {
			t.Fatalf("readFrame: %v", err)
		}
		control := opcode >= wsClose
		valid := opcode <= wsBinary || (control && opcode <= wsPong && fin && len(payload) <= 125 && !(opcode == wsClose && len(payload) == 1))
		switch {
		case valid && !control && len(payload) > maxClientMessage:
			if why != leftTooBig {
				t.Fatalf("data frame of %d bytes: why %d; want leftTooBig", len(payload), why)
			}
		case valid:
			if why != 0 || fr.fin != fin || fr.opcode != opcode || !bytes.Equal(fr.payload, payload) {
				t.Fatalf("read back fin %v opcode %x %q, why %d; sent fin %v opcode %x %q", fr.fin, fr.opcode, fr.payload, why, fin, opcode, payload)
			}
		case why != leftProtocol:
			t.Fatalf("invalid frame (fin %v, opcode %x, %d bytes): why %d; want leftProtocol", fin, opcode, len(payload), why)
		}
	})
}
