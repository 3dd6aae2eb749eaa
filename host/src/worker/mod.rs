//! The worker runner: takes task messages from the queue and runs their
//! attempts (at most `workers` at once), and sweeps on a timer (leases,
//! timeouts, lost messages, lock hand-over).
//!
//! [`Runner::start`] gives a [`RunnerHandle`]; [`RunnerHandle::shutdown`]
//! stops taking messages, and [`RunnerHandle::wait`] lets running attempts
//! finish for a grace period, then hands back to `pending` whatever still
//! runs (its attempts end `handed_back`). A message is acknowledged only
//! after its result is stored: until then the queue may deliver it again,
//! and the database decides whether anything is left to do.
//!
//! A worker that finishes a task runs next, in the same slot, the dependent
//! its result released (the finishing transaction started it for this
//! worker; further dependents go through the queue). A chain thus runs step
//! after step without a queue hop, and its lease covers each step as any
//! started task's. A new job's first task takes the same shortcut: when a
//! slot is free ([`LocalWorkers`]), create_job starts it in the transaction
//! that creates the job and runs it here.

mod in_flight;

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::db::DbError;
use crate::db::tasks::Started;
use crate::dispatch::Queue;
use crate::engine::Engine;
use in_flight::InFlight;

/// How the runner works; from the configuration.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Task attempts run at once.
    pub workers: usize,
    /// `false` for an API-only process (`--no-workers`): it sweeps but takes
    /// no message.
    pub take_messages: bool,
    pub sweep_interval: Duration,
    /// How long running attempts get to finish on shutdown.
    pub shutdown_grace: Duration,
}

/// Runs task attempts from `queue` through `engine`.
#[derive(Debug)]
pub struct Runner {
    engine: Arc<Engine>,
    queue: Arc<Queue>,
    config: RunnerConfig,
}

/// A started runner: stop it with [`RunnerHandle::shutdown`], then
/// [`RunnerHandle::wait`].
#[derive(Debug)]
pub struct RunnerHandle {
    engine: Arc<Engine>,
    stop: watch::Sender<bool>,
    permits: Arc<Semaphore>,
    workers: usize,
    in_flight: InFlight,
    grace: Duration,
    taking: JoinHandle<()>,
    sweeping: JoinHandle<()>,
}

/// This process's worker slots, for a task started outside the message
/// loop: create_job takes a free one before it creates a job, starts the
/// job's first task in the same transaction, and runs it here.
#[derive(Debug, Clone)]
pub struct LocalWorkers {
    // Weak: the engine holds this, and must not keep itself alive.
    engine: Weak<Engine>,
    permits: Arc<Semaphore>,
    in_flight: InFlight,
    stop: watch::Receiver<bool>,
}

impl LocalWorkers {
    /// A free slot, or `None` when all are busy or the runner is stopping
    /// (the task then goes through the queue as any other).
    pub fn take(&self) -> Option<LocalSlot> {
        if *self.stop.borrow() {
            return None;
        }
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(LocalSlot { permit, workers: self.clone() })
    }
}

/// A worker slot taken ahead; dropped unused, it is free again.
#[derive(Debug)]
pub struct LocalSlot {
    permit: OwnedSemaphorePermit,
    workers: LocalWorkers,
}

impl LocalSlot {
    /// Runs `started`, and the dependents it carries on to, in this slot.
    pub fn run(self, started: Started) {
        let Self { permit, workers } = self;
        // The process is ending: the task's lease runs out and a sweeper hands it back.
        let Some(engine) = workers.engine.upgrade() else { return };
        tokio::spawn(async move {
            carry_on(&engine, Some(started), &workers.in_flight, &workers.stop).await;
            drop(permit);
        });
    }
}

impl Runner {
    pub fn new(engine: Arc<Engine>, queue: Arc<Queue>, config: RunnerConfig) -> Self {
        Self { engine, queue, config }
    }

    /// Spawns the message loop and the sweeper on the current runtime.
    pub fn start(self) -> RunnerHandle {
        let (stop, stopped) = watch::channel(false);
        let workers = self.config.workers.max(1);
        let permits = Arc::new(Semaphore::new(workers));
        let in_flight = InFlight::default();
        let taking = if self.config.take_messages {
            self.engine.attach_local_workers(LocalWorkers {
                engine: Arc::downgrade(&self.engine),
                permits: permits.clone(),
                in_flight: in_flight.clone(),
                stop: stopped.clone(),
            });
            tokio::spawn(take_messages(
                self.engine.clone(),
                self.queue.clone(),
                permits.clone(),
                in_flight.clone(),
                stopped.clone(),
            ))
        } else {
            tracing::info!("no task workers in this process (--no-workers)");
            tokio::spawn(async {})
        };
        let sweeping = tokio::spawn(sweep(self.engine.clone(), self.config.sweep_interval, in_flight.clone(), stopped));
        RunnerHandle {
            engine: self.engine,
            stop,
            permits,
            workers,
            in_flight,
            grace: self.config.shutdown_grace,
            taking,
            sweeping,
        }
    }
}

impl RunnerHandle {
    /// Stops taking messages and sweeping; running attempts go on.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits for the loops to stop (call [`RunnerHandle::shutdown`] first),
    /// then up to the grace period for running attempts; hands back what
    /// still runs. Returns how many tasks were handed back.
    pub async fn wait(self) -> Result<usize, DbError> {
        let _ = self.taking.await;
        let _ = self.sweeping.await;
        let all = u32::try_from(self.workers).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(self.grace, self.permits.acquire_many(all)).await;
        let left = self.in_flight.snapshot();
        if left.is_empty() {
            return Ok(0);
        }
        let handed = self.engine.hand_back(&left).await?;
        tracing::warn!(handed, "tasks still running at shutdown were handed back");
        Ok(handed)
    }
}

/// The message loop: takes messages while not stopping, runs at most
/// `permits` attempts at once.
async fn take_messages(
    engine: Arc<Engine>,
    queue: Arc<Queue>,
    permits: Arc<Semaphore>,
    in_flight: InFlight,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let delivery = tokio::select! {
            delivery = queue.pop() => delivery,
            _ = stop.changed() => break,
        };
        // Nothing right now (a quiet Redis stream): ask again.
        let Some(delivery) = delivery else { continue };
        let (engine, queue, in_flight, stop) = (engine.clone(), queue.clone(), in_flight.clone(), stop.clone());
        tokio::spawn(async move {
            let task_id = delivery.message.task_id;
            in_flight.insert(task_id);
            let (next, recorded) = match engine.run_task(delivery.message).await {
                Ok(next) => (next, true),
                // Unacknowledged, the message is taken over later; the
                // database decides whether anything is left to do.
                Err(err) => {
                    tracing::error!(task_id, error = %err, "task could not be recorded");
                    (None, false)
                }
            };
            in_flight.remove(task_id);
            // The result is stored: the message is acknowledged while the
            // dependent carried on with runs (the next step does not wait on
            // a round trip to the queue).
            let acked = async {
                if recorded {
                    queue.ack(&delivery).await;
                }
            };
            tokio::join!(acked, carry_on(&engine, next, &in_flight, &stop));
            drop(permit);
        });
    }
}

/// Runs, in the same worker slot, the dependents that each finished task
/// started for this worker (a chain runs step after step without a queue
/// hop). Stopping, it hands the next one back to `pending` instead, as
/// [`RunnerHandle::wait`] does with what still runs: the next run, or
/// another instance's sweeper, dispatches it again.
async fn carry_on(engine: &Engine, mut next: Option<Started>, in_flight: &InFlight, stop: &watch::Receiver<bool>) {
    while let Some(started) = next.take() {
        let task_id = started.task.task_id;
        if *stop.borrow() {
            if let Err(err) = engine.hand_back(&[task_id]).await {
                // Its lease runs out, and a sweeper takes it over then.
                tracing::warn!(task_id, error = %err, "handing back a started task failed");
            }
            return;
        }
        in_flight.insert(task_id);
        next = match engine.run_started(started).await {
            Ok(next) => next,
            // It stays started until its lease runs out; then it is handed back.
            Err(err) => {
                tracing::error!(task_id, error = %err, "task could not be recorded");
                None
            }
        };
        in_flight.remove(task_id);
    }
}

/// Leases, timeouts and lock hand-over on a timer; a failed sweep is logged
/// and the next one tries again.
async fn sweep(engine: Arc<Engine>, every: Duration, in_flight: InFlight, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                // First the heartbeat of what this process runs, so no sweeper
                // (this one included) takes it for a dead worker's.
                if let Err(err) = engine.renew_leases(&in_flight.snapshot()).await {
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
