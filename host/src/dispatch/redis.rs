//! Redis Streams dispatch, for several instances on one database.
//!
//! One stream, one consumer group (`workers`), one consumer per process.
//! Pushing goes through an in-process outbox drained by a background task
//! that XADDs in pipelined batches, so the engine never waits on Redis. A
//! message is XACKed after its result is stored; a dead consumer's
//! unacknowledged entries are taken over with XAUTOCLAIM after the visibility
//! timeout. Redis only says "run task N": if it loses messages (a restart
//! without persistence), the database still has the tasks `pending` and the
//! sweeper dispatches them again.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use tokio::sync::mpsc;

use super::{Delivery, TaskMessage};

const GROUP: &str = "workers";
/// Longest a blocking read waits. Well under the client's response timeout:
/// a reply arriving after the client gave up would leave its message
/// delivered but unseen until XAUTOCLAIM takes it over.
const READ_BLOCK_MS: usize = 250;
const OUTBOX_BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(String);

fn redis_err(err: impl std::fmt::Display) -> RedisError {
    RedisError(err.to_string())
}

pub struct RedisQueue {
    pool: Pool,
    /// The blocking reads' connection: a read holds it while it waits.
    reader: Kept,
    /// The XACKs', shared: none of them blocks.
    acker: Kept,
    stream: String,
    consumer: String,
    outbox: mpsc::UnboundedSender<TaskMessage>,
}

/// A connection kept from one command to the next. deadpool-redis checks
/// every connection it hands out with a round trip (UNWATCH and PING), which
/// the queue's hot commands, a read and an XACK per task, would otherwise
/// pay each time. So the connection is taken out of the pool once and kept
/// until a command on it fails; the next command takes a fresh one (which
/// is how work resumes after a Redis outage).
#[derive(Default)]
struct Kept(Mutex<Option<MultiplexedConnection>>);

impl Kept {
    /// The kept connection (a handle to it: commands on it are multiplexed),
    /// or a fresh one from `pool`, kept from now on.
    async fn get(&self, pool: &Pool) -> Result<MultiplexedConnection, RedisError> {
        if let Some(conn) = self.slot().clone() {
            return Ok(conn);
        }
        let conn = deadpool_redis::Connection::take(pool.get().await.map_err(redis_err)?);
        *self.slot() = Some(conn.clone());
        Ok(conn)
    }

    /// A command on the kept connection failed: the next one takes a fresh
    /// connection.
    fn forget(&self) {
        *self.slot() = None;
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        // The slot holds a plain handle: a panic elsewhere cannot leave it
        // half written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `command` on the kept connection; forgets it if that fails.
    async fn run<T>(
        &self,
        pool: &Pool,
        command: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let mut conn = self.get(pool).await?;
        let outcome = command(&mut conn).await;
        if outcome.is_err() {
            self.forget();
        }
        outcome
    }
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue").field("stream", &self.stream).field("consumer", &self.consumer).finish()
    }
}

impl RedisQueue {
    /// Connects, creates the stream and the group if missing, and starts the
    /// outbox drain.
    pub async fn connect(url: &str, stream: &str) -> Result<Self, RedisError> {
        let pool = Config::from_url(url).create_pool(Some(Runtime::Tokio1)).map_err(redis_err)?;
        create_group(&pool, stream).await?;
        let consumer = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let (outbox, rx) = mpsc::unbounded_channel();
        tokio::spawn(drain(pool.clone(), stream.to_owned(), rx));
        let (reader, acker) = (Kept::default(), Kept::default());
        Ok(Self { pool, reader, acker, stream: stream.to_owned(), consumer, outbox })
    }

    pub fn push(&self, message: TaskMessage) {
        let _ = self.outbox.send(message);
    }

    async fn ensure_group(&self) -> Result<(), RedisError> {
        create_group(&self.pool, &self.stream).await
    }

    pub fn push_later(&self, message: TaskMessage, delay: Duration) {
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = outbox.send(message);
        });
    }

    /// The next message for this consumer, or `None` after a quiet second
    /// (or a Redis error, logged: the caller simply asks again).
    pub async fn pop(&self) -> Option<Delivery> {
        let read = self.reader.run(&self.pool, async |conn| {
            let options = StreamReadOptions::default().group(GROUP, &self.consumer).count(1).block(READ_BLOCK_MS);
            let reply: StreamReadReply =
                conn.xread_options(&[self.stream.as_str()], &[">"], &options).await.map_err(redis_err)?;
            Ok(reply.keys.into_iter().flat_map(|key| key.ids).next())
        });
        match read.await {
            Ok(entry) => entry.and_then(|entry| delivery(&entry)),
            // A Redis that restarted without persistence has lost the group.
            Err(err) if err.0.contains("NOGROUP") => {
                tracing::warn!("the task stream's consumer group is gone (Redis restarted?): creating it again");
                if let Err(err) = self.ensure_group().await {
                    tracing::warn!(error = %err, "creating the consumer group failed");
                }
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading the task stream failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                None
            }
        }
    }

    /// The result is stored: the entry is done.
    pub async fn ack(&self, receipt: &str) {
        let acked = self.acker.run(&self.pool, async |conn| {
            conn.xack::<_, _, _, i64>(&self.stream, GROUP, &[receipt]).await.map_err(redis_err)
        });
        if let Err(err) = acked.await {
            // Unacked, it will be claimed again; the database makes that harmless.
            tracing::warn!(error = %err, receipt, "XACK failed");
        }
    }

    /// Takes over entries other consumers left unacknowledged for longer than
    /// `idle`, and hands them back to the stream as new messages.
    pub async fn reclaim(&self, idle: Duration) -> Result<usize, RedisError> {
        let mut conn = self.pool.get().await.map_err(redis_err)?;
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = conn
            .xautoclaim_options(
                &self.stream,
                GROUP,
                &self.consumer,
                idle_ms,
                "0-0",
                StreamAutoClaimOptions::default().count(100),
            )
            .await
            .map_err(redis_err)?;
        let mut reclaimed = 0;
        for entry in &reply.claimed {
            if let Some(found) = delivery(entry) {
                self.push(found.message);
                reclaimed += 1;
            }
            conn.xack::<_, _, _, i64>(&self.stream, GROUP, &[entry.id.as_str()]).await.map_err(redis_err)?;
        }
        Ok(reclaimed)
    }
}

impl RedisQueue {
    /// Entries of the stream not yet delivered to the group (XINFO GROUPS'
    /// `lag`, Redis 7); `None` when Redis cannot tell or does not answer.
    pub async fn undelivered(&self) -> Option<u64> {
        let mut conn = self.pool.get().await.ok()?;
        let groups: Vec<std::collections::HashMap<String, redis::Value>> =
            redis::cmd("XINFO").arg("GROUPS").arg(&self.stream).query_async(&mut conn).await.ok()?;
        let group = groups.iter().find(|group| {
            group.get("name").and_then(|name| redis::from_redis_value::<String>(name.clone()).ok()).as_deref()
                == Some(GROUP)
        })?;
        redis::from_redis_value::<Option<u64>>(group.get("lag")?.clone()).ok().flatten()
    }
}

/// The stream and its consumer group, created if missing (an existing group
/// is fine).
async fn create_group(pool: &Pool, stream: &str) -> Result<(), RedisError> {
    let mut conn = pool.get().await.map_err(redis_err)?;
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(stream, GROUP, "0").await;
    match created {
        Err(err) if !err.to_string().contains("BUSYGROUP") => Err(redis_err(err)),
        _ => Ok(()),
    }
}

fn delivery(entry: &StreamId) -> Option<Delivery> {
    let task_id: i64 = entry.get("task")?;
    let attempt: u32 = entry.get("attempt").unwrap_or(0);
    Some(Delivery { message: TaskMessage { task_id, attempt }, receipt: Some(entry.id.clone()) })
}

/// XADDs what the engine pushed, many per round trip.
async fn drain(pool: Pool, stream: String, mut rx: mpsc::UnboundedReceiver<TaskMessage>) {
    let mut batch = Vec::with_capacity(OUTBOX_BATCH);
    let writer = Kept::default();
    while rx.recv_many(&mut batch, OUTBOX_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for message in &batch {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("task")
                .arg(message.task_id)
                .arg("attempt")
                .arg(message.attempt)
                .ignore();
        }
        let sent = writer.run(&pool, async |conn| pipe.query_async::<()>(conn).await.map_err(redis_err));
        if let Err(err) = sent.await {
            // The tasks are pending in the database; the sweeper dispatches them again.
            tracing::warn!(error = %err, messages = batch.len(), "XADD failed; the sweeper will re-dispatch");
        }
        batch.clear();
    }
}
