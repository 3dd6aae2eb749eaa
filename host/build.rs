//! Builds the `plugins/` workspace for `wasm32-wasip2` and embeds the demo job
//! types, so `cargo build` is the only step and `xingqiao serve` needs no file
//! besides its binary. The misbehaving fixtures are built too but only their
//! folder is passed on (`XINGQIAO_PLUGIN_WASM_DIR`), for the sandbox tests.
//!
//! Each embedded demo carries what its `[package.metadata.xingqiao]` declares
//! (only `job_notifier = false` here), as `xingqiao plugin build` would write
//! it, so the server makes no instance for a notifier a demo does not have.

use std::env;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

// The section writer the server reads with; it has no dependencies.
#[expect(dead_code, reason = "the build script only writes sections; find is the server's")]
#[path = "src/runtime/custom_section.rs"]
mod custom_section;

/// Crate names in `plugins/` that ship inside the binary, in listing order.
const DEMOS: &[&str] = &["ping", "hello", "hello_params", "ping_notifier", "hello_lock", "chain", "fanout"];

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let repo = manifest_dir.parent().ok_or("host/ has no parent folder")?;
    let plugins = repo.join("plugins");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    watch_sources(repo, &plugins)?;
    // `embed_migrations!` (db/mod.rs) reads these folders while the crate
    // compiles, and cargo cannot see that: without this, a new migration is
    // left out of a build whose Rust sources did not change.
    println!("cargo:rerun-if-changed={}", repo.join("migrations").display());

    // <target>/<profile>/build/<pkg>-<hash>/out -> <target>/xingqiao-plugins:
    // shared by every profile, outside the source tree.
    let target_root = out_dir.ancestors().nth(4).ok_or("unexpected OUT_DIR layout")?;
    let plugin_target = target_root.join("xingqiao-plugins");
    ensure_wasm_target()?;
    build_plugins(&plugins, &plugin_target)?;

    let wasm_dir = plugin_target.join(WASM_TARGET).join("release");
    let mut table = String::from("/// Demo job types compiled from `plugins/`: (crate name, component bytes).\n");
    table.push_str("pub static DEMO_PLUGINS: &[(&str, &[u8])] = &[\n");
    for demo in DEMOS {
        let built = wasm_dir.join(format!("{demo}.wasm"));
        let mut bytes = fs::read(&built).map_err(|err| format!("{} was not built: {err}", built.display()))?;
        if let Some(manifest) = declared_manifest(&plugins.join(demo).join("Cargo.toml"))? {
            custom_section::append(&mut bytes, custom_section::MANIFEST, manifest.as_bytes());
        }
        let wasm = out_dir.join(format!("{demo}.wasm"));
        fs::write(&wasm, bytes)?;
        writeln!(table, "    ({demo:?}, include_bytes!({:?})),", wasm.display().to_string())?;
    }
    table.push_str("];\n");
    fs::write(out_dir.join("demo_plugins.rs"), table)?;
    println!("cargo:rustc-env=XINGQIAO_PLUGIN_WASM_DIR={}", wasm_dir.display());
    println!("cargo:rustc-env=XINGQIAO_HOST_TARGET={}", env::var("TARGET")?);
    // `xingqiao plugin new --lang rust` pins the compiler this binary was built with.
    let toolchain = repo.join("rust-toolchain.toml");
    println!("cargo:rerun-if-changed={}", toolchain.display());
    let channel = fs::read_to_string(&toolchain)?
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("channel")
                .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches('"').to_owned())
        })
        .ok_or("rust-toolchain.toml names no channel")?;
    println!("cargo:rustc-env=XINGQIAO_RUST_CHANNEL={channel}");
    Ok(())
}

/// The manifest a demo declares in its Cargo.toml, as the JSON the server
/// reads (`runtime::manifest`); `None` when it declares nothing.
fn declared_manifest(cargo_toml: &Path) -> Result<Option<String>, Box<dyn Error>> {
    let cargo: toml::Table = toml::from_str(&fs::read_to_string(cargo_toml)?)?;
    let Some(declared) = cargo.get("package").and_then(|p| p.get("metadata")).and_then(|m| m.get("xingqiao")) else {
        return Ok(None);
    };
    let declared = declared.as_table().ok_or("[package.metadata.xingqiao] is not a table")?;
    if let Some(key) = declared.keys().find(|key| *key != "job_notifier") {
        return Err(format!("{}: a demo declares only job_notifier here, not {key}", cargo_toml.display()).into());
    }
    let notifier = declared.get("job_notifier").map(|value| value.as_bool().ok_or("job_notifier is not a boolean"));
    Ok(Some(format!("{{\"job_notifier\":{}}}", notifier.transpose()?.unwrap_or(true))))
}

/// rustup installs the targets of `rust-toolchain.toml` only when it installs
/// the toolchain itself; on a machine that already had the toolchain the wasm
/// target is missing, so the first build adds it (and says so).
fn ensure_wasm_target() -> Result<(), Box<dyn Error>> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| String::from("rustc"));
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim());
    let target_lib = sysroot.join("lib/rustlib").join(WASM_TARGET);
    // Watched so that the build after an install runs this script once more,
    // finds the target, and stops repeating the warning below.
    println!("cargo:rerun-if-changed={}", target_lib.display());
    if target_lib.is_dir() {
        return Ok(());
    }
    // The toolchain rustup chose for this build (rust-toolchain.toml), so the
    // target lands in the sysroot that compiles the plugins.
    let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") else {
        return Err(format!(
            "the {WASM_TARGET} target is not installed in {} and rustup is not managing this build; \
             install the target for this compiler, e.g. `rustup target add {WASM_TARGET}`",
            sysroot.display()
        )
        .into());
    };
    println!(
        "cargo:warning=the {WASM_TARGET} target is missing: running `rustup target add {WASM_TARGET} --toolchain {toolchain}`"
    );
    let status = Command::new("rustup").args(["target", "add", WASM_TARGET, "--toolchain", &toolchain]).status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`rustup target add {WASM_TARGET}` failed ({status})").into()),
        Err(error) => Err(format!(
            "the {WASM_TARGET} target is missing and rustup could not be run ({error}); \
             `rustup target add {WASM_TARGET}` installs it"
        )
        .into()),
    }
}

fn build_plugins(plugins: &Path, target_dir: &Path) -> Result<(), Box<dyn Error>> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .current_dir(plugins)
        .arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    let status = command.status()?;
    if !status.success() {
        return Err(format!(
            "building the plugins workspace for {WASM_TARGET} failed ({status}); \
             is the target installed? `rustup target add {WASM_TARGET}`"
        )
        .into());
    }
    Ok(())
}

/// Rebuild when a plugin, the SDK or the WIT changes — but not when the
/// plugins' own `target/` (if someone built there by hand) does.
fn watch_sources(repo: &Path, plugins: &Path) -> Result<(), Box<dyn Error>> {
    for path in [
        repo.join("wit"),
        repo.join("plugin-sdk/src"),
        repo.join("plugin-sdk/Cargo.toml"),
        repo.join("plugin-sdk/limits.json"),
        repo.join("plugin-sdk/build.rs"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let mut folders = vec![plugins.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            // Build outputs and tool installs of the Python and JavaScript demos.
            let generated = ["target", "build", "node_modules", ".xingqiao", "__pycache__"];
            if path.is_dir() && !generated.contains(&name) {
                folders.push(path);
            } else if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Ok(())
}
