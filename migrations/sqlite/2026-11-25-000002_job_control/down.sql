DROP INDEX job_deadline;
ALTER TABLE workflow_job DROP COLUMN deadline;
DROP TABLE workflow_lock;
