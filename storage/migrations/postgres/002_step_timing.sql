-- When the video's current step began: set by the first event of each step,
-- so that the event that moves the video past it can tell how long the step
-- ran, whichever node or process stored the two events. NULL until the first
-- step, and for videos that were mid-step when this column was added.
-- Keep it in step with ../sqlite/002_step_timing.sql.
ALTER TABLE videos ADD COLUMN step_started_at TIMESTAMPTZ;
