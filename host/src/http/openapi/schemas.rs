//! The shapes of requests and answers, for the OpenAPI document only: the
//! handlers read parameters through `Params` (query, JSON or form alike) and
//! write answers with `render`; `tests/openapi.rs` and the schemathesis run
//! check that the two agree.

#![expect(dead_code, reason = "these types describe the API; they are never built")]

use serde_json::Value;
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// Every refusal: a `stat` code and, for most, a `message` for people.
#[derive(ToSchema)]
pub struct ErrorBody {
    /// The error code, e.g. `ERR_PARAMS_INVALID`.
    stat: String,
    message: Option<String>,
    /// `{}` where the seed answers it (`ERR_JOB_NOT_EXIST`, `ERR_TASK_NOT_EXIST`).
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
    /// The job concerned (`ERR_JOB_STATUS_NOT_FAILED`, `ERR_JOB_STATUS_NOT_RUNNING`).
    job_id: Option<i64>,
}

/// The refusals any guarded route can answer, besides its own.
#[derive(IntoResponses)]
pub enum GuardRefusals {
    /// `ERR_UNAUTHORIZED`: tokens are configured and none, or an unknown one, was sent.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `ERR_FORBIDDEN` (the token's role is too low), `ERR_FORBIDDEN_ORIGIN` (a
    /// foreign web page), `ERR_FORBIDDEN_HOST` (a foreign `Host` while no token
    /// is configured), `ERR_ADMIN_DISABLED` (admin routes without an admin token).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// `ERR_PAYLOAD_TOO_LARGE`: the body is over the limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `ERR_HEADERS_TOO_LARGE`: more than 64 headers or 32 KiB of head.
    #[response(status = 431)]
    HeadersTooLarge(ErrorBody),
    /// `ERR_SERVER_EXCEPTION`: a fault of the server, logged; no detail is answered.
    #[response(status = 500)]
    ServerError(ErrorBody),
    /// `ERR_STORE_UNAVAILABLE` (the database is away), `ERR_SERVER_BUSY`: retry later.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// A job, as the seed shows it.
#[derive(ToSchema)]
pub struct Job {
    job_id: i64,
    /// The client's IP (behind a `--trusted-proxies` proxy, from `X-Forwarded-For`).
    job_client: String,
    job_namespace: String,
    /// The create_job request's id (`x-reqid`).
    job_reqid: String,
    job_name: String,
    job_status: JobStatus,
    job_type: String,
    /// `key=value` pairs, comma-separated.
    job_tags: String,
    /// `OK`, or why it failed; empty while it runs.
    ret_stat: String,
    /// The saved results of the job's tasks.
    ret_data: Value,
    /// Seconds from start to end.
    job_cost: f64,
    /// job_extra as the JSON text it was stored as.
    job_extra: String,
    job_timeout: i32,
    /// Lock names, comma-separated.
    job_lock: String,
    /// The execution (retry_job starts the next).
    exe_id: i32,
    /// The name of the token that created it (on an open server, the `x_username` header).
    operator: String,
    is_valid: bool,
    plugin_version: String,
    plugin_sha256: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    c_time: String,
    s_time: String,
    e_time: String,
    u_time: String,
    /// Only while the job waits for its locks.
    lock_wait: Option<LockWait>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobStatus {
    Waiting,
    Started,
    Finished,
    Failed,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TaskStatus {
    Waiting,
    Pending,
    Started,
    Finished,
    Failed,
}

/// Which lock a waiting job waits for, and which job holds it.
#[derive(ToSchema)]
pub struct LockWait {
    locks: Vec<String>,
    lock: Option<String>,
    held_by: Option<i64>,
}

/// A task of a job's DAG.
#[derive(ToSchema)]
pub struct Task {
    task_id: i64,
    job_id: i64,
    task_label: String,
    task_reqid: String,
    /// `/path` on the handler base URL, or an allowed `http(s)://` URL.
    task_cmd: String,
    task_params: Value,
    task_requires: String,
    task_provides: String,
    task_dependencies: String,
    task_status: TaskStatus,
    task_cost: f64,
    task_extra: String,
    task_is_save: bool,
    ret_stat: String,
    /// The handler's result; for a reply that was not JSON, a short labelled start of it.
    ret_data: Value,
    task_retrymax: i32,
    task_retrycount: i32,
    task_timeout: i32,
    c_time: String,
    s_time: String,
    u_time: String,
    /// get_task always; list_tasks with `with_attempts=1`.
    attempts: Option<Vec<Attempt>>,
}

/// One execution of a task.
#[derive(ToSchema)]
pub struct Attempt {
    attempt_id: i64,
    /// The task's retry count when it started (0 = first try).
    attempt_no: i32,
    exe_id: i32,
    /// The server process that ran it (`host:pid:random`).
    instance: String,
    s_time: String,
    e_time: Option<String>,
    /// None while it runs.
    outcome: Option<String>,
    ret_stat: String,
}

#[derive(ToSchema)]
pub struct Created {
    /// `OK`.
    stat: String,
    job_id: i64,
}

#[derive(ToSchema)]
pub struct Done {
    /// `OK`.
    stat: String,
}

#[derive(ToSchema)]
pub struct JobDone {
    /// `OK`.
    stat: String,
    job_id: i64,
}

#[derive(ToSchema)]
pub struct JobDetail {
    stat: String,
    data: Job,
}

#[derive(ToSchema)]
pub struct JobPage {
    stat: String,
    data: JobPageData,
}

#[derive(ToSchema)]
pub struct JobPageData {
    /// Jobs matching the filters, all pages together.
    total: i64,
    list: Vec<Job>,
    /// With `with_counts=1`: `{"waiting": n, "started": n, "finished": n, "failed": n}`.
    #[schema(value_type = Option<Object>)]
    counts: Option<Value>,
}

#[derive(ToSchema)]
pub struct TaskList {
    stat: String,
    data: TaskListData,
}

#[derive(ToSchema)]
pub struct TaskListData {
    list: Vec<Task>,
}

#[derive(ToSchema)]
pub struct TaskDetail {
    stat: String,
    data: Task,
}

/// An ECharts option object, ready to draw.
#[derive(ToSchema)]
pub struct Chart {
    stat: String,
    #[schema(value_type = Object)]
    data: Value,
}

/// The admin API's answers: `data` is a job type, a version or a list of job types.
#[derive(ToSchema)]
pub struct AdminAnswer {
    stat: String,
    data: Value,
}

/// A job named by id or by name (one of the two is required).
#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobRef {
    #[param(example = 1)]
    #[schema(example = 1)]
    job_id: Option<i64>,
    job_name: Option<String>,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateJobParams {
    /// Up to 64 characters.
    #[param(example = "demo")]
    #[schema(example = "demo")]
    job_namespace: String,
    /// A job type the server knows (see `/admin/plugins`).
    #[param(example = "hello")]
    #[schema(example = "hello")]
    job_type: String,
    /// Unique; default: the request id.
    job_name: Option<String>,
    /// The plugin's input: a JSON object (in a query string or a form, its JSON text), at most 10,240 bytes.
    #[param(value_type = Option<String>, example = "{\"str_info\": \"world\"}")]
    #[schema(value_type = Option<Object>, example = json!({"str_info": "world"}))]
    job_extra: Option<Value>,
    /// Seconds; default: the plugin's, else the server's.
    #[param(minimum = 1, maximum = 2147483647)]
    #[schema(minimum = 1, maximum = 2147483647)]
    job_timeout: Option<i64>,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(non_snake_case, reason = "amis's parameter names, as the seed takes them")]
pub struct ListJobsParams {
    job_client: Option<String>,
    job_reqid: Option<String>,
    job_status: Option<JobStatus>,
    job_namespace: Option<String>,
    job_type: Option<String>,
    job_name: Option<String>,
    ret_stat: Option<String>,
    operator: Option<String>,
    /// `key=value`.
    job_tag: Option<String>,
    /// Created on or after this day, `YYYY-MM-DD` (UTC).
    created_from: Option<String>,
    /// Created on or before this day, `YYYY-MM-DD` (UTC).
    created_to: Option<String>,
    /// A column of the job (default `job_id`).
    orderBy: Option<String>,
    /// `asc` or `desc` (default).
    orderDir: Option<String>,
    /// From 1.
    page: Option<i64>,
    /// 1 to 1000 (default 10).
    perPage: Option<i64>,
    page_index: Option<i64>,
    page_size: Option<i64>,
    /// `1` adds `counts`: the jobs matching the other filters in each status.
    with_counts: Option<bool>,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTasksParams {
    #[param(example = 1)]
    #[schema(example = 1)]
    job_id: Option<i64>,
    job_name: Option<String>,
    task_status: Option<TaskStatus>,
    /// `1` adds each task's attempts.
    with_attempts: Option<bool>,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetTaskParams {
    #[param(example = 1)]
    #[schema(example = 1)]
    task_id: i64,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphParams {
    #[param(example = 1)]
    #[schema(example = 1)]
    job_id: Option<i64>,
    job_name: Option<String>,
    /// `svg` (default), `png` or `dot`.
    format: Option<String>,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuccessRateParams {
    #[param(example = "hello")]
    #[schema(example = "hello")]
    job_type: String,
    job_tag: Option<String>,
    /// 1 to 366 (default 30).
    days: Option<i64>,
    /// ret_stat values to leave out, comma-separated.
    exclude_retstat: Option<String>,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobtagRatioParams {
    #[param(example = "hello")]
    #[schema(example = "hello")]
    job_type: String,
    job_tag: Option<String>,
    /// The tag key to count by.
    jobtag_name: String,
    /// Its values, comma-separated.
    jobtag_values: String,
}

#[derive(ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetstatRatioParams {
    #[param(example = "hello")]
    #[schema(example = "hello")]
    job_type: String,
    job_tag: Option<String>,
}

/// A version to activate: by `version` or by `sha256`.
#[derive(ToSchema)]
pub struct ActivateBody {
    version: Option<String>,
    sha256: Option<String>,
}

/// The caller, for the console.
#[derive(ToSchema)]
pub struct WhoAmI {
    stat: String,
    data: Caller,
}

#[derive(ToSchema)]
pub struct Caller {
    /// Whether the server needs tokens.
    tokens: bool,
    /// The token's name; empty without tokens.
    name: String,
    /// `read`, `write` or `admin` (everyone is `admin` without tokens).
    role: String,
}

#[derive(ToSchema)]
pub struct JobTypes {
    stat: String,
    data: Vec<JobType>,
}

#[derive(ToSchema)]
pub struct JobType {
    job_type: String,
    version: String,
    description: String,
    /// The JSON Schema of job_extra, if the plugin declares one.
    job_extra_schema: Option<Value>,
}
