//! `cargo bench -p xingqiao --bench stats`: each statistics route through the
//! HTTP API over 100,000 jobs of one job type (goal: ≤ 100 ms each), one JSON
//! line per route with p50/p99 over 20 calls.
//!
//! Embedded SQLite in a fresh folder unless `XINGQIAO_DATABASE_URL` names a
//! MySQL/MariaDB or PostgreSQL database; the 100,000 rows are inserted once
//! (in batches, straight into the table) and reused by later runs.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::json;
use tokio::sync::oneshot;
use xingqiao::config::{Config, ServeArgs};
use xingqiao::db::models::NewJob;
use xingqiao::db::schema::workflow_job as job;
use xingqiao::db::{Database, DbError};
use xingqiao::state::JobStatus;

const JOBS: i64 = 100_000;
const JOB_TYPE: &str = "bench_report";
const REGIONS: [&str; 4] = ["bj", "nj", "gz", "sh"];
const STATS: [&str; 4] = ["ERR_JOB_EXE_TIMEOUT", "ERR_TASK_HTTP_STATUS:500", "ERR_JOB_CANCELLED", "ERR_TASK_TIMEOUT"];

/// Job `n` of the set: spread over 60 days, 1 in 10 failed, tags by region.
fn job_row(n: i64) -> NewJob {
    let when = xingqiao::engine::now() - chrono::Duration::minutes(n * 60 * 24 * 60 / JOBS);
    let failed = n % 10 == 0;
    let region = REGIONS[usize::try_from(n % 4).unwrap_or(0)];
    let tags = if n % 7 == 0 { format!("region={region},flag=redis") } else { format!("region={region}") };
    let status = if failed { JobStatus::Failed } else { JobStatus::Finished };
    NewJob {
        job_client: "bench".into(),
        job_namespace: "bench".into(),
        job_tags: tags,
        ret_stat: if failed { STATS[usize::try_from(n / 10 % 4).unwrap_or(0)] } else { "OK" }.into(),
        job_cost: 0.5,
        operator: "bench".into(),
        plugin_version: "0.1.0".into(),
        ..NewJob::new(JOB_TYPE, &format!("bench-report-{n}"), status, when)
    }
}

async fn fill(db: &Database) -> Result<(), DbError> {
    let mut conn = db.conn().await?;
    let have: i64 = xingqiao::on_conn!(&mut conn, c => {
        Ok(job::table.filter(job::job_type.eq(JOB_TYPE)).count().get_result(c).await?)
    })?;
    if have >= JOBS {
        return Ok(());
    }
    let started = Instant::now();
    for chunk_start in (have..JOBS).step_by(500) {
        let rows: Vec<NewJob> = (chunk_start..(chunk_start + 500).min(JOBS)).map(job_row).collect();
        // One transaction per 500 rows, one statement per row: the same on every backend.
        xingqiao::on_conn!(&mut conn, conn => {
            conn.transaction(async |c| {
                for row in &rows {
                    diesel::insert_into(job::table).values(row.clone()).execute(c).await?;
                }
                Ok::<(), DbError>(())
            })
            .await
        })?;
    }
    eprintln!("inserted {} jobs in {:.1} s", JOBS - have, started.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|err| panic!("{err}"));
    xingqiao::executor::install_tls_provider();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("xingqiao-bench-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{err}"));
        let database_url = std::env::var("XINGQIAO_DATABASE_URL").ok();
        let backend = database_url.as_deref().map_or("sqlite", |u| u.split(':').next().unwrap_or("?")).to_owned();
        let args = ServeArgs { data_dir: Some(dir.clone()), database_url, ..Default::default() };
        let config = Config::load(args).unwrap_or_else(|err| panic!("{err}"));
        let db = Database::connect(&config.database_url, 4).unwrap_or_else(|err| panic!("{err}"));
        db.migrate(&config.database_url).await.unwrap_or_else(|err| panic!("{err}"));
        fill(&db).await.unwrap_or_else(|err| panic!("{err}"));

        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|err| panic!("{err}"));
        let base = format!("http://{}", listener.local_addr().unwrap_or_else(|err| panic!("{err}")));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(xingqiao::server::run(config, Some(listener), async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let routes = [
            ("success_rate", format!("/xingqiao/statistics_success_rate?job_type={JOB_TYPE}&days=60")),
            ("success_rate_tag", format!("/xingqiao/statistics_success_rate?job_type={JOB_TYPE}&days=60&job_tag=region=bj&exclude_retstat=ERR_JOB_CANCELLED")),
            ("jobtag_ratio", format!("/xingqiao/statistics_jobtag_ratio?job_type={JOB_TYPE}&jobtag_name=region&jobtag_values=bj,nj,gz,sh")),
            ("retstat_ratio", format!("/xingqiao/statistics_retstat_ratio?job_type={JOB_TYPE}")),
        ];
        for (name, path) in routes {
            let mut times = Vec::new();
            for _ in 0..20 {
                let started = Instant::now();
                let reply = client.get(format!("{base}{path}")).send().await.and_then(|r| r.error_for_status());
                let body = reply.unwrap_or_else(|err| panic!("{path}: {err}")).bytes().await;
                body.unwrap_or_else(|err| panic!("{path}: {err}"));
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let line = json!({
                "bench": "stats", "backend": backend, "route": name, "jobs": JOBS,
                "p50_ms": (times[times.len() / 2] * 100.0).round() / 100.0,
                "p99_ms": (times[times.len() - 1] * 100.0).round() / 100.0,
                "goal_ms": 100,
            });
            println!("{line}");
        }
        let _ = stop.send(());
        let _ = server.await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
