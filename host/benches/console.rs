//! `cargo bench -p xingqiao --bench console`: what each console page asks of
//! the server, over 100,000 jobs (goal: ≤ 200 ms a page), and the bytes the
//! first load of `/ui/jobs` costs over the wire (goal: ≤ 1.5 MB compressed).
//! One JSON line per page with p50/p99 over 20 loads; a page's API calls go
//! out together, as the browser sends them.
//!
//! Embedded SQLite in a fresh folder unless `XINGQIAO_DATABASE_URL` names a
//! MySQL/MariaDB or PostgreSQL database (the 100,000 rows are inserted once
//! and reused by later runs).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use xingqiao::config::{Config, ServeArgs};
use xingqiao::db::models::NewJob;
use xingqiao::db::schema::workflow_job as job;
use xingqiao::db::{Database, DbError};
use xingqiao::state::JobStatus;

const JOBS: i64 = 100_000;
const JOB_TYPE: &str = "bench_console";
const TOKEN: &str = "bench-console-admin-token";

fn job_row(n: i64) -> NewJob {
    let when = xingqiao::engine::now() - chrono::Duration::minutes(n * 60 * 24 * 30 / JOBS);
    let failed = n % 10 == 0;
    NewJob {
        job_client: "bench".into(),
        job_namespace: if n % 3 == 0 { "reports" } else { "etl" }.into(),
        job_tags: format!("region={}", ["bj", "nj", "gz"][usize::try_from(n % 3).unwrap_or(0)]),
        ret_stat: if failed { "ERR_TASK_TIMEOUT" } else { "OK" }.into(),
        job_cost: 0.5,
        operator: "bench".into(),
        plugin_version: "0.1.0".into(),
        ..NewJob::new(
            JOB_TYPE,
            &format!("bench-console-{n}"),
            if failed { JobStatus::Failed } else { JobStatus::Finished },
            when,
        )
    }
}

async fn fill(db: &Database) -> Result<(), DbError> {
    let mut conn = db.conn().await?;
    let have: i64 = xingqiao::on_conn!(&mut conn, c => {
        Ok(job::table.filter(job::job_type.eq(JOB_TYPE)).count().get_result(c).await?)
    })?;
    let started = Instant::now();
    for chunk_start in (have..JOBS).step_by(500) {
        let rows: Vec<NewJob> = (chunk_start..(chunk_start + 500).min(JOBS)).map(job_row).collect();
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
    if have < JOBS {
        eprintln!("inserted {} jobs in {:.1} s", JOBS - have, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// GETs `paths` together; the bytes received (compressed where the server compressed).
async fn load(client: &reqwest::Client, base: &str, paths: &[String]) -> usize {
    let calls = paths.iter().map(|path| async move {
        let response = client
            .get(format!("{base}{path}"))
            .header("accept-encoding", "gzip")
            .bearer_auth(TOKEN)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|err| panic!("{path}: {err}"));
        response.bytes().await.unwrap_or_else(|err| panic!("{path}: {err}")).len()
    });
    futures_util::future::join_all(calls).await.into_iter().sum()
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|err| panic!("{err}"));
    xingqiao::executor::install_tls_provider();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("xingqiao-bench-console-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{err}"));
        let database_url = std::env::var("XINGQIAO_DATABASE_URL").ok();
        let backend = database_url.as_deref().map_or("sqlite", |u| u.split(':').next().unwrap_or("?")).to_owned();
        let args = ServeArgs {
            data_dir: Some(dir.clone()),
            database_url,
            admin_token: Some(TOKEN.into()),
            ..Default::default()
        };
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
        // One real job with tasks, for the job page.
        let created: Value = client
            .post(format!("{base}/xingqiao/create_job"))
            .bearer_auth(TOKEN)
            .json(&json!({"job_namespace": "bench", "job_type": "fanout", "job_extra": {"n": 50}}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|err| panic!("create_job: {err}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("create_job: {err}"));
        let job_id = created["job_id"].as_i64().unwrap_or_else(|| panic!("no job_id: {created}"));
        tokio::time::sleep(Duration::from_secs(2)).await;

        let shell: Vec<String> = ["/ui/jobs", "/ui/assets/app.js", "/ui/assets/style.css"].map(String::from).to_vec();
        // As the page asks: who am I, and one page of jobs with the counts by status.
        let list = |filter: &str| {
            vec![
                String::from("/xingqiao/whoami"),
                format!("/xingqiao/list_jobs?{filter}orderBy=job_id&orderDir=desc&page=1&perPage=20&with_counts=1"),
            ]
        };
        let pages: Vec<(&str, Vec<String>)> = vec![
            ("jobs_first_load", [shell.clone(), list("")].concat()),
            ("jobs", list("")),
            ("jobs_filtered", list(&format!("job_type={JOB_TYPE}&job_namespace=reports&ret_stat=OK&"))),
            ("jobs_page_2000", vec![String::from("/xingqiao/list_jobs?orderBy=c_time&orderDir=asc&page=2000&perPage=20")]),
            ("job", vec![
                format!("/xingqiao/get_job_detail?job_id={job_id}"),
                format!("/xingqiao/list_tasks?job_id={job_id}&with_attempts=1"),
                format!("/xingqiao/get_graph?job_id={job_id}&format=dot"),
            ]),
            ("new", vec![String::from("/xingqiao/list_job_types")]),
            ("stats", vec![
                format!("/xingqiao/statistics_success_rate?job_type={JOB_TYPE}&days=30"),
                format!("/xingqiao/statistics_jobtag_ratio?job_type={JOB_TYPE}&jobtag_name=region&jobtag_values=bj,nj,gz"),
                format!("/xingqiao/statistics_retstat_ratio?job_type={JOB_TYPE}"),
            ]),
            ("plugins", vec![String::from("/admin/plugins")]),
        ];
        for (page, paths) in pages {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..20 {
                let started = Instant::now();
                bytes = load(&client, &base, &paths).await;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let line = json!({
                "bench": "console", "backend": backend, "page": page, "jobs": JOBS, "requests": paths.len(),
                "p50_ms": (times[times.len() / 2] * 100.0).round() / 100.0,
                "p99_ms": (times[times.len() - 1] * 100.0).round() / 100.0,
                "bytes_over_the_wire": bytes,
                "goal_ms": 200,
            });
            println!("{line}");
        }
        let _ = stop.send(());
        let _ = server.await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
