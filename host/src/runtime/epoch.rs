//! The epoch ticker: advances the engine's epoch, which is what makes a call's
//! deadline fire, but only while at least one plugin call runs.
//!
//! Why it parks: a ticker that ran all the time woke a thread every tick (1 ms)
//! on an idle server, about 3 % of a core for nothing. Deadlines are set
//! relative to the epoch at the start of each call, so an epoch that stands
//! still while no call runs changes no deadline.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use wasmtime::Engine;

/// Owned by the runtime; dropping it ends the ticker's thread.
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
}

/// Keeps the ticker running while alive: hold one for the whole of a call.
pub(crate) struct RunningCall<'a> {
    shared: &'a Shared,
}

#[derive(Default)]
struct Shared {
    calls: AtomicUsize,
    closed: AtomicBool,
    parked: AtomicBool,
    ticks: AtomicU64,
    // Only for parking and waking: the count itself is the atomic above.
    gate: Mutex<()>,
    wake: Condvar,
}

impl EpochTicker {
    /// Starts the thread; it holds only a weak reference to the engine.
    pub(crate) fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let engine = engine.weak();
        let ticker = Arc::clone(&shared);
        thread::Builder::new().name("xingqiao-epoch".into()).spawn(move || {
            while ticker.wait_for_a_call() {
                // Sleep first, so a call that woke the ticker has its whole
                // first tick (a ticker that never parked gave it 0 to 1 tick).
                thread::sleep(tick);
                let Some(engine) = engine.upgrade() else { return };
                engine.increment_epoch();
                ticker.ticks.fetch_add(1, Ordering::Relaxed);
            }
        })?;
        Ok(Self { shared })
    }

    /// Marks a call as running until the returned guard is dropped.
    pub(crate) fn call(&self) -> RunningCall<'_> {
        if self.shared.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.shared.notify();
        }
        RunningCall { shared: &self.shared }
    }

    /// Epochs advanced so far (for tests of the parking).
    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.notify();
    }
}

impl Drop for RunningCall<'_> {
    fn drop(&mut self) {
        self.shared.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Taking the gate before notifying means the ticker is either not yet
    /// checking the count (and will see it) or already waiting (and is woken).
    fn notify(&self) {
        let _gate = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.wake.notify_one();
    }

    /// Returns at once while calls run; parks while none does. `false` once
    /// the runtime is gone.
    fn wait_for_a_call(&self) -> bool {
        if self.calls.load(Ordering::SeqCst) == 0 && !self.closed.load(Ordering::SeqCst) {
            let gate = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            self.parked.store(true, Ordering::SeqCst);
            let idle = |_: &mut ()| self.calls.load(Ordering::SeqCst) == 0 && !self.closed.load(Ordering::SeqCst);
            drop(self.wake.wait_while(gate, idle).unwrap_or_else(|poisoned| poisoned.into_inner()));
            self.parked.store(false, Ordering::SeqCst);
        }
        !self.closed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn eventually(what: &str, condition: impl Fn() -> bool) {
        let start = Instant::now();
        while !condition() {
            assert!(start.elapsed() < Duration::from_secs(10), "never happened: {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_epoch_stands_still_while_no_call_runs_and_advances_while_one_does() {
        let engine = Engine::default();
        let ticker = EpochTicker::start(&engine, Duration::from_millis(1)).expect("ticker");
        eventually("the ticker parks at start", || ticker.is_parked());
        thread::sleep(Duration::from_millis(30));
        assert_eq!(ticker.ticks(), 0, "no call ran, yet the epoch advanced");

        let call = ticker.call();
        eventually("the epoch advances during a call", || ticker.ticks() >= 3);
        drop(call);

        eventually("the ticker parks once the call ended", || ticker.is_parked());
        let parked_at = ticker.ticks();
        thread::sleep(Duration::from_millis(30));
        assert_eq!(ticker.ticks(), parked_at, "the epoch advanced while no call ran");

        // Two calls overlapping: the ticker runs until the last one ends.
        let first = ticker.call();
        let second = ticker.call();
        drop(first);
        let before = ticker.ticks();
        eventually("the epoch advances while the second call runs", || ticker.ticks() >= before + 3);
        drop(second);
        eventually("the ticker parks after the second call", || ticker.is_parked());
    }
}
