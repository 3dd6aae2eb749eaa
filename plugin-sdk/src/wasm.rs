//! The wit-bindgen glue, hidden from plugin authors: converts between the WIT
//! types and the SDK's types and routes the exports to a [`Plugin`].

use std::marker::PhantomData;

use crate::{AddTaskError, Check, Dag, Job, JobEvent, LogLevel, Metadata, Plugin, Task};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit/workflow@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "xingqiao_plugin_sdk::wasm::bindings",
    });
}

use bindings::xingqiao::workflow::{host, types};

/// Wraps a user's [`Plugin`] as the world's `Guest`.
#[doc(hidden)]
pub struct Adapter<P>(PhantomData<P>);

#[doc(hidden)]
#[macro_export]
macro_rules! __export_wasm {
    ($plugin:ty) => {
        // The wit-bindgen export macro takes a plain identifier.
        type __XingqiaoPluginExport = $crate::wasm::Adapter<$plugin>;
        $crate::wasm::bindings::__export_plugin_world!(__XingqiaoPluginExport with_types_in $crate::wasm::bindings);
    };
}

fn job_from_wire(job: types::Job) -> Job {
    Job::from_wire(job.namespace, job.name, job.operator, &job.job_extra)
}

impl<P: Plugin> bindings::Guest for Adapter<P> {
    fn metadata() -> types::Metadata {
        let Metadata { job_type, version, description, job_extra_schema } = P::metadata();
        types::Metadata {
            job_type,
            version,
            description,
            job_extra_schema: job_extra_schema.map(|schema| schema.to_string()),
        }
    }

    fn params_check(job: types::Job) -> Result<types::CheckResult, String> {
        let Check { job_timeout, job_locks, job_tags } = P::params_check(&job_from_wire(job))?;
        Ok(types::CheckResult { job_timeout, job_locks, job_tags })
    }

    fn workflow(job: types::Job) -> Result<(), String> {
        P::workflow(&job_from_wire(job), &mut Dag::default()).map_err(|err| err.0)
    }

    fn job_notifier(event: types::JobEvent) {
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
        P::job_notifier(&JobEvent {
            job_id: event.job_id,
            job_client: event.job_client,
            job_namespace: event.job_namespace,
            job_reqid: event.job_reqid,
            job_name: event.job_name,
            job_status: event.job_status,
            job_type: event.job_type,
            job_tags: event.job_tags,
            ret_stat: event.ret_stat,
            ret_data: event.ret_data.as_deref().and_then(parse),
            job_cost: event.job_cost,
            job_extra: match parse(&event.job_extra) {
                Some(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            },
            job_timeout: event.job_timeout,
            job_lock: event.job_lock,
            exe_id: event.exe_id,
            operator: event.operator,
            is_valid: event.is_valid,
            c_time: event.c_time,
            s_time: event.s_time,
            e_time: event.e_time,
        });
    }
}

pub(crate) fn add_task(task: &Task) -> Result<(), AddTaskError> {
    let options = host::TaskOptions {
        dependencies: task.dependencies.clone(),
        requires: task.requires.clone(),
        provides: task.provides.clone(),
        params: task.params.as_ref().map(ToString::to_string),
        extra: task.extra.as_ref().map(ToString::to_string),
        retry_max: task.retry_max,
        timeout_secs: task.timeout_secs,
        is_save: task.is_save,
    };
    host::add_task(&task.label, &task.cmd, &options).map_err(|err| match err {
        host::AddTaskError::DuplicateLabel(s) => AddTaskError::DuplicateLabel(s),
        host::AddTaskError::UnknownDependency(s) => AddTaskError::UnknownDependency(s),
        host::AddTaskError::BadLabel(s) => AddTaskError::BadLabel(s),
        host::AddTaskError::BadCmd(s) => AddTaskError::BadCmd(s),
        host::AddTaskError::BadJson(s) => AddTaskError::BadJson(s),
        host::AddTaskError::TooLong(s) => AddTaskError::TooLong(s),
    })
}

pub(crate) fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Trace => host::LogLevel::Trace,
        LogLevel::Debug => host::LogLevel::Debug,
        LogLevel::Info => host::LogLevel::Info,
        LogLevel::Warn => host::LogLevel::Warn,
        LogLevel::Error => host::LogLevel::Error,
    };
    host::log(level, message);
}
