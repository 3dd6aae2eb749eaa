//! Keeping the task path's statements prepared.
//!
//! diesel never caches the prepared statement of an UPDATE, of an INSERT
//! with defaultable values, or of a query with an `IN` list: it marks them
//! unsafe to cache, because their SQL may differ from call to call. So each
//! call prepares the statement again. On MariaDB that is three commands
//! (prepare, execute, close) instead of one. On SQLite it is a parse, and on
//! PostgreSQL a parse and a plan. A task's run is a dozen such statements,
//! and the profile of a cluster under load showed the database's CPU spent on
//! exactly that (`docs/scale-out.md`).
//!
//! [`prepared`] wraps such a query and says it may be cached. The cache entry
//! is then keyed by the query's SQL text and bind types, never by its Rust
//! type (its [`QueryId`] is not static). So two calls share a prepared
//! statement only when their SQL is the same, and a variant, say a default
//! instead of a value, gets its own entry. This is correct for any query.
//! What it must not wrap is a query whose SQL takes many shapes, such as an
//! `IN` list of any length: every length would stay cached on every
//! connection. [`prepared_if`] with a bound on the list's length covers that.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// Longest `IN` list whose statement is kept prepared: a job's dependents
/// are usually few. A fan-out's long lists are prepared each time.
pub const MAX_PREPARED_LIST: usize = 8;

/// A query whose prepared statement is kept per connection, keyed by its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q> {
    query: Q,
    cache: bool,
}

/// Keeps `query`'s prepared statement (see the module doc).
pub fn prepared<Q>(query: Q) -> Prepared<Q> {
    Prepared { query, cache: true }
}

/// Keeps `query`'s prepared statement only if its `IN` list has at most
/// [`MAX_PREPARED_LIST`] items.
pub fn prepared_if<Q>(list_len: usize, query: Q) -> Prepared<Q> {
    Prepared { query, cache: list_len <= MAX_PREPARED_LIST }
}

impl<Q, DB> QueryFragment<DB> for Prepared<Q>
where
    Q: QueryFragment<DB>,
    DB: Backend,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, backend: &DB) -> QueryResult<bool> {
        if self.cache { Ok(true) } else { self.query.is_safe_to_cache_prepared(backend) }
    }
}

/// Not static: the statement cache keys it by its SQL text and bind types.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// A wrapped SELECT loads as the query it wraps.
impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// A wrapped query runs as any query: diesel-async's `RunQueryDsl` is
/// implemented for the types that carry this marker.
impl<Q> diesel::query_dsl::RunQueryDslSupport for Prepared<Q> {}
