DROP INDEX job_stats ON workflow_job;
