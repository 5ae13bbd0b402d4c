-- What a failed video shows its viewers (chalicelib/failures.py): one of a small fixed
-- set of public reasons. failure_reason / stage_runs.error keep the detail for admins.
ALTER TABLE videos ADD COLUMN IF NOT EXISTS failure_public text;
ALTER TABLE stage_runs ADD COLUMN IF NOT EXISTS public_reason text;
