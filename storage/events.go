package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
)

// Appended is an event AppendEvent or Cancel stored: the event, its JSON
// exactly as clients receive it, whether it was stored by an earlier call
// with the same idempotency key, and the step it ended.
type Appended struct {
	Event   stephub.Event
	Payload []byte
	Repeat  bool
	// StepDone is the step this event ended and how long it ran, or nil
	// when it ended none (see StepTiming). A Repeat never has one: the
	// first call reported it.
	StepDone *StepTiming
}

// StepTiming is how long one step of a job ran: from the step's first event
// to the first event of a later step. A step ends when the video moves past
// it and goes on working (processing) or completes; a job that fails or is
// cancelled does not finish the step it is at, and the terminal step of a
// completed job (TotalSteps+1) is not a step that ran, so a completed job
// that went through all its steps has exactly TotalSteps timings.
//
// The start of the current step is stored with the video, so a step that
// began before a restart, or on another node, is timed all the same.
type StepTiming struct {
	Step     int
	Duration time.Duration
}

// AppendEvent stores the next event of the video videoID, built from s, and
// moves the video to it, in one transaction; it returns the event and its
// JSON, to publish as is. The event gets the next sequence number, with no
// gap even under concurrent calls, and the current time. An event in a
// terminal status carries an ETA of 0 whatever s says: nothing is left to
// run, whoever ended the job.
//
// The video takes s's step, progress and status, and s's video URL and
// error when set. An empty status counts as processing, so a pending video
// becomes processing at its first step; StatusPending puts a video back in
// the queue, for a job whose worker was lost. A failed or cancelled status gives the
// video's cost back to its owner; since a video reaches a terminal status
// only once, that happens only once.
//
// A step with an IdempotencyKey already stored for this video is not stored
// again: AppendEvent returns the first one's event and JSON, even if the
// video has finished since. Otherwise a video in a terminal status takes no
// more events: stephub.ErrVideoCancelled if it was cancelled (the worker
// should stop), stephub.ErrVideoFinished if it completed or failed. An
// unknown video is stephub.ErrNotFound. A step or progress below the
// video's is a validation error: neither ever goes backwards.
func (s *Store) AppendEvent(ctx context.Context, videoID int64, st stephub.Step) (Appended, error) {
	var a Appended
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		// Locked before the idempotency check, so that two posts with the
		// same key queue here and the second finds the first's row.
		v, err := s.lockVideo(ctx, tx, videoID)
		if err != nil {
			return err
		}
		if st.IdempotencyKey != "" {
			stored, err := eventByKey(ctx, tx, videoID, st.IdempotencyKey)
			switch {
			case err == nil:
				a = Appended{Payload: stored, Repeat: true}
				if err := json.Unmarshal(stored, &a.Event); err != nil {
					return fmt.Errorf("decode the stored event: %w", err)
				}
				return nil
			case !errors.Is(err, stephub.ErrNotFound):
				return err
			}
		}
		a, err = s.appendLocked(ctx, tx, v, st)
		return err
	})
	if err != nil {
		return Appended{}, fmt.Errorf("append event to video %d: %w", videoID, err)
	}
	return a, nil
}

// eventByKey returns the payload of the event of videoID stored with
// idempotency key key, or stephub.ErrNotFound.
func eventByKey(ctx context.Context, tx *sqlx.Tx, videoID int64, key string) ([]byte, error) {
	var payload []byte
	if err := get(ctx, tx, &payload, "SELECT payload FROM events WHERE video_id = ? AND idempotency_key = ?", videoID, key); err != nil {
		if !errors.Is(err, stephub.ErrNotFound) {
			err = fmt.Errorf("look up the idempotency key: %w", err)
		}
		return nil, err
	}
	return payload, nil
}

// appendLocked stores the event built from st as the next one of v, which
// tx has locked with lockVideo, and moves v to it. It is the one place that
// writes events, for every caller.
//
// A video that goes on processing is leased for the Store's lease from now
// (a post to a pending video claims it, and counts as an attempt); one that
// finishes, or goes back to pending, is leased to nobody.
func (s *Store) appendLocked(ctx context.Context, tx *sqlx.Tx, v stephub.Video, st stephub.Step) (Appended, error) {
	// Checked here, where the refund is, so that no caller can give the
	// cost back twice.
	switch {
	case v.Status == stephub.StatusCancelled:
		return Appended{}, stephub.ErrVideoCancelled
	case v.Status.Terminal():
		return Appended{}, stephub.ErrVideoFinished
	}
	// Checked under the video's lock, so that two racing writers cannot
	// take it backwards between them.
	problems := make(map[string]string)
	if st.Step < v.Step {
		problems["step"] = fmt.Sprintf("must not go backwards: the video is at step %d", v.Step)
	}
	if st.Progress < v.Progress {
		problems["progress"] = fmt.Sprintf("must not go backwards: the video is at %d%%", v.Progress)
	}
	if len(problems) > 0 {
		return Appended{}, stephub.Invalid(problems)
	}
	status := st.Status
	if status == "" {
		status = stephub.StatusProcessing
	}
	t := now()
	eta := st.ETASeconds
	if status.Terminal() {
		eta = new(0.0)
	}
	// The first event of a step starts its clock; the clock of the step the
	// video was at stops, if the job goes on past it.
	var started *time.Time // nil: the video stays in its step
	if st.Step != v.Step {
		started = &t
	}
	var done *StepTiming
	if st.Step > v.Step && v.Step >= 1 && v.StepStartedAt != nil &&
		(status == stephub.StatusProcessing || status == stephub.StatusCompleted) {
		// The start may have been written by another node whose clock is
		// a little ahead; a step never takes less than nothing.
		done = &StepTiming{Step: v.Step, Duration: max(t.Sub(*v.StepStartedAt), 0)}
	}
	var leaseUntil *time.Time // nil: nobody runs the video any more
	attempts := v.Attempts
	if status == stephub.StatusProcessing {
		leaseUntil = new(t.Add(s.lease))
		if v.Status == stephub.StatusPending {
			attempts++
		}
	}
	ev := stephub.Event{
		ID:         v.LastSeq + 1,
		Step:       st.Step,
		TotalSteps: stephub.TotalSteps,
		Message:    st.Message,
		Progress:   st.Progress,
		Status:     status,
		ETASeconds: eta,
		At:         t,
		VideoURL:   st.VideoURL,
		Error:      st.Error,
		Data:       st.Data,
	}
	// json.Marshal compacts Data too, so the payload is always one line.
	payload, err := json.Marshal(ev)
	if err != nil {
		return Appended{}, fmt.Errorf("encode the event: %w", err)
	}
	var key *string // NULL: the unique index ignores events without a key
	if st.IdempotencyKey != "" {
		key = &st.IdempotencyKey
	}
	if err := s.insertThenUpdate(ctx, tx,
		`INSERT INTO events (video_id, seq, payload, terminal, idempotency_key, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		[]any{v.ID, ev.ID, string(payload), status.Terminal(), key, t},
		`UPDATE videos
		SET last_seq = ?, step = ?, progress = ?, status = ?,
		    video_url = COALESCE(?, video_url), error = COALESCE(?, error),
		    step_started_at = COALESCE(?, step_started_at), updated_at = ?,
		    lease_expires_at = ?, attempts = ?
		WHERE id = ?`,
		[]any{ev.ID, st.Step, st.Progress, status, st.VideoURL, st.Error, started, t, leaseUntil, attempts, v.ID},
	); err != nil {
		return Appended{}, fmt.Errorf("store the event: %w", err)
	}
	if status == stephub.StatusFailed || status == stephub.StatusCancelled {
		if _, err := exec(ctx, tx, "UPDATE users SET credits = credits + ?, updated_at = ? WHERE id = ?",
			v.Cost, t, v.UserID); err != nil {
			return Appended{}, fmt.Errorf("refund the credits: %w", err)
		}
	}
	return Appended{Event: ev, Payload: payload, StepDone: done}, nil
}

// insertThenUpdate runs an INSERT and then an UPDATE in tx. PostgreSQL runs
// them as one statement, the INSERT in a WITH clause, which saves a round
// trip on every event; SQLite has no INSERT in WITH, and being in-process,
// no round trip to save.
func (s *Store) insertThenUpdate(ctx context.Context, tx *sqlx.Tx, insert string, insertArgs []any, update string, updateArgs []any) error {
	if s.dialect == DialectPostgres {
		_, err := exec(ctx, tx, "WITH inserted AS ("+insert+") "+update, append(insertArgs, updateArgs...)...)
		return err
	}
	if _, err := exec(ctx, tx, insert, insertArgs...); err != nil {
		return err
	}
	_, err := exec(ctx, tx, update, updateArgs...)
	return err
}

// EventsAfter returns the events of the video videoID whose sequence number
// is above afterSeq, in order, ready to send: it is the hub's History. An
// unknown video has no events.
func (s *Store) EventsAfter(ctx context.Context, videoID, afterSeq int64) ([]*hub.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT seq, payload, terminal FROM events
		WHERE video_id = ? AND seq > ?
		ORDER BY seq`), videoID, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("events of video %d after %d: %w", videoID, afterSeq, err)
	}
	defer rows.Close()
	var evs []*hub.Event
	for rows.Next() {
		e := &hub.Event{VideoID: videoID}
		if err := rows.Scan(&e.Seq, &e.Data, &e.Terminal); err != nil {
			return nil, fmt.Errorf("events of video %d after %d: %w", videoID, afterSeq, err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of video %d after %d: %w", videoID, afterSeq, err)
	}
	return evs, nil
}

var _ hub.History = (*Store)(nil)
