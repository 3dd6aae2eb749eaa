DROP INDEX task_lease_until ON workflow_task;
ALTER TABLE workflow_task DROP COLUMN task_lease_until;
