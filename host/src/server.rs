//! `xingqiao serve`: wires storage, plugins, engine, workers and the HTTP API.
//!
//! `run(config, listener, shutdown)` takes its listener and its shutdown
//! signal as parameters, so tests bind `127.0.0.1:0` and stop it at will. On
//! shutdown the worker runner (`crate::worker`) stops taking task messages,
//! lets running tasks finish for a grace period and hands back to `pending`
//! whatever is still running; then the HTTP server stops. What was queued but
//! not started stays `pending` in the database and is dispatched again by the
//! next start.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web::Data;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tokio::sync::watch;

use crate::config::Config;
use crate::db::Database;
use crate::dispatch::{InProcessQueue, Queue, RedisQueue};
use crate::engine::{Engine, EngineConfig};
use crate::events::EventHub;
use crate::executor::{HttpExecutor, TaskLimits};
use crate::graph::Renderer;
use crate::http::guard::Access;
use crate::http::{AdminSettings, AppState};
use crate::plugins::{PluginChanges, Registry, RegistryOptions, keep_in_step};
use crate::runtime::{PluginRuntime, SandboxLimits};
use crate::worker::{Runner, RunnerConfig};

/// Migrations only (`xingqiao migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = open_database(config)?;
    db.migrate(&config.database_url).await?;
    tracing::info!(backend = db.backend(), "migrations applied");
    Ok(())
}

fn open_database(config: &Config) -> anyhow::Result<Database> {
    if config.database_url.starts_with("sqlite://") {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    Ok(Database::connect(&config.database_url, config.db_connections)?)
}

/// `listener: None` runs task workers only (`xingqiao worker`): no HTTP API.
pub async fn run(
    config: Config,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let db = open_database(&config)?;
    db.migrate(&config.database_url).await?;
    let options = RegistryOptions {
        demos: config.demo_plugins,
        plugins_dir: config.plugins_dir.clone(),
        cache_dir: config.data_dir.join("plugin-cache"),
        compile_timeout: config.plugin_compile_timeout,
    };
    let registry = tokio::task::spawn_blocking(move || -> anyhow::Result<Registry> {
        Ok(Registry::new(PluginRuntime::new(SandboxLimits::default())?, &options)?)
    })
    .await??;
    let plugins = Arc::new(registry);
    // Uploaded versions are loaded before serving, so a restart never
    // answers ERR_JOB_TYPE_NOT_EXISTS for one of them.
    if let Err(err) = plugins.refresh(&db).await {
        tracing::warn!(error = %err, "cannot read uploaded plugins yet; the refresher will try again");
    }
    let plugin_changes =
        PluginChanges::new(config.redis_url.as_deref().map(|url| (url, config.redis_stream.as_str())))?;
    let address = listener.as_ref().map(TcpListener::local_addr).transpose()?;
    // Default: this server; a worker-only process sends to the default API address.
    let base_url = config.handler_base_url.clone().unwrap_or_else(|| match address {
        Some(address) => {
            let host = if address.ip().is_unspecified() { "127.0.0.1".to_owned() } else { address.ip().to_string() };
            format!("http://{host}:{}", address.port())
        }
        None => String::from("http://127.0.0.1:8585"),
    });
    let queue = Arc::new(match &config.redis_url {
        Some(url) => Queue::Redis(RedisQueue::connect(url, &config.redis_stream).await?),
        None => Queue::InProcess(InProcessQueue::default()),
    });
    let instance = instance_name();
    let events = match &config.redis_url {
        Some(url) => EventHub::through_redis(url, &config.redis_stream)?,
        None => Arc::new(EventHub::local()),
    };
    let engine = Arc::new(Engine::new(
        db.clone(),
        plugins.clone(),
        queue.clone(),
        HttpExecutor::new(
            &base_url,
            TaskLimits { extra_hosts: config.task_hosts.clone(), max_reply_bytes: config.max_task_reply_bytes },
        )?,
        EngineConfig {
            default_job_timeout: config.default_job_timeout,
            instance: instance.clone(),
            retry_backoff: config.retry_backoff,
            visibility_timeout: config.visibility_timeout,
        },
        events,
    ));
    // A recovery that fails (a busy database, say) must not keep the server
    // down: the sweeper tries again on its next tick.
    let recovered = match engine.recover().await {
        Ok(count) => count,
        Err(err) => {
            tracing::warn!(error = %err, "recovery failed; the sweeper will try again");
            0
        }
    };
    tracing::info!(
        ?address,
        backend = db.backend(),
        handler_base_url = base_url,
        instance,
        job_types = ?plugins.job_types(),
        recovered,
        "xingqiao serving"
    );

    let runner = Runner::new(
        engine.clone(),
        queue,
        RunnerConfig {
            workers: config.workers,
            take_messages: config.run_workers,
            sweep_interval: config.sweep_interval,
            shutdown_grace: config.shutdown_grace,
        },
    )
    .start();
    let (stop_sync, sync_stopped) = watch::channel(false);
    let plugin_sync = tokio::spawn(keep_in_step(
        plugins.clone(),
        db.clone(),
        plugin_changes.clone(),
        config.plugin_refresh,
        sync_stopped,
    ));

    let (draining, drain_signal) = watch::channel(false);
    let http = match listener {
        Some(listener) => {
            let bind_host = config.bind.rsplit_once(':').map_or(config.bind.as_str(), |(host, _)| host);
            let state = Data::new(AppState {
                db,
                engine,
                plugins,
                renderer: Renderer::new(config.graphviz_dot.clone(), config.graph_timeout),
                admin: AdminSettings { max_plugin_bytes: config.max_plugin_bytes, changes: plugin_changes },
                access: Access::new(&config.access, bind_host),
                draining: drain_signal,
            });
            let demo_handlers = config.demo_plugins;
            // Shared by all HTTP workers, so a task's calls are counted once.
            let flaky_counts = Data::new(crate::http::FlakyCounts::default());
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .app_data(flaky_counts.clone())
                    .configure(|cfg| crate::http::configure(cfg, demo_handlers))
                    .default_service(web::to(|| async {
                        HttpResponse::NotFound().json(json!({"stat": "ERR_NOT_FOUND", "message": "no such route"}))
                    }))
                    // The last wrap runs first: the guard sees every request.
                    .wrap(crate::http::error::json_error_bodies())
                    .wrap(actix_web::middleware::from_fn(crate::http::guard::guard))
            })
            .listen(listener)?
            .disable_signals()
            // In-flight requests (task handlers of this server among them)
            // get the same grace, rounded up to actix's whole seconds.
            .shutdown_timeout(config.shutdown_grace.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX))
            .run();
            Some((server.handle(), tokio::spawn(server)))
        }
        None => None,
    };

    shutdown.await;
    // /healthz turns 503 and event streams end: clients move elsewhere.
    let _ = draining.send(true);
    // Workers stop first, while the HTTP side still serves: running tasks may
    // be calling this very server's handlers.
    tracing::info!("shutting down: no new tasks; waiting for running ones");
    runner.shutdown();
    let _ = stop_sync.send(true);
    runner.wait().await?;
    plugin_sync.await?;
    if let Some((handle, serving)) = http {
        handle.stop(true).await;
        serving.await??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Names this process in the attempts it records: the host, the process id
/// and a random part (a pid comes back after a restart).
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| String::from("localhost"));
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..6])
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called (not
/// when the future is first polled), so a signal that arrives while the server
/// is still starting is not lost to the default action.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {},
                        _ = terminate.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
