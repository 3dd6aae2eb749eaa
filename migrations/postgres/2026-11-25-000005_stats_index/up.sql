-- The statistics routes read one job_type's valid jobs by creation time and
-- count them by status, stat and tags: a covering index answers them without
-- reading the table rows.
CREATE INDEX job_stats ON workflow_job (job_type, is_valid, c_time, job_status, ret_stat, job_tags);
