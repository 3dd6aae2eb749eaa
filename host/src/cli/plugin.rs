//! `xingqiao plugin check|run`: for plugin authors, with the same runtime (and
//! the same limits) the server uses.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::plugins::demo_bytes;
use crate::runtime::{CheckOutcome, JobInput, LoadedPlugin, PluginRuntime, SandboxLimits, TaskSpec};

/// Output of `plugin run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Dot,
}

/// Why a command failed; printed on stderr, the process exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

const BUILTIN_PREFIX: &str = "builtin:";

fn runtime() -> Result<PluginRuntime, CliError> {
    PluginRuntime::new(SandboxLimits::default()).map_err(|err| CliError::Failed(err.to_string()))
}

/// `PLUGIN` is a path or `builtin:NAME`.
fn load(runtime: &PluginRuntime, plugin: &str) -> Result<LoadedPlugin, CliError> {
    let bytes = match plugin.strip_prefix(BUILTIN_PREFIX) {
        Some(name) => demo_bytes(name)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| CliError::Usage(format!("no built-in plugin {name:?}; try builtin:hello")))?,
        None => {
            std::fs::read(Path::new(plugin)).map_err(|err| CliError::Usage(format!("cannot read {plugin}: {err}")))?
        }
    };
    LoadedPlugin::load(runtime, &bytes).map_err(|err| CliError::Failed(format!("{plugin}: {err}")))
}

/// `plugin check FILE`: can the server load it? Prints its metadata.
pub fn check(file: &str) -> Result<String, CliError> {
    let plugin = load(&runtime()?, file)?;
    let meta = plugin.metadata();
    let mut out = format!("ok: {file} is a xingqiao:workflow@0.1.0 plugin\n");
    let schema = meta.job_extra_schema.as_ref().map_or_else(|| String::from("(none)"), Value::to_string);
    let grants = plugin.grants();
    let granted: Vec<&str> = [("random", grants.random), ("clocks", grants.clocks)]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    let _ = write!(
        out,
        "job_type:    {}\nversion:     {}\ndescription: {}\nsize:        {} bytes\njob_extra:   {schema}\n\
         sandbox:     {} MiB per call, wasi grants: {}\nnotifier:    {}\n",
        meta.job_type,
        meta.version,
        meta.description,
        plugin.size(),
        grants.memory_bytes >> 20,
        if granted.is_empty() { String::from("none") } else { granted.join(", ") },
        if plugin.implements_notifier() { "called at start and end" } else { "declared absent, never called" },
    );
    Ok(out)
}

#[derive(Serialize)]
struct DryRun<'a> {
    job_type: &'a str,
    check: &'a CheckOutcome,
    tasks: &'a [TaskSpec],
}

/// `plugin run PLUGIN`: params_check then workflow, as create_job would; with
/// `execute`, the DAG then runs against `handlers` (default: the demo handlers
/// in this process).
pub fn run(
    plugin: &str,
    job_extra: Option<&str>,
    format: Format,
    execute: Option<Option<&str>>,
) -> Result<String, CliError> {
    let job_extra = parse_job_extra(job_extra)?;
    let plugin = load(&runtime()?, plugin)?;
    let job = JobInput {
        namespace: String::from("cli"),
        name: String::from("dry-run"),
        operator: std::env::var("USER").unwrap_or_default(),
        job_extra,
    };
    let check = plugin.params_check(&job).map_err(|err| CliError::Failed(err.to_string()))?;
    let tasks = plugin.workflow(&job).map_err(|err| CliError::Failed(err.to_string()))?;
    let job_type = plugin.metadata().job_type.as_str();
    if let Some(handlers) = execute {
        let run = super::local_run::execute(&tasks, &job.job_extra, handlers)?;
        let text = match format {
            Format::Json => {
                let mut text = serde_json::to_string_pretty(&run).map_err(|err| CliError::Failed(err.to_string()))?;
                text.push('\n');
                text
            }
            Format::Table => super::local_run::render(&run),
            Format::Dot => return Err(CliError::Usage("--execute prints a table or JSON, not dot".into())),
        };
        if run.job_status != "finished" {
            // The run's report is the error: the author needs every task's outcome.
            return Err(CliError::Failed(format!("{text}the job failed")));
        }
        return Ok(text);
    }
    Ok(match format {
        Format::Json => {
            let dry_run = DryRun { job_type, check: &check, tasks: &tasks };
            let mut text = serde_json::to_string_pretty(&dry_run).map_err(|err| CliError::Failed(err.to_string()))?;
            text.push('\n');
            text
        }
        Format::Table => table(job_type, &check, &tasks),
        Format::Dot => crate::graph::plan_dot(job_type, &tasks) + "\n",
    })
}

fn parse_job_extra(text: Option<&str>) -> Result<Map<String, Value>, CliError> {
    match text.map(serde_json::from_str::<Value>) {
        None => Ok(Map::new()),
        Some(Ok(Value::Object(map))) => Ok(map),
        Some(Ok(_)) => Err(CliError::Usage("--job-extra must be a JSON object".into())),
        Some(Err(err)) => Err(CliError::Usage(format!("--job-extra is not JSON: {err}"))),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { String::from("-") } else { items.join(",") }
}

fn table(job_type: &str, check: &CheckOutcome, tasks: &[TaskSpec]) -> String {
    let timeout = check.job_timeout.map_or_else(|| String::from("server default"), |s| format!("{s}s"));
    let mut out = format!(
        "job_type {job_type}: job_timeout {timeout}, job_locks {}, job_tags {}\n",
        list(&check.job_locks),
        list(&check.job_tags)
    );
    let header = ["LABEL", "CMD", "DEPENDENCIES", "REQUIRES", "PROVIDES", "PARAMS", "RETRY", "TIMEOUT", "SAVE"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for task in tasks {
        rows.push(vec![
            task.label.clone(),
            task.cmd.clone(),
            list(&task.dependencies),
            list(&task.requires),
            list(&task.provides),
            task.params.as_ref().map_or_else(|| String::from("-"), |p| Value::Object(p.clone()).to_string()),
            task.retry_max.to_string(),
            task.timeout.map_or_else(|| String::from("-"), |s| format!("{s}s")),
            task.is_save.to_string(),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|col| rows.iter().map(|row| row[col].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
