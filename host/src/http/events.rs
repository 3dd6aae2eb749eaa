//! `GET /xingqiao/events`: job and task status changes as Server-Sent
//! Events, filtered by `job_id`, `job_type` and `job_namespace`, resumable
//! with `Last-Event-ID`. Each event is `id: <id>`, `event: job|task` and
//! `data: <the event as JSON>`; a comment line every 15 s keeps proxies from
//! closing a quiet stream. The stream ends when the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::params::Params;
use super::state::AppState;
use crate::events::{Event, EventId, EventKind, Numbered};

const HEARTBEAT: Duration = Duration::from_secs(15);

/// Which events a client asked for.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub job_id: Option<i64>,
    pub job_type: Option<String>,
    pub job_namespace: Option<String>,
}

impl EventFilter {
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            job_id: params.integer("job_id")?,
            job_type: params.string("job_type")?,
            job_namespace: params.string("job_namespace")?,
        })
    }

    pub fn accepts(&self, event: &Event) -> bool {
        self.job_id.is_none_or(|id| id == event.job_id)
            && self.job_type.as_ref().is_none_or(|t| *t == event.job_type)
            && self.job_namespace.as_ref().is_none_or(|n| *n == event.job_namespace)
    }
}

/// One event in the SSE format.
fn frame(numbered: &Numbered) -> Bytes {
    let kind = match numbered.event.kind {
        EventKind::Job => "job",
        EventKind::Task => "task",
    };
    let data = serde_json::to_string(&numbered.event).unwrap_or_default();
    Bytes::from(format!("id: {}\nevent: {kind}\ndata: {data}\n\n", numbered.id))
}

#[utoipa::path(
    get,
    path = "/xingqiao/events",
    tag = "jobs",
    params(
        ("job_id" = Option<i64>, Query, description = "Only this job's events"),
        ("job_type" = Option<String>, Query, description = "Only jobs of this type"),
        ("job_namespace" = Option<String>, Query, description = "Only jobs of this namespace"),
        ("last_event_id" = Option<String>, Query, description = "Resume after this event (as the `Last-Event-ID` header)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event: the events since are sent first"),
    ),
    responses(
        (status = 200, description = "A stream of `job` and `task` events; each `data` is an event object \
            (`kind`, `job_id`, `task_id`, `job_type`, `job_namespace`, `status`, `ret_stat`, `at`).", content_type = "text/event-stream", body = String),
        (status = 400, description = "ERR_PARAMS_INVALID (a bad filter or Last-Event-ID)", body = super::openapi::schemas::ErrorBody),
        super::openapi::schemas::GuardRefusals,
    ),
    security((), ("bearer_token" = [])),
)]
pub async fn events(app: Data<AppState>, req: HttpRequest, body: Bytes) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req, &body)?;
    let filter = EventFilter::from_params(&params)?;
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or(params.string("last_event_id")?);
    let after = match last {
        Some(text) => Some(
            EventId::parse(&text).ok_or_else(|| ApiError::bad_params("Last-Event-ID must be an event id (ms-seq)"))?,
        ),
        None => None,
    };
    let (missed, live) = app.engine.events().subscribe(after);
    let state = Stream { missed: missed.into_iter(), live, draining: app.draining.clone(), filter, opened: false };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        // nginx would otherwise hold the events in its buffer.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream::unfold(state, Stream::next)))
}

struct Stream {
    missed: std::vec::IntoIter<Arc<Numbered>>,
    live: tokio::sync::broadcast::Receiver<Arc<Numbered>>,
    draining: tokio::sync::watch::Receiver<bool>,
    filter: EventFilter,
    opened: bool,
}

impl Stream {
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        if !self.opened {
            // Sends the head at once: the client knows it is listening.
            self.opened = true;
            return Some((Ok(Bytes::from_static(b": listening\n\n")), self));
        }
        for numbered in self.missed.by_ref() {
            if self.filter.accepts(&numbered.event) {
                let bytes = frame(&numbered);
                return Some((Ok(bytes), self));
            }
        }
        loop {
            if *self.draining.borrow() {
                return None;
            }
            tokio::select! {
                received = self.live.recv() => match received {
                    Ok(numbered) if self.filter.accepts(&numbered.event) => {
                        let bytes = frame(&numbered);
                        return Some((Ok(bytes), self));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => {
                        let note = format!(": {skipped} events were dropped; read the jobs again\n\n");
                        return Some((Ok(Bytes::from(note)), self));
                    }
                    Err(RecvError::Closed) => return None,
                },
                () = tokio::time::sleep(HEARTBEAT) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), self)),
                _ = self.draining.changed() => {}
            }
        }
    }
}

/// Waits until the job ends or `wait` passes, listening to the jobs' ends
/// (no polling); gives the job's row as it ended when its end carried it.
/// `ends` must be taken before the job was last read, so an end in between
/// is not missed.
pub async fn wait_for_end(
    mut ends: tokio::sync::broadcast::Receiver<Arc<Event>>,
    job_id: i64,
    wait: Duration,
) -> Option<Arc<crate::db::models::JobRow>> {
    let ended = async {
        loop {
            match ends.recv().await {
                Ok(end) if end.job_id == job_id => return end.row.clone(),
                Ok(_) => {}
                // Lagged: the end may be among the dropped; the caller reads the job again.
                Err(_) => return None,
            }
        }
    };
    tokio::time::timeout(wait, ended).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_gets_the_row_its_job_ended_with() {
        let hub = crate::events::EventHub::local();
        let ends = hub.subscribe_ends();
        let row = crate::events::ended_row(3, "{}");
        hub.publish(Event::job(4, "hello", "ns", "finished", "OK"));
        hub.publish(Event::job(3, "hello", "ns", "finished", "OK").with_row(row.clone()));
        let waited = wait_for_end(ends, 3, Duration::from_secs(5)).await;
        assert_eq!(waited.as_deref(), Some(&row));
    }

    #[test]
    fn filters_match_job_type_and_namespace() {
        let event = Event::job(3, "hello", "ns", "started", "");
        assert!(EventFilter::default().accepts(&event));
        assert!(EventFilter { job_id: Some(3), ..Default::default() }.accepts(&event));
        assert!(!EventFilter { job_id: Some(4), ..Default::default() }.accepts(&event));
        assert!(!EventFilter { job_type: Some("ping".into()), ..Default::default() }.accepts(&event));
        assert!(!EventFilter { job_namespace: Some("other".into()), ..Default::default() }.accepts(&event));
    }
}
