//! Group commit for task results (`group_commit`): the results of tasks
//! that finish together are recorded in one transaction, each with its
//! countdowns, its released dependents and, when it was the last, its job's
//! end. A worker goes on (acknowledges its message, runs the dependent it
//! carries on with) only once that transaction has committed.

use std::sync::Arc;

use super::group_commit::{Batch, GroupCommit};
use crate::db::tasks::{self, Finishing, Recorded};
use crate::db::{Database, DbError};
use crate::metrics::Metrics;

/// Transactions of results written at once by one process.
const MAX_WRITERS: usize = 4;

/// The group commit of task results.
pub struct FinishBatches(Arc<GroupCommit<Results>>);

/// What one transaction of results writes.
struct Results {
    db: Database,
    /// This process, as the attempts of the dependents it carries on with
    /// record it.
    instance: String,
    metrics: Arc<Metrics>,
}

impl Batch for Results {
    type Item = Finishing;
    type Written = Option<Recorded>;

    async fn write(&self, finishing: &[Finishing]) -> Result<Vec<Option<Recorded>>, DbError> {
        let mut conn = self.db.conn().await?;
        let recorded = tasks::finish_many(&mut conn, &self.instance, finishing).await?;
        self.metrics.finish_transaction_committed(recorded.len());
        Ok(recorded)
    }
}

impl FinishBatches {
    pub fn new(db: Database, instance: String, metrics: Arc<Metrics>) -> Self {
        Self(GroupCommit::new(Results { db, instance, metrics }, MAX_WRITERS))
    }

    /// Records a task's result ([`tasks::finish`]), in a transaction of its
    /// own or shared with concurrent ones; returns once it committed.
    /// `None` when the attempt no longer owned its task.
    pub async fn finish(&self, finishing: Finishing) -> Result<Option<Recorded>, DbError> {
        self.0.write(finishing).await
    }
}
