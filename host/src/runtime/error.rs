//! Every way a plugin can fail, worded for the plugin's author.

use std::fmt;
use std::time::Duration;

use super::dag::DagError;

/// The plugin export being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// Instantiation, which runs the component's start functions.
    Instantiate,
    Metadata,
    ParamsCheck,
    Workflow,
    JobNotifier,
}

impl fmt::Display for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Instantiate => "instantiation",
            Self::Metadata => "metadata",
            Self::ParamsCheck => "params-check",
            Self::Workflow => "workflow",
            Self::JobNotifier => "job-notifier",
        })
    }
}

/// Why a plugin could not be loaded or a call to it failed. The host never
/// panics on a plugin's behaviour; it returns one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    #[error("not a WebAssembly file: it does not start with the `\\0asm` magic bytes")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component: build it with \
         `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// An import the host does not provide (WASI p2 and `xingqiao:workflow/host` are all it has).
    #[error("the component imports something outside the xingqiao:workflow@0.1.0 world: {0}")]
    Imports(String),
    /// An export of the `plugin` world is missing or has another type.
    #[error("the component does not export the xingqiao:workflow@0.1.0 `plugin` world: {0}")]
    Exports(String),
    #[error("metadata() answered something unusable: {0}")]
    BadMetadata(String),
    /// The component asks for more than this server grants (`xingqiao:plugin` section).
    #[error("the sandbox cannot grant what the plugin asks: {0}")]
    Sandbox(String),
    #[error("params-check answered something unusable: {0}")]
    BadCheck(String),
    /// The plugin itself refused: params-check's or workflow's `Err(message)`.
    #[error("{call} refused the job: {message}")]
    Rejected { call: Export, message: String },
    #[error("{call} ran past its deadline of {limit:?} and was stopped")]
    Timeout { call: Export, limit: Duration },
    #[error("{call} needed more memory than the sandbox's {limit_mib} MiB")]
    MemoryLimit { call: Export, limit_mib: usize },
    #[error("workflow added more than the cap of {cap} tasks per job and was stopped")]
    TooManyTasks { cap: usize },
    #[error("workflow sent more than the cap of {cap} bytes of task data and was stopped")]
    DagTooLarge { cap: usize },
    #[error("workflow gave no usable DAG: {0}")]
    InvalidDag(#[from] DagError),
    #[error("{call} crashed (trap): {message}")]
    Trap { call: Export, message: String },
    #[error("too many plugin calls at once; try again")]
    Busy,
}
