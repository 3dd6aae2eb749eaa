DROP TABLE workflow_task;
DROP TABLE workflow_job;
