//! A plugin author's path, in every language, as the README tells it:
//! `xingqiao plugin new`, the project's own tests, `xingqiao plugin build`,
//! `xingqiao plugin upload`, then a job through a real server. And the demo
//! `hello` in Python and JavaScript (`plugins/hello_py`, `plugins/hello_js`)
//! against the Rust one.
//!
//! Needs python3 (with venv), node and npm, and reaches PyPI and npm the first
//! time (the pinned componentize-py, componentize-js and rolldown are kept in
//! `<target>/xingqiao-tools` after that).

#![expect(clippy::unwrap_used, reason = "helpers fail the test by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use xingqiao_tests::{TestServer, fixture_wasm, xingqiao_bin};

const TOKEN: &str = "authoring-admin-token-0123456789";

/// Shared by every run: installing the language tools takes a while.
fn tools_dir() -> PathBuf {
    let target = xingqiao_bin().parent().and_then(Path::parent).unwrap();
    target.join("xingqiao-tools")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xq-authoring-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn show(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a command in `dir`; fails the test with its output unless it succeeds.
fn ok(dir: &Path, program: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("XINGQIAO_TOOLS_DIR", tools_dir())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()));
    assert!(output.status.success(), "{} {args:?} in {}: {}", program.display(), dir.display(), show(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn xingqiao(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    ok(dir, xingqiao_bin(), args, env)
}

/// `plugin build` in `dir`: the one line it prints is the component's path.
fn build(dir: &Path) -> PathBuf {
    let printed = xingqiao(dir, &["plugin", "build"], &[]);
    let wasm = dir.join(printed.trim());
    assert!(wasm.is_file(), "plugin build printed {printed:?}, which is no file");
    wasm
}

fn upload(server: &TestServer, wasm: &Path) -> String {
    let url = server.url("");
    let env = [("XINGQIAO_URL", url.as_str()), ("XINGQIAO_ADMIN_TOKEN", TOKEN)];
    xingqiao(wasm.parent().unwrap(), &["plugin", "upload", &wasm.display().to_string()], &env)
}

/// new -> native tests -> build -> upload -> a job that finishes, and a
/// job_extra that breaks the generated schema refused with a JSON pointer.
async fn from_nothing_to_a_finished_job(lang: &str, native_test: (&str, &[&str])) {
    let job_type = format!("demo_{lang}");
    let root = scratch(lang);
    let project = root.join(&job_type);
    let said = xingqiao(&root, &["plugin", "new", &job_type, "--lang", lang], &[]);
    assert!(said.contains("xingqiao plugin build"), "{said}");
    ok(&project, Path::new(native_test.0), native_test.1, &[]);
    let wasm = build(&project);

    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    let uploaded = upload(&server, &wasm);
    assert!(uploaded.starts_with(&format!("uploaded {job_type} version 0.1.0 ")), "{uploaded}");

    let example: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("example-job-extra.json")).unwrap()).unwrap();
    let job_id =
        server.create_job(json!({"job_namespace": "authoring", "job_type": job_type, "job_extra": example})).await;
    let job = server.wait_job(job_id).await;
    assert_eq!(job["job_status"], "finished", "{lang}: {job}");
    assert_eq!(job["job_tags"], "team=docs", "{lang}: params_check's tag: {job}");
    assert_eq!(job["ret_data"]["all_taskdata"].as_array().map(Vec::len), Some(2), "{lang}: {job}");

    let broken = json!({"job_namespace": "authoring", "job_type": job_type, "job_extra": {"team": 7}});
    let (status, body) = server.post("/xingqiao/create_job", broken).await;
    assert_eq!((status, body["stat"].as_str()), (400, Some("ERR_JOB_EXTRA_INVALID")), "{lang}: {body}");
    let pointers: Vec<&str> =
        body["data"]["errors"].as_array().unwrap().iter().filter_map(|e| e["pointer"].as_str()).collect();
    assert!(pointers.contains(&"/str_info") && pointers.contains(&"/team"), "{lang}: {body}");
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_rust_plugin_from_nothing_to_a_finished_job() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    from_nothing_to_a_finished_job("rust", (&cargo, &["test", "--quiet"])).await;
}

/// The demo `hello` in another language gives the Rust hello's ret_data.
async fn same_as_the_rust_hello(folder: &str, job_type: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let wasm = build(&repo.join("plugins").join(folder));
    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    let uploaded = upload(&server, &wasm);
    assert!(uploaded.starts_with(&format!("uploaded {job_type} version 0.1.0 ")), "{uploaded}");
    let mut ret_data = Vec::new();
    for job_type in ["hello", job_type] {
        let body = json!({"job_namespace": "polyglot", "job_type": job_type, "job_extra": {"str_info": "ceshi"}});
        let job = server.wait_job(server.create_job(body).await).await;
        assert_eq!(job["job_status"], "finished", "{job}");
        ret_data.push(job["ret_data"].clone());
    }
    assert_eq!(ret_data[0], ret_data[1], "{job_type} and hello disagree");
    // The seed's refusal, through the helper's error path.
    let (status, body) = server.post("/xingqiao/create_job", json!({"job_namespace": "n", "job_type": job_type})).await;
    assert_eq!(
        (status, &body["stat"], &body["message"]),
        (400, &json!("ERR_JOB_PARAMS_CHECK"), &json!("job_extra not have str_info"))
    );
    server.stop().await.unwrap();
}

/// The Python tests share one componentize-py install, so they run in turn.
#[tokio::test]
async fn python_plugins_build_upload_and_run() {
    let python = Path::new("python3");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let sdk = repo.join("plugin-sdk/python");
    ok(&sdk, python, &["-m", "unittest", "-q"], &[]);
    ok(&repo.join("plugins/hello_py"), python, &["-m", "unittest", "-q"], &[("PYTHONPATH", sdk.to_str().unwrap())]);
    same_as_the_rust_hello("hello_py", "hello_py").await;
    from_nothing_to_a_finished_job("python", ("python3", &["-m", "unittest", "-q"])).await;
}

#[tokio::test]
async fn javascript_plugins_build_upload_and_run() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    ok(&repo.join("plugin-sdk/js"), Path::new("node"), &["--test"], &[]);
    ok(&repo.join("plugins/hello_js"), Path::new("node"), &["--test"], &[]);
    same_as_the_rust_hello("hello_js", "hello_js").await;
    from_nothing_to_a_finished_job("js", ("node", &["--test"])).await;
    random_and_clocks_only_when_granted().await;
}

/// What a plugin reads from wasi:random and wasi:clocks, as its task's params.
const SENSES: &str = r#"import { Task, definePlugin } from "./xingqiao/xingqiao-plugin.js";
export default definePlugin({
  jobType: "senses",
  workflow(job, dag) {
    const random = Array.from(crypto.getRandomValues(new Uint8Array(8)));
    dag.addTask(new Task("look", "/demo_api/echo", { params: { now: Date.now(), random } }));
  },
});
"#;

/// Without a grant a plugin reads the epoch and the same bytes every run; with
/// `[sandbox] wasi = ["random", "clocks"]` the real ones. A plugin without
/// jobNotifier says so in its component, and the server never calls it.
async fn random_and_clocks_only_when_granted() {
    let root = scratch("senses");
    xingqiao(&root, &["plugin", "new", "senses", "--lang", "js"], &[]);
    let project = root.join("senses");
    std::fs::write(project.join("plugin.js"), SENSES).unwrap();
    let look = |wasm: &Path| -> Value {
        let printed = xingqiao(&project, &["plugin", "run", &wasm.display().to_string(), "--format", "json"], &[]);
        serde_json::from_str::<Value>(&printed).unwrap()["tasks"][0]["params"].clone()
    };
    let wasm = build(&project);
    let checked = xingqiao(&project, &["plugin", "check", &wasm.display().to_string()], &[]);
    assert!(checked.contains("wasi grants: none") && checked.contains("declared absent, never called"), "{checked}");
    let denied = look(&wasm);
    assert_eq!(denied["now"], 0, "{denied}");
    // No entropy: every run reads the same bytes.
    assert_eq!(look(&wasm)["random"], denied["random"], "{denied}");

    let manifest = std::fs::read_to_string(project.join("xingqiao.toml")).unwrap();
    let granted = manifest.replace("# wasi = [\"random\", \"clocks\"]", "wasi = [\"random\", \"clocks\"]");
    assert_ne!(granted, manifest, "the generated xingqiao.toml shows how to grant");
    std::fs::write(project.join("xingqiao.toml"), granted).unwrap();
    let wasm = build(&project);
    let checked = xingqiao(&project, &["plugin", "check", &wasm.display().to_string()], &[]);
    assert!(checked.contains("wasi grants: random, clocks"), "{checked}");
    let seen = look(&wasm);
    assert!(seen["now"].as_f64().unwrap() > 1.7e12, "a real clock: {seen}");
    assert_ne!(look(&wasm)["random"], seen["random"], "real entropy differs from run to run: {seen}");

    // The notifier declared absent is never called by the server.
    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    upload(&server, &wasm);
    let job = server.wait_job(server.create_job(json!({"job_namespace": "n", "job_type": "senses"})).await).await;
    assert_eq!(job["job_status"], "finished", "{job}");
    // The embedded ping declares it absent in its Cargo.toml (build.rs writes
    // that into the demo); ping_notifier, the control, is told at start and end.
    for job_type in ["ping", "ping_notifier"] {
        let job = server.wait_job(server.create_job(json!({"job_namespace": "n", "job_type": job_type})).await).await;
        assert_eq!(job["job_status"], "finished", "{job}");
    }
    let told = r#"xingqiao_plugin_call_seconds_count{job_type="ping_notifier",call="job_notifier"} 2"#;
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.contains(told) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(metrics.contains(told), "{metrics}");
    assert!(metrics.contains(r#"xingqiao_plugin_call_seconds_count{job_type="senses",call="plan"} 1"#), "{metrics}");
    assert!(!metrics.contains(r#"job_type="senses",call="job_notifier""#), "{metrics}");
    assert!(metrics.contains(r#"xingqiao_plugin_call_seconds_count{job_type="ping",call="plan"} 1"#), "{metrics}");
    assert!(!metrics.contains(r#"job_type="ping",call="job_notifier""#), "{metrics}");
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

/// upload, list, versions, activate, disable: readable text, `--json`, and a
/// hint instead of a bare 401 when the token is missing.
#[tokio::test]
async fn the_admin_commands_talk_to_the_server() {
    let server = TestServer::start_with("sqlite", &["--admin-token", TOKEN]).await;
    let url = server.url("");
    let here = std::env::temp_dir();
    let env = [("XINGQIAO_URL", url.as_str()), ("XINGQIAO_ADMIN_TOKEN", TOKEN)];
    let run = |args: &[&str]| xingqiao(&here, args, &env);
    for version in ["greeter_v1", "greeter_v2"] {
        let said = run(&["plugin", "upload", &fixture_wasm(version).display().to_string()]);
        assert!(said.starts_with("uploaded greeter version "), "{said}");
    }
    let listed = run(&["plugin", "list"]);
    let greeter = listed.lines().find(|line| line.starts_with("greeter ")).unwrap_or_else(|| panic!("{listed}"));
    assert!(greeter.contains("uploaded") && greeter.contains("2.0.0"), "{listed}");
    assert!(listed.lines().next().unwrap().starts_with("JOB_TYPE"), "{listed}");

    let said = run(&["plugin", "activate", "greeter", "1.0.0"]);
    assert_eq!(said, "greeter 1.0.0 is active\n");
    let versions: Value = serde_json::from_str(&run(&["plugin", "versions", "greeter", "--json"])).unwrap();
    let active: Vec<&Value> = versions["versions"].as_array().unwrap().iter().filter(|v| v["active"] == true).collect();
    assert_eq!(active.len(), 1, "{versions}");
    assert_eq!(active[0]["version"], "1.0.0", "{versions}");
    let table = run(&["plugin", "versions", "greeter"]);
    assert!(table.lines().any(|line| line.starts_with("1.0.0") && line.contains(" * ")), "{table}");

    run(&["plugin", "disable", "greeter"]);
    let (_, body) = server.post("/xingqiao/create_job", json!({"job_namespace": "n", "job_type": "greeter"})).await;
    assert_ne!(body["stat"], "OK", "a disabled job type is refused: {body}");

    // Without the token: a refusal that says what to do, and a failing exit code.
    let output = Command::new(xingqiao_bin())
        .args(["plugin", "list", "--server", &url])
        .env_remove("XINGQIAO_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ERR_UNAUTHORIZED") && stderr.contains("XINGQIAO_ADMIN_TOKEN"), "{stderr}");
    server.stop().await.unwrap();
}
