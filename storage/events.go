package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
)

// payloadVersion is the version of encodeEvent's encoding, stored with each
// event's payload. Bump it when that encoding changes (a field of
// stephub.Event added, renamed or dropped): payloads stored under an older
// version are then re-encoded whenever they are read, so that replayed
// history has the shape of live events. A field that old payloads lack
// takes its zero value.
const payloadVersion = 1

// encodeEvent is the payload of ev: its JSON as clients receive it, on one
// line (json.Marshal compacts Data too).
func encodeEvent(ev stephub.Event) ([]byte, error) { return json.Marshal(ev) }

// currentPayload returns payload, stored under encoding version, in the
// current encoding: as it is when version is current (or newer, stored by
// a newer release during a rolling upgrade), else decoded and encoded
// again.
func currentPayload(payload []byte, version int) ([]byte, error) {
	if version >= payloadVersion {
		return payload, nil
	}
	var ev stephub.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("decode a payload of version %d: %w", version, err)
	}
	return encodeEvent(ev)
}

// Appended is an event AppendEvent or Cancel stored: the event, its JSON
// exactly as clients receive it, whether it was stored by an earlier call
// with the same idempotency key, the step it ended, and the lease it took.
type Appended struct {
	Event   stephub.Event
	Payload []byte
	Repeat  bool
	// StepDone is the step this event ended and how long it ran, or nil
	// when it ended none (see StepTiming). A Repeat never has one: the
	// first call reported it.
	StepDone *StepTiming
	// LeaseToken is the token of the lease a step to a pending video took
	// as it claimed the video, for its poster; empty for any other event,
	// and for a Repeat.
	LeaseToken string
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
// video's cost back to its owner, up to stephub.MaxCredits; since a video
// reaches a terminal status only once, that happens only once.
//
// A step with an IdempotencyKey already stored for this video is not stored
// again: AppendEvent returns the first one's event and JSON, even if the
// video has finished since. Otherwise a video in a terminal status takes no
// more events: stephub.ErrVideoCancelled if it was cancelled (the worker
// should stop), stephub.ErrVideoFinished if it completed or failed. An
// unknown video is stephub.ErrNotFound.
//
// The lease fences the video's runners, atomically with the write. A step
// whose LeaseToken is not the current lease's is stephub.ErrLeaseLost: its
// lease ran out, and the video went back to the queue or to another
// runner. A step without a token is stephub.ErrLeaseHeld if the lease is
// fenced (see Claim); a step that carries the token fences it. A step
// without a token to a pending video claims it under a new lease, whose
// token Appended.LeaseToken returns.
//
// Last, a step or progress below the video's is a validation error:
// neither ever goes backwards.
func (s *Store) AppendEvent(ctx context.Context, videoID int64, st stephub.Step) (Appended, error) {
	if s.dialect == DialectPostgres {
		a, err := s.appendUnlocked(ctx, videoID, st)
		switch {
		case err == nil:
			return a, nil
		case !errors.Is(err, errVideoMoved):
			return Appended{}, fmt.Errorf("append event to video %d: %w", videoID, err)
		}
	}
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
		if err := checkRunner(v, st.LeaseToken); err != nil {
			return err
		}
		a, err = s.appendLocked(ctx, tx, v, st)
		return err
	})
	if err != nil {
		return Appended{}, fmt.Errorf("append event to video %d: %w", videoID, err)
	}
	return a, nil
}

// eventByKey returns the payload, in the current encoding, of the event of
// videoID stored with idempotency key key, read through q, or
// stephub.ErrNotFound.
func eventByKey(ctx context.Context, q sqlx.ExtContext, videoID int64, key string) ([]byte, error) {
	var stored struct {
		Payload []byte `db:"payload"`
		Version int    `db:"payload_version"`
	}
	if err := get(ctx, q, &stored, "SELECT payload, payload_version FROM events WHERE video_id = ? AND idempotency_key = ?", videoID, key); err != nil {
		if !errors.Is(err, stephub.ErrNotFound) {
			err = fmt.Errorf("look up the idempotency key: %w", err)
		}
		return nil, err
	}
	return currentPayload(stored.Payload, stored.Version)
}

// appendLocked stores the event built from st as the next one of v, which
// tx has locked with lockVideo, and moves v to it. With
// appendIfUnchanged, it is the one place that writes events, for every
// caller.
func (s *Store) appendLocked(ctx context.Context, tx *sqlx.Tx, v stephub.Video, st stephub.Step) (Appended, error) {
	w, err := s.nextEvent(v, st)
	if err != nil {
		return Appended{}, err
	}
	if err := s.writeEvent(ctx, tx, w); err != nil {
		return Appended{}, fmt.Errorf("store the event: %w", err)
	}
	if w.refund {
		// The cost comes back up to stephub.MaxCredits, so the sum can
		// neither overflow nor fail, and the video always finishes. A
		// balance already above the maximum (set before it existed)
		// stays as it is.
		if _, err := exec(ctx, tx, `UPDATE users SET credits = CASE
				WHEN credits <= ? THEN credits + ?
				WHEN credits < ? THEN ?
				ELSE credits END,
			updated_at = ? WHERE id = ?`,
			stephub.MaxCredits-v.Cost, v.Cost, stephub.MaxCredits, stephub.MaxCredits, w.event.At, v.UserID); err != nil {
			return Appended{}, fmt.Errorf("refund the credits: %w", err)
		}
	}
	// Before tx commits: should it roll back, the entry is stale, which
	// appendIfUnchanged notices.
	s.remember(w.after())
	return w.appended(), nil
}

// errVideoMoved says that a video changed between reading it and writing
// its next event.
var errVideoMoved = errors.New("the video changed since it was read")

// appendUnlocked is AppendEvent's way on PostgreSQL: it takes the video
// videoID as this Store last created, claimed or wrote it (see
// recentVideos), or else reads it, then stores the event built from st as
// its next one with appendIfUnchanged, in a statement shared with the
// events that arrive meanwhile. No lock is held in between, and no
// transaction of four round trips locks the video. When it returns
// errVideoMoved, AppendEvent takes the locking way.
func (s *Store) appendUnlocked(ctx context.Context, videoID int64, st stephub.Step) (Appended, error) {
	v, known := s.recent.get(videoID)
	if !known {
		var err error
		if v, err = videoByID(ctx, s.db, videoID); err != nil {
			return Appended{}, err
		}
	}
	w, err := s.appendIfUnchanged(ctx, v, st)
	if err != nil {
		s.recent.forget(videoID)
		return Appended{}, err
	}
	s.recent.put(w.after())
	return w.appended(), nil
}

// appendIfUnchanged stores the event built from st as the next one of v,
// in a batch with others (see eventBatch), but only if the video's row is
// still as v says; otherwise it returns errVideoMoved, having written
// nothing. It is for PostgreSQL.
//
// It returns errVideoMoved too wherever the outcome may hang on more than
// the video's row: an event that refunds its cost, one whose idempotency
// key is stored already, and any refusal of st by v (its lease's or
// nextEvent's), which the locking way reports after looking up the key.
func (s *Store) appendIfUnchanged(ctx context.Context, v stephub.Video, st stephub.Step) (eventWrite, error) {
	if checkRunner(v, st.LeaseToken) != nil {
		return eventWrite{}, errVideoMoved
	}
	w, err := s.nextEvent(v, st)
	if err != nil || w.refund {
		return eventWrite{}, errVideoMoved
	}
	if err := s.batch.store(ctx, w); err != nil {
		return eventWrite{}, err
	}
	return w, nil
}

// eventWrite is an event worked out from a video and a step, ready to
// store.
type eventWrite struct {
	video      stephub.Video
	step       stephub.Step
	event      stephub.Event
	payload    []byte
	key        *string    // NULL: the unique index ignores events without a key
	started    *time.Time // nil: the video stays in its step
	leaseUntil *time.Time // nil: nobody runs the video any more
	leaseHash  *string    // the lease's token hash, nil with leaseUntil
	leaseToken string     // the token of a lease this event takes, or empty
	fenced     bool       // the lease takes steps only with its token
	attempts   int
	done       *StepTiming
	refund     bool // the job failed or was cancelled: its cost goes back
}

// nextEvent works out the event st makes the next one of v, and what it
// does to v, without touching the database. It refuses an event that v
// cannot take.
//
// A video that goes on processing is leased for the Store's lease from now
// (a post to a pending video claims it under a new lease, and counts as an
// attempt; one with the lease's token fences it); one that finishes, or
// goes back to pending, is leased to nobody. Whether st's lease token lets
// it through is its callers' to check (see checkRunner): the system's own
// events, a cancel or an expiry, need none.
func (s *Store) nextEvent(v stephub.Video, st stephub.Step) (eventWrite, error) {
	// Checked here, where the refund is decided, so that no caller can
	// give the cost back twice.
	if err := finishedError(v); err != nil {
		return eventWrite{}, err
	}
	// Checked against the locked or re-checked video, so that two racing
	// writers cannot take it backwards between them.
	if st.Step < v.Step || st.Progress < v.Progress {
		problems := make(map[string]string)
		if st.Step < v.Step {
			problems["step"] = fmt.Sprintf("must not go backwards: the video is at step %d", v.Step)
		}
		if st.Progress < v.Progress {
			problems["progress"] = fmt.Sprintf("must not go backwards: the video is at %d%%", v.Progress)
		}
		return eventWrite{}, stephub.Invalid(problems)
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
	w := eventWrite{video: v, step: st, attempts: v.Attempts,
		refund: status == stephub.StatusFailed || status == stephub.StatusCancelled}
	// The first event of a step starts its clock; the clock of the step the
	// video was at stops, if the job goes on past it.
	if st.Step != v.Step {
		w.started = &t
	}
	if st.Step > v.Step && v.Step >= 1 && v.StepStartedAt != nil &&
		(status == stephub.StatusProcessing || status == stephub.StatusCompleted) {
		// The start may have been written by another node whose clock is
		// a little ahead; a step never takes less than nothing.
		w.done = &StepTiming{Step: v.Step, Duration: max(t.Sub(*v.StepStartedAt), 0)}
	}
	if status == stephub.StatusProcessing {
		w.leaseUntil = new(t.Add(s.lease))
		w.leaseHash, w.fenced = v.LeaseTokenHash, v.LeaseFenced || st.LeaseToken != ""
		if v.Status == stephub.StatusPending {
			w.attempts++
			w.leaseToken = newLeaseToken()
			w.leaseHash, w.fenced = new(hashLeaseToken(w.leaseToken)), false
		}
	}
	w.event = stephub.Event{
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
	payload, err := encodeEvent(w.event)
	if err != nil {
		return eventWrite{}, fmt.Errorf("encode the event: %w", err)
	}
	w.payload = payload
	if st.IdempotencyKey != "" {
		w.key = &st.IdempotencyKey
	}
	return w, nil
}

func (w eventWrite) appended() Appended {
	return Appended{Event: w.event, Payload: w.payload, StepDone: w.done, LeaseToken: w.leaseToken}
}

// after is the video as writing w leaves it.
func (w eventWrite) after() stephub.Video {
	v := w.video
	v.Status, v.Step, v.Progress, v.LastSeq, v.Attempts = w.event.Status, w.step.Step, w.step.Progress, w.event.ID, w.attempts
	v.UpdatedAt, v.LeaseExpiresAt = w.event.At, w.leaseUntil
	v.LeaseTokenHash, v.LeaseFenced = w.leaseHash, w.fenced
	v.VideoURL = cmp.Or(w.step.VideoURL, v.VideoURL)
	v.Error = cmp.Or(w.step.Error, v.Error)
	v.StepStartedAt = cmp.Or(w.started, v.StepStartedAt)
	return v
}

// writeEvent stores w's event and moves its video to it, on q, whose
// transaction has locked the video.
//
// PostgreSQL runs one statement, the INSERT in a WITH clause, which saves a
// round trip on every event. SQLite has no INSERT in WITH, and being
// in-process, no round trip to save: it runs two.
func (s *Store) writeEvent(ctx context.Context, q sqlx.ExtContext, w eventWrite) error {
	const insert = "INSERT INTO events (video_id, seq, payload, payload_version, terminal, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
	const update = `UPDATE videos
		SET last_seq = ?, step = ?, progress = ?, status = ?,
		    video_url = COALESCE(?, video_url), error = COALESCE(?, error),
		    step_started_at = COALESCE(?, step_started_at), updated_at = ?,
		    lease_expires_at = ?, lease_token_hash = ?, lease_fenced = ?, attempts = ?
		WHERE id = ?`
	ev, st := w.event, w.step
	insertArgs := []any{w.video.ID, ev.ID, string(w.payload), payloadVersion, ev.Status.Terminal(), w.key, ev.At}
	updateArgs := []any{ev.ID, st.Step, st.Progress, ev.Status, st.VideoURL, st.Error, w.started, ev.At,
		w.leaseUntil, w.leaseHash, w.fenced, w.attempts, w.video.ID}
	if s.dialect == DialectPostgres {
		_, err := exec(ctx, q, "WITH inserted AS ("+insert+") "+update, slices.Concat(insertArgs, updateArgs)...)
		return err
	}
	if _, err := exec(ctx, q, insert, insertArgs...); err != nil {
		return err
	}
	_, err := exec(ctx, q, update, updateArgs...)
	return err
}

// EventsAfter returns the events of the video videoID whose sequence number
// is above afterSeq, in order, ready to send in the current encoding: it is
// the hub's History. An unknown video has no events.
func (s *Store) EventsAfter(ctx context.Context, videoID, afterSeq int64) ([]*hub.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT seq, payload, payload_version, terminal FROM events
		WHERE video_id = ? AND seq > ?
		ORDER BY seq`), videoID, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("events of video %d after %d: %w", videoID, afterSeq, err)
	}
	defer rows.Close()
	var evs []*hub.Event
	for rows.Next() {
		e := &hub.Event{VideoID: videoID}
		var version int
		if err := rows.Scan(&e.Seq, &e.Data, &version, &e.Terminal); err != nil {
			return nil, fmt.Errorf("events of video %d after %d: %w", videoID, afterSeq, err)
		}
		if e.Data, err = currentPayload(e.Data, version); err != nil {
			return nil, fmt.Errorf("events of video %d after %d: event %d: %w", videoID, afterSeq, e.Seq, err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of video %d after %d: %w", videoID, afterSeq, err)
	}
	return evs, nil
}

var _ hub.History = (*Store)(nil)
