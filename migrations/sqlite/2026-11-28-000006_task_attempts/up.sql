-- Every execution attempt of a task: execution is at-least-once, so after a
-- crash or a SIGTERM one attempt number may run twice; these rows show it.
CREATE TABLE workflow_task_attempt (
  attempt_id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id BIGINT NOT NULL,
  job_id BIGINT NOT NULL,
  exe_id INTEGER NOT NULL,
  attempt_no INTEGER NOT NULL,
  instance VARCHAR(128) NOT NULL,
  s_time TIMESTAMP NOT NULL,
  e_time TIMESTAMP,
  outcome VARCHAR(32),
  ret_stat VARCHAR(64) NOT NULL
);
CREATE INDEX attempt_task ON workflow_task_attempt (task_id, attempt_id);
CREATE INDEX attempt_job ON workflow_task_attempt (job_id, attempt_id);
