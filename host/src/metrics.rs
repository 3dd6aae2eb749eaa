//! `/metrics`: the server's numbers in the Prometheus text format, through
//! prometheus-client. Counters and histograms are updated where things happen
//! (the engine); the queue and the database pool are read when scraped.
//! Each instance counts what it did itself, so sums over a cluster's
//! instances are right.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobTypeLabels {
    pub job_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobEndLabels {
    pub job_type: String,
    /// `finished` or `failed`.
    pub status: String,
    pub ret_stat: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The task's cmd without its query string.
    pub cmd: String,
    /// `finished`, `failed` or `retrying`.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CmdLabels {
    pub cmd: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginCallLabels {
    pub job_type: String,
    /// `plan` (params_check and workflow) or `job_notifier`.
    pub call: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginFaultLabels {
    pub job_type: String,
    pub kind: String,
}

fn seconds_histogram() -> Histogram {
    // 100 µs to about 30 minutes.
    Histogram::new(exponential_buckets(0.0001, 4.0, 12))
}

/// The answer's `Content-Type`: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    jobs_created: Family<JobTypeLabels, Counter>,
    jobs_ended: Family<JobEndLabels, Counter>,
    task_attempts: Family<AttemptLabels, Counter>,
    task_attempt_seconds: Family<CmdLabels, Histogram, fn() -> Histogram>,
    plugin_call_seconds: Family<PluginCallLabels, Histogram, fn() -> Histogram>,
    plugin_faults: Family<PluginFaultLabels, Counter>,
    jobs_per_create_transaction: Histogram,
    results_per_finish_transaction: Histogram,
    pending_tasks: Gauge,
    oldest_pending_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    db_connections_open: Gauge,
    db_connections_in_use: Gauge,
    db_connections_max: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Self {
            jobs_created: Family::default(),
            jobs_ended: Family::default(),
            task_attempts: Family::default(),
            task_attempt_seconds: Family::new_with_constructor(seconds_histogram),
            plugin_call_seconds: Family::new_with_constructor(seconds_histogram),
            plugin_faults: Family::default(),
            jobs_per_create_transaction: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            results_per_finish_transaction: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            pending_tasks: Gauge::default(),
            oldest_pending_seconds: Gauge::default(),
            db_connections_open: Gauge::default(),
            db_connections_in_use: Gauge::default(),
            db_connections_max: Gauge::default(),
            registry: Registry::with_prefix("xingqiao"),
        };
        let registry = &mut metrics.registry;
        registry.register("jobs_created", "Jobs created, by job type", metrics.jobs_created.clone());
        registry.register("jobs_ended", "Jobs ended, by job type, status and ret_stat", metrics.jobs_ended.clone());
        registry.register("task_attempts", "Task attempts ended, by cmd and outcome", metrics.task_attempts.clone());
        registry.register(
            "task_attempt_seconds",
            "Duration of task handler calls, by cmd",
            metrics.task_attempt_seconds.clone(),
        );
        registry.register(
            "plugin_call_seconds",
            "Duration of plugin calls, by job type and call",
            metrics.plugin_call_seconds.clone(),
        );
        registry.register("plugin_faults", "Plugin faults, by job type and kind", metrics.plugin_faults.clone());
        registry.register(
            "jobs_per_create_transaction",
            "Jobs written by each committed transaction of create_job (concurrent calls share one)",
            metrics.jobs_per_create_transaction.clone(),
        );
        registry.register(
            "results_per_finish_transaction",
            "Task results recorded by each committed transaction of finishing tasks (tasks that finish together share one)",
            metrics.results_per_finish_transaction.clone(),
        );
        registry.register("pending_tasks", "Tasks queued and not started (queue depth)", metrics.pending_tasks.clone());
        registry.register(
            "oldest_pending_seconds",
            "How long the oldest pending task has waited",
            metrics.oldest_pending_seconds.clone(),
        );
        registry.register("db_connections_open", "Database connections open", metrics.db_connections_open.clone());
        registry.register(
            "db_connections_in_use",
            "Database connections in use",
            metrics.db_connections_in_use.clone(),
        );
        registry.register("db_connections_max", "Database pool size limit", metrics.db_connections_max.clone());
        registry.register("build", "The server's version", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        metrics
    }
}

/// A cmd as a label: without its query string, so a plugin's URLs with
/// varying parameters do not make one series each.
fn cmd_label(cmd: &str) -> String {
    cmd.split(['?', '#']).next().unwrap_or_default().chars().take(200).collect()
}

impl Metrics {
    pub fn job_created(&self, job_type: &str) {
        self.jobs_created.get_or_create(&JobTypeLabels { job_type: job_type.to_owned() }).inc();
    }

    pub fn job_ended(&self, job_type: &str, status: &str, ret_stat: &str) {
        let labels =
            JobEndLabels { job_type: job_type.to_owned(), status: status.to_owned(), ret_stat: ret_stat.to_owned() };
        self.jobs_ended.get_or_create(&labels).inc();
    }

    pub fn task_called(&self, cmd: &str, took: Duration) {
        self.task_attempt_seconds.get_or_create(&CmdLabels { cmd: cmd_label(cmd) }).observe(took.as_secs_f64());
    }

    pub fn task_attempt_ended(&self, cmd: &str, outcome: &str) {
        self.task_attempts.get_or_create(&AttemptLabels { cmd: cmd_label(cmd), outcome: outcome.to_owned() }).inc();
    }

    pub fn plugin_called(&self, job_type: &str, call: &str, took: Duration) {
        let labels = PluginCallLabels { job_type: job_type.to_owned(), call: call.to_owned() };
        self.plugin_call_seconds.get_or_create(&labels).observe(took.as_secs_f64());
    }

    pub fn plugin_fault(&self, job_type: &str, kind: &str) {
        self.plugin_faults
            .get_or_create(&PluginFaultLabels { job_type: job_type.to_owned(), kind: kind.to_owned() })
            .inc();
    }

    pub fn create_transaction_committed(&self, jobs: usize) {
        self.jobs_per_create_transaction.observe(jobs as f64);
    }

    /// A transaction of task results committed, recording `results`.
    pub fn finish_transaction_committed(&self, results: usize) {
        self.results_per_finish_transaction.observe(results as f64);
    }

    /// The scrape: the values read now, then everything as text.
    pub fn render(&self, pending: i64, oldest_pending: Option<Duration>, pool: (usize, usize, usize)) -> String {
        self.pending_tasks.set(pending);
        self.oldest_pending_seconds.set(oldest_pending.map_or(0.0, |age| age.as_secs_f64()));
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.db_connections_open.set(gauge(pool.0));
        self.db_connections_in_use.set(gauge(pool.1));
        self.db_connections_max.set(gauge(pool.2));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_each_metric_with_its_labels() {
        let metrics = Metrics::default();
        metrics.job_created("hello");
        metrics.job_ended("hello", "failed", "ERR_X");
        metrics.task_called("/demo_api/ping?x=1", Duration::from_millis(3));
        metrics.task_attempt_ended("/demo_api/ping", "finished");
        metrics.plugin_fault("hello", "trap");
        let text = metrics.render(4, Some(Duration::from_secs(2)), (3, 1, 16));
        for line in [
            "xingqiao_jobs_created_total{job_type=\"hello\"} 1",
            "xingqiao_jobs_ended_total{job_type=\"hello\",status=\"failed\",ret_stat=\"ERR_X\"} 1",
            "xingqiao_task_attempts_total{cmd=\"/demo_api/ping\",outcome=\"finished\"} 1",
            "xingqiao_task_attempt_seconds_count{cmd=\"/demo_api/ping\"} 1",
            "xingqiao_plugin_faults_total{job_type=\"hello\",kind=\"trap\"} 1",
            "xingqiao_pending_tasks 4",
            "xingqiao_oldest_pending_seconds 2.0",
            "xingqiao_db_connections_in_use 1",
        ] {
            assert!(text.contains(line), "{line} not in:\n{text}");
        }
        assert!(text.contains("xingqiao_build_info{version="), "{text}");
    }
}
