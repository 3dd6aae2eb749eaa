//! Process counters from `/proc/<pid>/stat`, for the benches that print CPU
//! time or page faults (shared with `#[path]`).

use std::time::Duration;

/// The fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces), counted from 0: minflt is 7, utime and stime are 11 and 12;
/// `count` of them summed. 0 for a process that is gone.
fn fields(pid: &str, from: usize, count: usize) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().skip(from).take(count).filter_map(|f| f.parse::<u64>().ok()).sum()
}

/// CPU time so far of this process, all threads (in clock ticks of 10 ms).
pub fn cpu() -> Duration {
    Duration::from_millis(fields("self", 11, 2) * 10)
}

/// CPU time so far of process `pid`, all threads; zero once it is gone.
pub fn cpu_of(pid: u32) -> Duration {
    Duration::from_millis(fields(&pid.to_string(), 11, 2) * 10)
}

/// Minor page faults so far: a plugin's memory pages that its slot did not
/// keep from the call before are faulted in again.
pub fn minor_faults() -> u64 {
    fields("self", 7, 1)
}

/// The ids of the running processes whose command name (`/proc/<pid>/comm`)
/// is one of `names`.
pub fn pids_named(names: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            names.contains(&comm.trim_end())
        })
        .collect()
}

/// The whole machine's CPU time so far, from the first line of `/proc/stat`:
/// `(busy, all)`, where busy is everything but idle and I/O wait, summed
/// over the cores (in clock ticks of 10 ms). It counts what no process
/// sample does: processes that end in between (a database connection
/// closed), interrupts and the kernel's own threads.
pub fn machine() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let all: u64 = ticks.iter().sum();
    let waiting = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (Duration::from_millis((all - waiting) * 10), Duration::from_millis(all * 10))
}
