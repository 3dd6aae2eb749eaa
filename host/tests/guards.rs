//! Workspace guards: the plugins' own unit tests pass natively, and the SDK
//! never pulls in host code.

#![expect(clippy::unwrap_used, reason = "helpers fail the test by panicking")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(repo());
    command
}

#[test]
fn the_plugins_unit_tests_pass_natively() {
    // The plugins workspace targets wasm by default; its DAG tests run on the host.
    let target_dir = PathBuf::from(env!("XINGQIAO_PLUGIN_WASM_DIR")).join("../../native");
    let output = cargo()
        .args(["test", "--locked", "--manifest-path", "plugins/Cargo.toml", "--target", env!("XINGQIAO_HOST_TARGET")])
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}\n{}", String::from_utf8_lossy(&output.stderr));
    let passed: usize = report
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 11, "expected every demo crate's tests to run' tests to run, saw {passed}:\n{report}");
}

#[test]
fn the_plugin_sdk_depends_on_nothing_of_the_host() {
    let output = cargo()
        .args([
            "tree",
            "--locked",
            "-p",
            "xingqiao-plugin-sdk",
            "--target",
            "wasm32-wasip2",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.contains("wit-bindgen"), "{tree}");
    for forbidden in ["xingqiao v", "wasmtime", "diesel", "actix", "tokio"] {
        assert!(!tree.lines().any(|line| line.starts_with(forbidden)), "{forbidden} in:\n{tree}");
    }
}
