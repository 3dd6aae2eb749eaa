//! The state of one plugin call: a fresh store with deny-all WASI, captured and
//! bounded stdout/stderr, a memory limiter and (during `workflow`) the DAG.

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::dag::DagRecorder;
use super::limits::SandboxLimits;
use super::manifest::Grants;

/// What `wasi:random` gives a plugin without the `random` grant.
const FIXED_BYTES: [u8; 8] = [0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15];

/// Both clocks of a plugin without the `clocks` grant: the Unix epoch, forever.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Data of one `Store`; dropped with it at the end of the call.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryGuard,
    pub(crate) dag: Option<DagRecorder>,
    pub(crate) log: LogBudget,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
    /// Who is calling, for log lines: `plugin=<job_type> job=<name>`.
    pub(crate) plugin: String,
    pub(crate) job: String,
}

impl CallState {
    pub(crate) fn new(limits: &SandboxLimits, grants: &Grants, plugin: &str, job: &str) -> Self {
        let stdout = MemoryOutputPipe::new(limits.max_output_bytes);
        let stderr = MemoryOutputPipe::new(limits.max_output_bytes);
        // Deny by default: no preopened dirs, no env, no args, no network.
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        // Entropy and time only when granted: without them a plugin cannot
        // time its own calls (or the host) nor differ from run to run.
        if !grants.random {
            wasi.secure_random(Deterministic::new(FIXED_BYTES.to_vec()))
                .insecure_random(Deterministic::new(FIXED_BYTES.to_vec()))
                .insecure_random_seed(0);
        }
        if !grants.clocks {
            wasi.wall_clock(StoppedClock).monotonic_clock(StoppedClock);
        }
        let wasi = wasi.build();
        Self {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryGuard::new(grants.memory_bytes),
            dag: None,
            log: LogBudget::new(limits),
            stdout,
            stderr,
            plugin: plugin.to_owned(),
            job: job.to_owned(),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps the linear memory of all the component's memories together, and
/// remembers a refusal so an out-of-memory abort is reported as such.
#[derive(Debug)]
pub(crate) struct MemoryGuard {
    cap: usize,
    in_use: usize,
    pub(crate) refused: bool,
}

impl MemoryGuard {
    fn new(cap: usize) -> Self {
        Self { cap, in_use: 0, refused: false }
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let after = self.in_use.saturating_sub(current).saturating_add(desired);
        if after > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.in_use = after;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // A table element is a pointer or two; bound tables like memory.
        Ok(desired.saturating_mul(16) <= self.cap)
    }
}

/// Bounds what one call may write to our log.
#[derive(Debug)]
pub(crate) struct LogBudget {
    pub(crate) lines_left: usize,
    pub(crate) dropped: usize,
    pub(crate) max_line_bytes: usize,
}

impl LogBudget {
    fn new(limits: &SandboxLimits) -> Self {
        Self { lines_left: limits.max_log_lines, dropped: 0, max_line_bytes: limits.max_log_line_bytes }
    }

    /// The line to log, cut to size, or `None` when the budget is spent.
    pub(crate) fn admit<'a>(&mut self, line: &'a str) -> Option<&'a str> {
        if self.lines_left == 0 {
            self.dropped += 1;
            return None;
        }
        self.lines_left -= 1;
        Some(cut(line, self.max_line_bytes))
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_capped_across_all_memories_together() {
        let mut guard = MemoryGuard::new(100);
        assert!(guard.memory_growing(0, 60, None).unwrap());
        assert!(!guard.memory_growing(0, 60, None).unwrap(), "a second memory counts too");
        assert!(guard.refused);
        assert!(guard.memory_growing(60, 100, None).unwrap(), "growing the first to the cap is fine");
    }

    #[test]
    fn log_lines_are_cut_and_counted_when_over_budget() {
        let limits = SandboxLimits { max_log_lines: 1, max_log_line_bytes: 4, ..Default::default() };
        let mut budget = LogBudget::new(&limits);
        assert_eq!(budget.admit("héllo!"), Some("hél"));
        assert_eq!(budget.admit("again"), None);
        assert_eq!(budget.dropped, 1);
    }
}
