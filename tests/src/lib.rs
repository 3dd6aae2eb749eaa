#![expect(clippy::unwrap_used, reason = "the harness fails a test by panicking")]

//! The harness of the end-to-end suite (see the README): the `xingqiao`
//! binary under test, a database per test, a running server and a Redis.

#![doc = include_str!("../README.md")]

mod binary;
mod browser;
mod redis;
pub mod rows;
mod server;
mod test_db;

pub use binary::{fixture_wasm, fixtures_dir, plugins_dir_with, xingqiao_bin};
pub use browser::Browser;
pub use redis::Redis;
pub use server::{TestServer, free_port};
pub use test_db::TestDb;

/// Writes `async fn name(backend: &str) { … }` once and expands it into one
/// test per backend: `name::sqlite`, `name::mysql`, `name::postgres` (or only
/// the networked two, with `networked` first: the cluster needs a database
/// that several processes share over the network). With `current_thread`
/// first, each runs on a one-thread runtime: spawned tasks then wait until
/// the test's future yields (the group commits' tests queue every write
/// before the writer first runs).
#[macro_export]
macro_rules! per_backend {
    (@tests [$($db:ident)*] $flavor:tt $(#[$meta:meta])* async fn $name:ident($backend:ident: &str) $body:block) => {
        $(#[$meta])*
        async fn $name($backend: &str) $body

        mod $name {
            $(
                #[tokio::test $flavor]
                async fn $db() {
                    super::$name(stringify!($db)).await
                }
            )*
        }
    };
    (networked $($test:tt)*) => {
        $crate::per_backend!(@tests [mysql postgres] (flavor = "multi_thread", worker_threads = 2) $($test)*);
    };
    (current_thread $($test:tt)*) => {
        $crate::per_backend!(@tests [sqlite mysql postgres] (flavor = "current_thread") $($test)*);
    };
    ($($test:tt)*) => {
        $crate::per_backend!(@tests [sqlite mysql postgres] (flavor = "multi_thread", worker_threads = 2) $($test)*);
    };
}
