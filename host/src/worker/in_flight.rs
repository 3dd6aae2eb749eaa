//! The tasks whose attempts this process runs now: their leases are renewed
//! by the sweeper, and on shutdown whatever is left is handed back.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone, Default)]
pub(super) struct InFlight(Arc<Mutex<HashSet<i64>>>);

impl InFlight {
    pub(super) fn insert(&self, task_id: i64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(task_id);
    }

    pub(super) fn remove(&self, task_id: i64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&task_id);
    }

    pub(super) fn snapshot(&self) -> Vec<i64> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_in_flight_from_insert_to_remove() {
        let in_flight = InFlight::default();
        in_flight.insert(7);
        in_flight.insert(9);
        in_flight.remove(7);
        assert_eq!(in_flight.snapshot(), vec![9]);
    }
}
