//! The sandbox holds against misbehaving plugins, and the demos behave as the
//! seed describes. Each bad plugin is stopped with the right error, and the
//! next call on the same runtime still works.

#![expect(clippy::unwrap_used, reason = "helpers fail the test by panicking")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use xingqiao::plugins::{DEMO_PLUGINS, Registry, demo_bytes};
use xingqiao::runtime::{
    CheckOutcome, DagError, Export, JobEvent, JobInput, LoadedPlugin, PluginError, PluginRuntime, SandboxLimits,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("XINGQIAO_PLUGIN_WASM_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn runtime() -> PluginRuntime {
    // A short workflow deadline keeps the infinite-loop test quick.
    runtime_with_deadline(Duration::from_millis(300))
}

fn runtime_with_deadline(workflow_deadline: Duration) -> PluginRuntime {
    let limits = SandboxLimits { workflow_deadline, ..Default::default() };
    PluginRuntime::new(limits).unwrap()
}

fn job(extra: Value) -> JobInput {
    let Value::Object(job_extra) = extra else { panic!("job_extra must be an object") };
    JobInput { namespace: "test".into(), name: "job-1".into(), operator: "tester".into(), job_extra }
}

/// After any failure the same runtime must still run a good plugin.
fn assert_runtime_still_works(runtime: &PluginRuntime) {
    let hello = LoadedPlugin::load(runtime, demo_bytes("hello").unwrap()).unwrap();
    let tasks = hello.workflow(&job(json!({"str_info": "ceshi"}))).unwrap();
    assert_eq!(tasks.len(), 3);
}

fn load_err(runtime: &PluginRuntime, bytes: &[u8]) -> PluginError {
    LoadedPlugin::load(runtime, bytes).err().unwrap_or_else(|| panic!("loading should fail"))
}

#[test]
fn every_demo_loads_under_its_seed_name() {
    let runtime = runtime();
    let registry = Registry::with_demos(&runtime).unwrap();
    let names = registry.job_types();
    assert_eq!(names, ["chain", "fanout", "hello", "hello_lock", "hello_params", "ping", "ping_notifier"]);
    assert_eq!(DEMO_PLUGINS.len(), 7);
    let hello = registry.get("hello").unwrap();
    assert_eq!(
        hello.metadata().job_extra_schema,
        Some(json!({"type": "object", "properties": {"str_info": {"type": "string"}}}))
    );
}

#[test]
fn hello_runs_task1_then_task2_then_task3_which_collects_and_saves() {
    let runtime = runtime();
    let hello = LoadedPlugin::load(&runtime, demo_bytes("hello").unwrap()).unwrap();
    let job = job(json!({"str_info": "ceshi"}));
    assert_eq!(hello.params_check(&job).unwrap(), CheckOutcome::default());
    let tasks = hello.workflow(&job).unwrap();
    type Shape<'a> = (&'a str, &'a str, Vec<&'a str>, Vec<&'a str>, bool);
    let shape: Vec<Shape> = tasks
        .iter()
        .map(|t| {
            let deps = t.dependencies.iter().map(String::as_str).collect();
            let requires = t.requires.iter().map(String::as_str).collect();
            (t.label.as_str(), t.cmd.as_str(), deps, requires, t.is_save)
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("task1", "/demo_api/hello", vec![], vec!["str_info"], false),
            ("task2", "/demo_api/ping", vec!["task1"], vec![], false),
            ("task3", "/demo_api/collect", vec!["task1", "task2"], vec!["all_taskdata"], true),
        ]
    );
}

#[test]
fn hello_without_str_info_is_refused_with_the_plugins_message() {
    let runtime = runtime();
    let hello = LoadedPlugin::load(&runtime, demo_bytes("hello").unwrap()).unwrap();
    let err = hello.params_check(&job(json!({}))).unwrap_err();
    assert_eq!(err, PluginError::Rejected { call: Export::ParamsCheck, message: "job_extra not have str_info".into() });
}

#[test]
fn hello_params_presets_task1_params() {
    let runtime = runtime();
    let plugin = LoadedPlugin::load(&runtime, demo_bytes("hello_params").unwrap()).unwrap();
    let tasks = plugin.workflow(&job(json!({"str_info": "x"}))).unwrap();
    let mut expected = Map::new();
    expected.insert("str_info".into(), json!("hello world"));
    assert_eq!(tasks[0].params, Some(expected));
}

#[test]
fn hello_lock_defaults_and_overrides_timeout_and_locks() {
    let runtime = runtime();
    let plugin = LoadedPlugin::load(&runtime, demo_bytes("hello_lock").unwrap()).unwrap();
    let defaults = plugin.params_check(&job(json!({"str_info": "ceshi"}))).unwrap();
    assert_eq!(defaults, CheckOutcome { job_timeout: Some(1800), job_locks: vec!["ceshi".into()], job_tags: vec![] });
    let custom =
        plugin.params_check(&job(json!({"str_info": "ceshi", "job_timeout": 5, "job_locks": "lock1,lock2"}))).unwrap();
    assert_eq!(custom.job_timeout, Some(5));
    assert_eq!(custom.job_locks, ["lock1", "lock2"]);
    let err = plugin.params_check(&job(json!({"str_info": "abc1"}))).unwrap_err();
    assert!(matches!(&err, PluginError::Rejected { message, .. } if message.contains("[A-Za-z]+$")), "{err}");
}

#[test]
fn chain_and_fanout_follow_n() {
    let runtime = runtime();
    let chain = LoadedPlugin::load(&runtime, demo_bytes("chain").unwrap()).unwrap();
    let tasks = chain.workflow(&job(json!({"n": 40}))).unwrap();
    assert_eq!(tasks.len(), 40);
    assert_eq!(tasks[39].dependencies, ["step39"]);
    let fanout = LoadedPlugin::load(&runtime, demo_bytes("fanout").unwrap()).unwrap();
    let tasks = fanout.workflow(&job(json!({"n": 9999}))).unwrap();
    assert_eq!(tasks.len(), 10_000, "the largest fanout fits the default cap exactly");
    assert_eq!(tasks[9999].dependencies.len(), 9999);
}

#[test]
fn ping_notifier_is_told_and_returns() {
    let runtime = runtime();
    let plugin = LoadedPlugin::load(&runtime, demo_bytes("ping_notifier").unwrap()).unwrap();
    let event = JobEvent {
        job_id: 1,
        job_client: "127.0.0.1".into(),
        job_namespace: "ns".into(),
        job_reqid: "r".into(),
        job_name: "n".into(),
        job_status: "finished".into(),
        job_type: "ping_notifier".into(),
        job_tags: String::new(),
        ret_stat: "OK".into(),
        ret_data: None,
        job_cost: 0.5,
        job_extra: "{}".into(),
        job_timeout: 3600,
        job_lock: String::new(),
        exe_id: 1,
        operator: String::new(),
        is_valid: true,
        c_time: "2026-11-25 10:00:00".into(),
        s_time: "2026-11-25 10:00:00".into(),
        e_time: "2026-11-25 10:00:01".into(),
    };
    plugin.job_notifier(&event).unwrap();
    let trap = LoadedPlugin::load(&runtime, &fixture("trap")).unwrap();
    let err = trap.job_notifier(&event).unwrap_err();
    assert!(matches!(&err, PluginError::Trap { call: Export::JobNotifier, .. }), "{err}");
}

/// Runs the fixture's workflow, which must fail; gives the runtime back to
/// check it still works.
fn workflow_error(name: &str) -> (PluginRuntime, PluginError) {
    workflow_error_in(runtime(), name)
}

fn workflow_error_in(runtime: PluginRuntime, name: &str) -> (PluginRuntime, PluginError) {
    let plugin = LoadedPlugin::load(&runtime, &fixture(name)).unwrap();
    let err = plugin.workflow(&job(json!({}))).unwrap_err();
    (runtime, err)
}

#[test]
fn an_infinite_loop_is_stopped_at_its_deadline() {
    let started = Instant::now();
    let (runtime, err) = workflow_error("infinite_loop");
    assert_eq!(err, PluginError::Timeout { call: Export::Workflow, limit: Duration::from_millis(300) });
    assert!(started.elapsed() < Duration::from_secs(20), "stopped, not run to completion");
    assert_runtime_still_works(&runtime);
}

#[test]
fn a_memory_bomb_is_refused_at_the_cap() {
    // The default deadline (not 300 ms): on a slow, loaded machine, touching
    // 64 MiB took longer than 300 ms once, and the deadline struck first.
    let (runtime, err) =
        workflow_error_in(runtime_with_deadline(SandboxLimits::default().workflow_deadline), "memory_bomb");
    assert_eq!(err, PluginError::MemoryLimit { call: Export::Workflow, limit_mib: 64 });
    assert_runtime_still_works(&runtime);
}

#[test]
fn a_panicking_plugin_traps_with_its_panic_message() {
    let (runtime, err) = workflow_error("trap");
    let PluginError::Trap { call: Export::Workflow, message } = &err else { panic!("{err:?}") };
    assert!(message.contains("fixture_trap panics in workflow"), "{message}");
    assert_runtime_still_works(&runtime);
}

#[test]
fn a_million_add_task_calls_stop_at_the_task_cap() {
    let (runtime, err) = workflow_error("task_flood");
    assert_eq!(err, PluginError::TooManyTasks { cap: 10_000 });
    assert_runtime_still_works(&runtime);
}

#[test]
fn an_unknown_dependency_fails_the_workflow_even_when_the_plugin_ignores_it() {
    let (_, err) = workflow_error("unknown_dependency");
    assert_eq!(
        err,
        PluginError::InvalidDag(DagError::Refused("dependency \"nope\" names no task added before it".into()))
    );
}

#[test]
fn a_duplicate_label_is_refused_and_the_plugin_sees_why() {
    let (_, err) = workflow_error("duplicate_label");
    assert_eq!(err, PluginError::Rejected { call: Export::Workflow, message: "duplicate task label \"a\"".into() });
}

#[test]
fn a_component_of_another_world_is_refused_naming_what_is_missing() {
    let runtime = runtime();
    let err = load_err(&runtime, &fixture("other_world"));
    let PluginError::Exports(why) = &err else { panic!("{err:?}") };
    assert!(why.contains("no export"), "{why}");
    assert_runtime_still_works(&runtime);
}

#[test]
fn a_core_module_and_junk_are_refused_with_what_they_are() {
    let runtime = runtime();
    assert_eq!(load_err(&runtime, b"\0asm\x01\0\0\0"), PluginError::CoreModule);
    assert_eq!(load_err(&runtime, b"#!/bin/sh\necho not wasm\n"), PluginError::NotWasm);
    assert_eq!(load_err(&runtime, b""), PluginError::NotWasm);
    let truncated = &fixture("hello")[..100];
    assert!(matches!(load_err(&runtime, truncated), PluginError::Compile(_)));
    assert_runtime_still_works(&runtime);
}

#[test]
fn calls_from_many_threads_at_once_each_get_their_own_store() {
    let runtime = runtime();
    let plugin = std::sync::Arc::new(LoadedPlugin::load(&runtime, demo_bytes("chain").unwrap()).unwrap());
    let handles: Vec<_> = (1..=8u64)
        .map(|n| {
            let plugin = plugin.clone();
            std::thread::spawn(move || plugin.workflow(&job(json!({"n": n}))).map(|tasks| tasks.len()))
        })
        .collect();
    let sizes: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    assert_eq!(sizes, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn plan_job_runs_params_check_then_workflow_in_one_instance() {
    let runtime = runtime();
    let plugin = LoadedPlugin::load(&runtime, demo_bytes("hello_lock").unwrap()).unwrap();
    let (check, tasks) = plugin.plan_job(&job(json!({"str_info": "ceshi", "job_locks": "x"}))).unwrap();
    assert_eq!(check.job_locks, ["x"]);
    assert_eq!(tasks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["task1", "task2"]);
    let refused = plugin.plan_job(&job(json!({}))).unwrap_err();
    assert!(matches!(refused, PluginError::Rejected { call: Export::ParamsCheck, .. }), "{refused}");
    let looping = LoadedPlugin::load(&runtime, &fixture("infinite_loop")).unwrap();
    assert!(matches!(looping.plan_job(&job(json!({}))), Err(PluginError::Timeout { call: Export::Workflow, .. })));
}

#[test]
fn every_call_gets_a_never_used_instance() {
    // The fixture refuses params_check in an instance that was called before.
    let runtime = runtime();
    let counter = std::sync::Arc::new(LoadedPlugin::load(&runtime, &fixture("call_counter")).unwrap());
    for _ in 0..5 {
        counter.plan_job(&job(json!({}))).unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || (0..10).try_for_each(|_| counter.params_check(&job(json!({}))).map(drop)))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
}
