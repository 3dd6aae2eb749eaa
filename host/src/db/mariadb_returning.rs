//! `INSERT … RETURNING` on MariaDB.
//!
//! MariaDB (10.5 and later) gives an INSERT's new rows back in the INSERT
//! itself, as PostgreSQL and SQLite do; MySQL does not. diesel's MySQL
//! backend speaks for both, so it offers no `returning()`, and without it
//! every new id costs MariaDB a second statement to read it back: an
//! attempt's id at each task's start and the ids of create_job's rows, five
//! of a hello job's 35 statements (`docs/scale-out.md`). Each statement
//! is a wake-up of a connection thread, and that is what MariaDB's CPU goes
//! to on this path.
//!
//! [`Returning`] appends the clause to a diesel INSERT. Whether the server
//! takes it is learnt once, when a connection is set up ([`note_server`]): a
//! process talks to one database, so the answer is process-wide. On MySQL the
//! callers keep their read-back.

use std::sync::atomic::{AtomicBool, Ordering};

use diesel::expression::Expression;
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// Set once a connection found MariaDB 10.5 or later.
static INSERT_RETURNING: AtomicBool = AtomicBool::new(false);
/// Set by [`use_read_back`]: the MySQL path, whatever the server.
static READ_BACK: AtomicBool = AtomicBool::new(false);

/// Records what the server's `VERSION()` says about `INSERT … RETURNING`.
pub fn note_server(version: &str) {
    INSERT_RETURNING.store(has_insert_returning(version), Ordering::Relaxed);
}

/// Whether the MySQL-family server of this process takes `INSERT … RETURNING`.
pub fn available() -> bool {
    INSERT_RETURNING.load(Ordering::Relaxed) && !READ_BACK.load(Ordering::Relaxed)
}

/// From now on this process reads new ids back as on MySQL, even on
/// MariaDB: for the tests of that path, which have no MySQL to run on.
#[doc(hidden)]
pub fn use_read_back() {
    READ_BACK.store(true, Ordering::Relaxed);
}

/// MariaDB's `VERSION()` reads `10.11.19-MariaDB-0+deb12u1`; MySQL's has no
/// `MariaDB` in it.
fn has_insert_returning(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    let mut numbers = version.split(['.', '-']).map(|part| part.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (10, 5),
        _ => false,
    }
}

/// An INSERT with `RETURNING columns` appended: loads as `columns` would.
#[derive(Debug, Clone, Copy)]
pub struct Returning<S, R> {
    insert: S,
    columns: R,
}

/// `insert … RETURNING columns`; only for a server where [`available`].
pub fn returning<S, R>(insert: S, columns: R) -> Returning<S, R> {
    Returning { insert, columns }
}

impl<S, R> QueryFragment<Mysql> for Returning<S, R>
where
    S: QueryFragment<Mysql>,
    R: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        self.insert.walk_ast(pass.reborrow())?;
        pass.push_sql(" RETURNING ");
        self.columns.walk_ast(pass.reborrow())
    }

    fn is_safe_to_cache_prepared(&self, backend: &Mysql) -> QueryResult<bool> {
        self.insert.is_safe_to_cache_prepared(backend)
    }
}

/// Not static, as an INSERT's own (its SQL varies with its values' shape).
impl<S, R> QueryId for Returning<S, R> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<S, R: Expression> Query for Returning<S, R> {
    type SqlType = R::SqlType;
}

#[cfg(test)]
mod tests {
    use super::has_insert_returning;

    #[test]
    fn only_mariadb_from_10_5_takes_insert_returning() {
        assert!(has_insert_returning("10.11.19-MariaDB-0+deb12u1"));
        assert!(has_insert_returning("10.5.0-MariaDB"));
        assert!(has_insert_returning("11.4.2-MariaDB-log"));
        assert!(!has_insert_returning("10.4.34-MariaDB"));
        assert!(!has_insert_returning("8.4.3"));
        assert!(!has_insert_returning("MariaDB"));
    }
}
