package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
)

// whatwgEvent is an event as a browser's EventSource dispatches it.
type whatwgEvent struct {
	lastEventID, data string
}

// parseEventStream interprets a stream as the WHATWG HTML standard's
// "interpreting an event stream" does: lines end at CRLF, LF or CR;
// a blank line dispatches; "data" lines join with LF; an "id" with a NUL
// is ignored; comments and unknown fields are skipped; an event cut off by
// the end of the stream is dropped.
func parseEventStream(stream string) (events []whatwgEvent, retry string) {
	stream = strings.TrimPrefix(stream, "\uFEFF")
	var data strings.Builder
	lastID := ""
	for {
		end := strings.IndexAny(stream, "\r\n")
		if end < 0 {
			break // no line end: the stream was cut
		}
		line, rest := stream[:end], stream[end+1:]
		if stream[end] == '\r' && strings.HasPrefix(rest, "\n") {
			rest = rest[1:]
		}
		stream = rest
		if line == "" {
			if data.Len() > 0 {
				events = append(events, whatwgEvent{lastEventID: lastID, data: strings.TrimSuffix(data.String(), "\n")})
			}
			data.Reset()
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "": // a comment
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.Contains(value, "\x00") {
				lastID = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				retry = value
			}
		}
	}
	return events, retry
}

// FuzzSSERoundTrip encodes an event as storage does and frames it as every
// SSE wire does; a WHATWG parser reads back the same id and the same JSON,
// however the strings in it are made.
func FuzzSSERoundTrip(f *testing.F) {
	f.Add(int64(1), "🔍 Validating request parameters...", "", []byte(`{"frames": 12}`))
	f.Add(int64(9), "line\nbreak\rreturn\r\n", "a\u2028b\u2029", []byte(`{"x": "\n"}`))
	f.Add(int64(1<<62), "data: forged\n\nid: 99", ": comment", []byte(`{}`))
	f.Add(int64(3), "\x00\xff\xfe", "\uFEFF", []byte(`{"a": [1, {"b": null}]}`))
	f.Fuzz(func(t *testing.T, seq int64, message, errText string, data []byte) {
		if seq < 0 {
			seq = -(seq + 1)
		}
		ev := stephub.Event{ID: seq, Step: 3, TotalSteps: stephub.TotalSteps, Message: message, Progress: 33,
			Status: stephub.StatusProcessing, At: time.Unix(1700000000, 0).UTC(), Error: &errText}
		if json.Valid(data) && bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			ev.Data = data
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		events := []*hub.Event{{VideoID: 1, Seq: seq, Data: payload}, {VideoID: 1, Seq: seq, Data: payload}}
		for _, w := range []wire{wireSSE, wireSSEChunked} {
			raw := w.appendEvents(w.appendPing(w.appendPreamble(nil)), events)
			if w == wireSSEChunked {
				raw, err = io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(append(raw, lastChunk...))))
				if err != nil {
					t.Fatalf("%s: the chunks do not parse: %v", w.label(), err)
				}
			}
			got, retry := parseEventStream(string(raw))
			if retry != "3000" || len(got) != len(events) {
				t.Fatalf("%s: parsed retry %q and %d events from %q; want 3000 and %d", w.label(), retry, len(got), raw, len(events))
			}
			for _, g := range got {
				if g.lastEventID != strconv.FormatInt(seq, 10) || g.data != string(payload) {
					t.Fatalf("%s: parsed id %q data %q; sent id %d data %q", w.label(), g.lastEventID, g.data, seq, payload)
				}
			}
		}
	})
}
