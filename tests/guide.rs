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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_plugin_guide_works_as_written() {
    let guide = std::fs::read_to_string(repo().join("docs/first-plugin.md")).unwrap();
    let script = script_of(&guide);
    for step in [
        "cargo new",
        "cat > 'src/lib.rs'",
        "cargo build --release --target wasm32-wasip2",
        "plugin run",
        "/admin/plugins",
        "create_job",
    ] {
        assert!(script.contains(step), "the guide lost its step {step:?}:\n{script}");
    }
    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    let scratch = std::env::temp_dir().join(format!("xq-guide-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).unwrap();
    let cli_dir = xingqiao_bin().parent().unwrap().to_path_buf();
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
            .env("PATH", path)
            // The guide's crate builds into its own target/, as it would for a reader.
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
    assert!(log.contains("collect  /demo_api/collect"), "plugin run did not print the DAG:\n{log}");

    let (status, detail) = server.get("/xingqiao/get_job_detail?job_name=greet-ada").await;
    assert_eq!(status, 200, "{detail}");
    let job = server.wait_job(detail["data"]["job_id"].as_i64().unwrap()).await;
    assert_eq!((&job["job_type"], &job["job_status"]), (&json!("greeting"), &json!("finished")), "{job}");
    assert_eq!(job["ret_data"]["count"], 2, "{job}");
    assert_eq!(job["ret_data"]["all_taskdata"][0]["hello"], "hello Ada", "{job}");
    std::fs::remove_dir_all(&scratch).unwrap();
    server.stop().await.unwrap();
}
