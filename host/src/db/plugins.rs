//! Queries on `workflow_plugin` and `workflow_plugin_chunk`: uploaded plugin
//! versions, shared by every instance.
//!
//! At most one row per job_type is active; every change of the active row is
//! one transaction that first touches the job_type's rows (a write first, so
//! SQLite queues it behind the current writer, and the network backends lock
//! the rows against a concurrent activation).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::PluginRow;
use super::schema::{workflow_plugin as plugin, workflow_plugin_chunk as chunk};
use super::{Conn, DbError};
use crate::on_conn;

/// Bytes per chunk row: far below MariaDB's default 16 MiB packet.
const CHUNK_BYTES: usize = 1 << 20;

/// The write a plugin transaction begins with: stamps the job_type's rows.
macro_rules! touch {
    ($c:expr, $job_type:expr, $now:expr) => {
        diesel::update(plugin::table.filter(plugin::job_type.eq($job_type)))
            .set(plugin::u_time.eq($now))
            .execute($c)
            .await?
    };
}

/// Makes `$sha256` the one active row of `$job_type`.
macro_rules! make_active {
    ($c:expr, $job_type:expr, $sha256:expr) => {
        diesel::update(plugin::table.filter(plugin::job_type.eq($job_type)))
            .set(plugin::is_active.eq(plugin::plugin_sha256.eq($sha256)))
            .execute($c)
            .await?
    };
}

/// What `store` did with an upload.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// A new version, now the active one.
    Created(PluginRow),
    /// These exact bytes were stored before; they are the active version again.
    Existing(PluginRow),
    /// The job_type already has this version with other bytes; nothing changed.
    VersionTaken { sha256: String },
}

/// How `activate` names the version to make active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Version(String),
    Sha256(String),
}

/// Stores a validated upload and makes it its job_type's active version.
/// Re-uploading identical bytes stores nothing new.
pub async fn store(conn: &mut Conn, row: PluginRow, bytes: &[u8], now: NaiveDateTime) -> Result<Stored, DbError> {
    match store_once(conn, &row, bytes, now).await {
        // Another instance stored the same bytes between our check and insert.
        Err(err) if err.is_unique_violation() => store_once(conn, &row, bytes, now).await,
        outcome => outcome,
    }
}

async fn store_once(conn: &mut Conn, row: &PluginRow, bytes: &[u8], now: NaiveDateTime) -> Result<Stored, DbError> {
    on_conn!(conn, conn => {
        conn.transaction(async |c| {
            touch!(c, &row.job_type, now);
            let existing: Option<PluginRow> =
                plugin::table.find(&row.plugin_sha256).select(PluginRow::as_select()).get_result(c).await.optional()?;
            if existing.is_none() {
                let taken: Option<String> = plugin::table
                    .filter(plugin::job_type.eq(&row.job_type))
                    .filter(plugin::plugin_version.eq(&row.plugin_version))
                    .select(plugin::plugin_sha256)
                    .first(c)
                    .await
                    .optional()?;
                if let Some(sha256) = taken {
                    return Ok::<_, DbError>(Stored::VersionTaken { sha256 });
                }
                let mut new_row = row.clone();
                new_row.is_active = false;
                diesel::insert_into(plugin::table).values(&new_row).execute(c).await?;
                for (number, piece) in bytes.chunks(CHUNK_BYTES).enumerate() {
                    diesel::insert_into(chunk::table)
                        .values((
                            chunk::plugin_sha256.eq(&row.plugin_sha256),
                            chunk::chunk_no.eq(i32::try_from(number).unwrap_or(i32::MAX)),
                            chunk::chunk_data.eq(piece),
                        ))
                        .execute(c)
                        .await?;
                }
            }
            make_active!(c, &row.job_type, &row.plugin_sha256);
            let stored = plugin::table.find(&row.plugin_sha256).select(PluginRow::as_select()).get_result(c).await?;
            Ok(if existing.is_some() { Stored::Existing(stored) } else { Stored::Created(stored) })
        })
        .await
    })
}

/// Makes one stored version of `job_type` the active one; `None` when it has
/// no such version (nothing changed then).
pub async fn activate(
    conn: &mut Conn,
    job_type: &str,
    selector: &Selector,
    now: NaiveDateTime,
) -> Result<Option<PluginRow>, DbError> {
    on_conn!(conn, conn => {
        conn.transaction(async |c| {
            touch!(c, job_type, now);
            let query = plugin::table.filter(plugin::job_type.eq(job_type)).select(plugin::plugin_sha256).into_boxed();
            let query = match selector {
                Selector::Version(version) => query.filter(plugin::plugin_version.eq(version)),
                Selector::Sha256(sha256) => query.filter(plugin::plugin_sha256.eq(sha256)),
            };
            let Some(sha256) = query.first::<String>(c).await.optional()? else {
                return Ok::<_, DbError>(None);
            };
            make_active!(c, job_type, &sha256);
            Ok(Some(plugin::table.find(&sha256).select(PluginRow::as_select()).get_result(c).await?))
        })
        .await
    })
}

/// Leaves `job_type` without an active version (new jobs are refused; rows
/// and bytes stay). Returns how many versions it has, 0 for an unknown one.
pub async fn disable(conn: &mut Conn, job_type: &str, now: NaiveDateTime) -> Result<usize, DbError> {
    on_conn!(conn, conn => {
        conn.transaction(async |c| {
            touch!(c, job_type, now);
            diesel::update(plugin::table.filter(plugin::job_type.eq(job_type)))
                .set(plugin::is_active.eq(false))
                .execute(c)
                .await?;
            let versions: i64 =
                plugin::table.filter(plugin::job_type.eq(job_type)).count().get_result(c).await?;
            Ok::<_, DbError>(usize::try_from(versions).unwrap_or(usize::MAX))
        })
        .await
    })
}

/// Every stored version, by job_type then upload time.
pub async fn list(conn: &mut Conn, job_type: Option<&str>) -> Result<Vec<PluginRow>, DbError> {
    on_conn!(conn, conn => {
        let mut query = plugin::table.select(PluginRow::as_select()).into_boxed();
        if let Some(job_type) = job_type {
            query = query.filter(plugin::job_type.eq(job_type));
        }
        Ok(query.order((plugin::job_type.asc(), plugin::c_time.asc(), plugin::plugin_sha256.asc())).load(conn).await?)
    })
}

/// (job_type, sha256) of every active version: what the plugin refresher
/// compares with what it has loaded, every second on every instance.
pub async fn active(conn: &mut Conn) -> Result<Vec<(String, String)>, DbError> {
    on_conn!(conn, conn => {
        Ok(plugin::table
            .filter(plugin::is_active.eq(true))
            .select((plugin::job_type, plugin::plugin_sha256))
            .load(conn)
            .await?)
    })
}

/// The bytes of one stored version, `None` when no such version exists.
pub async fn bytes(conn: &mut Conn, sha256: &str) -> Result<Option<Vec<u8>>, DbError> {
    let pieces: Vec<Vec<u8>> = on_conn!(conn, conn => {
        Ok::<_, DbError>(chunk::table
            .filter(chunk::plugin_sha256.eq(sha256))
            .order(chunk::chunk_no.asc())
            .select(chunk::chunk_data)
            .load(conn)
            .await?)
    })?;
    Ok((!pieces.is_empty()).then(|| pieces.concat()))
}
