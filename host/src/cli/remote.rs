//! `xingqiao plugin upload | list | versions | activate | disable`: the admin
//! API (`/admin/plugins`) from the command line. The server comes from
//! `--server` / `XINGQIAO_URL`, the token from `XINGQIAO_ADMIN_TOKEN` only, so
//! it never shows in a shell history or a process list.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::plugin::CliError;

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8585";
pub const TOKEN_VARIABLE: &str = "XINGQIAO_ADMIN_TOKEN";

/// One admin command.
#[derive(Debug, Clone)]
pub enum Action {
    Upload(std::path::PathBuf),
    List,
    Versions(String),
    Activate { job_type: String, version: String },
    Disable(String),
}

/// Where and how to talk to the server.
#[derive(Debug, Clone)]
pub struct Remote {
    pub server: String,
    pub token: Option<String>,
    pub json: bool,
}

impl Remote {
    /// The server given (`--server`, `XINGQIAO_URL` or clap's default), the
    /// token from the environment.
    pub fn from_env(server: String, json: bool) -> Self {
        let token = std::env::var(TOKEN_VARIABLE).ok().filter(|token| !token.is_empty());
        Self { server, token, json }
    }
}

pub fn run(remote: &Remote, action: &Action) -> Result<String, CliError> {
    crate::executor::install_tls_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::Failed(format!("cannot start: {err}")))?;
    runtime.block_on(call(remote, action))
}

async fn call(remote: &Remote, action: &Action) -> Result<String, CliError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|err| CliError::Failed(err.to_string()))?;
    let base = remote.server.trim_end_matches('/');
    let segment = |text: &str| text.replace('%', "%25").replace('/', "%2F").replace('?', "%3F").replace('#', "%23");
    let request = match action {
        Action::Upload(file) => {
            let bytes =
                std::fs::read(file).map_err(|err| CliError::Usage(format!("cannot read {}: {err}", file.display())))?;
            client.post(format!("{base}/admin/plugins")).header("Content-Type", "application/wasm").body(bytes)
        }
        Action::List => client.get(format!("{base}/admin/plugins")),
        Action::Versions(job_type) => client.get(format!("{base}/admin/plugins/{}", segment(job_type))),
        Action::Activate { job_type, version } => client
            .post(format!("{base}/admin/plugins/{}/activate", segment(job_type)))
            .json(&serde_json::json!({"version": version})),
        Action::Disable(job_type) => client.delete(format!("{base}/admin/plugins/{}", segment(job_type))),
    };
    let request = match &remote.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.map_err(|err| {
        CliError::Failed(format!("cannot reach the server at {base}: {}", crate::executor::error_chain(&err)))
    })?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|err| CliError::Failed(format!("{base} answered {status} without a JSON body: {err}")))?;
    if body["stat"] != "OK" {
        let stat = body["stat"].as_str().unwrap_or("?");
        let message = body["message"].as_str().unwrap_or_default();
        let hint = match stat {
            "ERR_UNAUTHORIZED" if remote.token.is_none() => {
                format!("\nhint: set {TOKEN_VARIABLE} to an admin token of the server")
            }
            "ERR_ADMIN_DISABLED" => {
                "\nhint: start the server with an admin token (--admin-token or XINGQIAO_ADMIN_TOKEN)".into()
            }
            _ => String::new(),
        };
        return Err(CliError::Failed(format!("{stat} ({status}): {message}{hint}")));
    }
    let data = &body["data"];
    if remote.json {
        let mut text = serde_json::to_string_pretty(data).map_err(|err| CliError::Failed(err.to_string()))?;
        text.push('\n');
        return Ok(text);
    }
    Ok(match action {
        Action::Upload(file) => uploaded(file, data),
        Action::List => table(
            &["JOB_TYPE", "SOURCE", "STATUS", "VERSION", "VERSIONS", "DESCRIPTION"],
            data.as_array().map(Vec::as_slice).unwrap_or_default().iter().map(|row| {
                vec![
                    text(&row["job_type"]),
                    text(&row["source"]),
                    text(&row["status"]),
                    text(&row["version"]),
                    text(&row["versions"]),
                    text(&row["description"]),
                ]
            }),
        ),
        Action::Versions(_) => {
            let mut out =
                format!("{} ({}, {})\n", text(&data["job_type"]), text(&data["source"]), text(&data["status"]));
            out.push_str(&table(
                &["VERSION", "ACTIVE", "SIZE", "SHA256", "UPLOADED_AT", "UPLOADER"],
                data["versions"].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(|row| {
                    vec![
                        text(&row["version"]),
                        if row["active"] == true { "*".into() } else { String::new() },
                        text(&row["size"]),
                        text(&row["sha256"]).chars().take(12).collect(),
                        text(&row["uploaded_at"]),
                        text(&row["uploader"]),
                    ]
                }),
            ));
            out
        }
        Action::Activate { job_type, version } => format!("{job_type} {version} is active\n"),
        Action::Disable(job_type) => {
            format!("{job_type} is disabled: create_job refuses it until a version is activated\n")
        }
    })
}

fn uploaded(file: &Path, data: &Value) -> String {
    let verb = if data["created"] == true { "uploaded" } else { "already stored, now active:" };
    format!(
        "{verb} {} version {} ({} bytes, sha256 {}) from {}\n",
        text(&data["job_type"]),
        text(&data["version"]),
        text(&data["size"]),
        text(&data["sha256"]),
        file.display()
    )
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::from("-"),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut rows: Vec<Vec<String>> =
        std::iter::once(header.iter().map(|h| (*h).to_owned()).collect()).chain(rows).collect();
    let widths: Vec<usize> =
        (0..header.len()).map(|col| rows.iter().map(|row| row[col].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &mut rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}
