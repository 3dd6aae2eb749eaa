//! Storage: SQLite (the embedded default), MySQL/MariaDB or PostgreSQL through
//! diesel-async, chosen by the URL.
//!
//! Contract: the database is the source of truth. Every state change is a
//! conditional update naming the state it leaves (see `jobs` and `tasks`), so a
//! task can never be advanced twice, whoever else runs the same update.
//!
//! A lookup by a unique key reads its row with `get_result`, not `first`:
//! diesel sends the `LIMIT 1` of `first` as a bound parameter, and SQLite
//! prepares such a statement again at every run (its planner may use a bound
//! LIMIT's value, so binding it expires the statement). The profile showed
//! that as a tenth of the embedded server's CPU.

pub mod attempts;
pub mod jobs;
pub mod locks;
pub mod mariadb_returning;
pub mod models;
pub mod pg_pools;
pub mod plugins;
pub mod prepared;
pub mod schema;
pub mod stats;
pub mod tasks;

use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;
use pg_pools::PgPools;

pub type SqliteAsync = SyncConnectionWrapper<SqliteConnection, OnCallingThread>;

/// Runs each SQLite statement on the thread that awaits it, instead of
/// handing it to the blocking pool and back (two context switches per
/// statement, which the profile showed to be most of a task's cost).
/// An embedded SQLite statement takes microseconds, and a transaction never
/// yields between its statements, so the write lock is held only while its
/// thread runs it; the transactions of this process take turns on the
/// [`Writer`] connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnCallingThread;

impl diesel_async::sync_connection_wrapper::SpawnBlocking for OnCallingThread {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        std::future::ready(Ok(task())).boxed()
    }

    fn get_runtime() -> Self {
        Self
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/mysql");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// A pool for one of the three backends. Query code is written once and
/// expanded per backend by [`on_conn!`] on a [`Conn`].
#[derive(Clone)]
pub enum Database {
    Sqlite(Pool<SqliteAsync>, Writer),
    Mysql(Pool<AsyncMysqlConnection>),
    Postgres(PgPools),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had: the API answers 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("bad database URL: {0}")]
    BadUrl(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for DbError {
    /// A connection that broke under a query means the database went away:
    /// that is "unavailable" (503, retry later), not a bug (500).
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if looks_like_connection_loss(info.message()) =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Query(other),
        }
    }
}

/// Drivers report a lost connection as an unclassified error; its text tells.
fn looks_like_connection_loss(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "connection closed",
        "broken pipe",
        "connection reset",
        "io error",
        "connection refused",
        "unexpected eof",
        "server has gone away",
        "lost connection",
        "connection to the server is closed",
        "input/output error",
    ]
    .iter()
    .any(|sign| message.contains(sign))
}

impl DbError {
    fn build(err: impl std::fmt::Display) -> Self {
        Self::BadUrl(err.to_string())
    }

    pub fn pool(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// A deadlock or a serialization failure: the database chose this
    /// transaction to give way, and it may simply be run again.
    pub fn is_conflict(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Query(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => true,
            Self::Query(Error::DatabaseError(_, info)) => info.message().to_ascii_lowercase().contains("deadlock"),
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
        )
    }
}

/// SQLite lets one transaction write at a time. A second writer waits in
/// SQLite's busy handler, which sleeps its thread (a runtime thread: see
/// [`OnCallingThread`]) for 1 ms, then 2, 5, 10…, while a task's
/// transaction takes a tenth of the first sleep. So every transaction of
/// this process runs on one connection, the writer, taken from a pool of
/// one: a transaction waiting its turn yields to the runtime and starts as
/// soon as the one before it commits. One writer also keeps its page cache:
/// SQLite drops a connection's cache whenever another connection has
/// written. Reads outside a transaction use the other connections, beside
/// the writer (WAL). The busy handler is left for another process on the
/// same file and for the few writes outside a transaction.
#[derive(Clone)]
pub struct Writer(Pool<SqliteAsync>);

/// A pooled connection to one of the three backends. Query functions take
/// `&mut Conn`, so a caller composes several in one transaction
/// ([`Conn::begin`], [`Conn::finish`]). A connection that lost its server is
/// not given back to the pool: the next checkout opens a fresh one (so work
/// resumes by itself once the database is back).
pub struct Conn {
    pooled: Option<Pooled>,
    lost: bool,
    /// SQLite's [`Writer`]: taken by the outermost transaction, and used
    /// for every statement until it ends.
    writer: Option<Writer>,
    writing: Option<Pooled>,
    /// Transactions open on this connection (more than one: savepoints).
    depth: u32,
}

#[doc(hidden)]
#[expect(
    clippy::large_enum_variant,
    reason = "one lives per checkout, briefly; boxing would add an allocation to every query"
)]
pub enum Pooled {
    Sqlite(deadpool::managed::Object<AsyncDieselConnectionManager<SqliteAsync>>),
    Mysql(deadpool::managed::Object<AsyncDieselConnectionManager<AsyncMysqlConnection>>),
    Postgres(deadpool::managed::Object<pg_pools::Opener>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("lost", &self.lost).finish_non_exhaustive()
    }
}

/// Runs `$body` with `$c: &mut <backend connection>`, expanded once per
/// backend; an outcome saying the server went away marks the connection lost.
#[macro_export]
#[doc(hidden)]
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {{
        let conn: &mut $crate::db::Conn = $conn;
        let outcome = match conn.pooled_mut() {
            Err(err) => Err(err),
            Ok($crate::db::Pooled::Sqlite(object)) => {
                async {
                    let $c = &mut **object;
                    $body
                }
                .await
            }
            Ok($crate::db::Pooled::Mysql(object)) => {
                async {
                    let $c = &mut **object;
                    $body
                }
                .await
            }
            Ok($crate::db::Pooled::Postgres(object)) => {
                async {
                    // The pooled connection is counted (see `pg_pools`).
                    let $c = &mut ***object;
                    $body
                }
                .await
            }
        };
        conn.note(&outcome);
        outcome
    }};
}

/// Runs `$body` — an expression on `$conn` that may `return` early — in one
/// transaction (a savepoint inside another): committed when it gives `Ok`,
/// rolled back otherwise.
#[macro_export]
#[doc(hidden)]
macro_rules! in_transaction {
    ($conn:ident => $body:expr) => {{
        $conn.begin().await?;
        let outcome: Result<_, $crate::db::DbError> = async { $body }.await;
        $conn.finish(outcome).await
    }};
}

impl Conn {
    /// "sqlite", "mysql" or "postgres".
    pub fn backend(&self) -> &'static str {
        match &self.pooled {
            Some(Pooled::Mysql(_)) => "mysql",
            Some(Pooled::Postgres(_)) => "postgres",
            _ => "sqlite",
        }
    }

    #[doc(hidden)]
    pub fn pooled_mut(&mut self) -> Result<&mut Pooled, DbError> {
        let pooled = if self.writing.is_some() { self.writing.as_mut() } else { self.pooled.as_mut() };
        pooled.ok_or_else(|| DbError::Unavailable(String::from("connection already discarded")))
    }

    #[doc(hidden)]
    pub fn note<T>(&mut self, outcome: &Result<T, DbError>) {
        if matches!(outcome, Err(DbError::Unavailable(_))) {
            self.lost = true;
        }
    }

    /// Opens a transaction (a savepoint inside another); end it with [`Conn::finish`].
    pub async fn begin(&mut self) -> Result<(), DbError> {
        if let (Some(Writer(pool)), 0) = (&self.writer, self.depth) {
            self.writing = Some(Pooled::Sqlite(pool.get().await.map_err(DbError::pool)?));
        }
        let pipelined = match (self.depth, self.pooled_mut()) {
            (0, Ok(Pooled::Postgres(object))) => Some(begin_pipelined(object).map_err(DbError::from)),
            _ => None,
        };
        let begun = match pipelined {
            Some(begun) => {
                self.note(&begun);
                begun
            }
            None => on_conn!(self, c => Ok(begin_transaction(c).await?)),
        };
        match begun {
            Ok(()) => self.depth += 1,
            Err(_) if self.depth == 0 => self.stop_writing(),
            Err(_) => {}
        }
        begun
    }

    /// Commits when `outcome` is `Ok`, else rolls back; gives `outcome` back
    /// (or the commit's error).
    pub async fn finish<T>(&mut self, outcome: Result<T, DbError>) -> Result<T, DbError> {
        let ended = self.end(outcome).await;
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 {
            self.stop_writing();
        }
        ended
    }

    /// The writer goes back to its pool (or, lost, is discarded).
    fn stop_writing(&mut self) {
        if let Some(writing) = self.writing.take()
            && self.lost
        {
            discard(writing);
        }
    }

    async fn end<T>(&mut self, outcome: Result<T, DbError>) -> Result<T, DbError> {
        match outcome {
            Ok(value) => {
                on_conn!(self, c => Ok(commit_transaction(c).await?))?;
                Ok(value)
            }
            Err(err) => {
                // The error that ended the transaction is the one to report.
                let _ = on_conn!(self, c => Ok(rollback_transaction(c).await?));
                Err(err)
            }
        }
    }
}

// Through diesel-async's transaction manager, which tracks the depth: a
// diesel `transaction` inside one of ours becomes a savepoint.
async fn begin_transaction<C: AsyncConnection>(c: &mut C) -> diesel::QueryResult<()> {
    <C::TransactionManager as diesel_async::TransactionManager<C>>::begin_transaction(c).await
}

/// PostgreSQL's `BEGIN`, sent without waiting for its answer: the
/// transaction's first statement follows it in the same round trip instead
/// of one after it (one round trip of the five of a finishing step).
/// PostgreSQL runs a connection's requests in the order sent, so that
/// statement runs inside the transaction. `BEGIN` cannot fail on a working
/// connection (it takes no lock and writes nothing; another `BEGIN` is only
/// a warning), and on a broken one the statements behind it fail too, so its
/// answer is left unread: tokio-postgres drops an answer nobody waits for.
/// The transaction manager is told of the new depth as its own `BEGIN`
/// would, so that `COMMIT`, `ROLLBACK` and savepoints work as before.
fn begin_pipelined(c: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
    use diesel_async::{SimpleAsyncConnection, TransactionManager};
    type Manager = <AsyncPgConnection as AsyncConnection>::TransactionManager;
    if Manager::transaction_manager_status_mut(c).transaction_depth()?.is_some() {
        return Err(diesel::result::Error::AlreadyInTransaction);
    }
    // The first poll queues the request on the connection (tokio-postgres
    // sends before it waits for the answer); a quick error is still seen.
    if let Some(Err(err)) = SimpleAsyncConnection::batch_execute(&mut &*c, "BEGIN").now_or_never() {
        return Err(err);
    }
    match Manager::transaction_manager_status_mut(c) {
        TransactionManagerStatus::Valid(status) => {
            status.change_transaction_depth(TransactionDepthChange::IncreaseDepth)
        }
        TransactionManagerStatus::InError => Err(diesel::result::Error::BrokenTransactionManager),
    }
}

/// PostgreSQL's `COMMIT`, sent behind `last` (the outermost transaction's
/// last statements) in their round trip instead of one after it. PostgreSQL
/// runs a connection's requests in the order sent, and turns the `COMMIT`
/// of a transaction whose statement failed into a `ROLLBACK`. So call it
/// only where nothing is left to decide once `last` answers: an answer that
/// the caller then finds wrong could no longer roll the transaction back.
/// The `COMMIT` goes through the statement cache's lock as `last`'s
/// statements do, so it cannot overtake one still being prepared. Inside a
/// savepoint it only runs `last`. The transaction manager is told of the
/// commit as its own `COMMIT` would, and [`Conn::finish`] then commits
/// nothing more.
pub(crate) async fn commit_behind<T>(
    c: &mut AsyncPgConnection,
    last: impl AsyncFnOnce(&AsyncPgConnection) -> diesel::QueryResult<T>,
) -> diesel::QueryResult<T> {
    use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
    use diesel_async::TransactionManager;
    type Manager = <AsyncPgConnection as AsyncConnection>::TransactionManager;
    let outermost = Manager::transaction_manager_status_mut(c).transaction_depth()? == Some(std::num::NonZeroU32::MIN);
    if !outermost {
        return last(c).await;
    }
    let mut committing = &*c;
    let commit = prepared::prepared(diesel::sql_query("COMMIT")).execute(&mut committing);
    let (value, _) = futures_util::try_join!(last(c), commit)?;
    match Manager::transaction_manager_status_mut(c) {
        TransactionManagerStatus::Valid(status) => {
            status.change_transaction_depth(TransactionDepthChange::DecreaseDepth)?;
            Ok(value)
        }
        TransactionManagerStatus::InError => Err(diesel::result::Error::BrokenTransactionManager),
    }
}

async fn commit_transaction<C: AsyncConnection>(c: &mut C) -> diesel::QueryResult<()> {
    type Manager<C> = <C as AsyncConnection>::TransactionManager;
    // Committed already, behind its last statements ([`commit_behind`]).
    if <Manager<C> as diesel_async::TransactionManager<C>>::transaction_manager_status_mut(c)
        .transaction_depth()?
        .is_none()
    {
        return Ok(());
    }
    <C::TransactionManager as diesel_async::TransactionManager<C>>::commit_transaction(c).await
}

async fn rollback_transaction<C: AsyncConnection>(c: &mut C) -> diesel::QueryResult<()> {
    <C::TransactionManager as diesel_async::TransactionManager<C>>::rollback_transaction(c).await
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.lost {
            return;
        }
        if let Some(pooled) = self.pooled.take() {
            discard(pooled);
        }
        if let Some(writing) = self.writing.take() {
            discard(writing);
        }
    }
}

/// A connection that lost its server: not given back to its pool.
fn discard(pooled: Pooled) {
    match pooled {
        Pooled::Sqlite(object) => drop(deadpool::managed::Object::take(object)),
        Pooled::Mysql(object) => drop(deadpool::managed::Object::take(object)),
        Pooled::Postgres(object) => drop(deadpool::managed::Object::take(object)),
    }
}

/// Pooled connections go back into use without a test query: a broken one is
/// noticed by the query that fails on it and then discarded
/// (see [`Conn`]). The default ("verified") recycling would add a round
/// trip to every checkout.
fn fast_recycling<C: AsyncConnection + 'static>() -> ManagerConfig<C> {
    let mut config = ManagerConfig::<C>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config
}

/// How long a SQLite writer waits for the one before it.
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A SQLite connection as XingQiao uses it: WAL, a busy timeout, a page cache.
fn sqlite_config() -> ManagerConfig<SqliteAsync> {
    let mut config = fast_recycling::<SqliteAsync>();
    config.custom_setup = Box::new(|path| {
        let path = path.to_owned();
        async move {
            let mut conn = SqliteAsync::establish(&path).await?;
            // WAL lets readers run beside the writer; the busy timeout makes
            // writers queue instead of failing; NORMAL is durable in WAL.
            // A 16 MiB page cache keeps report scans (statistics over
            // 100,000 jobs) off the read syscalls. (Memory-mapped I/O was
            // tried: a growing database is remapped often, and the TLB
            // shootdowns cost the engine more than the reports gained.)
            // Temporary storage in memory: a multi-row INSERT inside a
            // transaction keeps a statement journal (to undo just itself),
            // and past 64 KiB SQLite spills it to a temporary file; a burst
            // of create_job calls then paid a write() per spilled page.
            // The busy timeout comes first: switching to WAL needs a lock,
            // which a closing connection of a previous run may still hold.
            for pragma in [
                &format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis()),
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA cache_size = -16384",
                "PRAGMA temp_store = MEMORY",
            ] {
                diesel::sql_query(pragma)
                    .execute(&mut conn)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        }
        .boxed()
    });
    config
}

impl Database {
    /// Connections open and, of those, in use: `(size, in use, max)`.
    pub fn pool_use(&self) -> (usize, usize, usize) {
        let status = match self {
            Self::Sqlite(pool, _) => pool.status(),
            Self::Mysql(pool) => pool.status(),
            Self::Postgres(pools) => return pools.usage(),
        };
        (status.size, status.size.saturating_sub(status.available), status.max_size)
    }

    /// `sqlite://path` (or a bare path), `mysql://…`, `postgres://…`.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, DbError> {
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let mut config = fast_recycling::<AsyncMysqlConnection>();
            // READ COMMITTED, as on PostgreSQL: the transitions are designed for
            // it, and InnoDB's gap locks under REPEATABLE READ deadlock
            // concurrent finishes against inserts of new jobs.
            config.custom_setup = Box::new(|url| {
                let url = url.to_owned();
                async move {
                    let mut conn = AsyncMysqlConnection::establish(&url).await?;
                    diesel::sql_query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .execute(&mut conn)
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    let version: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("VERSION()"))
                        .get_result(&mut conn)
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    mariadb_returning::note_server(&version);
                    Ok(conn)
                }
                .boxed()
            });
            let manager = AsyncDieselConnectionManager::<AsyncMysqlConnection>::new_with_config(url, config);
            return Ok(Self::Mysql(Pool::builder(manager).max_size(max_connections).build().map_err(DbError::build)?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(PgPools::new(url, max_connections)));
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url).to_owned();
        let readers = AsyncDieselConnectionManager::<SqliteAsync>::new_with_config(path.clone(), sqlite_config());
        let writer = AsyncDieselConnectionManager::<SqliteAsync>::new_with_config(path, sqlite_config());
        Ok(Self::Sqlite(
            Pool::builder(readers).max_size(max_connections).build().map_err(DbError::build)?,
            Writer(
                Pool::builder(writer)
                    .max_size(1)
                    // As long as SQLite's own busy timeout: a transaction
                    // that waits longer is refused (503), not stuck.
                    .wait_timeout(Some(SQLITE_BUSY_TIMEOUT))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(DbError::build)?,
            ),
        ))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(..) => "sqlite",
            Self::Mysql(_) => "mysql",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations. Runs the synchronous harness on a blocking
    /// thread (the async harness panics on a current-thread runtime).
    pub async fn migrate(&self, url: &str) -> Result<(), DbError> {
        let url = url.to_owned();
        let backend = self.backend();
        tokio::task::spawn_blocking(move || -> Result<(), DbError> {
            use diesel::Connection;
            use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
            let migration_err = |err: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(err.to_string());
            match backend {
                "mysql" => {
                    let url = url.replacen("mariadb://", "mysql://", 1);
                    let mut conn = <AsyncConnectionWrapper<AsyncMysqlConnection> as Connection>::establish(&url)
                        .map_err(DbError::pool)?;
                    // Instances starting together take turns: diesel's migrations are not
                    // safe to run twice at once.
                    diesel::RunQueryDsl::execute(
                        diesel::sql_query("SELECT GET_LOCK('xingqiao_migrations', 120)"),
                        &mut conn,
                    )?;
                    let applied = conn.run_pending_migrations(MYSQL_MIGRATIONS).map(drop).map_err(migration_err);
                    diesel::RunQueryDsl::execute(
                        diesel::sql_query("SELECT RELEASE_LOCK('xingqiao_migrations')"),
                        &mut conn,
                    )?;
                    applied?;
                }
                "postgres" => {
                    let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
                        .map_err(DbError::pool)?;
                    diesel::RunQueryDsl::execute(diesel::sql_query("SELECT pg_advisory_lock(72510)"), &mut conn)?;
                    let applied = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop).map_err(migration_err);
                    diesel::RunQueryDsl::execute(diesel::sql_query("SELECT pg_advisory_unlock(72510)"), &mut conn)?;
                    applied?;
                }
                _ => {
                    let path = url.strip_prefix("sqlite://").unwrap_or(&url);
                    let mut conn = <SqliteConnection as Connection>::establish(path).map_err(DbError::pool)?;
                    // Wait for another writer (a previous run's last task, a
                    // second process) instead of failing with "database is locked".
                    diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA busy_timeout = 10000"), &mut conn)?;
                    conn.run_pending_migrations(SQLITE_MIGRATIONS).map_err(migration_err)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|err| DbError::Migration(err.to_string()))?
    }

    /// A connection from the pool, for query functions.
    pub async fn conn(&self) -> Result<Conn, DbError> {
        let (pooled, writer) = match self {
            Self::Sqlite(pool, writer) => {
                (Pooled::Sqlite(pool.get().await.map_err(DbError::pool)?), Some(writer.clone()))
            }
            Self::Mysql(pool) => (Pooled::Mysql(pool.get().await.map_err(DbError::pool)?), None),
            Self::Postgres(pools) => (Pooled::Postgres(pools.get().await?), None),
        };
        Ok(Conn { pooled: Some(pooled), lost: false, writer, writing: None, depth: 0 })
    }

    /// A cheap round trip, for `/healthz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        on_conn!(&mut self.conn().await?, c => {
            diesel::sql_query("SELECT 1").execute(c).await?;
            Ok(())
        })
    }
}
