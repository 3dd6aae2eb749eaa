//! Keeps every instance's registry in step with `workflow_plugin`: a refresh
//! on a timer (the guarantee: a change is seen within one period plus a
//! compile), and at once when another instance announces a change on Redis
//! pub/sub (when Redis is configured). Announcements are only a nudge; the
//! database stays the one truth, so a lost message costs at most one period.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use super::Registry;
use crate::db::Database;

/// Announces plugin changes to the other instances and hears theirs.
#[derive(Debug, Clone)]
pub struct PluginChanges {
    redis: Option<(redis::Client, String)>,
    heard: Arc<Notify>,
}

impl PluginChanges {
    /// `redis`: the URL and the stream name (the channel is `<stream>:plugins`).
    pub fn new(redis: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let redis = match redis {
            Some((url, stream)) => Some((redis::Client::open(url)?, format!("{stream}:plugins"))),
            None => None,
        };
        Ok(Self { redis, heard: Arc::default() })
    }

    /// Tells the other instances that the active versions changed. A failure
    /// is logged: they still see the change at their next timed refresh.
    pub async fn announce(&self, job_type: &str) {
        let Some((client, channel)) = &self.redis else { return };
        let published = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PUBLISH").arg(channel).arg(job_type).query_async::<i64>(&mut conn).await
        };
        if let Err(err) = published.await {
            tracing::warn!(error = %err, "cannot announce the plugin change on Redis; others see it at their next refresh");
        }
    }

    /// Listens to the channel until `stop`, reconnecting after an error.
    async fn listen(self, mut stop: watch::Receiver<bool>) {
        let Some((client, channel)) = self.redis.clone() else { return };
        loop {
            let listening = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                let mut messages = pubsub.on_message();
                while messages.next().await.is_some() {
                    self.heard.notify_one();
                }
                Ok::<_, redis::RedisError>(())
            };
            tokio::select! {
                outcome = listening => {
                    if let Err(err) = outcome {
                        tracing::debug!(error = %err, "plugin change channel lost; listening again");
                    }
                }
                _ = stop.changed() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Refreshes `registry` every `every`, or when a change is announced, until `stop`.
pub async fn keep_in_step(
    registry: Arc<Registry>,
    db: Database,
    changes: PluginChanges,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let heard = changes.heard.clone();
    let listener = tokio::spawn(changes.listen(stop.clone()));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = heard.notified() => {}
            _ = stop.changed() => break,
        }
        if let Err(err) = registry.refresh(&db).await {
            tracing::warn!(error = %err, "plugin refresh failed; retrying at the next tick");
        }
    }
    let _ = listener.await;
}
