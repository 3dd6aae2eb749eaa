#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

//! Live updates: the `/xingqiao/events` stream (filters, `Last-Event-ID`,
//! every instance of a cluster through Redis) and `get_job_detail?wait_ms=N`.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use xingqiao_tests::{Redis, TestDb, TestServer, per_backend, plugins_dir_with};

/// An open event stream, read frame by frame.
struct Listener {
    chunks: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

/// One SSE event: its id, its name and its data.
#[derive(Debug, Clone)]
struct Frame {
    id: String,
    name: String,
    data: Value,
}

impl Listener {
    async fn open(server: &TestServer, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(server.url(&format!("/xingqiao/events?{query}")));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { chunks: Box::pin(response.bytes_stream()), buffer: String::new() }
    }

    /// The next event (comments skipped), or `None` after `limit` of silence.
    async fn next(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|line| line.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                };
                if let (Some(id), Some(name), Some(data)) = (field("id"), field("event"), field("data")) {
                    return Some(Frame { id, name, data: serde_json::from_str(&data).unwrap() });
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.chunks.next()).await {
                Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Events until the job's end event (included).
    async fn until_job_ends(&mut self, job_id: i64) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self
                .next(Duration::from_secs(30))
                .await
                .unwrap_or_else(|| panic!("no end of job {job_id}: {frames:?}"));
            let ends = frame.name == "job"
                && frame.data["job_id"] == job_id
                && ["finished", "failed"].contains(&frame.data["status"].as_str().unwrap());
            frames.push(frame);
            if ends {
                return frames;
            }
        }
    }
}

fn hello(name: &str) -> Value {
    json!({"job_namespace": "live", "job_type": "hello", "job_name": name, "job_extra": {"str_info": "x"}})
}

per_backend! {
    async fn the_stream_tells_each_status_change_and_resumes_after_the_last_event_id(backend: &str) {
        let server = TestServer::start(backend).await;
        let mut all = Listener::open(&server, "job_namespace=live", None).await;
        let mut pings = Listener::open(&server, "job_type=ping", None).await;
        let job_id = server.create_job(hello("watched")).await;
        let frames = all.until_job_ends(job_id).await;
        let seen: Vec<(String, String)> = frames
            .iter()
            .map(|f| (f.name.clone(), f.data["status"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(seen.first(), Some(&("job".to_owned(), "started".to_owned())), "{seen:?}");
        assert_eq!(seen.last(), Some(&("job".to_owned(), "finished".to_owned())), "{seen:?}");
        for status in ["pending", "started", "finished"] {
            let tasks = frames.iter().filter(|f| f.name == "task" && f.data["status"] == status).count();
            assert_eq!(tasks, 3, "{status}: {seen:?}");
        }
        assert!(frames.iter().all(|f| f.data["job_type"] == "hello" && f.data["job_id"] == job_id));
        // The filter kept the hello job's events from the ping listener.
        assert!(pings.next(Duration::from_millis(300)).await.is_none());

        // Reconnecting after the third event gives the rest again, then live ones.
        let mut resumed = Listener::open(&server, "job_namespace=live", Some(&frames[2].id)).await;
        for expected in &frames[3..] {
            let frame = resumed.next(Duration::from_secs(5)).await.unwrap();
            assert_eq!((&frame.id, &frame.data), (&expected.id, &expected.data));
        }
        let (status, body) = server.get("/xingqiao/events?last_event_id=not-an-id").await;
        assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{body}");
        server.stop().await.unwrap();
    }
}

per_backend! {
    async fn get_job_detail_waits_for_the_end_without_polling(backend: &str) {
        let plugins = plugins_dir_with(&["e2e"]);
        let server = TestServer::start_with(backend, &["--plugins-dir", plugins.to_str().unwrap()]).await;
        let slow = json!({"job_namespace": "live", "job_type": "fixture_e2e", "job_extra": {"case": "slow"}});
        let job_id = server.create_job(slow.clone()).await;
        let started = Instant::now();
        let (status, body) = server.get(&format!("/xingqiao/get_job_detail?job_id={job_id}&wait_ms=20000")).await;
        let waited = started.elapsed();
        assert_eq!((status, &body["data"]["job_status"]), (200, &json!("finished")), "{body}");
        assert!(waited < Duration::from_secs(10), "answered {waited:?} after the end");
        // Answered from the row the job's end committed, not read again: the
        // same as reading it now, field for field (times, cost, ret_data).
        let (_, read) = server.get(&format!("/xingqiao/get_job_detail?job_id={job_id}")).await;
        assert_eq!(body["data"], read["data"]);
        assert!(body["data"]["job_cost"].as_f64() > Some(0.0), "{body}");

        let job_id = server.create_job(slow).await;
        let started = Instant::now();
        let (_, body) = server.get(&format!("/xingqiao/get_job_detail?job_id={job_id}&wait_ms=300")).await;
        assert_eq!(body["data"]["job_status"], "started", "{body}");
        assert!(started.elapsed() >= Duration::from_millis(300), "it did not wait");
        for bad in ["60001", "-1", "x"] {
            let (status, body) = server.get(&format!("/xingqiao/get_job_detail?job_id={job_id}&wait_ms={bad}")).await;
            assert_eq!((status, &body["stat"]), (400, &json!("ERR_PARAMS_INVALID")), "{bad}: {body}");
        }
        server.stop().await.unwrap();
        std::fs::remove_dir_all(plugins).unwrap();
    }
}

per_backend! {
    networked async fn every_instance_tells_the_changes_of_every_other(backend: &str) {
        let redis = Redis::start();
        let db = TestDb::create(backend).await;
        let shared = db.shared_with_own_dir();
        let watcher = TestServer::start_on(db, &["--redis-url", &redis.url, "--no-workers"]).await;
        let runner = TestServer::start_on(shared, &["--redis-url", &redis.url]).await;
        let mut listener = Listener::open(&watcher, "job_namespace=live", None).await;
        let job_id = runner.create_job(hello("elsewhere")).await;
        let frames = listener.until_job_ends(job_id).await;
        assert_eq!(frames.last().unwrap().data["status"], "finished", "{frames:?}");
        assert!(frames.iter().filter(|f| f.name == "task" && f.data["status"] == "finished").count() == 3);
        // Waiting on one instance for a job another runs, after a quiet spell
        // longer than redis-rs's default response timeout (500 ms): the
        // event reader's blocking reads must outlast it without an error.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let job_id = runner.create_job(hello("waited")).await;
        let (_, body) = watcher.get(&format!("/xingqiao/get_job_detail?job_id={job_id}&wait_ms=20000")).await;
        assert_eq!(body["data"]["job_status"], "finished", "{body}");
        // The row came beside the end event through Redis: what either reads now.
        assert!(body["data"]["ret_data"].is_object(), "{body}");
        for server in [&watcher, &runner] {
            let (_, read) = server.get(&format!("/xingqiao/get_job_detail?job_id={job_id}")).await;
            assert_eq!(body["data"], read["data"]);
        }
        for server in [&watcher, &runner] {
            let log = server.log_text();
            assert!(!log.contains("cannot read events from Redis"), "{log}");
        }
        runner.stop().await.unwrap();
        watcher.stop().await.unwrap();
    }
}
