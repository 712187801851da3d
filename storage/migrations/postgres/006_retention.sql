-- Retention: finished_at is when a video reached its final status, and
-- events_deleted_at when retention deleted its events (NULL while they are
-- kept). Keep it in step with ../sqlite/006_retention.sql.
ALTER TABLE videos ADD COLUMN finished_at TIMESTAMPTZ;
ALTER TABLE videos ADD COLUMN events_deleted_at TIMESTAMPTZ;

-- A finished video takes no more writes, so its last update is when it
-- finished.
UPDATE videos SET finished_at = updated_at WHERE status IN ('completed', 'failed', 'cancelled');

-- The database sets finished_at, rather than the Go code, so that a video
-- finished by a node still running an older stephub during a rolling
-- upgrade gets it too. The WHEN clause costs each event's UPDATE next to
-- nothing; the function runs once per video.
CREATE FUNCTION stephub_video_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.finished_at := NEW.updated_at;
    RETURN NEW;
END
$$;
CREATE TRIGGER videos_finished BEFORE UPDATE OF status ON videos FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND NEW.finished_at IS NULL)
    EXECUTE FUNCTION stephub_video_finished();

-- What retention looks for, oldest first. finished_at and events_deleted_at
-- change once per video, so these indexes leave each event's UPDATE of its
-- video in place ("HOT", see 004_lease_index.sql). Queries must repeat the
-- predicates word for word.
CREATE INDEX videos_finished_idx ON videos (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX videos_events_kept_idx ON videos (finished_at)
    WHERE finished_at IS NOT NULL AND events_deleted_at IS NULL;
