-- Jobs waiting for a lock are looked up by status among the valid jobs (the
-- sweeper, once per tick). Without statistics SQLite's planner preferred the
-- `is_valid` index for that, a walk over every job; with both columns in one
-- index it reads the waiting jobs only. The plain status index is its prefix.
DROP INDEX job_job_status;
CREATE INDEX job_status_valid ON workflow_job (job_status, is_valid);
