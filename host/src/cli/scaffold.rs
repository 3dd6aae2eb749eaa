//! `xingqiao plugin new NAME --lang rust|python|js`: a project that builds and
//! passes its own tests as written. It carries its own copy of the helper
//! (the Rust SDK, `xingqiao_plugin` or `xingqiao-plugin.js`) and of the WIT
//! contract, taken from this binary, so it needs nothing from this repository.

use std::path::{Path, PathBuf};

use super::plugin::CliError;
use super::project::{Lang, PROJECT_FILE, TOOL_VERSIONS};

/// A file of the new project: path inside it, then its text.
type File = (String, String);

const WIT: &str = include_str!("../../../wit/workflow@0.1.0/workflow.wit");
const WIT_PATH: &str = "xingqiao/wit/workflow@0.1.0/workflow.wit";
const LIMITS: &str = include_str!("../../../plugin-sdk/limits.json");

const RUST_SDK: &[(&str, &str)] = &[
    ("build.rs", include_str!("../../../plugin-sdk/build.rs")),
    ("README.md", include_str!("../../../plugin-sdk/README.md")),
    ("src/lib.rs", include_str!("../../../plugin-sdk/src/lib.rs")),
    ("src/dag.rs", include_str!("../../../plugin-sdk/src/dag.rs")),
    ("src/job.rs", include_str!("../../../plugin-sdk/src/job.rs")),
    ("src/limits.rs", include_str!("../../../plugin-sdk/src/limits.rs")),
    ("src/log.rs", include_str!("../../../plugin-sdk/src/log.rs")),
    ("src/plugin.rs", include_str!("../../../plugin-sdk/src/plugin.rs")),
    ("src/testing.rs", include_str!("../../../plugin-sdk/src/testing.rs")),
    ("src/wasm.rs", include_str!("../../../plugin-sdk/src/wasm.rs")),
];

const PYTHON_HELPER: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../../plugin-sdk/python/xingqiao_plugin/__init__.py")),
    ("testing.py", include_str!("../../../plugin-sdk/python/xingqiao_plugin/testing.py")),
];

const JS_HELPER: &[(&str, &str)] = &[
    ("xingqiao-plugin.js", include_str!("../../../plugin-sdk/js/xingqiao-plugin.js")),
    ("testing.js", include_str!("../../../plugin-sdk/js/testing.js")),
    ("limits.js", include_str!("../../../plugin-sdk/js/limits.js")),
];

const README: &str = include_str!("../../templates/plugin/README.md");
const RUST_CARGO: &str = include_str!("../../templates/plugin/rust/Cargo.toml");
const RUST_TOOLCHAIN: &str = include_str!("../../templates/plugin/rust/rust-toolchain.toml");
const RUST_LIB: &str = include_str!("../../templates/plugin/rust/src/lib.rs");
const PY_APP: &str = include_str!("../../templates/plugin/python/app.py");
const PY_TEST: &str = include_str!("../../templates/plugin/python/test_app.py");
const JS_PLUGIN: &str = include_str!("../../templates/plugin/js/plugin.js");
const JS_TEST: &str = include_str!("../../templates/plugin/js/plugin.test.js");
const JS_PACKAGE: &str = include_str!("../../templates/plugin/js/package.json");

/// The toolchain this binary's SDK is written for (`rust-toolchain.toml`).
const RUST_CHANNEL: &str = env!("XINGQIAO_RUST_CHANNEL");

/// Writes the project into `dir` (default `./NAME`), which must not exist or
/// be empty. Returns what to do next.
pub fn new(name: &str, lang: Lang, dir: Option<&Path>) -> Result<String, CliError> {
    if !xingqiao_plugin_sdk::limits::is_valid_name(name) {
        return Err(CliError::Usage(format!(
            "{name:?} cannot be a job_type: use 1 to {} of A-Z a-z 0-9 _ -",
            xingqiao_plugin_sdk::limits::LABEL_MAX_BYTES
        )));
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    let occupied = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(CliError::Usage(format!("{} exists and is not empty", dir.display())));
    }
    for (path, text) in files(name, lang) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| failed(parent, &err))?;
        }
        std::fs::write(&path, text).map_err(|err| failed(&path, &err))?;
    }
    Ok(format!(
        "created {lang} plugin {name:?} in {dir}\nnext:\n  cd {dir}\n  {test}\n  xingqiao plugin build\n",
        dir = dir.display(),
        test = test_command(lang),
    ))
}

fn failed(path: &Path, err: &std::io::Error) -> CliError {
    CliError::Failed(format!("cannot write {}: {err}", path.display()))
}

fn test_command(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "cargo test",
        Lang::Python => "python3 -m unittest",
        Lang::Js => "node --test",
    }
}

/// `my-job_type` -> `MyJobType`, for the plugin's class or struct.
fn type_name(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_']).filter(|part| !part.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'P');
    }
    out
}

fn fill(template: &str, name: &str) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{type_name}}", &type_name(name))
        .replace("{{rust_channel}}", RUST_CHANNEL)
}

fn files(name: &str, lang: Lang) -> Vec<File> {
    let mut files: Vec<File> = vec![
        (
            String::from("example-job-extra.json"),
            format!("{{\"str_info\": \"hello from {name}\", \"team\": \"docs\"}}\n"),
        ),
        (WIT_PATH.into(), WIT.into()),
        (String::from("xingqiao/README.md"), helper_readme(lang)),
        (String::from("README.md"), readme(name, lang)),
    ];
    let fill = |template: &str| fill(template, name);
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), fill(RUST_CARGO)));
            files.push(("rust-toolchain.toml".into(), fill(RUST_TOOLCHAIN)));
            files.push(("src/lib.rs".into(), fill(RUST_LIB)));
            files.push((".gitignore".into(), "/target\n/build\n".into()));
            files.push(("xingqiao/plugin-sdk/Cargo.toml".into(), sdk_manifest()));
            files.push(("xingqiao/plugin-sdk/limits.json".into(), LIMITS.into()));
            for (path, text) in RUST_SDK {
                files.push((format!("xingqiao/plugin-sdk/{path}"), (*text).into()));
            }
        }
        Lang::Python => {
            files.push(("app.py".into(), fill(PY_APP)));
            files.push(("test_app.py".into(), fill(PY_TEST)));
            let tools = format!("componentize_py = \"{}\"", TOOL_VERSIONS.componentize_py);
            files.push((PROJECT_FILE.into(), project_file(name, lang, "app", &tools)));
            files.push((".gitignore".into(), "/build\n/.xingqiao\n__pycache__/\n".into()));
            files.push(("xingqiao/xingqiao_plugin/limits.json".into(), LIMITS.into()));
            for (path, text) in PYTHON_HELPER {
                files.push((format!("xingqiao/xingqiao_plugin/{path}"), (*text).into()));
            }
        }
        Lang::Js => {
            files.push(("plugin.js".into(), fill(JS_PLUGIN)));
            files.push(("plugin.test.js".into(), fill(JS_TEST)));
            files.push(("package.json".into(), fill(JS_PACKAGE)));
            let tools = format!(
                "componentize_js = \"{}\"\nrolldown = \"{}\"",
                TOOL_VERSIONS.componentize_js, TOOL_VERSIONS.rolldown
            );
            files.push((PROJECT_FILE.into(), project_file(name, lang, "plugin.js", &tools)));
            files.push((".gitignore".into(), "/build\n/.xingqiao\n/node_modules\n".into()));
            for (path, text) in JS_HELPER {
                files.push((format!("xingqiao/{path}"), (*text).into()));
            }
        }
    }
    files
}

fn sdk_manifest() -> String {
    format!(
        "# The XingQiao plugin SDK {version}, copied here by `xingqiao plugin new`.\n\
         [package]\nname = \"xingqiao-plugin-sdk\"\nversion = \"{version}\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\nschemars = \"1.2\"\n\n\
         [build-dependencies]\nserde_json = \"1\"\n\n\
         [target.'cfg(target_arch = \"wasm32\")'.dependencies]\n\
         wit-bindgen = {{ version = \"0.63\", default-features = false, features = [\"macros\", \"realloc\", \"std\"] }}\n",
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// `xingqiao.toml` of a Python or JavaScript project (Rust has Cargo.toml).
fn project_file(name: &str, lang: Lang, entry: &str, tools: &str) -> String {
    format!(
        "# How `xingqiao plugin build` builds this plugin.\n\
         lang = \"{lang}\"\njob_type = \"{name}\"\n\
         # The module (Python) or file (JavaScript) that exports the plugin.\nentry = \"{entry}\"\n\
         # Where the XingQiao helper and the WIT contract are.\nsdk = \"xingqiao\"\nwit = \"xingqiao/wit/workflow@0.1.0\"\n\n\
         # The build tools, pinned; installed on first build into .xingqiao/\n\
         # (or $XINGQIAO_TOOLS_DIR).\n[tools]\n{tools}\n\n\
         # What the plugin needs beyond the sandbox's defaults (64 MiB per call, a\n\
         # fixed byte cycle as random, clocks stopped at the epoch), granted within\n\
         # the server's caps. Files, network and environment are never granted.\n\
         [sandbox]\n# memory_mib = 128\n# wasi = [\"random\", \"clocks\"]\n"
    )
}

fn helper_readme(lang: Lang) -> String {
    let what = match lang {
        Lang::Rust => "`plugin-sdk/`: the XingQiao plugin SDK (Rust crate `xingqiao-plugin-sdk`)",
        Lang::Python => "`xingqiao_plugin/`: the XingQiao helper for Python",
        Lang::Js => "`xingqiao-plugin.js` and `testing.js`: the XingQiao helper for JavaScript",
    };
    format!(
        "# xingqiao/\n\nCopied here by `xingqiao plugin new` from xingqiao {}:\n\n- {what};\n\
         - `wit/workflow@0.1.0/`: the contract between the server and a plugin. Servers keep\n  \
         loading components built against it; a new contract is a new folder.\n\n\
         Replace this folder with the one of a newer xingqiao to upgrade.\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn readme(name: &str, lang: Lang) -> String {
    let (title, files, wasm, tool) = match lang {
        Lang::Rust => (
            "Rust",
            "| `src/lib.rs` | the plugin, its typed job_extra and its tests |\n| `Cargo.toml`, `rust-toolchain.toml` | the crate and the pinned compiler with the `wasm32-wasip2` target |",
            format!("build/{}.wasm", name.replace('-', "_")),
            "the `wasm32-wasip2` target (rustup)",
        ),
        Lang::Python => (
            "Python",
            "| `app.py` | the plugin and its typed job_extra |\n| `test_app.py` | its native tests |\n| `xingqiao.toml` | how to build it, with the pinned componentize-py |",
            format!("build/{name}.wasm"),
            "componentize-py (in a venv)",
        ),
        Lang::Js => (
            "JavaScript",
            "| `plugin.js` | the plugin and its typed job_extra |\n| `plugin.test.js` | its native tests |\n| `xingqiao.toml` | how to build it, with the pinned componentize-js and rolldown |",
            format!("build/{name}.wasm"),
            "componentize-js and rolldown (with npm)",
        ),
    };
    README
        .replace("{{lang_title}}", title)
        .replace("{{lang}}", &lang.to_string())
        .replace("{{files_table}}", files)
        .replace("{{test_command}}", test_command(lang))
        .replace("{{wasm}}", &wasm)
        .replace("{{tool}}", tool)
        .replace("{{name}}", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_camel_case_identifiers() {
        assert_eq!(type_name("demo"), "Demo");
        assert_eq!(type_name("etl_report-v2"), "EtlReportV2");
        assert_eq!(type_name("9lives"), "P9lives");
    }

    #[test]
    fn every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for (path, text) in files("demo", lang).into_iter().filter(|(path, _)| !path.starts_with("xingqiao/")) {
                assert!(!text.contains("{{"), "{lang} {path} keeps a placeholder");
            }
        }
    }
}
