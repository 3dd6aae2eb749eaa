DROP INDEX job_stats;
