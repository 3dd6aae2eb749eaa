//! The sandbox: runs untrusted plugin components.
//!
//! Contract: one [`PluginRuntime`] (one wasmtime `Engine`: component model,
//! Cranelift, pooling allocator, epoch interruption; GC, exceptions and threads
//! off) per process; one [`LoadedPlugin`] (a cached `InstancePre`) per plugin
//! version; a fresh `Store` per call with the bounds of [`SandboxLimits`]:
//! memory, a deadline per export, tasks and bytes per DAG, log lines, captured
//! output. WASI is deny-all: no preopened dirs, no sockets, no env.
//!
//! Invariant: nothing a plugin does makes the host panic or abort; every failure
//! is a [`PluginError`] and the next call on the same runtime works.
//! Calls are synchronous and bounded by their deadline: async callers run them
//! on a blocking thread.

mod artifacts;
mod bindings;
mod custom_section;
mod dag;
mod epoch;
mod error;
mod host_api;
mod limits;
pub mod manifest;
mod plugin;
mod sandbox;
mod store;

pub use artifacts::{ArtifactCache, is_sha256};
pub use bindings::JobEvent;
pub use dag::{DagError, TaskSpec};
pub use error::{Export, PluginError};
pub use limits::SandboxLimits;
pub use plugin::{CheckOutcome, JobInput, LoadedPlugin, PluginMetadata};
pub use sandbox::{PluginRuntime, RuntimeSetupError};
