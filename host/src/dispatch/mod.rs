//! The queue: it carries "run task N, attempt k" — never the truth, which is
//! in the database. Losing a message loses nothing: the task stays `pending`
//! and recovery dispatches it again.
//!
//! Here: the in-process queue of the embedded default. Redis Streams will
//! come behind the same methods.

use tokio::sync::{Mutex, mpsc};

/// One unit of work: run this task (attempt numbers start at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskMessage {
    pub task_id: i64,
    pub attempt: u32,
}

/// An unbounded in-process channel: pushing never blocks the engine.
#[derive(Debug)]
pub struct InProcessQueue {
    tx: mpsc::UnboundedSender<TaskMessage>,
    rx: Mutex<mpsc::UnboundedReceiver<TaskMessage>>,
}

impl Default for InProcessQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx: Mutex::new(rx) }
    }
}

impl InProcessQueue {
    pub fn push(&self, message: TaskMessage) {
        // The receiver lives as long as the queue, so sending cannot fail.
        let _ = self.tx.send(message);
    }

    /// Pushes after `delay` (a retry's backoff). If the process stops first,
    /// the task stays `pending` in the database and the next start dispatches it.
    pub fn push_later(&self, message: TaskMessage, delay: std::time::Duration) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(message);
        });
    }

    /// The next message; `None` only once the queue is gone.
    pub async fn pop(&self) -> Option<TaskMessage> {
        self.rx.lock().await.recv().await
    }
}
