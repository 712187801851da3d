package storage

import (
	"sync"

	"github.com/stephub/stephub"
)

// maxRecentVideos bounds recentVideos; when full, it starts over.
const maxRecentVideos = 10000

// recentVideos remembers each video as this Store last created, claimed,
// wrote an event to or read for a post, so that the next event of a job in
// progress need not read its video first: appendIfUnchanged checks the row
// anyway, and an entry gone stale (another node wrote the video since)
// costs one statement that writes nothing. A video that reaches a terminal
// status is forgotten. It is safe for concurrent use.
type recentVideos struct {
	mu     sync.Mutex
	videos map[int64]stephub.Video
}

func (r *recentVideos) get(id int64) (stephub.Video, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.videos[id]
	return v, ok
}

// put remembers v, keeping only what nextEvent and checkRunner read.
func (r *recentVideos) put(v stephub.Video) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v.Status.Terminal() {
		delete(r.videos, v.ID)
		return
	}
	if r.videos == nil || len(r.videos) >= maxRecentVideos {
		r.videos = make(map[int64]stephub.Video)
	}
	r.videos[v.ID] = stephub.Video{
		ID: v.ID, Status: v.Status, Step: v.Step, Progress: v.Progress,
		LastSeq: v.LastSeq, StepStartedAt: v.StepStartedAt, Attempts: v.Attempts,
		LeaseTokenHash: v.LeaseTokenHash, LeaseFenced: v.LeaseFenced,
	}
}

func (r *recentVideos) forget(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.videos, id)
}

// remember keeps v, as just written or read, for the next event's fast way
// on PostgreSQL and for ForecastPost on both databases.
func (s *Store) remember(v stephub.Video) { s.recent.put(v) }
