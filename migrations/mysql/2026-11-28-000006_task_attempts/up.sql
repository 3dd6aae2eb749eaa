-- Every execution attempt of a task: execution is at-least-once, so after a
-- crash or a SIGTERM one attempt number may run twice; these rows show it.
CREATE TABLE workflow_task_attempt (
  attempt_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  task_id BIGINT NOT NULL,
  job_id BIGINT NOT NULL,
  exe_id INT NOT NULL,
  attempt_no INT NOT NULL,
  instance VARCHAR(128) NOT NULL,
  s_time DATETIME(6) NOT NULL,
  e_time DATETIME(6) NULL,
  outcome VARCHAR(32) NULL,
  ret_stat VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX attempt_task ON workflow_task_attempt (task_id, attempt_id);
CREATE INDEX attempt_job ON workflow_task_attempt (job_id, attempt_id);
