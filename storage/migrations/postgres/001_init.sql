-- The first schema of stephub, PostgreSQL flavour. Keep it in step with
-- ../sqlite/001_init.sql: same tables, columns and constraints.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL DEFAULT '',
    credits             BIGINT NOT NULL CHECK (credits >= 0),
    subscription_status TEXT NOT NULL CHECK (subscription_status IN ('active', 'inactive')),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE videos (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    last_seq            BIGINT NOT NULL DEFAULT 0,
    -- The credits taken at creation, given back on failure or cancel.
    cost                BIGINT NOT NULL CHECK (cost >= 0),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- A user's list, newest first, paged by id.
CREATE INDEX videos_user_id_idx ON videos (user_id, id DESC);

-- The jobs still to run, for the scan at start-up; finished videos, the vast
-- majority, stay out of it. Queries must repeat this predicate word for word.
CREATE INDEX videos_unfinished_idx ON videos (id) WHERE status IN ('pending', 'processing');

CREATE TABLE events (
    video_id        BIGINT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL CHECK (seq > 0),
    -- The event's JSON exactly as clients receive it: TEXT, not JSONB,
    -- which would reorder keys and reformat it.
    payload         TEXT NOT NULL,
    -- True for the video's last event (a terminal status), so that a replay
    -- knows where the stream ends without decoding the payload.
    terminal        BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (video_id, seq)
);

CREATE UNIQUE INDEX events_idempotency_key_idx ON events (video_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
