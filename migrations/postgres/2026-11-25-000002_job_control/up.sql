-- Job control: locks held by running jobs (one row per lock name, so two jobs
-- can never hold one lock), and each running job's deadline.
CREATE TABLE workflow_lock (
  lock_name VARCHAR(64) NOT NULL PRIMARY KEY,
  job_id BIGINT NOT NULL,
  c_time TIMESTAMP NOT NULL
);
CREATE INDEX lock_job_id ON workflow_lock (job_id);
ALTER TABLE workflow_job ADD COLUMN deadline TIMESTAMP;
CREATE INDEX job_deadline ON workflow_job (deadline);
