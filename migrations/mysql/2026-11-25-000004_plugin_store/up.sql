-- Uploaded plugin versions, shared by every instance. One row per distinct
-- component (its sha256); at most one active row per job_type, the version new
-- jobs get. The bytes live in 1 MiB chunks so no single value outgrows a
-- server's packet limit (MariaDB's max_allowed_packet is 16 MiB by default).
CREATE TABLE workflow_plugin (
  plugin_sha256 CHAR(64) NOT NULL PRIMARY KEY,
  job_type VARCHAR(64) NOT NULL,
  plugin_version VARCHAR(64) NOT NULL,
  plugin_size BIGINT NOT NULL,
  description MEDIUMTEXT NOT NULL,
  job_extra_schema MEDIUMTEXT,
  uploader VARCHAR(64) NOT NULL,
  is_active BOOLEAN NOT NULL,
  c_time DATETIME(6) NOT NULL,
  u_time DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE UNIQUE INDEX plugin_job_type_version ON workflow_plugin (job_type, plugin_version);
CREATE TABLE workflow_plugin_chunk (
  plugin_sha256 CHAR(64) NOT NULL,
  chunk_no INTEGER NOT NULL,
  chunk_data LONGBLOB NOT NULL,
  PRIMARY KEY (plugin_sha256, chunk_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- The exact component a job was planned by, so its notifier (and retry_job)
-- keep using it after a newer version is activated.
ALTER TABLE workflow_job ADD COLUMN plugin_sha256 VARCHAR(64) NOT NULL DEFAULT '';
