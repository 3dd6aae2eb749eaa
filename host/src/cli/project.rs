//! A plugin project on disk: its language and, for Python and JavaScript, its
//! `xingqiao.toml` (entry, helper folder, WIT folder, pinned tool versions).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::plugin::CliError;
use crate::runtime::manifest::SandboxRequest;

/// The file that describes a Python or JavaScript plugin project.
pub const PROJECT_FILE: &str = "xingqiao.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
        })
    }
}

/// The build tools a new project pins: the versions this xingqiao is tested with.
#[derive(Debug, Clone, Copy)]
pub struct ToolVersions {
    pub componentize_py: &'static str,
    pub componentize_js: &'static str,
    pub rolldown: &'static str,
}

pub const TOOL_VERSIONS: ToolVersions =
    ToolVersions { componentize_py: "0.25.1", componentize_js: "0.23.0", rolldown: "1.3.3" };

/// `xingqiao.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    pub lang: Lang,
    pub job_type: String,
    /// Python: the module defining `WitWorld`; JavaScript: the file whose
    /// default export is `definePlugin(...)`.
    pub entry: String,
    /// Python: the folder holding `xingqiao_plugin/`; JavaScript: the folder
    /// holding `xingqiao-plugin.js`.
    pub sdk: PathBuf,
    /// The folder of the WIT package (`.../workflow@0.1.0`).
    pub wit: PathBuf,
    #[serde(default)]
    pub tools: Tools,
    /// What the plugin's runtime needs beyond the sandbox's defaults.
    #[serde(default)]
    pub sandbox: SandboxRequest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tools {
    pub componentize_py: Option<String>,
    pub componentize_js: Option<String>,
    pub rolldown: Option<String>,
}

/// What `plugin build` found in a folder.
#[derive(Debug)]
pub enum Project {
    Rust { dir: PathBuf },
    Scripted { dir: PathBuf, file: Box<ProjectFile> },
}

impl Project {
    /// `xingqiao.toml` first, then `Cargo.toml`.
    pub fn find(dir: &Path) -> Result<Self, CliError> {
        let described = dir.join(PROJECT_FILE);
        if described.is_file() {
            let text = std::fs::read_to_string(&described)
                .map_err(|err| CliError::Failed(format!("cannot read {}: {err}", described.display())))?;
            let file: ProjectFile =
                toml::from_str(&text).map_err(|err| CliError::Usage(format!("{}: {err}", described.display())))?;
            if file.lang == Lang::Rust {
                return Err(CliError::Usage(format!(
                    "{}: a Rust plugin is built from its Cargo.toml; remove {PROJECT_FILE}",
                    described.display()
                )));
            }
            return Ok(Self::Scripted { dir: dir.to_path_buf(), file: Box::new(file) });
        }
        if dir.join("Cargo.toml").is_file() {
            return Ok(Self::Rust { dir: dir.to_path_buf() });
        }
        Err(CliError::Usage(format!(
            "{} has neither {PROJECT_FILE} nor Cargo.toml; make a project with `xingqiao plugin new NAME --lang rust|python|js`",
            dir.display()
        )))
    }
}
