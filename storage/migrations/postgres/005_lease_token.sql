-- Fencing: each claim of a video gives its runner a lease token, kept here
-- as its SHA-256 in hex, and a post that carries a token other than this
-- one is refused: its lease ran out, and the video went back to the queue or
-- to another runner. lease_fenced is true once the lease takes posts only
-- with its token (from the claim for the built-in pipeline, from the first
-- post that carries it for a worker). Both are NULL and false while nobody
-- runs the video. Keep it in step with ../sqlite/005_lease_token.sql.
ALTER TABLE videos ADD COLUMN lease_token_hash TEXT;
ALTER TABLE videos ADD COLUMN lease_fenced BOOLEAN NOT NULL DEFAULT FALSE;
