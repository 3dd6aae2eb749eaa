// A copy of plugin-sdk/limits.json (a test keeps them equal): what the server accepts.
export default {
  "_comment": "What the server accepts from a plugin, shared by the host and by the Rust, Python and JavaScript helpers so a native test refuses what the server refuses. Lengths are UTF-8 bytes.",
  "job_type_max_bytes": 64,
  "version_max_bytes": 64,
  "label_max_bytes": 64,
  "cmd_max_bytes": 128,
  "names_max_bytes": 1024,
  "lock_max_bytes": 64,
  "locks_max_bytes": 1024,
  "tag_max_bytes": 128,
  "tags_max_bytes": 512,
  "max_tasks": 10000
};
