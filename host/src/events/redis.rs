//! The cluster's event stream on Redis: a writer XADDs what this instance
//! publishes (pipelined, trimmed to about [`super::KEPT_EVENTS`]), a reader
//! follows the stream and delivers every instance's events locally with the
//! stream's ids. A Redis outage loses events (clients still read the truth
//! from the API), never a job.

use std::sync::Weak;
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::mpsc;

use super::{Event, EventHub, EventId, KEPT_EVENTS};
use crate::db::models::JobRow;

const BATCH: usize = 256;
/// How long one XREAD waits for new events.
const READ_BLOCK_MS: usize = 1000;
/// How long the reader waits for Redis's answer to one XREAD: longer than the
/// block. redis-rs gives up after 500 ms by default, so every quiet read used
/// to fail, and the reader paused a second before reconnecting, while the
/// next events waited (a lone job's end reached `wait_ms` 0.4–0.9 s late).
const READ_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

pub fn start(
    url: &str,
    stream: &str,
    pending: mpsc::UnboundedReceiver<Event>,
    hub: Weak<EventHub>,
) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    tokio::spawn(write(client.clone(), stream.to_owned(), pending));
    tokio::spawn(read(client, stream.to_owned(), hub));
    Ok(())
}

async fn write(client: redis::Client, stream: String, mut pending: mpsc::UnboundedReceiver<Event>) {
    let mut batch = Vec::with_capacity(BATCH);
    // One connection for every batch (a new one per batch cost a connect
    // per event when events come one at a time); made again after an error.
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        let written = async {
            let conn = match &mut connection {
                Some(conn) => conn,
                None => connection.insert(client.get_multiplexed_async_connection().await?),
            };
            let mut pipe = redis::pipe();
            for event in &batch {
                let json = serde_json::to_string(event).unwrap_or_default();
                let entry =
                    pipe.cmd("XADD").arg(&stream).arg("MAXLEN").arg("~").arg(KEPT_EVENTS).arg("*").arg("e").arg(json);
                if let Some(row) = row_beside(event) {
                    entry.arg("r").arg(row);
                }
                entry.ignore();
            }
            pipe.query_async::<()>(conn).await
        };
        if let Err(err) = written.await {
            connection = None;
            tracing::warn!(error = %err, events = batch.len(), "cannot write events to Redis; these are lost to listeners");
        }
        batch.clear();
    }
}

async fn read(client: redis::Client, stream: String, hub: Weak<EventHub>) {
    // From now: what was published before this instance started is not its
    // listeners' concern. (Not `$`: that would skip what arrives between reads.)
    let mut last = format!("{}-0", chrono::Utc::now().timestamp_millis());
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(READ_RESPONSE_TIMEOUT));
    while hub.strong_count() > 0 {
        let mut conn = match client.get_multiplexed_async_connection_with_config(&config).await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "cannot reach Redis for events; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let options = StreamReadOptions::default().block(READ_BLOCK_MS).count(BATCH);
            let reply = conn.xread_options::<_, _, Option<StreamReadReply>>(&[&stream], &[&last], &options).await;
            let Some(hub) = hub.upgrade() else { return };
            match reply {
                Ok(Some(reply)) => {
                    for entry in reply.keys.into_iter().flat_map(|key| key.ids) {
                        last.clone_from(&entry.id);
                        let event = entry.get::<String>("e").and_then(|json| serde_json::from_str::<Event>(&json).ok());
                        let event = event.map(|event| Event { row: row_read(entry.get::<String>("r")), ..event });
                        if let (Some(id), Some(event)) = (EventId::parse(&entry.id), event) {
                            hub.deliver(id, event);
                        }
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read events from Redis; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// The row of a job's end event, as sent beside it (an event carries only
/// a small row: `Event::with_row`).
fn row_beside(event: &Event) -> Option<String> {
    serde_json::to_string(event.row.as_deref()?).ok()
}

fn row_read(json: Option<String>) -> Option<std::sync::Arc<JobRow>> {
    json.and_then(|json| serde_json::from_str(&json).ok()).map(std::sync::Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ended_row;
    use crate::state::JobStatus;

    #[test]
    fn a_small_ended_row_travels_beside_its_event_and_comes_back_equal() {
        let row = ended_row(7, r#"{"task3":"x"}"#);
        let event = Event::job(7, "hello", "n", JobStatus::Finished, "OK").with_row(row.clone());
        let sent = row_beside(&event);
        assert_eq!(row_read(sent).as_deref(), Some(&row));
        // The event's own text, which stream clients get, has no row.
        assert!(!serde_json::to_string(&event).unwrap_or_default().contains("task3"));
    }

    #[test]
    fn a_large_row_stays_out_of_the_stream() {
        let big = ended_row(7, &"x".repeat(crate::events::MAX_ROW_CARRIED));
        let event = Event::job(7, "hello", "n", JobStatus::Finished, "OK").with_row(big);
        assert_eq!(row_beside(&event), None);
        assert_eq!(row_beside(&Event::job(7, "hello", "n", JobStatus::Finished, "OK")), None);
    }
}
