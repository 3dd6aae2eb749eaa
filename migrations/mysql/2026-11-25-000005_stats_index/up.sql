-- The statistics routes read one job_type's jobs by creation time.
CREATE INDEX job_type_c_time ON workflow_job (job_type, c_time);
