-- Until when the worker that started a task is trusted to be alive. Workers
-- renew it while the task runs; past it, the sweeper of any instance puts the
-- task back to pending (its worker died: kill -9, a lost machine).
ALTER TABLE workflow_task ADD COLUMN task_lease_until DATETIME(6);
CREATE INDEX task_lease_until ON workflow_task (task_lease_until);
