DROP INDEX job_deadline ON workflow_job;
ALTER TABLE workflow_job DROP COLUMN deadline;
DROP TABLE workflow_lock;
