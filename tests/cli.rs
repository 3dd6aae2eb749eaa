//! `xingqiao plugin check|run`, run as a plugin author would run them.

#![expect(clippy::unwrap_used, reason = "helpers fail the test by panicking")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use xingqiao_tests::{fixture_wasm, free_port, xingqiao_bin};

fn xingqiao(args: &[&str]) -> Output {
    Command::new(xingqiao_bin()).args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn wasm(name: &str) -> String {
    fixture_wasm(name).display().to_string()
}

fn task(label: &str, cmd: &str, deps: &[&str], requires: &[&str], is_save: bool) -> Value {
    json!({
        "label": label, "cmd": cmd, "dependencies": deps, "requires": requires, "provides": [],
        "params": null, "extra": null, "retry_max": 0, "timeout": null, "is_save": is_save
    })
}

#[test]
fn run_builtin_hello_as_json_shows_the_whole_dag() {
    let output =
        xingqiao(&["plugin", "run", "builtin:hello", "--job-extra", r#"{"str_info":"ceshi"}"#, "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        printed,
        json!({
            "job_type": "hello",
            "check": {"job_timeout": null, "job_locks": [], "job_tags": []},
            "tasks": [
                task("task1", "/demo_api/hello", &[], &["str_info"], false),
                task("task2", "/demo_api/ping", &["task1"], &[], false),
                task("task3", "/demo_api/collect", &["task1", "task2"], &["all_taskdata"], true),
            ]
        })
    );
}

#[test]
fn run_builtin_hello_without_str_info_fails_naming_it() {
    let output = xingqiao(&["plugin", "run", "builtin:hello", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output).trim(), "error: params-check refused the job: job_extra not have str_info");
}

#[test]
fn run_as_table_and_as_dot() {
    let output = xingqiao(&["plugin", "run", "builtin:hello_lock", "--job-extra", r#"{"str_info":"ab"}"#]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "job_type hello_lock: job_timeout 1800s, job_locks ceshi, job_tags -\n\
         LABEL  CMD              DEPENDENCIES  REQUIRES  PROVIDES  PARAMS  RETRY  TIMEOUT  SAVE\n\
         task1  /demo_api/hello  -             str_info  -         -       0      -        false\n\
         task2  /demo_api/ping   task1         -         -         -       0      -        false\n"
    );
    let output = xingqiao(&["plugin", "run", "builtin:ping", "--format", "dot"]);
    assert_eq!(
        stdout(&output),
        "digraph \"ping\" {\n  graph[rankdir=\"LR\"]\n  node[shape=\"box\"]\n  \
         \"task1\"[label=\"task1\\n/demo_api/ping\"]\n  \
         \"task2\"[label=\"task2\\n/demo_api/ping\"]\n  \
         \"task1\" -> \"task2\"\n}\n"
    );
}

#[test]
fn run_a_file_and_refuse_bad_job_extra() {
    let output = xingqiao(&["plugin", "run", &wasm("chain"), "--job-extra", r#"{"n":2}"#, "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(printed["tasks"].as_array().map(Vec::len), Some(2));

    let output = xingqiao(&["plugin", "run", "builtin:ping", "--job-extra", "[1]"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output).trim(), "error: --job-extra must be a JSON object");
    let output = xingqiao(&["plugin", "run", "builtin:nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no built-in plugin \"nope\""), "{}", stderr(&output));
}

#[test]
fn check_prints_metadata_of_a_good_plugin() {
    let output = xingqiao(&["plugin", "check", &wasm("hello")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("ok: {} is a xingqiao:workflow@0.1.0 plugin", wasm("hello")));
    assert_eq!(lines[1], "job_type:    hello");
    assert_eq!(lines[2], "version:     0.1.0");
    assert!(lines[4].starts_with("size:        ") && lines[4].ends_with(" bytes"), "{}", lines[4]);
    assert_eq!(lines[6], "sandbox:     64 MiB per call, wasi grants: none");
    assert_eq!(lines[7], "notifier:    called at start and end");
    assert_eq!(lines[5], r#"job_extra:   {"properties":{"str_info":{"type":"string"}},"type":"object"}"#);
}

#[test]
fn check_refuses_what_is_not_a_plugin_and_says_why() {
    let dir = std::env::temp_dir().join(format!("xingqiao-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let cases = [
        (core.display().to_string(), "core WebAssembly module, not a component"),
        (text.display().to_string(), "not a WebAssembly file"),
        (wasm("other_world"), "does not export the xingqiao:workflow@0.1.0 `plugin` world"),
        (wasm("foreign_import"), "imports something outside the xingqiao:workflow@0.1.0 world"),
    ];
    for (file, reason) in cases {
        let output = xingqiao(&["plugin", "check", &file]);
        assert_eq!(output.status.code(), Some(1), "{file}");
        assert!(stderr(&output).contains(reason), "{file}: {}", stderr(&output));
    }
    let output = xingqiao(&["plugin", "check", &dir.join("missing.wasm").display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn migrate_creates_the_sqlite_schema_and_bad_settings_are_named() {
    let dir = std::env::temp_dir().join(format!("xingqiao-migrate-{}", std::process::id()));
    let output = xingqiao(&["migrate", "--data-dir", &dir.display().to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.join("xingqiao.db").is_file());
    let output = xingqiao(&["serve", "--workers", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output).trim(), "error: --workers / XINGQIAO_WORKERS: must be at least 1");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("xingqiao-sigterm-{}", std::process::id()));
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let child = Command::new(xingqiao_bin())
        .args(["serve", "--bind", &bind, "--data-dir", &dir.display().to_string()])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(&bind).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("stopped"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_execute_runs_the_dag_against_the_demo_handlers_in_process() {
    let output = xingqiao(&["plugin", "run", "builtin:hello", "--job-extra", r#"{"str_info":"ceshi"}"#, "--execute"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("handlers: http://127.0.0.1:"), "{text}");
    assert!(text.contains("finished task1 /demo_api/hello (1 attempt, "), "{text}");
    assert!(text.contains(r#"  params: {"all_taskdata":[{"hello":"hello ceshi"},{"ping":"pong"}]}"#), "{text}");
    assert!(
        text.ends_with(
            "job finished: ret_data {\"all_taskdata\":[{\"hello\":\"hello ceshi\"},{\"ping\":\"pong\"}],\"count\":2}\n"
        ),
        "{text}"
    );

    let output = xingqiao(&[
        "plugin",
        "run",
        "builtin:hello",
        "--job-extra",
        r#"{"str_info":"x"}"#,
        "--execute",
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(run["job_status"], "finished");
    assert_eq!(run["ret_data"]["count"], 2);
    assert_eq!(run["tasks"][0]["params"], json!({"str_info": "x"}));
    assert_eq!(run["tasks"][0]["reply"], json!({"hello": "hello x"}));
    assert!(run["tasks"][2]["millis"].as_f64().unwrap() > 0.0, "{run}");
}

#[test]
fn run_execute_reports_a_failed_task_and_skips_what_depends_on_it() {
    // Nothing listens on the port: task1 fails, task2 and task3 never run.
    let base = format!("http://127.0.0.1:{}", free_port());
    let output = xingqiao(&[
        "plugin",
        "run",
        "builtin:hello",
        "--job-extra",
        r#"{"str_info":"x"}"#,
        "--execute",
        "--handler-base-url",
        &base,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let report = stderr(&output);
    assert!(report.contains(&format!("handlers: {base}")), "{report}");
    assert!(report.contains("failed   task1 /demo_api/hello (1 attempt, "), "{report}");
    assert!(report.contains("skipped  task2 /demo_api/ping"), "{report}");
    assert!(report.contains("job failed: ret_data -"), "{report}");
    assert!(report.trim_end().ends_with("the job failed"), "{report}");
}

/// The WIT promise: a component built against workflow@0.1.0 and committed as
/// it was built keeps loading and running.
#[test]
fn components_built_against_workflow_0_1_0_keep_working() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/workflow@0.1.0/hello.wasm");
    let fixture = fixture.display().to_string();
    let output = xingqiao(&["plugin", "check", &fixture]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("job_type:    hello\n"), "{}", stdout(&output));
    let output =
        xingqiao(&["plugin", "run", &fixture, "--job-extra", r#"{"str_info":"old"}"#, "--execute", "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(run["job_status"], "finished", "{run}");
    assert_eq!(run["ret_data"]["all_taskdata"][0]["hello"], "hello old", "{run}");
}
