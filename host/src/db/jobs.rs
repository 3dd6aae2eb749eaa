//! Queries on `workflow_job`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::{JobRow, NewJob, NewTask};
use super::schema::{workflow_job as job, workflow_task as task};
use super::{Database, DbError};
use crate::with_conn;

/// Rows per INSERT: keeps a 10,000-task job under every backend's limit of
/// bound parameters per statement.
const INSERT_CHUNK: usize = 400;

/// Inserting many task rows, per backend: SQLite (through the sync wrapper)
/// has no multi-row INSERT in diesel, and needs none in-process; the network
/// backends get one statement per chunk.
pub trait InsertTasks {
    fn insert_tasks(&mut self, rows: &[NewTask]) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

impl InsertTasks for super::SqliteAsync {
    async fn insert_tasks(&mut self, rows: &[NewTask]) -> QueryResult<()> {
        for row in rows {
            diesel::insert_into(task::table).values(row.clone()).execute(self).await?;
        }
        Ok(())
    }
}

macro_rules! chunked_insert {
    ($($connection:ty),*) => {$(
        impl InsertTasks for $connection {
            async fn insert_tasks(&mut self, rows: &[NewTask]) -> QueryResult<()> {
                for chunk in rows.chunks(INSERT_CHUNK) {
                    diesel::insert_into(task::table).values(chunk.to_vec()).execute(self).await?;
                }
                Ok(())
            }
        }
    )*};
}

chunked_insert!(diesel_async::AsyncMysqlConnection, diesel_async::AsyncPgConnection);

/// Inserts a job and its tasks in one transaction; returns the job id and the
/// ids of the tasks that are ready at once (`pending`).
pub async fn create(db: &Database, new_job: NewJob, mut tasks: Vec<NewTask>) -> Result<(i64, Vec<i64>), DbError> {
    with_conn!(db, conn => {
        conn.transaction(async |c| {
            diesel::insert_into(job::table).values(&new_job).execute(c).await?;
            let job_id: i64 = job::table
                .filter(job::job_name.eq(&new_job.job_name))
                .select(job::job_id)
                .first(c)
                .await?;
            for row in &mut tasks {
                row.job_id = job_id;
            }
            c.insert_tasks(&tasks).await?;
            let ready: Vec<i64> = task::table
                .filter(task::job_id.eq(job_id))
                .filter(task::task_status.eq("pending"))
                .select(task::task_id)
                .order(task::task_id.asc())
                .load(c)
                .await?;
            Ok::<_, DbError>((job_id, ready))
        })
        .await
    })
}

/// A job by id or by name; deleted jobs (`is_valid = 0`) are not found.
pub async fn find(db: &Database, id: Option<i64>, name: Option<&str>) -> Result<Option<JobRow>, DbError> {
    with_conn!(db, conn => {
        let mut query = job::table.select(JobRow::as_select()).filter(job::is_valid.eq(true)).into_boxed();
        if let Some(id) = id {
            query = query.filter(job::job_id.eq(id));
        }
        if let Some(name) = name {
            query = query.filter(job::job_name.eq(name.to_owned()));
        }
        Ok(query.first(conn).await.optional()?)
    })
}

/// A job by id, deleted or not (for notifications).
pub async fn find_any(db: &Database, id: i64) -> Result<Option<JobRow>, DbError> {
    with_conn!(db, conn => {
        Ok(job::table.find(id).select(JobRow::as_select()).first(conn).await.optional()?)
    })
}

/// Filters of `list_jobs`; every field is an exact match.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub job_client: Option<String>,
    pub job_reqid: Option<String>,
    pub job_status: Option<String>,
    pub job_namespace: Option<String>,
    pub job_type: Option<String>,
    pub job_name: Option<String>,
    pub ret_stat: Option<String>,
    pub operator: Option<String>,
    /// `key=value`: jobs whose `job_tags` list holds this tag.
    pub job_tag: Option<String>,
}

/// Columns `list_jobs` may order by.
pub const ORDERABLE: &[&str] = &[
    "job_id",
    "job_name",
    "job_status",
    "job_type",
    "job_namespace",
    "job_client",
    "ret_stat",
    "job_cost",
    "operator",
    "c_time",
    "s_time",
    "e_time",
    "u_time",
];

macro_rules! order_by {
    ($query:expr, $column:expr, $desc:expr, [$($name:ident),*]) => {
        match $column {
            $(stringify!($name) => if $desc { $query.order(job::$name.desc()) } else { $query.order(job::$name.asc()) },)*
            _ => if $desc { $query.order(job::job_id.desc()) } else { $query.order(job::job_id.asc()) },
        }
    };
}

macro_rules! filtered {
    ($filter:expr) => {{
        let f = $filter;
        let mut query = job::table.filter(job::is_valid.eq(true)).into_boxed();
        if let Some(v) = f.job_client.clone() {
            query = query.filter(job::job_client.eq(v));
        }
        if let Some(v) = f.job_reqid.clone() {
            query = query.filter(job::job_reqid.eq(v));
        }
        if let Some(v) = f.job_status.clone() {
            query = query.filter(job::job_status.eq(v));
        }
        if let Some(v) = f.job_namespace.clone() {
            query = query.filter(job::job_namespace.eq(v));
        }
        if let Some(v) = f.job_type.clone() {
            query = query.filter(job::job_type.eq(v));
        }
        if let Some(v) = f.job_name.clone() {
            query = query.filter(job::job_name.eq(v));
        }
        if let Some(v) = f.ret_stat.clone() {
            query = query.filter(job::ret_stat.eq(v));
        }
        if let Some(v) = f.operator.clone() {
            query = query.filter(job::operator.eq(v));
        }
        if let Some(tag) = f.job_tag.as_deref() {
            let (exact, first, last, middle) = super::stats::tag_patterns(tag);
            query = query.filter(
                job::job_tags
                    .eq(exact)
                    .or(job::job_tags.like(first).escape('!'))
                    .or(job::job_tags.like(last).escape('!'))
                    .or(job::job_tags.like(middle).escape('!')),
            );
        }
        query
    }};
}

/// One page of jobs and the total count matching the filter.
pub async fn list(
    db: &Database,
    filter: &JobFilter,
    order_column: &str,
    descending: bool,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<JobRow>), DbError> {
    with_conn!(db, conn => {
        let total: i64 = filtered!(filter).count().get_result(conn).await?;
        let query = filtered!(filter).select(JobRow::as_select());
        let query = order_by!(query, order_column, descending, [
            job_id, job_name, job_status, job_type, job_namespace, job_client, ret_stat, job_cost, operator,
            c_time, s_time, e_time, u_time
        ]);
        let rows = query.offset(offset).limit(limit).load(conn).await?;
        Ok((total, rows))
    })
}

/// Jobs still running, for recovery at start.
pub async fn started_ids(db: &Database) -> Result<Vec<i64>, DbError> {
    with_conn!(db, conn => {
        Ok(job::table.filter(job::job_status.eq("started")).select(job::job_id).load(conn).await?)
    })
}

pub(crate) fn cost_seconds(start: NaiveDateTime, end: NaiveDateTime) -> f64 {
    (end - start).num_microseconds().map_or(0.0, |us| us as f64 / 1e6)
}
