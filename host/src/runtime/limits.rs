//! Every bound the sandbox puts on a plugin, in one place.

use std::time::Duration;

/// Bounds on one plugin call. Each call gets a fresh store, so no bound carries
/// over from one call to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Linear memory of one call, all memories of the component together,
    /// unless the plugin is granted more (see `manifest`).
    pub memory_bytes: usize,
    /// The most memory a plugin may be granted per call (sizes the pool's slots).
    pub max_memory_bytes: usize,
    /// WASI interfaces a plugin may be granted; without a grant it reads a
    /// fixed byte cycle as random and a clock stopped at the epoch.
    pub grantable_wasi: Vec<super::manifest::WasiGrant>,
    /// Wall-clock budget of instantiation (the component's start functions).
    pub instantiate_deadline: Duration,
    /// Wall-clock budget of `metadata()` (read once when a plugin is loaded).
    pub metadata_deadline: Duration,
    pub params_check_deadline: Duration,
    pub workflow_deadline: Duration,
    pub job_notifier_deadline: Duration,
    /// `add-task` calls per job; one more stops the plugin.
    pub max_tasks: usize,
    /// Bytes of labels, cmds and JSON accepted from one `workflow()` call, so a
    /// plugin cannot make the host hoard memory 64 MiB at a time.
    pub max_dag_bytes: usize,
    /// `log` calls per plugin call; later lines are counted and dropped.
    pub max_log_lines: usize,
    /// Longest log line kept; longer ones are cut.
    pub max_log_line_bytes: usize,
    /// Captured stdout and stderr, each; writing past it fails the guest's write.
    pub max_output_bytes: usize,
    /// Calls that may run at the same time (sizes the pooling allocator).
    pub max_concurrent_calls: u32,
    /// Granularity of the deadlines: the epoch ticker's period (it ticks only
    /// while a call runs, see `epoch`).
    pub epoch_tick: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            max_memory_bytes: 256 << 20,
            grantable_wasi: vec![super::manifest::WasiGrant::Random, super::manifest::WasiGrant::Clocks],
            instantiate_deadline: Duration::from_secs(1),
            metadata_deadline: Duration::from_secs(1),
            params_check_deadline: Duration::from_millis(100),
            workflow_deadline: Duration::from_secs(2),
            job_notifier_deadline: Duration::from_secs(1),
            max_tasks: xingqiao_plugin_sdk::limits::MAX_TASKS,
            max_dag_bytes: 16 << 20,
            max_log_lines: 1_000,
            max_log_line_bytes: 4 << 10,
            max_output_bytes: 64 << 10,
            max_concurrent_calls: 64,
            epoch_tick: Duration::from_millis(1),
        }
    }
}

impl SandboxLimits {
    /// A deadline expressed in epoch ticks, never zero (zero traps at once).
    pub(crate) fn ticks(&self, deadline: Duration) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        u64::try_from(deadline.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks_and_never_to_zero() {
        let limits = SandboxLimits { epoch_tick: Duration::from_millis(5), ..Default::default() };
        assert_eq!(limits.ticks(Duration::from_millis(100)), 20);
        assert_eq!(limits.ticks(Duration::from_millis(101)), 21);
        assert_eq!(limits.ticks(Duration::ZERO), 1);
    }
}
