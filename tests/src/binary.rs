//! The `xingqiao` binary under test, built once per test process.
//!
//! Cargo builds a package's binaries before its own integration tests only;
//! this crate is another package, so the harness asks cargo itself (`cargo
//! build -p xingqiao --bin xingqiao`): the binary is never stale, and the
//! build's messages also name the folder of the fixture plugins that
//! `host/build.rs` compiled.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Built {
    binary: PathBuf,
    fixtures: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(build)
}

fn build() -> Built {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or_else(|| Path::new(".."));
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args([
        "build",
        "--locked",
        "-p",
        "xingqiao",
        "--bin",
        "xingqiao",
        "--message-format=json",
    ]);
    // What cargo set for this test process describes this crate, not the
    // build: passed on, it would make crates whose build scripts watch it
    // (ring watches CARGO_MANIFEST_DIR) rebuild here and again in the next
    // `cargo test`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let set_for_this_crate = ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
            || key == "CARGO_TARGET_TMPDIR"
            || key == "CARGO_RUSTC_CURRENT_DIR";
        if set_for_this_crate {
            command.env_remove(&key);
        }
    }
    let output = command.output().unwrap_or_else(|err| panic!("cannot run cargo to build the xingqiao binary: {err}"));
    assert!(
        output.status.success(),
        "building the xingqiao binary failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut binary = None;
    let mut fixtures = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["target"]["name"] == "xingqiao"
            && let Some(executable) = message["executable"].as_str()
        {
            binary = Some(PathBuf::from(executable));
        }
        for pair in message["env"].as_array().into_iter().flatten() {
            if pair[0] == "XINGQIAO_PLUGIN_WASM_DIR" {
                fixtures = pair[1].as_str().map(PathBuf::from);
            }
        }
    }
    Built {
        binary: binary.unwrap_or_else(|| panic!("cargo built no xingqiao executable")),
        fixtures: fixtures.unwrap_or_else(|| panic!("host/build.rs did not say where the fixture plugins are")),
    }
}

/// The `xingqiao` executable, freshly built.
pub fn xingqiao_bin() -> &'static Path {
    &built().binary
}

/// The folder of the compiled plugins of `plugins/` (demos and fixtures).
pub fn fixtures_dir() -> &'static Path {
    &built().fixtures
}

/// One compiled plugin of `plugins/`, e.g. `fixture_wasm("e2e")`.
pub fn fixture_wasm(name: &str) -> PathBuf {
    fixtures_dir().join(format!("{name}.wasm"))
}

/// A fresh folder holding these compiled plugins, for `--plugins-dir`.
pub fn plugins_dir_with(names: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xq-plugins-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    for name in names {
        let file = format!("{name}.wasm");
        std::fs::copy(fixtures_dir().join(&file), dir.join(&file))
            .unwrap_or_else(|err| panic!("cannot copy the fixture {file}: {err}"));
    }
    dir
}
