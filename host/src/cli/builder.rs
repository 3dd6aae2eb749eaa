//! `xingqiao plugin build`: the component of the project in the current folder,
//! whatever its language. Prints only the `.wasm` path on stdout; the tools'
//! own output goes to stderr.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` (adding the target
//!   with rustup when missing), the component copied to `build/`.
//! - Python: componentize-py, at the version pinned in `xingqiao.toml`,
//!   installed into a venv on first use.
//! - JavaScript: rolldown bundles the plugin with the helper, then
//!   componentize-js makes the component; both pinned, installed with npm on
//!   first use. HTTP and fetch-event are left out of the runtime: a plugin has
//!   no network.
//!
//! Tools go to `.xingqiao/` in the project, or to `$XINGQIAO_TOOLS_DIR` so
//! several projects (and the test suite) share one install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::plugin::CliError;
use super::project::{Lang, Project, ProjectFile, TOOL_VERSIONS};
use crate::runtime::manifest::{self, Manifest, SandboxRequest};

const WASM_TARGET: &str = "wasm32-wasip2";
const HOST_INTERFACE: &str = "xingqiao:workflow/host@0.1.0";

pub fn build(dir: &Path) -> Result<String, CliError> {
    // Absolute, so the tools (and the JS entry module) resolve paths wherever they run.
    let dir = std::fs::canonicalize(dir)
        .map_err(|err| CliError::Usage(format!("cannot open the project folder {}: {err}", dir.display())))?;
    let (wasm, manifest) = match Project::find(&dir)? {
        Project::Rust { dir } => (build_rust(&dir)?, rust_manifest(&dir)?),
        Project::Scripted { dir, file } => {
            let (wasm, job_notifier) = match file.lang {
                Lang::Python => (build_python(&dir, &file)?, python_notifier(&dir, &file)),
                Lang::Js => (build_js(&dir, &file)?, js_notifier(&dir, &file)),
                Lang::Rust => return Err(CliError::Usage("a Rust plugin is built from its Cargo.toml".into())),
            };
            (wasm, Manifest { job_notifier, sandbox: file.sandbox.clone() })
        }
    };
    write_manifest(&wasm, &manifest)?;
    // Relative to where the author stands when the component is below it.
    let shown =
        std::env::current_dir().ok().and_then(|cwd| wasm.strip_prefix(cwd).ok().map(Path::to_path_buf)).unwrap_or(wasm);
    Ok(format!("{}\n", shown.display()))
}

fn say(message: &str) {
    eprintln!("xingqiao: {message}");
}

/// Runs a tool with its stdout sent to our stderr, so stdout keeps only the path.
fn run(what: &str, command: &mut Command) -> Result<(), CliError> {
    let status = command
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|err| CliError::Failed(format!("cannot run {what}: {err}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Failed(format!("{what} failed ({status}); its output is above")))
    }
}

fn tools_dir(project: &Path) -> PathBuf {
    std::env::var_os("XINGQIAO_TOOLS_DIR").map_or_else(|| project.join(".xingqiao"), PathBuf::from)
}

fn absolute(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { dir.join(path) }
}

/// `build/` of the project, made when missing: every language's component lands there.
fn build_dir(dir: &Path) -> Result<PathBuf, CliError> {
    let build = dir.join("build");
    std::fs::create_dir_all(&build)
        .map_err(|err| CliError::Failed(format!("cannot make {}: {err}", build.display())))?;
    Ok(build)
}

fn out_file(dir: &Path, job_type: &str) -> Result<PathBuf, CliError> {
    Ok(build_dir(dir)?.join(format!("{job_type}.wasm")))
}

// ---- Rust ------------------------------------------------------------------

fn build_rust(dir: &Path) -> Result<PathBuf, CliError> {
    ensure_wasm_target(dir)?;
    say("cargo build --release --target wasm32-wasip2");
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--target", WASM_TARGET, "--message-format=json-render-diagnostics"])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| CliError::Failed(format!("cannot run cargo: {err}")))?;
    if !output.status.success() {
        return Err(CliError::Failed(format!("cargo build failed ({}); its output is above", output.status)));
    }
    // The last cdylib artifact of the build is the component.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wasm = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib")))
        .filter_map(|message| message["filenames"].as_array().cloned())
        .flatten()
        .filter_map(|name| name.as_str().map(PathBuf::from))
        .rfind(|path| path.extension().is_some_and(|ext| ext == "wasm"));
    let built = wasm.ok_or_else(|| {
        CliError::Failed("cargo built no .wasm: is the crate a `cdylib` (see [lib] crate-type)?".into())
    })?;
    // build/NAME.wasm, as for the other languages, wherever cargo's target folder is.
    let out = build_dir(dir)?.join(built.file_name().unwrap_or_else(|| "plugin.wasm".as_ref()));
    std::fs::copy(&built, &out)
        .map_err(|err| CliError::Failed(format!("cannot copy {} to {}: {err}", built.display(), out.display())))?;
    Ok(out)
}

/// rustup installs a toolchain file's targets only with the toolchain itself,
/// so on a machine that had the toolchain already the wasm target is missing.
fn ensure_wasm_target(dir: &Path) -> Result<(), CliError> {
    let Ok(installed) = Command::new("rustup").args(["target", "list", "--installed"]).current_dir(dir).output() else {
        return Ok(()); // no rustup: cargo will say what is missing
    };
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    say("adding the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    run("rustup target add", Command::new("rustup").args(["target", "add", WASM_TARGET]).current_dir(dir))
}

// ---- Python ----------------------------------------------------------------

fn build_python(dir: &Path, file: &ProjectFile) -> Result<PathBuf, CliError> {
    let version = file.tools.componentize_py.as_deref().unwrap_or(TOOL_VERSIONS.componentize_py);
    let venv = tools_dir(dir).join(format!("componentize-py-{version}"));
    let tool = venv.join("bin/componentize-py");
    if !tool.is_file() {
        say(&format!("installing componentize-py {version} into {}", venv.display()));
        let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        run("python3 -m venv", Command::new(python).arg("-m").arg("venv").arg(&venv))?;
        run(
            "pip install componentize-py",
            Command::new(venv.join("bin/pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("componentize-py=={version}"),
            ]),
        )?;
    }
    let out = out_file(dir, &file.job_type)?;
    say(&format!("componentize-py {version}: {} -> {}", file.entry, out.display()));
    run(
        "componentize-py",
        Command::new(&tool)
            .arg("-d")
            .arg(absolute(dir, &file.wit))
            .args(["-w", "plugin", "componentize", "-p", "."])
            .arg("-p")
            .arg(absolute(dir, &file.sdk))
            .arg(&file.entry)
            .arg("-o")
            .arg(&out)
            .current_dir(dir),
    )?;
    Ok(out)
}

// ---- JavaScript ------------------------------------------------------------

fn build_js(dir: &Path, file: &ProjectFile) -> Result<PathBuf, CliError> {
    let componentize = file.tools.componentize_js.as_deref().unwrap_or(TOOL_VERSIONS.componentize_js);
    let rolldown = file.tools.rolldown.as_deref().unwrap_or(TOOL_VERSIONS.rolldown);
    let tools = tools_dir(dir).join(format!("componentize-js-{componentize}-rolldown-{rolldown}"));
    let bin = tools.join("node_modules/.bin");
    if !bin.join("componentize-js").is_file() || !bin.join("rolldown").is_file() {
        say(&format!("installing componentize-js {componentize} and rolldown {rolldown} into {}", tools.display()));
        std::fs::create_dir_all(&tools)
            .map_err(|err| CliError::Failed(format!("cannot make {}: {err}", tools.display())))?;
        run(
            "npm install",
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                .arg(&tools)
                .arg(format!("@bytecodealliance/componentize-js@{componentize}"))
                .arg(format!("rolldown@{rolldown}")),
        )?;
    }
    let out = out_file(dir, &file.job_type)?;
    let build = dir.join("build");
    let entry = build.join("component.js");
    std::fs::write(&entry, component_entry(dir, file))
        .map_err(|err| CliError::Failed(format!("cannot write {}: {err}", entry.display())))?;
    let bundle = build.join("bundle.js");
    say(&format!("rolldown {rolldown}: {} + the helper -> {}", file.entry, bundle.display()));
    run(
        "rolldown",
        Command::new(bin.join("rolldown"))
            .arg(&entry)
            .args(["--format", "esm", "--platform", "neutral", "--external", HOST_INTERFACE, "--file"])
            .arg(&bundle)
            .current_dir(dir),
    )?;
    say(&format!("componentize-js {componentize}: {} -> {}", bundle.display(), out.display()));
    run(
        "componentize-js",
        Command::new(bin.join("componentize-js"))
            .arg(&bundle)
            .arg("--wit")
            .arg(absolute(dir, &file.wit))
            .args(["--world-name", "plugin", "--disable", "http", "fetch-event", "--out"])
            .arg(&out)
            .current_dir(dir),
    )?;
    Ok(out)
}

/// The component's entry module: binds the WIT imports into the helper and
/// exports the WIT functions of the plugin module's default export.
fn component_entry(dir: &Path, file: &ProjectFile) -> String {
    // Absolute paths (the project folder is): rolldown resolves them from anywhere.
    let absolute_text = |path: &Path| {
        let path = absolute(dir, path);
        path.to_string_lossy().replace('\\', "/")
    };
    let helper = absolute_text(&file.sdk.join("xingqiao-plugin.js"));
    let plugin = absolute_text(Path::new(&file.entry));
    format!(
        "// Written by `xingqiao plugin build`; not to be edited.\n\
         import {{ addTask, log }} from \"{HOST_INTERFACE}\";\n\
         import {{ bindHost, witExports }} from {helper:?};\n\
         import plugin from {plugin:?};\n\
         bindHost({{ addTask, log }});\n\
         const wit = witExports(plugin);\n\
         export const metadata = wit.metadata;\n\
         export const paramsCheck = wit.paramsCheck;\n\
         export const workflow = wit.workflow;\n\
         export const jobNotifier = wit.jobNotifier;\n"
    )
}

// ---- The manifest: notifier and sandbox grants ------------------------------

/// Appends the `xingqiao:plugin` section unless it would say only the defaults.
fn write_manifest(wasm: &Path, manifest: &Manifest) -> Result<(), CliError> {
    if *manifest == Manifest::default() {
        return Ok(());
    }
    let failed = |err: &dyn std::fmt::Display| {
        CliError::Failed(format!("cannot write the manifest into {}: {err}", wasm.display()))
    };
    let mut bytes = std::fs::read(wasm).map_err(|err| failed(&err))?;
    manifest::append(&mut bytes, manifest).map_err(|err| failed(&err))?;
    std::fs::write(wasm, bytes).map_err(|err| failed(&err))?;
    say(&format!("declared in the component: {}", serde_json::to_string(manifest).unwrap_or_default()));
    Ok(())
}

/// `[package.metadata.xingqiao]` of Cargo.toml: `job_notifier = false` and a
/// `sandbox` table, both optional.
fn rust_manifest(dir: &Path) -> Result<Manifest, CliError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Declared {
        job_notifier: Option<bool>,
        #[serde(default)]
        sandbox: SandboxRequest,
    }
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|err| CliError::Failed(format!("cannot read {}: {err}", path.display())))?;
    let cargo: toml::Table =
        toml::from_str(&text).map_err(|err| CliError::Usage(format!("{}: {err}", path.display())))?;
    let declared = match cargo.get("package").and_then(|p| p.get("metadata")).and_then(|m| m.get("xingqiao")) {
        None => Declared::default(),
        Some(value) => value
            .clone()
            .try_into()
            .map_err(|err| CliError::Usage(format!("{}: [package.metadata.xingqiao]: {err}", path.display())))?,
    };
    Ok(Manifest { job_notifier: declared.job_notifier.unwrap_or(true), sandbox: declared.sandbox })
}

/// Whether the Python plugin overrides job_notifier, asked of the plugin
/// module itself (natively). When the question cannot be answered the
/// notifier is assumed, which only costs time.
fn python_notifier(dir: &Path, file: &ProjectFile) -> bool {
    let probe = format!(
        "import importlib, xingqiao_plugin\n\
         world = importlib.import_module({entry:?}).WitWorld\n\
         print(xingqiao_plugin.implements_notifier(world.plugin_class))\n",
        entry = file.entry
    );
    let sdk = absolute(dir, &file.sdk);
    let path = std::env::join_paths([dir, sdk.as_path()]).unwrap_or_default();
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let answer = Command::new(python).args(["-c", &probe]).env("PYTHONPATH", path).current_dir(dir).output();
    notifier_answer("python3", answer, "False")
}

/// Whether the JavaScript plugin defines jobNotifier, asked of the module (Node).
fn js_notifier(dir: &Path, file: &ProjectFile) -> bool {
    let url = format!("file://{}", absolute(dir, Path::new(&file.entry)).display());
    let probe = format!("import({url:?}).then((m) => console.log(String(m.default.implementsNotifier)))");
    let answer = Command::new("node").args(["--input-type=module", "-e", &probe]).current_dir(dir).output();
    notifier_answer("node", answer, "false")
}

fn notifier_answer(what: &str, answer: std::io::Result<std::process::Output>, no: &str) -> bool {
    match answer {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim() != no,
        Ok(output) => {
            say(&format!(
                "could not ask the plugin whether it has a job notifier ({what}: {}); assuming it has",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
            true
        }
        Err(err) => {
            say(&format!("could not run {what} to ask about the job notifier ({err}); assuming it has one"));
            true
        }
    }
}
