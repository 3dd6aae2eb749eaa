DROP TABLE workflow_task_attempt;
