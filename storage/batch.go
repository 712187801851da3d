package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// maxBatch bounds how many events share one PostgreSQL statement.
const maxBatch = 64

// batchTimeout bounds one batch's statement, which no one caller's context
// may cut short: a database that stops answering fails the events in it.
const batchTimeout = 30 * time.Second

// eventBatch stores, on PostgreSQL, the events that AppendEvent works out
// from the video as last seen (see appendIfUnchanged): those that arrive
// while a statement runs wait together and go in the next one. PostgreSQL
// spends much of an event on the statement and the commit around it, so
// several to a statement take a fraction of the CPU each. One batch runs at
// a time per Store, so that batches cannot deadlock each other on the rows
// they update.
type eventBatch struct {
	db    *sqlx.DB
	query string // batchInsert, bound once: it is long
	turns turns[eventWrite]
}

func newEventBatch(db *sqlx.DB) *eventBatch {
	b := &eventBatch{db: db, query: db.Rebind(batchInsert)}
	b.turns = turns[eventWrite]{max: maxBatch, run: b.write}
	return b
}

// store writes w as appendIfUnchanged describes, in a batch with others.
func (b *eventBatch) store(ctx context.Context, w eventWrite) error {
	return b.turns.do(ctx, w)
}

// write stores a batch in one statement and returns each event's outcome:
// nil when stored, errVideoMoved when its video's row was not as the event
// was worked out from, or the statement's error. A failure that may be one
// event's alone (a key stored meanwhile by another node, a deadlock with
// another node's writes) has each event tried again by itself.
func (b *eventBatch) write(batch []eventWrite) []error {
	errs := make([]error, len(batch))
	stored, err := b.insert(batch)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && len(batch) > 1 &&
		(pqErr.Code == "23505" || pqErr.Code == "40P01" || pqErr.Code == "40001") {
		for i, w := range batch {
			errs[i] = b.write([]eventWrite{w})[0]
		}
		return errs
	}
	for i := range batch {
		switch {
		case errors.As(err, &pqErr) && pqErr.Code == "23505": // unique_violation: the key is stored
			errs[i] = errVideoMoved
		case err != nil:
			errs[i] = fmt.Errorf("store the event: %w", err)
		case !stored[i]:
			errs[i] = errVideoMoved
		}
	}
	return errs
}

// batchInsert moves each video of a batch to its event and stores the
// event, where the video's row is still as the event was worked out from
// and its idempotency key, if any, is not stored yet; it returns the
// ordinals of the events it stored. Two events of one video in a batch
// were worked out from the same row, so at most one of them is stored.
// The row's lease is compared by its token: lease_fenced changes only
// with the token (a claim) or with an event (last_seq).
//
// Timestamps go as text: lib/pq writes a time in an array unquoted, and
// the space in it would split the element.
const batchInsert = `WITH input AS (
	SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::int[], ?::int[], ?::text[], ?::text[], ?::text[],
		?::timestamptz[], ?::timestamptz[], ?::timestamptz[], ?::int[], ?::text[], ?::boolean[],
		?::bigint[], ?::text[], ?::int[], ?::int[], ?::int[], ?::timestamptz[], ?::text[],
		?::text[], ?::boolean[], ?::text[])
	WITH ORDINALITY AS i(id, seq, step, progress, status, video_url, error,
		started, at, lease_until, attempts, lease_hash, fenced,
		was_seq, was_status, was_step, was_progress, was_attempts, was_started, was_lease_hash,
		payload, terminal, key, n)
), updated AS (
	UPDATE videos v
	SET last_seq = i.seq, step = i.step, progress = i.progress, status = i.status,
	    video_url = COALESCE(i.video_url, v.video_url), error = COALESCE(i.error, v.error),
	    step_started_at = COALESCE(i.started, v.step_started_at), updated_at = i.at,
	    lease_expires_at = i.lease_until, lease_token_hash = i.lease_hash, lease_fenced = i.fenced,
	    attempts = i.attempts
	FROM input i
	WHERE v.id = i.id AND v.last_seq = i.was_seq AND v.status = i.was_status
	  AND v.step = i.was_step AND v.progress = i.was_progress AND v.attempts = i.was_attempts
	  AND v.step_started_at IS NOT DISTINCT FROM i.was_started
	  AND v.lease_token_hash IS NOT DISTINCT FROM i.was_lease_hash
	  AND NOT EXISTS (SELECT 1 FROM events e WHERE e.video_id = i.id AND e.idempotency_key = i.key)
	RETURNING i.n, i.id, i.seq, i.payload, i.terminal, i.key, i.at
), inserted AS (
	INSERT INTO events (video_id, seq, payload, payload_version, terminal, idempotency_key, created_at)
	SELECT id, seq, payload, ?::int, terminal, key, at FROM updated
)
SELECT n FROM updated`

// insert runs batchInsert for batch and reports which events it stored.
func (b *eventBatch) insert(batch []eventWrite) ([]bool, error) {
	var c batchColumns
	for _, w := range batch {
		c.add(w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	rows, err := b.db.QueryContext(ctx, b.query, c.args()...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := make([]bool, len(batch))
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		stored[n-1] = true
	}
	return stored, rows.Err()
}

// batchColumns are batchInsert's arguments: one array per column, one
// element per event.
type batchColumns struct {
	id, seq, step, progress, attempts                       []int64
	status                                                  []string
	videoURL, errorText, started, at, leaseUntil, leaseHash []*string
	fenced                                                  []bool
	wasSeq, wasStep, wasProgress, wasAttempts               []int64
	wasStatus                                               []string
	wasStarted, wasLeaseHash, key                           []*string
	payload                                                 []string
	terminal                                                []bool
}

func (c *batchColumns) add(w eventWrite) {
	v, ev, st := w.video, w.event, w.step
	c.id = append(c.id, v.ID)
	c.seq = append(c.seq, ev.ID)
	c.step = append(c.step, int64(st.Step))
	c.progress = append(c.progress, int64(st.Progress))
	c.status = append(c.status, string(ev.Status))
	c.videoURL = append(c.videoURL, st.VideoURL)
	c.errorText = append(c.errorText, st.Error)
	c.started = append(c.started, timeText(w.started))
	c.at = append(c.at, timeText(&ev.At))
	c.leaseUntil = append(c.leaseUntil, timeText(w.leaseUntil))
	c.attempts = append(c.attempts, int64(w.attempts))
	c.leaseHash = append(c.leaseHash, w.leaseHash)
	c.fenced = append(c.fenced, w.fenced)
	c.wasSeq = append(c.wasSeq, v.LastSeq)
	c.wasStatus = append(c.wasStatus, string(v.Status))
	c.wasStep = append(c.wasStep, int64(v.Step))
	c.wasProgress = append(c.wasProgress, int64(v.Progress))
	c.wasAttempts = append(c.wasAttempts, int64(v.Attempts))
	c.wasStarted = append(c.wasStarted, timeText(v.StepStartedAt))
	c.wasLeaseHash = append(c.wasLeaseHash, v.LeaseTokenHash)
	c.payload = append(c.payload, string(w.payload))
	c.terminal = append(c.terminal, ev.Status.Terminal())
	c.key = append(c.key, w.key)
}

// args are the arrays in batchInsert's order, then the payloads' version.
func (c *batchColumns) args() []any {
	return []any{
		pq.Array(c.id), pq.Array(c.seq), pq.Array(c.step), pq.Array(c.progress), pq.Array(c.status),
		pq.Array(c.videoURL), pq.Array(c.errorText),
		pq.Array(c.started), pq.Array(c.at), pq.Array(c.leaseUntil), pq.Array(c.attempts),
		pq.Array(c.leaseHash), pq.Array(c.fenced),
		pq.Array(c.wasSeq), pq.Array(c.wasStatus), pq.Array(c.wasStep), pq.Array(c.wasProgress),
		pq.Array(c.wasAttempts), pq.Array(c.wasStarted), pq.Array(c.wasLeaseHash),
		pq.Array(c.payload), pq.Array(c.terminal), pq.Array(c.key),
		payloadVersion,
	}
}

// timeText is t as batchInsert takes it, or nil for NULL.
func timeText(t *time.Time) *string {
	if t == nil {
		return nil
	}
	return new(t.Format(time.RFC3339Nano))
}
