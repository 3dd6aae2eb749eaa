-- Tasks are looked up by status without their job or id only by the sweeper
-- (pending tasks whose message was lost, started ones whose lease ran out)
-- and by /metrics (the pending count). Every other lookup names the job
-- (task_job_label) or the task. Yet with an index on the status alone,
-- PostgreSQL's planner, before the table has statistics (a new database, or
-- autovacuum off), took it for the finish's dependents countdown: a walk over
-- every task that was ever waiting, dead rows included, which grew with the
-- table (0.1 ms at first, 0.8 ms 1,200 jobs later). A plan is kept per
-- connection, so a bad one stayed.
--
-- Partial indexes hold only the tasks the sweeper looks for, and no query
-- for another status can use them. The lease index covered every task ever
-- started (a lease stays set after the task ends), so "lease before now"
-- walked all of them; it now holds the started tasks only. The queries name
-- the status in their SQL (`status_is` in host/src/db/tasks.rs), so a plan
-- kept without its parameters' values can still use these indexes.
DROP INDEX task_task_status;
DROP INDEX task_lease_until;
CREATE INDEX task_pending_since ON workflow_task (u_time) WHERE task_status = 'pending';
CREATE INDEX task_started_lease ON workflow_task (task_lease_until) WHERE task_status = 'started';
