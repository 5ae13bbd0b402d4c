-- A stage's small JSON output, so a retried execution can resume after the
-- stages that already succeeded instead of redoing them.
ALTER TABLE stage_runs ADD COLUMN output jsonb;
ALTER TABLE stage_runs ADD COLUMN resumed boolean NOT NULL DEFAULT false;
