package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
)

// TestRetention finishes videos every way a video finishes (completed,
// failed, cancelled), leaves one running, and deletes first the events,
// then the videos that finished before a time: only the finished videos'
// go, and only once.
func TestRetention(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 10000)

		completed, failed, cancelled, running := mustVideo(t, s, "u1"), mustVideo(t, s, "u1"), mustVideo(t, s, "u1"), mustVideo(t, s, "u1")
		for _, v := range []stephub.Video{completed, failed, cancelled, running} {
			mustAppend(t, s, v.ID, step(1))
			mustAppend(t, s, v.ID, step(2))
		}
		mustAppend(t, s, completed.ID, stephub.Step{Step: 9, Message: "done", Progress: 100, Status: stephub.StatusCompleted, VideoURL: ptr("/v.mp4")})
		mustAppend(t, s, failed.ID, stephub.Step{Step: 2, Message: "no", Progress: 22, Status: stephub.StatusFailed, Error: ptr("broken")})
		if _, _, err := s.Cancel(ctx, "u1", cancelled.ID, "stop"); err != nil {
			t.Fatal(err)
		}
		finished := []stephub.Video{completed, failed, cancelled}

		// Nothing finished an hour ago.
		if d, err := s.DeleteEventsBefore(ctx, time.Now().Add(-time.Hour)); err != nil || d != (storage.Deleted{}) {
			t.Fatalf("DeleteEventsBefore an hour ago = %+v, %v; want nothing deleted", d, err)
		}
		later := time.Now().Add(time.Hour)
		if d, err := s.DeleteEventsBefore(ctx, later); err != nil || d != (storage.Deleted{Videos: 3, Events: 9}) {
			t.Fatalf("DeleteEventsBefore = %+v, %v; want the 3 events of each of the 3 finished videos", d, err)
		}
		if d, err := s.DeleteEventsBefore(ctx, later); err != nil || d != (storage.Deleted{}) {
			t.Fatalf("DeleteEventsBefore again = %+v, %v; want nothing left", d, err)
		}
		for _, v := range finished {
			got, err := s.Video(ctx, v.ID)
			if err != nil || !got.Status.Terminal() || got.LastSeq != 3 || got.EventsDeletedAt == nil {
				t.Errorf("video %d after its events went: %+v, %v; want it finished, at event 3, its events marked deleted", v.ID, got, err)
			}
			if evs := mustEvents(t, s, v.ID, 0); len(evs) != 0 {
				t.Errorf("video %d has %d events left; want none", v.ID, len(evs))
			}
		}
		if evs := mustEvents(t, s, running.ID, 0); len(evs) != 2 {
			t.Errorf("the running video has %d events; want its 2", len(evs))
		}

		if d, err := s.DeleteVideosBefore(ctx, time.Now().Add(-time.Hour)); err != nil || d != (storage.Deleted{}) {
			t.Fatalf("DeleteVideosBefore an hour ago = %+v, %v; want nothing deleted", d, err)
		}
		// Their events are gone already.
		if d, err := s.DeleteVideosBefore(ctx, later); err != nil || d != (storage.Deleted{Videos: 3}) {
			t.Fatalf("DeleteVideosBefore = %+v, %v; want the 3 finished videos", d, err)
		}
		for _, v := range finished {
			if _, err := s.Video(ctx, v.ID); !errors.Is(err, stephub.ErrNotFound) {
				t.Errorf("video %d after retention: %v; want not found", v.ID, err)
			}
		}
		if got, err := s.Video(ctx, running.ID); err != nil || got.Status != stephub.StatusProcessing {
			t.Errorf("the running video: %+v, %v; want it processing", got, err)
		}
	})
}

// TestRetentionBatches: each call deals with at most storage.RetentionBatch
// videos, oldest first, and deletes the events along with the videos.
func TestRetentionBatches(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000*stephub.GenerateCost)
		const n = storage.RetentionBatch + 5
		var ids []int64
		for range n {
			v := mustVideo(t, s, "u1")
			mustAppend(t, s, v.ID, stephub.Step{Step: 9, Message: "done", Progress: 100, Status: stephub.StatusCompleted, VideoURL: ptr("/v.mp4")})
			ids = append(ids, v.ID)
		}
		later := time.Now().Add(time.Hour)
		for i, want := range []storage.Deleted{{Videos: storage.RetentionBatch, Events: storage.RetentionBatch}, {Videos: 5, Events: 5}, {}} {
			if d, err := s.DeleteVideosBefore(ctx, later); err != nil || d != want {
				t.Fatalf("DeleteVideosBefore call %d = %+v, %v; want %+v", i+1, d, err, want)
			}
			if i == 0 {
				// The oldest went first.
				if _, err := s.Video(ctx, ids[storage.RetentionBatch-1]); !errors.Is(err, stephub.ErrNotFound) {
					t.Errorf("video %d after the first batch: %v; want deleted", ids[storage.RetentionBatch-1], err)
				}
				if _, err := s.Video(ctx, ids[storage.RetentionBatch]); err != nil {
					t.Errorf("video %d after the first batch: %v; want kept", ids[storage.RetentionBatch], err)
				}
			}
		}
	})
}
