//! The path MySQL takes to learn new ids: it has no `INSERT … RETURNING`, so
//! create_job reads its rows' ids back and a task's start reads its
//! attempt's id back. There is no MySQL here, so this runs that path on
//! MariaDB with `RETURNING` switched off for the whole process (a test
//! binary of its own: `database.rs` runs MariaDB with it on).

use xingqiao::db::{attempts, jobs, mariadb_returning, tasks};
use xingqiao::engine::now;
use xingqiao::state::TaskStatus;
use xingqiao_tests::TestDb;
use xingqiao_tests::rows::{database, later, new_job, new_task};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_created_together_get_their_own_ids_ready_tasks_and_attempts_read_back() {
    mariadb_returning::use_read_back();
    let test_db = TestDb::create("mysql").await;
    let db = database(&test_db).await;
    let mut conn = db.conn().await.unwrap();
    assert!(!mariadb_returning::available(), "this suite runs the read-back path");

    let creations = [
        jobs::Creation {
            job: new_job("one", 3),
            tasks: vec![new_task("a", &[], &["c"]), new_task("b", &[], &["c"]), new_task("c", &["a", "b"], &[])],
            start_first: Some(later()),
        },
        jobs::Creation {
            job: new_job("two", 2),
            tasks: vec![new_task("a", &[], &[]), new_task("b", &[], &[])],
            start_first: None,
        },
    ];
    let created = jobs::create_many(&mut conn, "creator", &creations).await.unwrap();
    assert_eq!(created.len(), 2);
    for (creation, created) in creations.iter().zip(&created) {
        let name = &creation.job.job_name;
        let found = jobs::find(&mut conn, None, Some(name)).await.unwrap().unwrap();
        assert_eq!(found.job_id, created.job_id, "{name}'s id");
        let pending = tasks::list(&mut conn, created.job_id, Some(TaskStatus::Pending)).await.unwrap();
        let pending: Vec<i64> = pending.iter().map(|task| task.task_id).collect();
        assert_eq!(created.ready, pending, "{name}'s ready tasks, ascending");
    }
    let first = created[0].started.as_ref().unwrap();
    assert_eq!(first.task.task_label, "a");
    let opened = attempts::of_tasks(&mut conn, &[first.task.task_id]).await.unwrap();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].attempt_id, first.attempt_id, "the attempt id read back is the attempt opened");
    assert_eq!(opened[0].instance, "creator");
    assert_eq!(created[1].ready.len(), 2, "two's tasks both wait in the queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_from_the_queue_reads_its_own_attempt_back() {
    mariadb_returning::use_read_back();
    let test_db = TestDb::create("mysql").await;
    let db = database(&test_db).await;
    let mut conn = db.conn().await.unwrap();
    let rows = vec![new_task("a", &[], &[]), new_task("b", &[], &[])];
    let (_, ready) = jobs::create(&mut conn, new_job("queued", 2), rows).await.unwrap();
    assert!(!mariadb_returning::available(), "this suite runs the read-back path");

    let mut attempt_ids = Vec::new();
    for &task_id in &ready {
        let started = tasks::start(&mut conn, task_id, "worker", later(), now()).await.unwrap().unwrap();
        let opened = attempts::of_tasks(&mut conn, &[task_id]).await.unwrap();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].attempt_id, started.attempt_id, "task {task_id}'s own attempt, not the other's");
        attempt_ids.push(started.attempt_id);
    }
    assert_ne!(attempt_ids[0], attempt_ids[1]);
}
