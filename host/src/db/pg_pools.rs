//! PostgreSQL connections, pooled per thread.
//!
//! tokio-postgres does a connection's socket I/O in a task of its own, which
//! diesel-async spawns on the runtime that opens the connection. A statement
//! sent from another thread wakes that task's thread, and the answer wakes
//! the sender's thread again: two thread wake-ups per round trip, which on
//! loopback cost more than the round trip itself. So each thread takes its
//! connections from a pool of its own, opened on that thread: a job's steps
//! (which run on one HTTP worker's runtime) then send and read on their own
//! thread, as a single-threaded client would.
//!
//! All threads together keep at most the configured number of connections
//! open: an open connection holds a permit. A thread that needs one more
//! when all are open takes an idle one of its own first. Failing that, it
//! closes an idle one of another thread to open its own, but only a spare
//! one (not taken for a while) if it has connections of its own in use:
//! those come back within milliseconds, and in a burst two threads closing
//! each other's just-returned connections reopened dozens. Otherwise it
//! waits for one to become idle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use deadpool::managed::{Manager, Metrics, Object, Pool, QueueMode, RecycleError, RecycleResult};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{DbError, fast_recycling};

/// How often a thread waiting for a connection, all being open, looks again
/// for an idle one (connections going back to a pool tell nobody).
const IDLE_RECHECK: Duration = Duration::from_millis(5);

/// How long another thread's idle connection must have gone untaken before
/// a thread with connections of its own in use may close it. Pools hand out
/// their most recently returned connection first, so a busy thread's spare
/// ones are the ones that age.
const SPARE_AFTER: Duration = Duration::from_millis(250);

/// The per-thread pools of one database.
#[derive(Clone)]
pub struct PgPools(Arc<Shared>);

struct Shared {
    url: String,
    max: usize,
    /// One permit per connection that may be open.
    open: Arc<Semaphore>,
    pools: Mutex<HashMap<ThreadId, Pool<Opener>>>,
}

/// A connection, and its place in the count of open ones.
pub struct Counted {
    conn: AsyncPgConnection,
    _open: OwnedSemaphorePermit,
}

impl std::ops::Deref for Counted {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Counted {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        &mut self.conn
    }
}

/// Opens a thread's connections (diesel-async's manager, which also tells
/// a broken one at checkout), each only with a permit.
pub struct Opener {
    diesel: AsyncDieselConnectionManager<AsyncPgConnection>,
    open: Arc<Semaphore>,
}

/// Why a connection was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The maximum is open: [`PgPools::get`] makes room or waits.
    #[error("all connections are open")]
    AllOpen,
    #[error(transparent)]
    Failed(PoolError),
}

impl Manager for Opener {
    type Type = Counted;
    type Error = OpenError;

    async fn create(&self) -> Result<Counted, OpenError> {
        let open = self.open.clone().try_acquire_owned().map_err(|_| OpenError::AllOpen)?;
        Ok(Counted { conn: self.diesel.create().await.map_err(OpenError::Failed)?, _open: open })
    }

    async fn recycle(&self, counted: &mut Counted, metrics: &Metrics) -> RecycleResult<OpenError> {
        self.diesel.recycle(&mut counted.conn, metrics).await.map_err(|err| match err {
            RecycleError::Message(message) => RecycleError::Message(message),
            RecycleError::Backend(err) => RecycleError::Backend(OpenError::Failed(err)),
        })
    }
}

impl PgPools {
    /// Pools for `url`; `max` connections open at most, over all threads.
    pub fn new(url: &str, max: usize) -> Self {
        let max = max.max(1);
        Self(Arc::new(Shared {
            url: url.to_owned(),
            max,
            open: Arc::new(Semaphore::new(max)),
            pools: Mutex::new(HashMap::new()),
        }))
    }

    /// A connection of this thread's pool (opened on this thread).
    pub async fn get(&self) -> Result<Object<Opener>, DbError> {
        let own = self.of_this_thread()?;
        loop {
            // An idle one of this thread's, or a new one if the maximum
            // allows (or, with all of this thread's in use and the maximum
            // this thread's alone, the first to come back).
            match own.get().await {
                Ok(object) => return Ok(object),
                Err(deadpool::managed::PoolError::Backend(OpenError::AllOpen)) => {}
                Err(err) => return Err(DbError::pool(err)),
            }
            // With none of its own open, nothing would come back to it.
            let untaken_for = if own.status().size == 0 { Duration::ZERO } else { SPARE_AFTER };
            if !self.0.close_one_idle_of_another_thread(untaken_for) {
                tokio::time::sleep(IDLE_RECHECK).await;
            }
        }
    }

    fn of_this_thread(&self) -> Result<Pool<Opener>, DbError> {
        let mut pools = self.0.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = pools.get(&std::thread::current().id()) {
            return Ok(pool.clone());
        }
        let opener = Opener {
            diesel: AsyncDieselConnectionManager::new_with_config(&self.0.url, fast_recycling()),
            open: self.0.open.clone(),
        };
        // Each may open up to the maximum: the permits bound them all.
        let pool =
            Pool::builder(opener).max_size(self.0.max).queue_mode(QueueMode::Lifo).build().map_err(DbError::build)?;
        pools.insert(std::thread::current().id(), pool.clone());
        Ok(pool)
    }

    /// Connections open and, of those, in use, over all threads; the maximum.
    pub fn usage(&self) -> (usize, usize, usize) {
        let pools = self.0.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let (open, in_use) = pools.values().map(Pool::status).fold((0, 0), |(open, in_use), status| {
            (open + status.size, in_use + status.size.saturating_sub(status.available))
        });
        (open, in_use, self.0.max)
    }
}

impl Shared {
    /// Closes one idle connection of another thread that has not been taken
    /// out for `untaken_for`, if there is one (its permit comes free); tells
    /// whether it did. This thread's idle ones are taken, not closed: the
    /// caller has just looked for one.
    fn close_one_idle_of_another_thread(&self, untaken_for: Duration) -> bool {
        let this_thread = std::thread::current().id();
        let pools: Vec<Pool<Opener>> = self
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(thread, _)| **thread != this_thread)
            .map(|(_, pool)| pool.clone())
            .collect();
        for pool in pools {
            // The first spare connection goes, the others stay.
            let mut closed_one = false;
            let closed = pool.retain(|_, metrics| {
                let close = !closed_one && metrics.last_used() >= untaken_for;
                closed_one |= close;
                !close
            });
            if !closed.removed.is_empty() {
                return true;
            }
        }
        false
    }
}
