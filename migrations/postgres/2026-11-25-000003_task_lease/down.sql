DROP INDEX task_lease_until;
ALTER TABLE workflow_task DROP COLUMN task_lease_until;
