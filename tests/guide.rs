//! `docs/first-plugin.md` cannot rot: this test runs its `sh` blocks in order,
//! as one bash script in a scratch folder, against a fresh server with the
//! admin API on, then checks that the job the guide starts ran on the plugin
//! the guide built and uploaded.
//!
//! The guide's conventions: ```` ```sh ```` blocks run; ```` ```sh skip-test ````
//! blocks are what this test does itself (start a server, install the CLI);
//! ```` ```rust file=PATH ```` blocks are written to PATH before the next step.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use xingqiao_tests::{TestServer, xingqiao_bin};

const TOKEN: &str = "guide-admin-token-0123456789";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The guide as a bash script: `sh` blocks verbatim, file blocks as heredocs.
fn script_of(markdown: &str) -> String {
    let mut script = String::from("set -euxo pipefail\n");
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else { continue };
        let mut body = String::new();
        for inner in lines.by_ref() {
            if inner.starts_with("```") {
                break;
            }
            body.push_str(inner);
            body.push('\n');
        }
        let words: Vec<&str> = info.split_whitespace().collect();
        match words.as_slice() {
            ["sh"] => script.push_str(&body),
            [_, file] if file.starts_with("file=") => {
                let path = file.trim_start_matches("file=");
                script.push_str(&format!("cat > '{path}' <<'XINGQIAO_GUIDE_EOF'\n{body}XINGQIAO_GUIDE_EOF\n"));
            }
            _ => {}
        }
    }
    script
}

/// Runs a guide's script in a scratch folder against `server`, with the
/// `xingqiao` binary on PATH; fails the test with the output unless it succeeds.
async fn run_guide(server: &TestServer, script: String) -> String {
    let scratch = std::env::temp_dir().join(format!("xq-guide-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).unwrap();
    let cli_dir = xingqiao_bin().parent().unwrap().to_path_buf();
    // The language tools are installed once per target folder, not per run.
    let tools = cli_dir.parent().unwrap().join("xingqiao-tools");
    let path = format!("{}:{}", cli_dir.display(), std::env::var("PATH").unwrap_or_default());
    let url = server.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(&scratch)
            .env("XINGQIAO_REPO", repo())
            .env("XINGQIAO_URL", url)
            .env("XINGQIAO_ADMIN_TOKEN", TOKEN)
            .env("XINGQIAO_TOOLS_DIR", tools)
            .env("RUST_LOG", "warn")
            .env("PATH", path)
            // A guide's crate builds into its own target/, as it would for a reader.
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .map(|output| (output, scratch))
    })
    .await
    .unwrap()
    .unwrap();
    let (output, scratch) = output;
    let log = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the guide failed:\n{log}");
    std::fs::remove_dir_all(&scratch).unwrap();
    log
}

fn guide_script(path: &str, steps: &[&str]) -> String {
    let guide = std::fs::read_to_string(repo().join(path)).unwrap();
    let script = script_of(&guide);
    for step in steps {
        assert!(script.contains(step), "{path} lost its step {step:?}:\n{script}");
    }
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_plugin_guide_works_as_written() {
    let script = guide_script(
        "docs/first-plugin.md",
        &[
            "cargo new",
            "cat > 'src/lib.rs'",
            "cargo build --release --target wasm32-wasip2",
            "plugin run",
            "/admin/plugins",
            "create_job",
        ],
    );
    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    let log = run_guide(&server, script).await;
    assert!(log.contains("collect  /demo_api/collect"), "plugin run did not print the DAG:\n{log}");

    let (status, detail) = server.get("/xingqiao/get_job_detail?job_name=greet-ada").await;
    assert_eq!(status, 200, "{detail}");
    let job = server.wait_job(detail["data"]["job_id"].as_i64().unwrap()).await;
    assert_eq!((&job["job_type"], &job["job_status"]), (&json!("greeting"), &json!("finished")), "{job}");
    assert_eq!(job["ret_data"]["count"], 2, "{job}");
    assert_eq!(job["ret_data"]["all_taskdata"][0]["hello"], "hello Ada", "{job}");
    server.stop().await.unwrap();
}

/// The Python and JavaScript guides: new, tests, build, dry run, upload, a
/// job that finishes, and a refused job_extra.
async fn language_guide(path: &str, job_type: &str, job_name: &str) {
    let steps = ["plugin new", "plugin build", "plugin run", "plugin upload", "create_job"];
    let script = guide_script(path, &steps);
    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    let log = run_guide(&server, script).await;
    assert!(log.contains("collect  /demo_api/collect"), "plugin run did not print the DAG:\n{log}");
    let (status, detail) = server.get(&format!("/xingqiao/get_job_detail?job_name={job_name}")).await;
    assert_eq!(status, 200, "{detail}");
    let job = server.wait_job(detail["data"]["job_id"].as_i64().unwrap()).await;
    assert_eq!((&job["job_type"], &job["job_status"]), (&json!(job_type), &json!("finished")), "{job}");
    assert_eq!(job["ret_data"]["count"], 2, "{job}");
    assert_eq!(job["ret_data"]["all_taskdata"][1]["hello"], "hello Hangzhou, day 2", "{job}");
    assert_eq!((&job["job_lock"], &job["job_tags"]), (&json!("forecast-Hangzhou"), &json!("city=Hangzhou")), "{job}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_guide_works_as_written() {
    language_guide("docs/plugins/python.md", "forecast", "forecast-hz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_guide_works_as_written() {
    language_guide("docs/plugins/javascript.md", "forecast_js", "forecast-js-hz").await;
}
