-- The first schema of stephub, SQLite flavour. Keep it in step with
-- ../postgres/001_init.sql: same tables, columns and constraints.
--
-- Times are declared TIMESTAMP so that modernc.org/sqlite parses them back
-- into time.Time; the Go code writes them as UTC text with microseconds.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL DEFAULT '',
    credits             INTEGER NOT NULL CHECK (credits >= 0),
    subscription_status TEXT NOT NULL CHECK (subscription_status IN ('active', 'inactive')),
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);

CREATE TABLE videos (
    -- AUTOINCREMENT never reuses an id, so a stream URL or a saved
    -- Last-Event-ID can never point at another video.
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             TEXT NOT NULL REFERENCES users (id),
    status              TEXT NOT NULL
                        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    prompt              TEXT NOT NULL,
    model               TEXT NOT NULL,
    reference_image_url TEXT,
    step                INTEGER NOT NULL DEFAULT 0,
    progress            INTEGER NOT NULL DEFAULT 0,
    video_url           TEXT,
    error               TEXT,
    -- The seq of the newest event; the next one gets last_seq + 1.
    last_seq            INTEGER NOT NULL DEFAULT 0,
    -- The credits taken at creation, given back on failure or cancel.
    cost                INTEGER NOT NULL CHECK (cost >= 0),
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);

-- A user's list, newest first, paged by id.
CREATE INDEX videos_user_id_idx ON videos (user_id, id DESC);

-- The jobs still to run, for the scan at start-up; finished videos, the vast
-- majority, stay out of it. Queries must repeat this predicate word for word.
CREATE INDEX videos_unfinished_idx ON videos (id) WHERE status IN ('pending', 'processing');

CREATE TABLE events (
    video_id        INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL CHECK (seq > 0),
    -- The event's JSON exactly as clients receive it.
    payload         TEXT NOT NULL,
    -- 1 for the video's last event (a terminal status), so that a replay
    -- knows where the stream ends without decoding the payload.
    terminal        INTEGER NOT NULL DEFAULT 0 CHECK (terminal IN (0, 1)),
    idempotency_key TEXT,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (video_id, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX events_idempotency_key_idx ON events (video_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
