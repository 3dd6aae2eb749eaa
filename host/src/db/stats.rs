//! The aggregates behind the statistics routes, computed with GROUP BY in the
//! database (a report over 100,000 jobs reads a few hundred rows, never the
//! jobs). One SQL text for the three backends; only the placeholders differ.

use chrono::NaiveDateTime;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};
use diesel_async::RunQueryDsl;

use super::{Conn, DbError};
use crate::on_conn;
use crate::state::JobStatus;

/// Which jobs a report counts.
#[derive(Debug, Clone, Default)]
pub struct StatsFilter {
    pub job_type: String,
    /// `key=value`: only jobs carrying this tag.
    pub job_tag: Option<String>,
    /// Only jobs created at or after this time.
    pub since: Option<NaiveDateTime>,
}

/// Jobs of one day (UTC, `YYYY-MM-DD`) that ended with one status and stat.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct DayCount {
    #[diesel(sql_type = Text)]
    pub day: String,
    #[diesel(sql_type = Text)]
    pub job_status: JobStatus,
    #[diesel(sql_type = Text)]
    pub ret_stat: String,
    #[diesel(sql_type = BigInt)]
    pub jobs: i64,
}

/// Jobs per distinct value of one column.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ValueCount {
    #[diesel(sql_type = Text)]
    pub value: String,
    #[diesel(sql_type = BigInt)]
    pub jobs: i64,
}

/// LIKE patterns escape with `!`: a backslash means different things in
/// MySQL string literals and elsewhere.
pub fn like_escaped(text: &str) -> String {
    text.replace('!', "!!").replace('%', "!%").replace('_', "!_")
}

/// The four ways a tag sits in the comma-joined `job_tags` column, as
/// (exact, LIKE first, LIKE last, LIKE middle).
pub fn tag_patterns(tag: &str) -> (String, String, String, String) {
    let escaped = like_escaped(tag);
    (tag.to_owned(), format!("{escaped},%"), format!("%,{escaped}"), format!("%,{escaped},%"))
}

/// The WHERE clause every report shares; its binds are, in order: job_type,
/// is_valid, the tag (empty for none) and its four patterns, the since time.
const WHERE: &str = "job_type = ? AND is_valid = ? \
    AND (? = '' OR job_tags = ? OR job_tags LIKE ? ESCAPE '!' OR job_tags LIKE ? ESCAPE '!' OR job_tags LIKE ? ESCAPE '!') \
    AND c_time >= ?";

/// `?` placeholders as PostgreSQL numbers them.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! report {
    ($db:expr, $filter:expr, $sql:expr, $row:ty) => {{
        let filter: &StatsFilter = $filter;
        let tag = filter.job_tag.clone().unwrap_or_default();
        let (exact, first, last, middle) = tag_patterns(&tag);
        let since = filter.since.unwrap_or(chrono::DateTime::UNIX_EPOCH.naive_utc());
        let postgres = $db.backend() == "postgres";
        let sql = if postgres { numbered(&$sql) } else { $sql };
        on_conn!($db, conn => {
            Ok::<Vec<$row>, DbError>(diesel::sql_query(sql.clone())
                .bind::<Text, _>(&filter.job_type)
                .bind::<Bool, _>(true)
                .bind::<Text, _>(&tag)
                .bind::<Text, _>(&exact)
                .bind::<Text, _>(&first)
                .bind::<Text, _>(&last)
                .bind::<Text, _>(&middle)
                .bind::<Timestamp, _>(since)
                .load::<$row>(conn)
                .await?)
        })
    }};
}

/// Ended jobs per creation day, status and stat (success rate).
pub async fn ended_by_day(conn: &mut Conn, filter: &StatsFilter) -> Result<Vec<DayCount>, DbError> {
    let sql = format!(
        "SELECT CAST(DATE(c_time) AS CHAR(10)) AS day, job_status, ret_stat, COUNT(*) AS jobs \
         FROM workflow_job WHERE {WHERE} AND job_status IN ('{finished}', '{failed}') \
         GROUP BY CAST(DATE(c_time) AS CHAR(10)), job_status, ret_stat",
        finished = JobStatus::Finished,
        failed = JobStatus::Failed,
    );
    report!(conn, filter, sql, DayCount)
}

/// Jobs per distinct `job_tags` text (tag ratio; the tags are split by the caller).
pub async fn by_tags(conn: &mut Conn, filter: &StatsFilter) -> Result<Vec<ValueCount>, DbError> {
    let sql = format!("SELECT job_tags AS value, COUNT(*) AS jobs FROM workflow_job WHERE {WHERE} GROUP BY job_tags");
    report!(conn, filter, sql, ValueCount)
}

/// Ended jobs per `ret_stat` (error-code ratio).
pub async fn by_ret_stat(conn: &mut Conn, filter: &StatsFilter) -> Result<Vec<ValueCount>, DbError> {
    let sql = format!(
        "SELECT ret_stat AS value, COUNT(*) AS jobs FROM workflow_job WHERE {WHERE} AND ret_stat <> '' \
         GROUP BY ret_stat"
    );
    report!(conn, filter, sql, ValueCount)
}
