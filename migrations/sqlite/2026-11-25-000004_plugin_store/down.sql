ALTER TABLE workflow_job DROP COLUMN plugin_sha256;
DROP TABLE workflow_plugin_chunk;
DROP TABLE workflow_plugin;
