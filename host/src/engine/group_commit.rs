//! Group commit: writes that arrive while this process is busy writing
//! others are written together, in one transaction (one BEGIN, one COMMIT,
//! one durable flush for all of them). A write that finds a writer free
//! starts one at once, so a lone write waits for nothing.
//!
//! Up to `max_writers` transactions are written at once. One alone was
//! slower than none at all for create_job: a burst's jobs then waited in line
//! behind one connection while the database had cores to spare (1,000
//! create_job calls, 64 at a time, on PostgreSQL: 2.5–2.9 s against 1.5–2.1 s
//! without batches, 1.3–1.4 s with four writers).
//!
//! Each caller is answered only after the transaction holding its write has
//! committed, as if it had written alone. If a transaction of several writes
//! fails (a name taken, a deadlock), each of its writes is made again alone,
//! so that one fails only for its own reason.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::db::DbError;

/// Most rows one transaction writes (an item larger than that goes alone):
/// keeps a burst's transactions short, so none holds its locks for long.
const MAX_BATCH_ROWS: usize = 2000;

/// What a group commit writes: items, several in one transaction.
pub trait Batch: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Written: Send + 'static;

    /// Writes `items` in one transaction; one result per item, in order.
    fn write(&self, items: &[Self::Item]) -> impl Future<Output = Result<Vec<Self::Written>, DbError>> + Send;

    /// The rows an item writes, to keep a transaction under
    /// [`MAX_BATCH_ROWS`].
    fn rows(_item: &Self::Item) -> usize {
        1
    }
}

/// The items waiting to be written, and the writers at work.
pub struct GroupCommit<B: Batch> {
    batch: B,
    max_writers: usize,
    state: Mutex<Waiting<B>>,
}

struct Waiting<B: Batch> {
    items: Vec<WaitingItem<B>>,
    /// Writers at work.
    writers: usize,
}

struct WaitingItem<B: Batch> {
    item: B::Item,
    answer: oneshot::Sender<Result<B::Written, DbError>>,
}

impl<B: Batch> GroupCommit<B> {
    pub fn new(batch: B, max_writers: usize) -> Arc<Self> {
        Arc::new(Self { batch, max_writers, state: Mutex::new(Waiting { items: Vec::new(), writers: 0 }) })
    }

    /// Writes `item`, in a transaction of its own or shared with the items
    /// of concurrent calls; returns once that transaction committed.
    pub async fn write(self: &Arc<Self>, item: B::Item) -> Result<B::Written, DbError> {
        let (answer, answered) = oneshot::channel();
        let start_writing = {
            let mut waiting = self.lock();
            waiting.items.push(WaitingItem { item, answer });
            let start = waiting.writers < self.max_writers;
            waiting.writers += usize::from(start);
            start
        };
        if start_writing {
            // Its own task: the caller's future may be dropped (a client
            // that hung up), the items queued behind it may not.
            tokio::spawn(Arc::clone(self).write_while_waiting());
        }
        answered.await.unwrap_or_else(|_| Err(DbError::Unavailable(String::from("the writer stopped"))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes what waits, batch after batch, until nothing does.
    async fn write_while_waiting(self: Arc<Self>) {
        // Should this task end early (a panic, its runtime stopping), the
        // next call starts another.
        let mut writer = Writer { group: &self, done: false };
        loop {
            let batch = {
                let mut waiting = self.lock();
                if waiting.items.is_empty() {
                    waiting.writers -= 1;
                    writer.done = true;
                    return;
                }
                take_batch::<B>(&mut waiting.items)
            };
            self.write_batch(batch).await;
        }
    }

    async fn write_batch(&self, batch: Vec<WaitingItem<B>>) {
        let (items, answers): (Vec<B::Item>, Vec<_>) = batch.into_iter().map(|w| (w.item, w.answer)).unzip();
        match self.batch.write(&items).await {
            Ok(written) => {
                for (answer, written) in answers.into_iter().zip(written) {
                    let _ = answer.send(Ok(written));
                }
            }
            Err(DbError::Unavailable(reason)) => {
                // The database is gone: writing each alone would fail as well.
                for answer in answers {
                    let _ = answer.send(Err(DbError::Unavailable(reason.clone())));
                }
            }
            Err(err) if items.len() > 1 => {
                tracing::debug!(items = items.len(), error = %err, "a group commit failed; writing each alone");
                for (item, answer) in items.iter().zip(answers) {
                    let _ = answer.send(self.write_alone(item).await);
                }
            }
            Err(err) => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(err));
                }
            }
        }
    }

    async fn write_alone(&self, item: &B::Item) -> Result<B::Written, DbError> {
        let mut written = self.batch.write(std::slice::from_ref(item)).await?;
        // `write` gives one result per item.
        written.pop().ok_or(DbError::Query(diesel::result::Error::NotFound))
    }
}

/// The oldest waiting items, up to [`MAX_BATCH_ROWS`] rows (always at least
/// one item).
fn take_batch<B: Batch>(items: &mut Vec<WaitingItem<B>>) -> Vec<WaitingItem<B>> {
    let mut rows = 0;
    let count = items
        .iter()
        .take_while(|waiting| {
            rows += B::rows(&waiting.item).max(1);
            rows <= MAX_BATCH_ROWS
        })
        .count()
        .max(1);
    items.drain(..count).collect()
}

/// The writer's task: marks the writer stopped if it ends before its work.
struct Writer<'a, B: Batch> {
    group: &'a GroupCommit<B>,
    done: bool,
}

impl<B: Batch> Drop for Writer<'_, B> {
    fn drop(&mut self) {
        if !self.done {
            self.group.lock().writers -= 1;
        }
    }
}
