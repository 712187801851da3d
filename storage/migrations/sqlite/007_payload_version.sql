-- The version of the encoding a payload was written in (storage's
-- payloadVersion). Reading history re-encodes a payload older than the
-- reader's encoding, so that a field added to events reaches stored events
-- too. Every payload so far, and any that a release without this column
-- writes during a rolling upgrade, is version 1. Keep it in step with
-- ../postgres/007_payload_version.sql.
ALTER TABLE events ADD COLUMN payload_version INTEGER NOT NULL DEFAULT 1;
