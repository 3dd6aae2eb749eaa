-- Job control: locks held by running jobs (one row per lock name, so two jobs
-- can never hold one lock), and each running job's deadline.
CREATE TABLE workflow_lock (
  lock_name VARCHAR(64) NOT NULL PRIMARY KEY,
  job_id BIGINT NOT NULL,
  c_time DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX lock_job_id ON workflow_lock (job_id);
ALTER TABLE workflow_job ADD COLUMN deadline DATETIME(6);
CREATE INDEX job_deadline ON workflow_job (deadline);
