package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/testdb"
)

// TestHistoryFollowsTheEncoding stores events as releases of other payload
// versions would have, beside one AppendEvent stores: history, to a stream
// and to a retried post alike, re-encodes a payload older than the current
// encoding into the shape of live events, and serves a current one byte for
// byte as stored.
func TestHistoryFollowsTheEncoding(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		ctx := t.Context()
		s := openMigrated(t, url)
		v := annsVideo(t, s)
		first, err := s.AppendEvent(ctx, v.ID, stephub.Step{Step: 1, Message: "queued", Progress: 10})
		if err != nil {
			t.Fatal(err)
		}

		at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		// An older encoding: no total_steps yet, and a percent since dropped.
		old := `{"id":2,"step":2,"message":"rendering","progress":20,"percent":20,"status":"processing","at":"2025-03-01T12:00:00Z"}`
		wantOld, err := encodeEvent(stephub.Event{ID: 2, Step: 2, Message: "rendering", Progress: 20, Status: stephub.StatusProcessing, At: at})
		if err != nil {
			t.Fatal(err)
		}
		// Current payloads, spaced as encodeEvent never would, so that a
		// re-encoding shows.
		current := `{"id": 3, "step": 3, "total_steps": 8, "message": "upscaling", "progress": 30, "status": "processing", "at": "2025-03-01T12:00:01Z"}`
		unversioned := `{"id": 4, "step": 4, "total_steps": 8, "message": "mixing", "progress": 40, "status": "processing", "at": "2025-03-01T12:00:02Z"}`
		err = s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
			const insert = "INSERT INTO events (video_id, seq, payload, payload_version, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?)"
			if _, err := exec(ctx, tx, insert, v.ID, 2, old, payloadVersion-1, "old", at); err != nil {
				return err
			}
			if _, err := exec(ctx, tx, insert, v.ID, 3, current, payloadVersion, nil, at); err != nil {
				return err
			}
			// A release from before payload versions writes none.
			if _, err := exec(ctx, tx, "INSERT INTO events (video_id, seq, payload, created_at) VALUES (?, 4, ?, ?)", v.ID, unversioned, at); err != nil {
				return err
			}
			_, err := exec(ctx, tx, "UPDATE videos SET last_seq = 4, step = 4, progress = 40 WHERE id = ?", v.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		s.recent.forget(v.ID)

		evs, err := s.EventsAfter(ctx, v.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]byte{first.Payload, wantOld, []byte(current), []byte(unversioned)}
		if len(evs) != len(want) {
			t.Fatalf("EventsAfter = %d events; want %d", len(evs), len(want))
		}
		for i, e := range evs {
			if e.Seq != int64(i+1) || !bytes.Equal(e.Data, want[i]) {
				t.Errorf("event %d: seq %d, %s; want %s", i+1, e.Seq, e.Data, want[i])
			}
		}
		var reencoded map[string]any
		if err := json.Unmarshal(evs[1].Data, &reencoded); err != nil {
			t.Fatal(err)
		}
		if _, ok := reencoded["total_steps"]; !ok {
			t.Errorf("the old event re-encoded: %s; want total_steps, which the old payload lacked", evs[1].Data)
		}
		if _, ok := reencoded["percent"]; ok {
			t.Errorf("the old event re-encoded: %s; want no percent, which events no longer have", evs[1].Data)
		}

		// A retry of the old event's post is answered in the current
		// encoding too.
		a, err := s.AppendEvent(ctx, v.ID, stephub.Step{Step: 5, Message: "again", Progress: 50, IdempotencyKey: "old"})
		if err != nil {
			t.Fatal(err)
		}
		if !a.Repeat || a.Event.ID != 2 || !bytes.Equal(a.Payload, wantOld) {
			t.Errorf("retry of the old event's post: repeat %v, event %d, %s; want a repeat of event 2, %s", a.Repeat, a.Event.ID, a.Payload, wantOld)
		}
	})
}
