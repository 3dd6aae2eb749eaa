//! Configuration of `xingqiao serve`: flags, each also an environment variable
//! and a key of an optional TOML file (`--config`). Flags and variables win
//! over the file, the file over the defaults. Bad values are refused at start,
//! naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The settings as given (all optional); see [`Config`] for the defaults.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags, with `_`).
    #[arg(long, env = "XINGQIAO_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8585].
    #[arg(long, env = "XINGQIAO_BIND")]
    pub bind: Option<String>,
    /// Folder of the SQLite file and other local state [default: ./data].
    #[arg(long, env = "XINGQIAO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://FILE, mysql://user:pass@host/db or postgres://user@host/db
    /// [default: sqlite://<data-dir>/xingqiao.db].
    #[arg(long, env = "XINGQIAO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Task executions at the same time [default: 64].
    #[arg(long, env = "XINGQIAO_WORKERS")]
    pub workers: Option<usize>,
    /// Where `/path` task cmds are sent [default: this server].
    #[arg(long, env = "XINGQIAO_HANDLER_BASE_URL")]
    pub handler_base_url: Option<String>,
    /// Seconds a job may run when neither create_job nor the plugin says [default: 3600].
    #[arg(long, env = "XINGQIAO_DEFAULT_JOB_TIMEOUT")]
    pub default_job_timeout: Option<u32>,
    /// First delay before a failed task is tried again, in ms; doubles per attempt [default: 500].
    #[arg(long, env = "XINGQIAO_RETRY_BACKOFF_MS")]
    pub retry_backoff_ms: Option<u64>,
    /// How often job timeouts and lock waits are checked, in ms [default: 1000].
    #[arg(long, env = "XINGQIAO_SWEEP_INTERVAL_MS")]
    pub sweep_interval_ms: Option<u64>,
    /// redis://host:port — dispatch through Redis Streams, for several instances.
    #[arg(long, env = "XINGQIAO_REDIS_URL")]
    pub redis_url: Option<String>,
    /// The Redis stream carrying task messages [default: xingqiao:tasks].
    #[arg(long, env = "XINGQIAO_REDIS_STREAM")]
    pub redis_stream: Option<String>,
    /// How long a message or a pending task may go unattended before another
    /// worker takes it over, in ms [default: 30000].
    #[arg(long, env = "XINGQIAO_VISIBILITY_TIMEOUT_MS")]
    pub visibility_timeout_ms: Option<u64>,
    /// Serve the API only; run no task workers.
    #[arg(long, env = "XINGQIAO_NO_WORKERS")]
    #[serde(default)]
    pub no_workers: bool,
    /// A folder of extra plugin components (`*.wasm`) to load at start.
    #[arg(long, env = "XINGQIAO_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Database connections open at most [default: 16; SQLite: 4 for reads, beside its one writer; PostgreSQL: over all threads].
    #[arg(long, env = "XINGQIAO_DB_CONNECTIONS")]
    pub db_connections: Option<usize>,
    /// Bearer token of the `/admin/plugins` routes; without one they answer 403.
    #[arg(long, env = "XINGQIAO_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest plugin upload, in bytes [default: 52428800 (50 MiB)].
    #[arg(long, env = "XINGQIAO_MAX_PLUGIN_BYTES")]
    pub max_plugin_bytes: Option<usize>,
    /// Longest compile of an uploaded plugin, in ms [default: 60000].
    #[arg(long, env = "XINGQIAO_PLUGIN_COMPILE_TIMEOUT_MS")]
    pub plugin_compile_timeout_ms: Option<u64>,
    /// How often uploaded plugin versions are checked for changes, in ms [default: 1000].
    #[arg(long, env = "XINGQIAO_PLUGIN_REFRESH_MS")]
    pub plugin_refresh_ms: Option<u64>,
    /// Graphviz's `dot` program, for get_graph's SVG and PNG [default: dot].
    #[arg(long, env = "XINGQIAO_GRAPHVIZ_DOT")]
    pub graphviz_dot: Option<String>,
    /// Longest rendering of one graph, in ms [default: 20000].
    #[arg(long, env = "XINGQIAO_GRAPH_TIMEOUT_MS")]
    pub graph_timeout_ms: Option<u64>,
    /// How long running tasks get to finish on SIGTERM before they are handed
    /// back to another run, in ms [default: 10000].
    #[arg(long, env = "XINGQIAO_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// Leave out the demo job types built into the binary (and their `/demo_api/*` handlers).
    #[arg(long, env = "XINGQIAO_NO_DEMO_PLUGINS")]
    #[serde(default)]
    pub no_demo_plugins: bool,
    /// API tokens, comma-separated `name:role:token` (roles read, write, admin;
    /// tokens of 16 characters or more). With any token, every API route needs one.
    #[arg(long, env = "XINGQIAO_API_TOKENS", hide_env_values = true)]
    pub api_tokens: Option<String>,
    /// A file of API tokens, one `name:role:token` per line (`#` starts a comment);
    /// keeps the secrets out of the command line and the config file.
    #[arg(long, env = "XINGQIAO_API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
    /// Serve without tokens on an address other than loopback (anyone who can
    /// reach it may create and delete jobs).
    #[arg(long, env = "XINGQIAO_INSECURE_NO_AUTH")]
    #[serde(default)]
    pub insecure_no_auth: bool,
    /// Web origins allowed to call the API from a browser, comma-separated
    /// (`https://console.example.com`); others are refused.
    #[arg(long, env = "XINGQIAO_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// Host names this server answers to besides its bind address and
    /// localhost while no token is configured, comma-separated.
    #[arg(long, env = "XINGQIAO_ALLOWED_HOSTS")]
    pub allowed_hosts: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed, comma-separated IP addresses.
    #[arg(long, env = "XINGQIAO_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Hosts that absolute `http(s)://` task cmds may reach besides the handler
    /// base URL's host, comma-separated.
    #[arg(long, env = "XINGQIAO_TASK_HOSTS")]
    pub task_hosts: Option<String>,
    /// Largest reply of a task handler, in bytes [default: 1048576 (1 MiB)].
    #[arg(long, env = "XINGQIAO_MAX_TASK_REPLY_BYTES")]
    pub max_task_reply_bytes: Option<usize>,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bind: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub workers: usize,
    pub handler_base_url: Option<String>,
    pub default_job_timeout: u32,
    pub db_connections: usize,
    pub plugins_dir: Option<PathBuf>,
    pub retry_backoff: std::time::Duration,
    pub sweep_interval: std::time::Duration,
    pub redis_url: Option<String>,
    pub redis_stream: String,
    pub visibility_timeout: std::time::Duration,
    /// Whether this process runs task workers (`--no-workers` turns them off).
    pub run_workers: bool,
    pub admin_token: Option<String>,
    pub max_plugin_bytes: usize,
    pub plugin_compile_timeout: std::time::Duration,
    pub plugin_refresh: std::time::Duration,
    pub demo_plugins: bool,
    pub graphviz_dot: String,
    pub graph_timeout: std::time::Duration,
    pub shutdown_grace: std::time::Duration,
    pub access: AccessConfig,
    /// Serve an API without tokens off loopback all the same.
    pub insecure_no_auth: bool,
    pub task_hosts: Vec<String>,
    pub max_task_reply_bytes: usize,
}

/// Who may call the API, and from where (see `crate::http::guard`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessConfig {
    /// `--api-tokens` and the file's, then `--admin-token` as an admin named `admin`.
    pub tokens: Vec<ApiToken>,
    pub cors_origins: Vec<String>,
    /// Lower-case host names without port.
    pub allowed_hosts: Vec<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

mod tokens;
pub use tokens::{ApiToken, Role};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{setting}: {reason}")]
    Invalid { setting: &'static str, reason: String },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, reason: reason.into() }
}

impl Config {
    pub fn load(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("data"));
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("xingqiao.db").display()));
        let known = ["sqlite://", "mysql://", "mariadb://", "postgres://", "postgresql://"];
        if !known.iter().any(|scheme| database_url.starts_with(scheme)) {
            return Err(invalid(
                "--database-url / XINGQIAO_DATABASE_URL",
                format!("must start with one of {}", known.join(", ")),
            ));
        }
        let bind = args.bind.or(file.bind).unwrap_or_else(|| String::from("127.0.0.1:8585"));
        if bind.parse::<SocketAddr>().is_err() && !bind.contains(':') {
            return Err(invalid("--bind / XINGQIAO_BIND", format!("{bind:?} is not HOST:PORT")));
        }
        let workers = args.workers.or(file.workers).unwrap_or(64);
        if workers == 0 {
            return Err(invalid("--workers / XINGQIAO_WORKERS", "must be at least 1"));
        }
        let handler_base_url = args.handler_base_url.or(file.handler_base_url);
        if let Some(url) = &handler_base_url
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            return Err(invalid("--handler-base-url / XINGQIAO_HANDLER_BASE_URL", "must be an http(s):// URL"));
        }
        let default_job_timeout = args.default_job_timeout.or(file.default_job_timeout).unwrap_or(3600);
        if default_job_timeout == 0 {
            return Err(invalid("--default-job-timeout / XINGQIAO_DEFAULT_JOB_TIMEOUT", "must be at least 1 second"));
        }
        // SQLite has one writer (`db::Writer`); these connections serve the reads beside it.
        let sqlite = database_url.starts_with("sqlite://");
        let db_connections = args.db_connections.or(file.db_connections).unwrap_or(if sqlite { 4 } else { 16 });
        if db_connections == 0 {
            return Err(invalid("--db-connections / XINGQIAO_DB_CONNECTIONS", "must be at least 1"));
        }
        let plugins_dir = args.plugins_dir.or(file.plugins_dir);
        let retry_backoff =
            std::time::Duration::from_millis(args.retry_backoff_ms.or(file.retry_backoff_ms).unwrap_or(500));
        let sweep_ms = args.sweep_interval_ms.or(file.sweep_interval_ms).unwrap_or(1000);
        if sweep_ms == 0 {
            return Err(invalid("--sweep-interval-ms / XINGQIAO_SWEEP_INTERVAL_MS", "must be at least 1"));
        }
        let sweep_interval = std::time::Duration::from_millis(sweep_ms);
        let redis_url = args.redis_url.or(file.redis_url);
        if let Some(url) = &redis_url
            && !url.starts_with("redis://")
            && !url.starts_with("rediss://")
        {
            return Err(invalid("--redis-url / XINGQIAO_REDIS_URL", "must start with redis://"));
        }
        let redis_stream = args.redis_stream.or(file.redis_stream).unwrap_or_else(|| String::from("xingqiao:tasks"));
        let visibility_timeout = std::time::Duration::from_millis(
            args.visibility_timeout_ms.or(file.visibility_timeout_ms).unwrap_or(30_000).max(1),
        );
        let run_workers = !(args.no_workers || file.no_workers);
        let admin_token = args.admin_token.or(file.admin_token).filter(|token| !token.is_empty());
        if admin_token.as_ref().is_some_and(|token| token.len() < 16) {
            return Err(invalid("--admin-token / XINGQIAO_ADMIN_TOKEN", "must be at least 16 characters"));
        }
        let max_plugin_bytes = args.max_plugin_bytes.or(file.max_plugin_bytes).unwrap_or(50 << 20);
        if max_plugin_bytes < 8 {
            return Err(invalid("--max-plugin-bytes / XINGQIAO_MAX_PLUGIN_BYTES", "must be at least 8"));
        }
        let plugin_compile_timeout = std::time::Duration::from_millis(
            args.plugin_compile_timeout_ms.or(file.plugin_compile_timeout_ms).unwrap_or(60_000).max(1),
        );
        let plugin_refresh =
            std::time::Duration::from_millis(args.plugin_refresh_ms.or(file.plugin_refresh_ms).unwrap_or(1000).max(10));
        let demo_plugins = !(args.no_demo_plugins || file.no_demo_plugins);
        let graphviz_dot = args.graphviz_dot.or(file.graphviz_dot).unwrap_or_else(|| String::from("dot"));
        let graph_timeout =
            std::time::Duration::from_millis(args.graph_timeout_ms.or(file.graph_timeout_ms).unwrap_or(20_000).max(1));
        let shutdown_grace =
            std::time::Duration::from_millis(args.shutdown_grace_ms.or(file.shutdown_grace_ms).unwrap_or(10_000));
        let mut api_tokens = Vec::new();
        if let Some(text) = args.api_tokens.or(file.api_tokens) {
            api_tokens = tokens::parse_list(text.split(','))
                .map_err(|reason| invalid("--api-tokens / XINGQIAO_API_TOKENS", reason))?;
        }
        if let Some(path) = args.api_tokens_file.or(file.api_tokens_file) {
            let text = std::fs::read_to_string(&path)
                .map_err(|err| ConfigError::File { path: path.display().to_string(), reason: err.to_string() })?;
            let lines = text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'));
            api_tokens.extend(
                tokens::parse_list(lines)
                    .map_err(|reason| invalid("--api-tokens-file / XINGQIAO_API_TOKENS_FILE", reason))?,
            );
        }
        if let Some(token) = &admin_token {
            api_tokens.push(ApiToken { name: String::from("admin"), role: Role::Admin, token: token.clone() });
        }
        tokens::check_unique(&api_tokens).map_err(|reason| invalid("--api-tokens / XINGQIAO_API_TOKENS", reason))?;
        let insecure_no_auth = args.insecure_no_auth || file.insecure_no_auth;
        let cors_origins = comma_list(args.cors_origins.or(file.cors_origins))
            .into_iter()
            .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
            .collect::<Vec<_>>();
        if let Some(bad) = cors_origins.iter().find(|o| !o.starts_with("http://") && !o.starts_with("https://")) {
            return Err(invalid(
                "--cors-origins / XINGQIAO_CORS_ORIGINS",
                format!("{bad:?} is not an http(s):// origin"),
            ));
        }
        let allowed_hosts = comma_list(args.allowed_hosts.or(file.allowed_hosts))
            .into_iter()
            .map(|host| host.to_ascii_lowercase())
            .collect();
        let trusted_proxies = comma_list(args.trusted_proxies.or(file.trusted_proxies))
            .iter()
            .map(|ip| {
                ip.parse().map_err(|_| {
                    invalid("--trusted-proxies / XINGQIAO_TRUSTED_PROXIES", format!("{ip:?} is not an IP address"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let task_hosts =
            comma_list(args.task_hosts.or(file.task_hosts)).into_iter().map(|host| host.to_ascii_lowercase()).collect();
        let max_task_reply_bytes = args.max_task_reply_bytes.or(file.max_task_reply_bytes).unwrap_or(1 << 20);
        if max_task_reply_bytes < 64 {
            return Err(invalid("--max-task-reply-bytes / XINGQIAO_MAX_TASK_REPLY_BYTES", "must be at least 64"));
        }
        Ok(Self {
            bind,
            data_dir,
            database_url,
            workers,
            handler_base_url,
            default_job_timeout,
            db_connections,
            plugins_dir,
            retry_backoff,
            sweep_interval,
            redis_url,
            redis_stream,
            visibility_timeout,
            run_workers,
            admin_token,
            max_plugin_bytes,
            plugin_compile_timeout,
            plugin_refresh,
            demo_plugins,
            graphviz_dot,
            graph_timeout,
            shutdown_grace,
            access: AccessConfig { tokens: api_tokens, cors_origins, allowed_hosts, trusted_proxies },
            insecure_no_auth,
            task_hosts,
            max_task_reply_bytes,
        })
    }
}

impl Config {
    /// Before serving the API: without tokens, only on loopback (unless
    /// `--insecure-no-auth`), as Redis's protected mode.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if !self.access.tokens.is_empty() || self.insecure_no_auth || is_loopback_bind(&self.bind) {
            return Ok(());
        }
        Err(invalid(
            "--bind / XINGQIAO_BIND",
            format!(
                "{} is reachable from other machines, and no API token is configured: anyone who can reach it \
                 could create, retry and delete jobs. Set XINGQIAO_API_TOKENS (or --api-tokens) to \
                 name:role:token entries, bind 127.0.0.1, or pass --insecure-no-auth to serve open anyway",
                self.bind
            ),
        ))
    }
}

fn comma_list(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// Whether `bind` (HOST:PORT) listens on loopback only: 127.0.0.0/8, ::1 or localhost.
fn is_loopback_bind(bind: &str) -> bool {
    if let Ok(address) = bind.parse::<SocketAddr>() {
        return address.ip().is_loopback();
    }
    bind.rsplit_once(':').is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

fn read_file(path: &Path) -> Result<ServeArgs, ConfigError> {
    let file_err = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|err| file_err(err.to_string()))?;
    toml::from_str(&text).map_err(|err| file_err(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_server() {
        let config = Config::load(ServeArgs::default()).unwrap();
        assert_eq!(config.bind, "127.0.0.1:8585");
        assert_eq!(config.database_url, "sqlite://data/xingqiao.db");
        assert_eq!((config.workers, config.default_job_timeout, config.db_connections), (64, 3600, 4));
    }

    #[test]
    fn flags_win_over_the_file_and_bad_values_name_the_setting() {
        let dir = std::env::temp_dir().join(format!("xingqiao-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("xingqiao.toml");
        std::fs::write(&file, "workers = 8\nbind = \"0.0.0.0:9000\"\napi_tokens = \"ci:write:0123456789abcdef\"\n")
            .unwrap();
        let args = ServeArgs { config: Some(file.clone()), workers: Some(2), ..Default::default() };
        let config = Config::load(args).unwrap();
        assert_eq!((config.workers, config.bind.as_str()), (2, "0.0.0.0:9000"));
        let bad = ServeArgs { database_url: Some("oracle://x".into()), ..Default::default() };
        let err = Config::load(bad).unwrap_err().to_string();
        assert!(err.starts_with("--database-url / XINGQIAO_DATABASE_URL"), "{err}");
        std::fs::write(&file, "wrkers = 8\n").unwrap();
        let err = Config::load(ServeArgs { config: Some(file), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("wrkers"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_open_api_off_loopback_is_refused_unless_asked_for() {
        let open = |bind: &str, insecure: bool| {
            Config::load(ServeArgs { bind: Some(bind.into()), insecure_no_auth: insecure, ..Default::default() })
                .and_then(|config| config.check_exposure())
        };
        let err = open("0.0.0.0:8585", false).unwrap_err().to_string();
        assert!(err.contains("XINGQIAO_API_TOKENS") && err.contains("--insecure-no-auth"), "{err}");
        assert!(open("192.168.1.2:8585", false).is_err());
        assert!(open("0.0.0.0:8585", true).is_ok());
        for loopback in ["127.0.0.1:8585", "[::1]:8585", "localhost:8585", "127.0.0.2:1"] {
            assert!(open(loopback, false).is_ok(), "{loopback}");
        }
        let with_admin = ServeArgs {
            bind: Some("0.0.0.0:8585".into()),
            admin_token: Some("0123456789abcdef".into()),
            ..Default::default()
        };
        let config = Config::load(with_admin).unwrap();
        assert!(config.check_exposure().is_ok());
        assert_eq!((config.access.tokens[0].name.as_str(), config.access.tokens[0].role), ("admin", Role::Admin));
    }
}
