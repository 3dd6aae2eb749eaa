-- The seed's tables (section 2.1), plus bookkeeping columns:
--   workflow_job.plugin_version    the plugin version the job runs;
--   workflow_job.tasks_unfinished  a countdown, so finishing a task never counts the job's tasks;
--   workflow_task.task_dependents  labels that depend on this task, and
--   workflow_task.task_waiting_on  how many of its dependencies are unfinished,
--                                  so a finish releases its dependents without a scan.
-- Wider than the seed where a DAG needs it: task_dependencies (a 10,000-task
-- fanout lists 9,999 labels), job_lock (several locks), job_tags; results are
-- unbounded text (MEDIUMTEXT on MySQL).
CREATE TABLE workflow_job (
  job_id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_client VARCHAR(64) NOT NULL,
  job_namespace VARCHAR(64) NOT NULL,
  job_reqid VARCHAR(64) NOT NULL,
  job_name VARCHAR(64) NOT NULL,
  job_status VARCHAR(64) NOT NULL,
  job_type VARCHAR(64) NOT NULL,
  job_tags VARCHAR(512) NOT NULL,
  ret_stat VARCHAR(64) NOT NULL,
  ret_data TEXT,
  job_cost DOUBLE NOT NULL,
  job_extra VARCHAR(10240) NOT NULL,
  job_timeout INTEGER NOT NULL,
  job_lock VARCHAR(1024) NOT NULL,
  exe_id INTEGER NOT NULL,
  operator VARCHAR(64) NOT NULL,
  is_valid BOOLEAN NOT NULL,
  c_time TIMESTAMP NOT NULL,
  s_time TIMESTAMP NOT NULL,
  e_time TIMESTAMP NOT NULL,
  u_time TIMESTAMP NOT NULL,
  plugin_version VARCHAR(64) NOT NULL,
  tasks_unfinished INTEGER NOT NULL
);
CREATE UNIQUE INDEX job_job_name ON workflow_job (job_name);
CREATE INDEX job_job_client ON workflow_job (job_client);
CREATE INDEX job_job_namespace ON workflow_job (job_namespace);
CREATE INDEX job_job_reqid ON workflow_job (job_reqid);
CREATE INDEX job_job_status ON workflow_job (job_status);
CREATE INDEX job_job_type ON workflow_job (job_type);
CREATE INDEX job_job_tags ON workflow_job (job_tags);
CREATE INDEX job_ret_stat ON workflow_job (ret_stat);
CREATE INDEX job_operator ON workflow_job (operator);
CREATE INDEX job_is_valid ON workflow_job (is_valid);

CREATE TABLE workflow_task (
  task_id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id BIGINT NOT NULL,
  task_label VARCHAR(64) NOT NULL,
  task_reqid VARCHAR(64) NOT NULL,
  task_cmd VARCHAR(128) NOT NULL,
  task_params TEXT,
  task_requires VARCHAR(1024) NOT NULL,
  task_provides VARCHAR(1024) NOT NULL,
  task_dependencies TEXT NOT NULL,
  task_status VARCHAR(64) NOT NULL,
  task_cost DOUBLE NOT NULL,
  task_extra TEXT NOT NULL,
  task_is_save BOOLEAN NOT NULL,
  ret_stat VARCHAR(64) NOT NULL,
  ret_data TEXT,
  task_retrymax INTEGER NOT NULL,
  task_retrycount INTEGER NOT NULL,
  task_timeout INTEGER NOT NULL,
  c_time TIMESTAMP NOT NULL,
  s_time TIMESTAMP NOT NULL,
  u_time TIMESTAMP NOT NULL,
  task_dependents TEXT NOT NULL,
  task_waiting_on INTEGER NOT NULL
);
CREATE UNIQUE INDEX task_job_label ON workflow_task (job_id, task_label);
CREATE INDEX task_task_reqid ON workflow_task (task_reqid);
CREATE INDEX task_task_cmd ON workflow_task (task_cmd);
CREATE INDEX task_task_status ON workflow_task (task_status);
CREATE INDEX task_ret_stat ON workflow_task (ret_stat);
