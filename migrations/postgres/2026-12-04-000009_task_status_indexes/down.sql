DROP INDEX task_started_lease;
DROP INDEX task_pending_since;
CREATE INDEX task_lease_until ON workflow_task (task_lease_until);
CREATE INDEX task_task_status ON workflow_task (task_status);
