//! Job and task status changes, for clients that would rather be told than
//! poll: `GET /xingqiao/events` (Server-Sent Events) and
//! `get_job_detail?wait_ms=N` both listen here.
//!
//! The engine publishes each change once. Alone, an instance numbers its
//! events itself and hands them to its listeners. In a cluster every event
//! goes through one Redis stream (`<stream>:events`, `redis.rs`), which every
//! instance reads: a client sees every instance's changes, whichever it is
//! connected to, and the stream's ids are the events' ids. The last
//! [`KEPT_EVENTS`] events are kept in memory, so a client that reconnects
//! with `Last-Event-ID` gets what it missed.

mod redis;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::db::models::JobRow;

/// How many past events a reconnecting client can catch up on.
pub const KEPT_EVENTS: usize = 10_000;
const CHANNEL_CAPACITY: usize = 4096;
/// Jobs' ends held for waiters; one that falls behind reads its job.
const ENDS_CAPACITY: usize = 1024;
/// Largest job_extra and ret_data (together) of a row an end event carries:
/// a larger job's waiters read it, so that neither memory nor the stream
/// holds big rows.
pub const MAX_ROW_CARRIED: usize = 8 * 1024;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Job,
    Task,
}

/// One status change, as clients receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub job_id: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_id: Option<i64>,
    pub job_type: String,
    pub job_namespace: String,
    /// The new status: a job or task status (`waiting`, `pending`, `started`,
    /// `finished`, `failed`), or `retrying` for a task that failed and waits
    /// for its next attempt.
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub ret_stat: String,
    /// When it happened, `YYYY-MM-DD HH:MM:SS.ffffff` UTC.
    pub at: String,
    /// A job's end only: its row as the ending transaction left it, so that
    /// a `wait_ms` waiter answers without reading the job again. Clients of
    /// the event stream never see it; between instances it travels beside
    /// the event when it is small (`redis.rs`).
    #[serde(skip)]
    pub row: Option<Arc<JobRow>>,
}

impl Event {
    pub fn job(job_id: i64, job_type: &str, job_namespace: &str, status: impl ToString, ret_stat: &str) -> Self {
        Self {
            kind: EventKind::Job,
            job_id,
            task_id: None,
            job_type: job_type.to_owned(),
            job_namespace: job_namespace.to_owned(),
            status: status.to_string(),
            ret_stat: ret_stat.to_owned(),
            at: now_text(),
            row: None,
        }
    }

    /// The same event with the job's row as it ended, unless the row is
    /// large ([`MAX_ROW_CARRIED`]).
    #[must_use]
    pub fn with_row(self, row: JobRow) -> Self {
        let size = row.job_extra.len() + row.ret_data.as_ref().map_or(0, String::len);
        Self { row: (size <= MAX_ROW_CARRIED).then(|| Arc::new(row)), ..self }
    }

    /// A change of one of `job`'s tasks, now.
    pub fn task(job: &Self, task_id: i64, status: impl ToString, ret_stat: &str) -> Self {
        Self {
            kind: EventKind::Task,
            task_id: Some(task_id),
            status: status.to_string(),
            ret_stat: ret_stat.to_owned(),
            at: now_text(),
            row: None,
            ..job.clone()
        }
    }

    /// Whether a job event says the job has ended.
    pub fn ends_job(&self) -> bool {
        self.kind == EventKind::Job && (self.status == "finished" || self.status == "failed")
    }
}

fn now_text() -> String {
    crate::engine::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// An event's position: the Redis stream id (`ms-seq`), or the same shape
/// made up locally. Ordered, so a client's `Last-Event-ID` says what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId(u64, u64);

impl EventId {
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.trim().split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// An event with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Numbered {
    pub id: EventId,
    pub event: Event,
}

/// Where events are published and listened to; one per process.
#[derive(Debug)]
pub struct EventHub {
    live: broadcast::Sender<Arc<Numbered>>,
    kept: Mutex<VecDeque<Arc<Numbered>>>,
    /// Jobs' ends, as soon as this instance knows of them (`wait_ms`).
    ended: broadcast::Sender<Arc<Event>>,
    /// With Redis: events go there first and come back through the reader.
    outbox: Option<mpsc::UnboundedSender<Event>>,
    sequence: AtomicU64,
}

impl EventHub {
    /// Events of this process only.
    pub fn local() -> Self {
        Self {
            live: broadcast::channel(CHANNEL_CAPACITY).0,
            kept: Mutex::new(VecDeque::with_capacity(KEPT_EVENTS)),
            ended: broadcast::channel(ENDS_CAPACITY).0,
            outbox: None,
            sequence: AtomicU64::new(0),
        }
    }

    /// Events of every instance, through `<stream>:events` on Redis.
    pub fn through_redis(url: &str, stream: &str) -> anyhow::Result<Arc<Self>> {
        let (outbox, pending) = mpsc::unbounded_channel();
        let hub = Arc::new(Self { outbox: Some(outbox), ..Self::local() });
        redis::start(url, &format!("{stream}:events"), pending, Arc::downgrade(&hub))?;
        Ok(hub)
    }

    /// Publishes a change; never waits.
    pub fn publish(&self, event: Event) {
        match &self.outbox {
            Some(outbox) => {
                // This instance's waiters hear of a job's end now, not after
                // its round trip through Redis (a third of a millisecond of
                // a lone job); the stream tells them again, harmlessly.
                self.tell_end(&event);
                let _ = outbox.send(event);
            }
            None => {
                let ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
                let id = EventId(ms, self.sequence.fetch_add(1, Ordering::Relaxed));
                self.deliver(id, event);
            }
        }
    }

    /// Keeps an event and hands it to the listeners.
    fn deliver(&self, id: EventId, event: Event) {
        self.tell_end(&event);
        // Only waiters want the row; the kept events do not hold it.
        let numbered = Arc::new(Numbered { id, event: Event { row: None, ..event } });
        let mut kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() == KEPT_EVENTS {
            kept.pop_front();
        }
        kept.push_back(numbered.clone());
        // Sent under the lock: a subscriber sees each event once, either in
        // its catch-up or live.
        let _ = self.live.send(numbered);
    }

    fn tell_end(&self, event: &Event) {
        if event.ends_job() {
            let _ = self.ended.send(Arc::new(event.clone()));
        }
    }

    /// A receiver of the next jobs' ends: this instance's own at once, other
    /// instances' as they come through Redis.
    pub fn subscribe_ends(&self) -> broadcast::Receiver<Arc<Event>> {
        self.ended.subscribe()
    }

    /// The kept events after `after` (none without it: a new client starts
    /// from now), and a receiver of the next ones.
    pub fn subscribe(&self, after: Option<EventId>) -> (Vec<Arc<Numbered>>, broadcast::Receiver<Arc<Numbered>>) {
        let kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let missed = match after {
            Some(after) => kept.iter().filter(|event| event.id > after).cloned().collect(),
            None => Vec::new(),
        };
        (missed, self.live.subscribe())
    }
}

/// A finished job's row with `ret_data`, for tests of the end events.
#[cfg(test)]
pub(crate) fn ended_row(job_id: i64, ret_data: &str) -> JobRow {
    use crate::db::models::NewJob;
    let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).and_then(|d| d.and_hms_micro_opt(13, 34, 23, 447_897));
    let at = at.unwrap_or_default();
    JobRow {
        job_id,
        job: NewJob {
            job_client: "c".into(),
            job_namespace: "n".into(),
            job_reqid: "r".into(),
            job_name: "j".into(),
            job_status: crate::state::JobStatus::Finished,
            job_type: "hello".into(),
            job_tags: String::new(),
            ret_stat: "OK".into(),
            ret_data: Some(ret_data.into()),
            job_cost: 0.001_234,
            job_extra: "{}".into(),
            job_timeout: 60,
            job_lock: String::new(),
            exe_id: 0,
            operator: String::new(),
            is_valid: true,
            c_time: at,
            s_time: at,
            e_time: at,
            u_time: at,
            plugin_version: "0.1.0".into(),
            tasks_unfinished: 0,
            deadline: None,
            plugin_sha256: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(job_id: i64) -> Event {
        Event::job(job_id, "hello", "n", "started", "")
    }

    #[test]
    fn a_client_catches_up_from_its_last_event_id_then_hears_live_ones() {
        let hub = EventHub::local();
        hub.publish(event(1));
        hub.publish(event(2));
        let (missed, _) = hub.subscribe(None);
        assert!(missed.is_empty(), "a new client starts from now");
        let all = {
            let kept = hub.kept.lock().unwrap();
            kept.iter().map(|e| e.id).collect::<Vec<_>>()
        };
        let (missed, mut live) = hub.subscribe(Some(all[0]));
        assert_eq!(missed.iter().map(|e| e.event.job_id).collect::<Vec<_>>(), vec![2]);
        hub.publish(event(3));
        assert_eq!(live.try_recv().unwrap().event.job_id, 3);
        assert!(EventId::parse(&all[1].to_string()) == Some(all[1]) && all[0] < all[1]);
    }

    #[test]
    fn in_a_cluster_this_instance_hears_its_own_job_ends_before_redis_sends_them_back() {
        let (outbox, mut sent) = mpsc::unbounded_channel();
        let hub = EventHub { outbox: Some(outbox), ..EventHub::local() };
        let mut ends = hub.subscribe_ends();
        let started = event(1);
        hub.publish(Event::task(&started, 2, "finished", "OK"));
        hub.publish(started.clone());
        hub.publish(Event::job(1, "hello", "n", "finished", "OK"));
        // Nothing came back from the stream, yet the end is told, and only it.
        let end = ends.try_recv().unwrap();
        assert_eq!((end.job_id, end.status.as_str()), (1, "finished"));
        assert!(ends.try_recv().is_err());
        // Every event still goes to the stream, for the other instances.
        let mut count = 0;
        while sent.try_recv().is_ok() {
            count += 1;
        }
        assert_eq!(count, 3);
        let (missed, _) = hub.subscribe(Some(EventId(0, 0)));
        assert!(missed.is_empty(), "the stream's ids number the kept events");
    }

    #[test]
    fn only_waiters_get_an_ended_row_and_only_a_small_one() {
        let row = ended_row(1, "{}");
        let hub = EventHub::local();
        let mut ends = hub.subscribe_ends();
        hub.publish(Event::job(1, "hello", "n", "finished", "OK").with_row(row.clone()));
        assert_eq!(ends.try_recv().unwrap().row.as_deref(), Some(&row));
        let (kept, _) = hub.subscribe(Some(EventId(0, 0)));
        assert!(kept[0].event.row.is_none(), "the kept events hold no rows");
        let big = ended_row(1, &"x".repeat(MAX_ROW_CARRIED));
        assert!(Event::job(1, "hello", "n", "finished", "OK").with_row(big).row.is_none());
    }

    #[test]
    fn only_the_last_events_are_kept() {
        let hub = EventHub::local();
        for job_id in 0..(KEPT_EVENTS as i64 + 5) {
            hub.publish(event(job_id));
        }
        let kept = hub.kept.lock().unwrap();
        assert_eq!((kept.len(), kept.front().map(|e| e.event.job_id)), (KEPT_EVENTS, Some(5)));
    }

    #[test]
    fn events_read_as_clients_receive_them() {
        let job = event(7);
        let task = Event::task(&job, 9, "finished", "OK");
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(
            (json["kind"].as_str(), json["task_id"].as_i64(), json["job_type"].as_str()),
            (Some("task"), Some(9), Some("hello"))
        );
        assert!(serde_json::to_value(&job).unwrap().get("task_id").is_none());
        assert!(Event::job(1, "t", "n", "failed", "X").ends_job() && !job.ends_job());
    }
}
