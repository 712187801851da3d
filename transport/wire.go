package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/stephub/stephub/hub"
)

// wire is how a stream frames its output.
type wire uint8

const (
	// wireSSE is SSE as a body that net/http frames (HTTP/2, TLS), or that
	// the end of the connection delimits (an HTTP/1.0 client).
	wireSSE wire = iota
	// wireSSEChunked is SSE in HTTP/1.1 chunks of the stream's own, on a
	// connection taken over: each write is one chunk, so that a client
	// reading chunk by chunk has every event as soon as it is written.
	wireSSEChunked
	// wireWebSocket is one WebSocket text frame per event.
	wireWebSocket
)

// label is the wire's transport label.
func (w wire) label() string {
	if w == wireWebSocket {
		return WebSocket
	}
	return SSE
}

// writesAreHeartbeats reports whether any write keeps the stream alive. An
// SSE stream needs a ping only after an interval without one; a WebSocket
// stream pings every interval, as its peer's pongs are what prove it is
// still there.
func (w wire) writesAreHeartbeats() bool { return w != wireWebSocket }

// SSE framing.
const (
	sseRetry = "retry: 3000\n\n" // how long EventSource waits to reconnect
	ssePing  = ": ping\n\n"
)

// appendEvents appends the frames of events.
func (w wire) appendEvents(b []byte, events []*hub.Event) []byte {
	switch {
	case len(events) == 0:
		return b
	case w == wireWebSocket:
		for _, e := range events {
			b = append(appendWSHeader(b, wsText, len(e.Data)), e.Data...)
		}
		return b
	case w == wireSSEChunked:
		b = appendChunkHeader(b, sseFramesLen(events))
		return append(appendSSEFrames(b, events), "\r\n"...)
	}
	return appendSSEFrames(b, events)
}

// appendPreamble appends what an SSE stream starts with: the retry hint.
func (w wire) appendPreamble(b []byte) []byte {
	switch w {
	case wireWebSocket:
		return b
	case wireSSEChunked:
		return appendChunk(b, sseRetry)
	}
	return append(b, sseRetry...)
}

// appendPing appends a heartbeat.
func (w wire) appendPing(b []byte) []byte {
	switch w {
	case wireWebSocket:
		return appendWSHeader(b, wsPing, 0)
	case wireSSEChunked:
		return appendChunk(b, ssePing)
	}
	return append(b, ssePing...)
}

// appendPong appends the answer to a WebSocket peer's ping.
func (w wire) appendPong(b, payload []byte) []byte {
	if w != wireWebSocket {
		return b
	}
	return append(appendWSHeader(b, wsPong, len(payload)), payload...)
}

// appendEnd appends what ends the response when the stream ends for the
// reason err: the last chunk of a chunked body, a WebSocket close frame.
// A client that left gets nothing.
func (w wire) appendEnd(b []byte, err error) []byte {
	switch w {
	case wireSSEChunked:
		if errors.Is(err, errClientGone) {
			return b
		}
		return append(b, lastChunk...)
	case wireWebSocket:
		if code, reason := closeCode(err); code != 0 {
			return appendWSClose(b, code, reason)
		}
	}
	return b
}

// appendSSEFrames appends an "id:" and a "data:" line per event.
func appendSSEFrames(b []byte, events []*hub.Event) []byte {
	for _, e := range events {
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, e.Seq, 10)
		b = append(b, "\ndata: "...)
		b = append(b, e.Data...)
		b = append(b, "\n\n"...)
	}
	return b
}

// sseFramesLen is the length of the frames appendSSEFrames appends.
func sseFramesLen(events []*hub.Event) int {
	n := 0
	for _, e := range events {
		n += len("id: \ndata: \n\n") + decimalLen(e.Seq) + len(e.Data)
	}
	return n
}

func decimalLen(v int64) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

// appendChunkHeader appends the size line of an HTTP/1.1 chunk of n bytes.
func appendChunkHeader(b []byte, n int) []byte {
	return append(strconv.AppendUint(b, uint64(n), 16), "\r\n"...)
}

// appendChunk appends s as one HTTP/1.1 chunk.
func appendChunk(b []byte, s string) []byte {
	return append(append(appendChunkHeader(b, len(s)), s...), "\r\n"...)
}

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// WebSocket close codes (RFC 6455, section 7.4.1).
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closeProtocolError = 1002
	closeTooBig        = 1009
	closeInternalError = 1011
	closeTryAgainLater = 1013
)

// CloseCredentialExpired is the WebSocket close code of a stream whose
// credential expired, from the range RFC 6455 leaves to applications.
const CloseCredentialExpired = 4001

// ErrProtocol ends a WebSocket stream whose client broke the protocol.
var ErrProtocol = errors.New("transport: the client broke the WebSocket protocol")

var (
	errPeerClosed = fmt.Errorf("transport: the client closed the WebSocket: %w", errClientGone)
	errTooBig     = fmt.Errorf("transport: the client sent a message over %d bytes: %w", maxClientMessage, ErrProtocol)
)

// closeCode is the WebSocket close frame that ends a stream for the reason
// err; code 0 means none, for a peer that is gone or silent.
func closeCode(err error) (code int, reason string) {
	switch {
	case err == nil, errors.Is(err, errPeerClosed):
		return closeNormal, ""
	case errors.Is(err, hub.ErrClosed):
		return closeGoingAway, "server shutting down"
	case errors.Is(err, hub.ErrSlowConsumer):
		return closeTryAgainLater, "too slow; reconnect with last_event_id"
	case errors.Is(err, ErrExpired):
		return CloseCredentialExpired, "credential expired; reconnect with a fresh one and last_event_id"
	case errors.Is(err, errTooBig):
		return closeTooBig, ""
	case errors.Is(err, ErrProtocol):
		return closeProtocolError, ""
	case errors.Is(err, errClientGone), errors.Is(err, ErrPongTimeout), errors.As(err, new(*WriteError)):
		return 0, ""
	}
	return closeInternalError, "reconnect with last_event_id"
}

// appendWSHeader appends the header of an unmasked, final frame of n
// bytes: a server's frames are never masked.
func appendWSHeader(b []byte, opcode byte, n int) []byte {
	b = append(b, 0x80|opcode)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// appendWSClose appends a close frame with code and reason.
func appendWSClose(b []byte, code int, reason string) []byte {
	b = appendWSHeader(b, wsClose, 2+len(reason))
	return append(binary.BigEndian.AppendUint16(b, uint16(code)), reason...)
}
