//! The queue: it carries "run task N, attempt k" — never the truth, which is
//! in the database. Losing a message loses nothing: the task stays `pending`
//! and is dispatched again.
//!
//! Two kinds behind one type: the in-process queue of the embedded default,
//! and Redis Streams (`--redis-url`) for several instances.

mod in_process;
mod redis;

use std::time::Duration;

pub use self::in_process::InProcessQueue;
pub use self::redis::{RedisError, RedisQueue};

/// One unit of work: run this task (attempt numbers start at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskMessage {
    pub task_id: i64,
    pub attempt: u32,
}

/// A message as a worker received it; `receipt` acknowledges it (Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message: TaskMessage,
    pub receipt: Option<String>,
}

#[derive(Debug)]
pub enum Queue {
    InProcess(InProcessQueue),
    Redis(RedisQueue),
}

impl Queue {
    pub fn push(&self, message: TaskMessage) {
        match self {
            Self::InProcess(queue) => queue.push(message),
            Self::Redis(queue) => queue.push(message),
        }
    }

    /// Pushes after `delay` (a retry's backoff). If the process stops first,
    /// the task stays `pending` in the database and is dispatched again.
    pub fn push_later(&self, message: TaskMessage, delay: Duration) {
        match self {
            Self::InProcess(queue) => queue.push_later(message, delay),
            Self::Redis(queue) => queue.push_later(message, delay),
        }
    }

    /// The next message; `None` when there is none right now.
    pub async fn pop(&self) -> Option<Delivery> {
        match self {
            Self::InProcess(queue) => queue.pop().await.map(|message| Delivery { message, receipt: None }),
            Self::Redis(queue) => queue.pop().await,
        }
    }

    /// The message's result is stored.
    pub async fn ack(&self, delivery: &Delivery) {
        if let (Self::Redis(queue), Some(receipt)) = (self, &delivery.receipt) {
            queue.ack(receipt).await;
        }
    }

    /// Takes over what dead consumers left (Redis); nothing to do in-process.
    pub async fn reclaim(&self, idle: Duration) -> Result<usize, RedisError> {
        match self {
            Self::InProcess(_) => Ok(0),
            Self::Redis(queue) => queue.reclaim(idle).await,
        }
    }

    /// Messages no worker has received yet, when the queue can tell (a Redis
    /// error or a Redis that does not know its group's lag: `None`).
    pub async fn undelivered(&self) -> Option<u64> {
        match self {
            Self::InProcess(queue) => Some(queue.undelivered()),
            Self::Redis(queue) => queue.undelivered().await,
        }
    }

    /// Whether several instances may share the work (start-up recovery must
    /// then not take over tasks another instance is running).
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }
}
