//! The tables, as diesel sees them; the same on every backend
//! (`migrations/{sqlite,mysql,postgres}` create them).

diesel::table! {
    workflow_job (job_id) {
        job_id -> BigInt,
        job_client -> Text,
        job_namespace -> Text,
        job_reqid -> Text,
        job_name -> Text,
        job_status -> Text,
        job_type -> Text,
        job_tags -> Text,
        ret_stat -> Text,
        ret_data -> Nullable<Text>,
        job_cost -> Double,
        job_extra -> Text,
        job_timeout -> Integer,
        job_lock -> Text,
        exe_id -> Integer,
        operator -> Text,
        is_valid -> Bool,
        c_time -> Timestamp,
        s_time -> Timestamp,
        e_time -> Timestamp,
        u_time -> Timestamp,
        plugin_version -> Text,
        tasks_unfinished -> Integer,
        deadline -> Nullable<Timestamp>,
        plugin_sha256 -> Text,
    }
}

diesel::table! {
    workflow_task (task_id) {
        task_id -> BigInt,
        job_id -> BigInt,
        task_label -> Text,
        task_reqid -> Text,
        task_cmd -> Text,
        task_params -> Nullable<Text>,
        task_requires -> Text,
        task_provides -> Text,
        task_dependencies -> Text,
        task_status -> Text,
        task_cost -> Double,
        task_extra -> Text,
        task_is_save -> Bool,
        ret_stat -> Text,
        ret_data -> Nullable<Text>,
        task_retrymax -> Integer,
        task_retrycount -> Integer,
        task_timeout -> Integer,
        c_time -> Timestamp,
        s_time -> Timestamp,
        u_time -> Timestamp,
        task_dependents -> Text,
        task_waiting_on -> Integer,
        task_lease_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    workflow_lock (lock_name) {
        lock_name -> Text,
        job_id -> BigInt,
        c_time -> Timestamp,
    }
}

diesel::table! {
    workflow_plugin (plugin_sha256) {
        plugin_sha256 -> Text,
        job_type -> Text,
        plugin_version -> Text,
        plugin_size -> BigInt,
        description -> Text,
        job_extra_schema -> Nullable<Text>,
        uploader -> Text,
        is_active -> Bool,
        c_time -> Timestamp,
        u_time -> Timestamp,
    }
}

diesel::table! {
    workflow_plugin_chunk (plugin_sha256, chunk_no) {
        plugin_sha256 -> Text,
        chunk_no -> Integer,
        chunk_data -> Binary,
    }
}

diesel::table! {
    workflow_task_attempt (attempt_id) {
        attempt_id -> BigInt,
        task_id -> BigInt,
        job_id -> BigInt,
        exe_id -> Integer,
        attempt_no -> Integer,
        instance -> Text,
        s_time -> Timestamp,
        e_time -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        ret_stat -> Text,
    }
}

// A task's job, read with it in one statement when a task starts.
diesel::joinable!(workflow_task -> workflow_job (job_id));

diesel::allow_tables_to_appear_in_same_query!(
    workflow_job,
    workflow_task,
    workflow_lock,
    workflow_plugin,
    workflow_task_attempt
);
