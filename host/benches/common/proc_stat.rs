//! This process's counters from `/proc/self/stat`, for the benches that
//! print CPU time or page faults per call (shared with `#[path]`).

use std::time::Duration;

/// The fields after the command name (which may hold spaces), counted from
/// 0: minflt is 7, utime and stime are 11 and 12; `count` of them summed.
fn fields(from: usize, count: usize) -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().skip(from).take(count).filter_map(|f| f.parse::<u64>().ok()).sum()
}

/// CPU time so far, all threads (in clock ticks of 10 ms).
pub fn cpu() -> Duration {
    Duration::from_millis(fields(11, 2) * 10)
}

/// Minor page faults so far: a plugin's memory pages that its slot did not
/// keep from the call before are faulted in again.
pub fn minor_faults() -> u64 {
    fields(7, 1)
}
