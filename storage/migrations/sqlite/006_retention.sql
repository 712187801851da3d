-- Retention: finished_at is when a video reached its final status, and
-- events_deleted_at when retention deleted its events (NULL while they are
-- kept). Keep it in step with ../postgres/006_retention.sql.
ALTER TABLE videos ADD COLUMN finished_at TIMESTAMP;
ALTER TABLE videos ADD COLUMN events_deleted_at TIMESTAMP;

-- A finished video takes no more writes, so its last update is when it
-- finished.
UPDATE videos SET finished_at = updated_at WHERE status IN ('completed', 'failed', 'cancelled');

-- The database sets finished_at, rather than the Go code, so that a video
-- finished by an older stephub (one rolled back to) gets it too. It runs
-- once per video.
CREATE TRIGGER videos_finished AFTER UPDATE OF status ON videos FOR EACH ROW
    WHEN NEW.status IN ('completed', 'failed', 'cancelled') AND NEW.finished_at IS NULL
BEGIN
    UPDATE videos SET finished_at = NEW.updated_at WHERE id = NEW.id;
END;

-- What retention looks for, oldest first. Queries must repeat the
-- predicates word for word.
CREATE INDEX videos_finished_idx ON videos (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX videos_events_kept_idx ON videos (finished_at)
    WHERE finished_at IS NOT NULL AND events_deleted_at IS NULL;
