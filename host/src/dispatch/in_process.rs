//! The in-process queue of the embedded default: an unbounded channel, so
//! pushing never blocks the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use super::TaskMessage;

#[derive(Debug)]
pub struct InProcessQueue {
    tx: mpsc::UnboundedSender<TaskMessage>,
    rx: Mutex<mpsc::UnboundedReceiver<TaskMessage>>,
    /// Messages sent and not yet popped (the receiver is locked while a
    /// worker waits on it, so it cannot be asked).
    queued: Arc<AtomicU64>,
}

impl Default for InProcessQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx: Mutex::new(rx), queued: Arc::default() }
    }
}

impl InProcessQueue {
    pub fn push(&self, message: TaskMessage) {
        // The receiver lives as long as the queue, so sending cannot fail.
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(message);
    }

    pub fn push_later(&self, message: TaskMessage, delay: Duration) {
        let (tx, queued) = (self.tx.clone(), self.queued.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queued.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(message);
        });
    }

    /// The next message; `None` only once the queue is gone.
    pub async fn pop(&self) -> Option<TaskMessage> {
        let message = self.rx.lock().await.recv().await;
        if message.is_some() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
        message
    }

    /// Messages waiting for a worker.
    pub fn undelivered(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(task_id: i64) -> TaskMessage {
        TaskMessage { task_id, attempt: 0 }
    }

    #[tokio::test]
    async fn counts_the_messages_no_worker_has_taken() {
        let queue = InProcessQueue::default();
        assert_eq!(queue.undelivered(), 0);
        queue.push(message(1));
        queue.push(message(2));
        assert_eq!(queue.undelivered(), 2);
        assert_eq!(queue.pop().await, Some(message(1)));
        assert_eq!(queue.undelivered(), 1);
        // A delayed message counts once it is due, not before.
        queue.push_later(message(3), Duration::from_millis(20));
        assert_eq!(queue.undelivered(), 1);
        assert_eq!(queue.pop().await, Some(message(2)));
        assert_eq!(queue.pop().await, Some(message(3)));
        assert_eq!(queue.undelivered(), 0);
    }
}
