-- Leases: a worker (or a node running the built-in pipeline) that claims a
-- video holds it until lease_expires_at, and each event it posts moves that
-- forward. A video whose lease runs out goes back to pending, or fails once
-- attempts (its claims) reach the limit.
ALTER TABLE videos ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN lease_expires_at TIMESTAMPTZ;
CREATE INDEX videos_leased ON videos (lease_expires_at) WHERE status = 'processing';
