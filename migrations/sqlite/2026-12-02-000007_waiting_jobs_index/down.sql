DROP INDEX job_status_valid;
CREATE INDEX job_job_status ON workflow_job (job_status);
