-- Indexes of the seed's schema that no query of the server is helped by, each
-- one a B-tree that every create_job or task finish writes to (a page per
-- index per commit, more as the table grows):
-- - job_is_valid: every query asks for the valid jobs, nearly all of them, so
--   it never narrows a search. Worse, SQLite's planner, without statistics,
--   chose it over job_job_namespace or job_job_type for list_jobs and walked
--   every job (as for the waiting jobs in SQLite's own migration 000007);
-- - job_job_tags: the tag filter matches with LIKE '%,tag,%', which no index
--   serves; job_stats covers the tags for the statistics routes;
-- - task_task_reqid, task_task_cmd, task_ret_stat: tasks are read by id, by
--   job, by status and by lease, never by these.
-- The indexes behind list_jobs' filters (type, client, namespace, reqid,
-- ret_stat, operator) stay: job_job_type also gives a type's newest jobs in
-- order, which job_stats, sorted by c_time, does not.
DROP INDEX job_is_valid;
DROP INDEX job_job_tags;
DROP INDEX task_task_reqid;
DROP INDEX task_task_cmd;
DROP INDEX task_ret_stat;
