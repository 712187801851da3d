package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stephub/stephub/hub"
)

// WebSocket is the transport label of WebSocket streams.
const WebSocket = "ws"

const (
	// maxClientMessage bounds what a client may send; it only ever sends
	// small commands.
	maxClientMessage = 4 << 10
	// closeWait bounds the wait for the peer's answer to a close frame,
	// and the write of the close frame that answers a stream with
	// nothing to send.
	closeWait = time.Second
	// commandTimeout bounds the work a client's command starts.
	commandTimeout = 10 * time.Second
)

// IsWebSocketUpgrade reports whether r asks for a WebSocket.
func IsWebSocketUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// WebSocket upgrades the request and streams the subscription as text
// frames, one event JSON each; it returns once the upgrade is done. The
// stream pings the peer every PingInterval and drops it when nothing, not
// even a pong, comes back for two intervals. The connection closes with
// 1000 after the terminal event, 1001 when the server shuts down, 1013
// (try again later) when the peer reads too slowly, and
// CloseCredentialExpired at until unless that is zero (the expiry of the
// client's credential), once what is queued is written, so that it
// reconnects with last_event_id. A nil sub means nothing is left to send: the
// connection closes with 1000 at once. onCancel, if set, runs when the
// client sends {"type": "cancel"}; done is told how the stream ended.
//
// gorilla/websocket does the handshake; the frames, in both directions,
// are the stream's own, so that its writer is the only one.
func (st *Streamer) WebSocket(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, until time.Time, onCancel func(context.Context), done Done) {
	ws, err := st.upgrader.Upgrade(w, r, nil)
	if err != nil {
		done(0, err) // Upgrade has answered the client
		return
	}
	conn := ws.NetConn()
	if sub == nil {
		conn.SetWriteDeadline(time.Now().Add(closeWait))
		_, err := conn.Write(appendWSClose(nil, closeNormal, ""))
		conn.Close()
		done(0, err)
		return
	}
	s := st.newStream(context.Background(), sub, wireWebSocket, done)
	s.takeOver(conn)
	pongWait := 2 * st.cfg.pingInterval()
	s.start(nil, until, func() { s.readWS(pongWait, onCancel) })
}

// readWS reads the client's frames until the connection fails, the client
// closes it or breaks the protocol, or nothing comes for pongWait. It
// leaves the answers to pings and close frames to the writer.
func (s *stream) readWS(pongWait time.Duration, onCancel func(context.Context)) {
	why := s.readFrames(pongWait, onCancel)
	s.left.Store(why)
	s.sub.Close()
	if why == leftClosing || why == leftProtocol || why == leftTooBig {
		// The writer answers with a close frame. Read on until the peer
		// closes, a while: closing with its bytes unread would reset the
		// connection, and the answer with it.
		s.conn.SetReadDeadline(time.Now().Add(closeWait))
		io.Copy(io.Discard, s.conn)
	}
	s.letGo(false, false)
}

// readFrames reads frames as RFC 6455 has a server read them, and returns
// why it stopped.
func (s *stream) readFrames(pongWait time.Duration, onCancel func(context.Context)) (why int32) {
	var (
		message []byte // a message, while its fragments come
		inMsg   bool   // message is not complete yet
		text    bool   // message is text
	)
	for {
		s.conn.SetReadDeadline(time.Now().Add(pongWait))
		if s.state.Load() == stateEnded {
			// The writer sent its close frame, maybe before this
			// deadline replaced the shorter one it set: the peer has
			// closeWait to answer.
			s.conn.SetReadDeadline(time.Now().Add(closeWait))
		}
		f, why, err := readFrame(s.conn, maxClientMessage-len(message))
		switch {
		case err != nil:
			return leftOnError(err)
		case why != 0:
			return why
		}
		switch f.opcode {
		case wsClose:
			return leftClosing
		case wsPing:
			s.pong.Store(&f.payload)
			s.pending.Or(duePong)
			s.wake()
		case wsPong: // proof of life: the next read's deadline moves
		default:
			if inMsg == (f.opcode != wsContinuation) {
				return leftProtocol // a new message inside one, or a fragment outside
			}
			if f.opcode != wsContinuation {
				text = f.opcode == wsText
			}
			message, inMsg = append(message, f.payload...), !f.fin
			if f.fin && text {
				s.command(message, onCancel)
			}
			if f.fin {
				message = message[:0]
			}
		}
	}
}

// frame is one frame from a client, unmasked.
type frame struct {
	fin     bool
	opcode  byte
	payload []byte
}

// readFrame reads one frame from a client. It checks the header as RFC
// 6455 has a server check it before any payload is read: why is
// leftProtocol for a frame that breaks the protocol, and leftTooBig for a
// data frame over room bytes. err is a failed read.
func readFrame(r io.Reader, room int) (f frame, why int32, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return f, 0, err
	}
	f.fin, f.opcode = hdr[0]&0x80 != 0, hdr[0]&0x0f
	if hdr[0]&0x70 != 0 || hdr[1]&0x80 == 0 {
		return f, leftProtocol, nil // no extension was agreed; a client masks every frame
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return f, 0, err
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return f, 0, err
		}
		n = binary.BigEndian.Uint64(hdr[:8])
	}
	control := f.opcode >= wsClose
	switch {
	case f.opcode > wsBinary && f.opcode < wsClose, f.opcode > wsPong:
		return f, leftProtocol, nil // a reserved opcode
	case n>>63 != 0, control && (n > 125 || !f.fin), f.opcode == wsClose && n == 1:
		return f, leftProtocol, nil // a length's top bit is 0; a close frame's code has 2 bytes
	case !control && n > uint64(room):
		return f, leftTooBig, nil
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return f, 0, err
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, 0, err
	}
	for i := range f.payload {
		f.payload[i] ^= mask[i%4]
	}
	return f, 0, nil
}

// leftOnError tells a silent peer from one that is gone.
func leftOnError(err error) int32 {
	if isTimeout(err) {
		return leftSilent
	}
	return leftGone
}

// command runs what a client's message asks for: {"type": "cancel"} is the
// only command.
func (s *stream) command(message []byte, onCancel func(context.Context)) {
	var msg struct {
		Type string `json:"type"`
	}
	if onCancel == nil || json.Unmarshal(message, &msg) != nil || msg.Type != "cancel" {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, commandTimeout)
	defer cancel()
	onCancel(ctx)
}
