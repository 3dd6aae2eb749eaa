//! `xingqiao serve`: wires storage, plugins, engine, workers and the HTTP API.
//!
//! `run(config, listener, shutdown)` takes its listener and its shutdown
//! signal as parameters, so tests bind `127.0.0.1:0` and stop it at will. On
//! shutdown it stops taking task messages, lets running tasks finish for a
//! grace period, hands back to `pending` whatever is still running, then stops
//! the HTTP server. What was queued but not started stays `pending` in the
//! database and is dispatched again by the next start.

use std::collections::HashSet;
use std::future::Future;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Data;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::config::Config;
use crate::db::Database;
use crate::dispatch::{InProcessQueue, Queue, RedisQueue};
use crate::engine::{Engine, EngineConfig};
use crate::executor::HttpExecutor;
use crate::graph::Renderer;
use crate::http::AdminSettings;
use crate::plugins::{PluginChanges, Registry, RegistryOptions, keep_in_step};
use crate::runtime::{PluginRuntime, SandboxLimits};

/// How long running tasks get to finish on shutdown before they are handed back.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    // Uploaded versions are loaded before serving, so a restart never
    // answers ERR_JOB_TYPE_NOT_EXISTS for one of them.
    if let Err(err) = registry.refresh(&db).await {
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
    let queue = match &config.redis_url {
        Some(url) => Queue::Redis(RedisQueue::connect(url, &config.redis_stream).await?),
        None => Queue::InProcess(InProcessQueue::default()),
    };
    let engine = Arc::new(Engine::new(
        db.clone(),
        registry,
        queue,
        HttpExecutor::new(&base_url)?,
        EngineConfig {
            default_job_timeout: config.default_job_timeout,
            workers: config.workers,
            retry_backoff: config.retry_backoff,
            visibility_timeout: config.visibility_timeout,
        },
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
    let job_types = engine.plugins().job_types();
    tracing::info!(
        ?address,
        backend = db.backend(),
        handler_base_url = base_url,
        ?job_types,
        recovered,
        "xingqiao serving"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let workers = tokio::spawn(work(engine.clone(), config.run_workers, stop_rx.clone(), in_flight.clone()));
    let sweeper = tokio::spawn(sweep(engine.clone(), config.sweep_interval, stop_rx.clone(), in_flight.clone()));
    let plugin_sync = tokio::spawn(keep_in_step(
        engine.plugins().clone(),
        engine.db().clone(),
        plugin_changes.clone(),
        config.plugin_refresh,
        stop_rx,
    ));

    let http = match listener {
        Some(listener) => {
            let data = Data::from(engine.clone());
            // Shared by all HTTP workers, so a task's calls are counted once.
            let flaky_counts = Data::new(crate::http::FlakyCounts::default());
            let renderer = Data::new(Renderer::new(config.graphviz_dot.clone(), config.graph_timeout));
            let admin = Data::new(AdminSettings {
                token: config.admin_token.clone(),
                max_plugin_bytes: config.max_plugin_bytes,
                changes: plugin_changes,
            });
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .app_data(flaky_counts.clone())
                    .app_data(admin.clone())
                    .app_data(renderer.clone())
                    .configure(crate::http::configure)
                    .default_service(web::to(|| async {
                        HttpResponse::NotFound().json(json!({"stat": "ERR_NOT_FOUND", "message": "no such route"}))
                    }))
            })
            .listen(listener)?
            .disable_signals()
            .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
            .run();
            Some((server.handle(), tokio::spawn(server)))
        }
        None => None,
    };

    shutdown.await;
    // Workers stop first, while the HTTP side still serves: running tasks may
    // be calling this very server's handlers.
    tracing::info!("shutting down: no new tasks; waiting for running ones");
    let _ = stop_tx.send(true);
    let permits = workers.await?;
    sweeper.await?;
    plugin_sync.await?;
    let all = u32::try_from(engine.workers()).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all)).await;
    let left: Vec<i64> = in_flight.lock().map(|set| set.iter().copied().collect()).unwrap_or_default();
    if !left.is_empty() {
        let handed = engine.hand_back(&left).await?;
        tracing::warn!(handed, "tasks still running at shutdown were handed back");
    }
    if let Some((handle, serving)) = http {
        handle.stop(true).await;
        serving.await??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The worker loop: takes messages while not stopping, runs at most
/// `workers` tasks at once. Returns the semaphore so shutdown can wait on it.
async fn work(
    engine: Arc<Engine>,
    run: bool,
    mut stop: watch::Receiver<bool>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
) -> Arc<Semaphore> {
    let permits = Arc::new(Semaphore::new(engine.workers()));
    if !run {
        tracing::info!("no task workers in this process (--no-workers)");
        return permits;
    }
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let delivery = tokio::select! {
            delivery = engine.next_message() => delivery,
            _ = stop.changed() => break,
        };
        // Nothing right now (a quiet Redis stream): ask again.
        let Some(delivery) = delivery else { continue };
        let engine = engine.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            let task_id = delivery.message.task_id;
            if let Ok(mut set) = in_flight.lock() {
                set.insert(task_id);
            }
            match engine.run_task(delivery.message).await {
                Ok(()) => engine.ack(&delivery).await,
                // Unacknowledged, the message is taken over later; the
                // database decides whether anything is left to do.
                Err(err) => tracing::error!(task_id, error = %err, "task could not be recorded"),
            }
            if let Ok(mut set) = in_flight.lock() {
                set.remove(&task_id);
            }
            drop(permit);
        });
    }
    permits
}

/// Timeouts and lock hand-over on a timer; a failed sweep is logged and the
/// next one tries again.
async fn sweep(
    engine: Arc<Engine>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                // First the heartbeat of what this process runs, so no sweeper
                // (this one included) takes it for a dead worker's.
                let running: Vec<i64> = in_flight.lock().map(|set| set.iter().copied().collect()).unwrap_or_default();
                if let Err(err) = engine.renew_leases(&running).await {
                    tracing::warn!(error = %err, "renewing task leases failed");
                }
                if let Err(err) = engine.sweep().await {
                    tracing::warn!(error = %err, "sweep failed; retrying at the next tick");
                }
            }
            _ = stop.changed() => break,
        }
    }
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
