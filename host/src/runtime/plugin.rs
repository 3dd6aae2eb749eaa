//! A loaded plugin: its precompiled `InstancePre` and metadata, and the four
//! calls, each in a fresh store with its own deadline.

use serde::Serialize;
use serde_json::{Map, Value};
// The bounds shared with the SDKs (plugin-sdk/limits.json); columns `job_lock`
// and `job_tags` hold the lists joined by commas.
use wasmtime::component::Component;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap};
use xingqiao_plugin_sdk::limits::{
    LOCK_MAX_BYTES as MAX_LOCK_LEN, LOCKS_MAX_BYTES as MAX_LOCKS_LEN, TAG_MAX_BYTES as MAX_TAG_LEN,
    TAGS_MAX_BYTES as MAX_TAGS_LEN, VERSION_MAX_BYTES as MAX_VERSION_LEN,
};

use super::bindings::{self, CheckResult, JobEvent};
use super::dag::{DagOverflow, DagRecorder, TaskSpec, is_valid_name};
use super::error::{Export, PluginError};
use super::manifest::{self, Grants};
use super::sandbox::PluginRuntime;
use super::store::{CallState, cut};

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginMetadata {
    pub job_type: String,
    pub version: String,
    pub description: String,
    pub job_extra_schema: Option<Value>,
}

/// The job as a plugin sees it at creation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobInput {
    pub namespace: String,
    pub name: String,
    pub operator: String,
    pub job_extra: Map<String, Value>,
}

/// params-check's decision: timeout, locks and tags of the job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub job_timeout: Option<u32>,
    pub job_locks: Vec<String>,
    pub job_tags: Vec<String>,
}

/// A compiled, linked plugin. Calls may run from many threads at once; each
/// gets its own store, so no state survives from one call to the next.
pub struct LoadedPlugin {
    runtime: PluginRuntime,
    pre: bindings::PluginPre<CallState>,
    metadata: PluginMetadata,
    size: usize,
    grants: Grants,
    notifier: bool,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("metadata", &self.metadata).field("size", &self.size).finish()
    }
}

impl LoadedPlugin {
    /// Compiles and links a component, then reads its metadata. Everything a
    /// plugin must satisfy to be loaded is checked here.
    pub fn load(runtime: &PluginRuntime, bytes: &[u8]) -> Result<Self, PluginError> {
        let component = runtime.compile(bytes)?;
        Self::link(runtime, &component, bytes)
    }

    /// Links a compiled component against the host (imports, then exports),
    /// grants what its manifest asks within the server's caps, and reads its
    /// metadata; `bytes` are the component it was compiled from.
    pub fn link(runtime: &PluginRuntime, component: &Component, bytes: &[u8]) -> Result<Self, PluginError> {
        let manifest = manifest::read(bytes)?;
        let grants = Grants::grant(&manifest.sandbox, runtime.limits())?;
        let instance_pre =
            runtime.linker().instantiate_pre(component).map_err(|err| PluginError::Imports(format!("{err:#}")))?;
        let pre = bindings::PluginPre::new(instance_pre).map_err(|err| PluginError::Exports(format!("{err:#}")))?;
        Self::new(runtime.clone(), pre, bytes.len(), grants, manifest.job_notifier)
    }

    fn new(
        runtime: PluginRuntime,
        pre: bindings::PluginPre<CallState>,
        size: usize,
        grants: Grants,
        notifier: bool,
    ) -> Result<Self, PluginError> {
        let unknown = PluginMetadata {
            job_type: String::from("(loading)"),
            version: String::new(),
            description: String::new(),
            job_extra_schema: None,
        };
        let mut plugin = Self { runtime, pre, metadata: unknown, size, grants, notifier };
        let (raw, _) =
            plugin.session("", |store, instance| plugin.step(store, Export::Metadata, |s| instance.call_metadata(s)));
        plugin.metadata = validate_metadata(raw?)?;
        Ok(plugin)
    }

    pub fn metadata(&self) -> &PluginMetadata {
        &self.metadata
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// What its calls are granted (memory, random, clocks).
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Whether it implements job_notifier; `false` only when its manifest says
    /// so, and then the server never calls it.
    pub fn implements_notifier(&self) -> bool {
        self.notifier
    }

    /// The seed's `params_check`: may the job be created, and with which
    /// timeout, locks and tags.
    pub fn params_check(&self, job: &JobInput) -> Result<CheckOutcome, PluginError> {
        let wire = wire_job(job);
        self.session(&job.name, |store, instance| self.check_step(store, instance, &wire)).0
    }

    /// The seed's `workflow`: the job's DAG, checked.
    pub fn workflow(&self, job: &JobInput) -> Result<Vec<TaskSpec>, PluginError> {
        let wire = wire_job(job);
        self.session(&job.name, |store, instance| self.workflow_step(store, instance, &wire)).0
    }

    /// What create_job needs: params_check, then (if it passed) workflow, in one
    /// sandbox instance — each step with its own deadline.
    pub fn plan_job(&self, job: &JobInput) -> Result<(CheckOutcome, Vec<TaskSpec>), PluginError> {
        let wire = wire_job(job);
        self.session(&job.name, |store, instance| {
            let check = self.check_step(store, instance, &wire)?;
            Ok((check, self.workflow_step(store, instance, &wire)?))
        })
        .0
    }

    /// The seed's `job_notifier`. Its failure is the caller's to log; it never
    /// changes the job.
    pub fn job_notifier(&self, event: &JobEvent) -> Result<(), PluginError> {
        self.session(&event.job_name, |store, instance| {
            self.step(store, Export::JobNotifier, |s| instance.call_job_notifier(s, event))
        })
        .0
    }

    fn check_step(
        &self,
        store: &mut Store<CallState>,
        instance: &bindings::Plugin,
        job: &bindings::Job,
    ) -> Result<CheckOutcome, PluginError> {
        let check = self.step(store, Export::ParamsCheck, |s| instance.call_params_check(s, job))?;
        validate_check(check.map_err(|message| PluginError::Rejected { call: Export::ParamsCheck, message })?)
    }

    fn workflow_step(
        &self,
        store: &mut Store<CallState>,
        instance: &bindings::Plugin,
        job: &bindings::Job,
    ) -> Result<Vec<TaskSpec>, PluginError> {
        let limits = self.runtime.limits();
        // add-task is accepted only from here on.
        store.data_mut().dag = Some(DagRecorder::new(limits.max_tasks, limits.max_dag_bytes));
        let outcome = self.step(store, Export::Workflow, |s| instance.call_workflow(s, job))?;
        outcome.map_err(|message| PluginError::Rejected { call: Export::Workflow, message })?;
        let dag = store
            .data_mut()
            .dag
            .take()
            .ok_or(PluginError::Trap { call: Export::Workflow, message: String::from("the DAG was lost") })?;
        Ok(dag.finish()?)
    }

    /// A fresh store and instance for `body`; what the plugin printed is logged
    /// whatever the outcome. Returns the store's final state too.
    fn session<R>(
        &self,
        job: &str,
        body: impl FnOnce(&mut Store<CallState>, &bindings::Plugin) -> Result<R, PluginError>,
    ) -> (Result<R, PluginError>, CallState) {
        let inner = &self.runtime.inner;
        let limits = &inner.limits;
        let _ticking = inner.ticker.call();
        let mut store = Store::new(&inner.engine, CallState::new(limits, &self.grants, &self.metadata.job_type, job));
        store.limiter(|state| &mut state.memory);
        let outcome = self
            .step(&mut store, Export::Instantiate, |s| self.pre.instantiate(s))
            .and_then(|instance| body(&mut store, &instance));
        let state = store.into_data();
        forward_output(&state, limits.max_log_lines);
        (outcome, state)
    }

    /// One export call (or the instantiation) under its own deadline.
    fn step<R>(
        &self,
        store: &mut Store<CallState>,
        call: Export,
        run: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let limits = &self.runtime.inner.limits;
        store.set_epoch_deadline(limits.ticks(deadline(limits, call)));
        run(store).map_err(|err| classify(call, &err, store.data(), limits))
    }
}

fn deadline(limits: &super::SandboxLimits, call: Export) -> std::time::Duration {
    match call {
        Export::Instantiate => limits.instantiate_deadline,
        Export::Metadata => limits.metadata_deadline,
        Export::ParamsCheck => limits.params_check_deadline,
        Export::Workflow => limits.workflow_deadline,
        Export::JobNotifier => limits.job_notifier_deadline,
    }
}

fn wire_job(job: &JobInput) -> bindings::Job {
    bindings::Job {
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        operator: job.operator.clone(),
        job_extra: Value::Object(job.job_extra.clone()).to_string(),
    }
}

/// Names which bound stopped the plugin, else what the trap says.
fn classify(call: Export, err: &wasmtime::Error, state: &CallState, limits: &super::SandboxLimits) -> PluginError {
    match state.dag.as_ref().and_then(|dag| dag.overflow) {
        Some(DagOverflow::Tasks) => {
            return PluginError::TooManyTasks { cap: limits.max_tasks };
        }
        Some(DagOverflow::Bytes) => {
            return PluginError::DagTooLarge { cap: limits.max_dag_bytes };
        }
        None => {}
    }
    if err.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return PluginError::Busy;
    }
    let trap = err.downcast_ref::<Trap>();
    if trap == Some(&Trap::Interrupt) {
        return PluginError::Timeout { call, limit: deadline(limits, call) };
    }
    if state.memory.refused {
        return PluginError::MemoryLimit { call, limit_mib: state.memory.cap() >> 20 };
    }
    let mut message = match trap {
        Some(trap) => trap.to_string(),
        None => cut(&format!("{err:#}"), 1024).to_owned(),
    };
    // A Rust panic prints its message to stderr just before the trap.
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
    let said: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("note:")).collect();
    if !said.is_empty() {
        message = format!("{message}; stderr: {}", cut(&said.join(" | "), 1024));
    }
    PluginError::Trap { call, message }
}

/// Puts what the plugin printed into our log, one line per event, bounded.
fn forward_output(state: &CallState, max_lines: usize) {
    for (stream, pipe) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let bytes = pipe.contents();
        if bytes.is_empty() {
            continue;
        }
        for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()).take(max_lines) {
            tracing::info!(plugin = %state.plugin, job = %state.job, stream, "{line}");
        }
    }
    if state.log.dropped > 0 {
        tracing::warn!(plugin = %state.plugin, job = %state.job, dropped = state.log.dropped, "log lines over budget dropped");
    }
}

fn validate_metadata(raw: bindings::Metadata) -> Result<PluginMetadata, PluginError> {
    if !is_valid_name(&raw.job_type) {
        return Err(PluginError::BadMetadata(format!(
            "job-type {:?} must be 1 to 64 of A-Z a-z 0-9 _ -",
            raw.job_type
        )));
    }
    if raw.version.len() > MAX_VERSION_LEN {
        return Err(PluginError::BadMetadata(format!("version is longer than {MAX_VERSION_LEN} bytes")));
    }
    let job_extra_schema = match raw.job_extra_schema.as_deref().map(serde_json::from_str::<Value>) {
        None => None,
        Some(Ok(schema @ Value::Object(_))) => Some(schema),
        Some(Ok(_)) => {
            return Err(PluginError::BadMetadata("job-extra-schema must be a JSON object".into()));
        }
        Some(Err(err)) => {
            return Err(PluginError::BadMetadata(format!("job-extra-schema is not JSON: {err}")));
        }
    };
    Ok(PluginMetadata { job_type: raw.job_type, version: raw.version, description: raw.description, job_extra_schema })
}

fn validate_check(raw: CheckResult) -> Result<CheckOutcome, PluginError> {
    let bad = |why: String| Err(PluginError::BadCheck(why));
    if raw.job_timeout == Some(0) {
        return bad("job-timeout must be at least 1 second".into());
    }
    let mut job_locks: Vec<String> = Vec::new();
    for lock in raw.job_locks {
        let lock = lock.trim().to_owned();
        if lock.is_empty() || lock.contains(',') || lock.len() > MAX_LOCK_LEN {
            return bad(format!("lock {lock:?} must be 1 to {MAX_LOCK_LEN} bytes without commas"));
        }
        if !job_locks.contains(&lock) {
            job_locks.push(lock);
        }
    }
    for tag in &raw.job_tags {
        let well_formed = tag.split_once('=').is_some_and(|(key, _)| !key.trim().is_empty());
        if !well_formed || tag.contains(',') || tag.len() > MAX_TAG_LEN {
            return bad(format!("tag {tag:?} must be key=value, without commas, at most {MAX_TAG_LEN} bytes"));
        }
    }
    if job_locks.join(",").len() > MAX_LOCKS_LEN {
        return bad(format!("job-locks joined by commas exceed {MAX_LOCKS_LEN} bytes"));
    }
    if raw.job_tags.join(",").len() > MAX_TAGS_LEN {
        return bad(format!("job-tags joined by commas exceed {MAX_TAGS_LEN} bytes"));
    }
    Ok(CheckOutcome { job_timeout: raw.job_timeout, job_locks, job_tags: raw.job_tags })
}
