//! The in-process queue of the embedded default: an unbounded channel, so
//! pushing never blocks the engine.

use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use super::TaskMessage;

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

    pub fn push_later(&self, message: TaskMessage, delay: Duration) {
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
