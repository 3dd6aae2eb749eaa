CREATE INDEX job_is_valid ON workflow_job (is_valid);
CREATE INDEX job_job_tags ON workflow_job (job_tags);
CREATE INDEX task_task_reqid ON workflow_task (task_reqid);
CREATE INDEX task_task_cmd ON workflow_task (task_cmd);
CREATE INDEX task_ret_stat ON workflow_task (ret_stat);
