//! Group commit for create_job (`group_commit`): the jobs of concurrent
//! calls are written in one transaction, in a few multi-row INSERTs for
//! however many jobs. A job whose name is taken fails only its own call.

use std::sync::Arc;

use super::group_commit::{Batch, GroupCommit};
use crate::db::jobs::{self, Created, Creation};
use crate::db::{Database, DbError};
use crate::metrics::Metrics;

/// Transactions of new jobs written at once by one process (one alone was
/// slower than none: see `group_commit`).
const MAX_WRITERS: usize = 4;

/// create_job's group commit.
pub struct CreateBatches(Arc<GroupCommit<NewJobs>>);

/// What one transaction of new jobs writes.
struct NewJobs {
    db: Database,
    /// This process, as the attempts of the tasks it starts record it.
    instance: String,
    metrics: Arc<Metrics>,
}

impl Batch for NewJobs {
    type Item = Creation;
    type Written = Created;

    async fn write(&self, creations: &[Creation]) -> Result<Vec<Created>, DbError> {
        let mut conn = self.db.conn().await?;
        let created = jobs::create_many(&mut conn, &self.instance, creations).await?;
        self.metrics.create_transaction_committed(created.len());
        Ok(created)
    }

    fn rows(creation: &Creation) -> usize {
        creation.tasks.len()
    }
}

impl CreateBatches {
    pub fn new(db: Database, instance: String, metrics: Arc<Metrics>) -> Self {
        Self(GroupCommit::new(NewJobs { db, instance, metrics }, MAX_WRITERS))
    }

    /// Creates the job, in a transaction of its own or shared with the
    /// jobs of concurrent calls; returns once that transaction committed.
    pub async fn create(&self, creation: Creation) -> Result<Created, DbError> {
        self.0.write(creation).await
    }
}
