//! A database made for one test, dropped after it: a SQLite file in a
//! folder of its own, or a database created on the machine's MariaDB or
//! PostgreSQL (`XINGQIAO_TEST_MYSQL_URL`, `XINGQIAO_TEST_POSTGRES_URL`).

use std::path::PathBuf;

use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, RunQueryDsl};

fn mysql_admin() -> String {
    std::env::var("XINGQIAO_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn postgres_admin() -> String {
    std::env::var("XINGQIAO_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{db}")
}

/// A database made for one test; dropped with it.
pub struct TestDb {
    pub backend: String,
    pub url: String,
    name: String,
    pub dir: PathBuf,
}

impl TestDb {
    pub async fn create(backend: &str) -> Self {
        let name = format!("xq_test_{}", uuid::Uuid::new_v4().simple());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let url = match backend {
            "sqlite" => format!("sqlite://{}", dir.join("xingqiao.db").display()),
            "mysql" => {
                let mut conn = AsyncMysqlConnection::establish(&mysql_admin()).await.unwrap_or_else(|err| {
                    panic!("MariaDB is not reachable at {} ({err}); it is required", mysql_admin())
                });
                diesel::sql_query(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                replace_db(&mysql_admin(), &name)
            }
            "postgres" => {
                let mut conn = AsyncPgConnection::establish(&postgres_admin()).await.unwrap_or_else(|err| {
                    panic!("PostgreSQL is not reachable at {} ({err}); it is required", postgres_admin())
                });
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
                replace_db(&postgres_admin(), &name)
            }
            other => panic!("unknown backend {other:?} in XINGQIAO_TEST_DATABASES"),
        };
        Self { backend: backend.to_owned(), url, name, dir }
    }
}

impl TestDb {
    /// Another handle on the same database, which drops nothing: for a second
    /// server over it.
    pub fn shared(&self) -> TestDb {
        TestDb { backend: String::from("none"), url: self.url.clone(), name: String::new(), dir: self.dir.clone() }
    }

    /// Like [`TestDb::shared`], with a data folder of its own (a second
    /// instance compiles and caches plugins itself); the folder, not the
    /// database, is removed on drop.
    pub fn shared_with_own_dir(&self) -> TestDb {
        let dir = std::env::temp_dir().join(format!("xq-instance-{}", uuid::Uuid::new_v4().simple()));
        TestDb { backend: String::from("dir-only"), url: self.url.clone(), name: String::new(), dir }
    }

    /// Moves the database out, leaving an inert value to drop.
    pub(crate) fn take_over(&mut self) -> TestDb {
        let inert =
            TestDb { backend: String::from("none"), url: String::new(), name: String::new(), dir: PathBuf::new() };
        std::mem::replace(self, inert)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (backend, name) = (self.backend.clone(), self.name.clone());
        if self.backend == "none" {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // Drop runs outside async code: a small runtime of its own on a thread.
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                match backend.as_str() {
                    "mysql" => {
                        if let Ok(mut conn) = AsyncMysqlConnection::establish(&mysql_admin()).await {
                            let _ =
                                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await;
                        }
                    }
                    "postgres" => {
                        if let Ok(mut conn) = AsyncPgConnection::establish(&postgres_admin()).await {
                            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        }
                    }
                    _ => {}
                }
            });
        });
        let _ = dropped.join();
    }
}
