//! `cargo bench -p xingqiao --bench languages`: a job type per language side
//! by side, through the HTTP API of an in-process server (embedded SQLite):
//! the component's size, upload-to-ready (POST /admin/plugins until it
//! answers: compiled, linked, metadata read, active), create_job latency
//! (p50/p99 over 200 calls one after another) and a whole job (create to
//! finished, p50/p99 over 100). One JSON line per component.
//!
//! The built-in Rust `hello` is always measured (no upload: it is embedded).
//! Components to upload are named in `XINGQIAO_BENCH_PLUGINS`
//! (comma-separated .wasm paths); each must run with `{"str_info": ...}`
//! against the demo handlers, as `plugins/hello_py`, `plugins/hello_js` and
//! any project of `xingqiao plugin new` do:
//!
//! ```sh
//! xingqiao plugin build --dir plugins/hello_py && xingqiao plugin build --dir plugins/hello_js
//! xingqiao plugin new demo_rs --lang rust --dir /tmp/demo_rs && xingqiao plugin build --dir /tmp/demo_rs
//! XINGQIAO_BENCH_PLUGINS=$PWD/plugins/hello_py/build/hello_py.wasm,$PWD/plugins/hello_js/build/hello_js.wasm,/tmp/demo_rs/build/demo_rs.wasm \
//!   cargo bench -p xingqiao --bench languages
//! ```

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xingqiao::config::{Config, ServeArgs};

const TOKEN: &str = "bench-admin-token-0123456789";
const CREATES: usize = 200;
const JOBS: usize = 100;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn pick(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    ms(samples[((samples.len() - 1) as f64 * p).round() as usize])
}

async fn create(client: &reqwest::Client, base: &str, job_type: &str) -> i64 {
    let body = json!({"job_namespace": "bench", "job_type": job_type, "job_extra": {"str_info": "bench"}});
    let reply: Value = client
        .post(format!("{base}/xingqiao/create_job"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|err| panic!("create_job: {err}"))
        .json()
        .await
        .unwrap_or_else(|err| panic!("create_job reply: {err}"));
    reply["job_id"].as_i64().unwrap_or_else(|| panic!("create_job {job_type}: {reply}"))
}

async fn wait_job(client: &reqwest::Client, base: &str, job_id: i64) -> String {
    loop {
        let reply: Value = client
            .get(format!("{base}/xingqiao/get_job_detail?job_id={job_id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap_or_else(|err| panic!("get_job_detail: {err}"))
            .json()
            .await
            .unwrap_or_else(|err| panic!("get_job_detail: {err}"));
        let status = reply["data"]["job_status"].as_str().unwrap_or_default().to_owned();
        if status != "started" && status != "waiting" {
            return status;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

async fn measure(client: &reqwest::Client, base: &str, job_type: &str, size: usize, upload: Option<Duration>) {
    // Warm: the first call of a plugin pays for its pool slot.
    let first = create(client, base, job_type).await;
    assert_eq!(wait_job(client, base, first).await, "finished", "{job_type}");
    let mut creates = Vec::with_capacity(CREATES);
    let mut ids = Vec::with_capacity(CREATES);
    for _ in 0..CREATES {
        let started = Instant::now();
        ids.push(create(client, base, job_type).await);
        creates.push(started.elapsed());
    }
    for id in ids {
        assert_eq!(wait_job(client, base, id).await, "finished", "{job_type}");
    }
    let mut jobs = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        let started = Instant::now();
        let id = create(client, base, job_type).await;
        assert_eq!(wait_job(client, base, id).await, "finished", "{job_type}");
        jobs.push(started.elapsed());
    }
    println!(
        "{}",
        json!({
            "bench": "languages",
            "job_type": job_type,
            "bytes": size,
            "upload_to_ready_ms": upload.map(ms),
            "create_job_p50_ms": pick(&mut creates, 0.5),
            "create_job_p99_ms": pick(&mut creates, 0.99),
            "job_p50_ms": pick(&mut jobs, 0.5),
            "job_p99_ms": pick(&mut jobs, 0.99),
        })
    );
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|err| panic!("{err}"));
    runtime.block_on(async {
        xingqiao::executor::install_tls_provider();
        let dir = std::env::temp_dir().join(format!("xingqiao-bench-{}", uuid::Uuid::new_v4().simple()));
        let args = ServeArgs { data_dir: Some(dir.clone()), admin_token: Some(TOKEN.to_owned()), ..Default::default() };
        let config = Config::load(args).unwrap_or_else(|err| panic!("{err}"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|err| panic!("{err}"));
        let base = format!("http://{}", listener.local_addr().unwrap_or_else(|err| panic!("{err}")));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(xingqiao::server::run(config, Some(listener), async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let hello = xingqiao::plugins::demo_bytes("hello").map_or(0, <[u8]>::len);
        measure(&client, &base, "hello", hello, None).await;
        let others = std::env::var("XINGQIAO_BENCH_PLUGINS").unwrap_or_default();
        for path in others.split(',').map(str::trim).filter(|path| !path.is_empty()) {
            let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
            let size = bytes.len();
            let started = Instant::now();
            let reply: Value = client
                .post(format!("{base}/admin/plugins"))
                .bearer_auth(TOKEN)
                .header("Content-Type", "application/wasm")
                .body(bytes)
                .send()
                .await
                .unwrap_or_else(|err| panic!("upload {path}: {err}"))
                .json()
                .await
                .unwrap_or_else(|err| panic!("upload {path}: {err}"));
            let upload = started.elapsed();
            let job_type =
                reply["data"]["job_type"].as_str().unwrap_or_else(|| panic!("upload {path}: {reply}")).to_owned();
            measure(&client, &base, &job_type, size, Some(upload)).await;
        }
        let _ = stop.send(());
        let _ = server.await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
