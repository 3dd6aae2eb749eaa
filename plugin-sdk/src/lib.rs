#![doc = include_str!("../README.md")]

mod dag;
mod job;
pub mod limits;
mod log;
mod plugin;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use dag::{AddTaskError, Dag, Task};
pub use job::{Check, Job, JobEvent, Metadata};
pub use log::{LogLevel, log};
pub use plugin::{Error, Plugin};
/// Re-exported so a typed job_extra derives its schema with the version the SDK reads.
pub use schemars::{self, JsonSchema};
/// Re-exported so plugins build JSON (`json!`) with the same version the SDK speaks.
pub use serde_json::{self, Value, json};

/// Exports a type implementing [`Plugin`] as this crate's wasm component.
///
/// Use it once per plugin crate, at the crate root:
///
/// ```
/// use xingqiao_plugin_sdk::{Dag, Error, Job, Metadata, Plugin, Task, export_plugin};
///
/// struct Ping;
///
/// impl Plugin for Ping {
///     fn metadata() -> Metadata {
///         Metadata::new("ping")
///     }
///     fn workflow(_job: &Job, dag: &mut Dag) -> Result<(), Error> {
///         dag.add_task(Task::new("task1", "/demo_api/ping"))?;
///         Ok(())
///     }
/// }
///
/// export_plugin!(Ping);
/// ```
///
/// On a native build (for `cargo test`) it only checks that the type implements
/// [`Plugin`], so a plugin's unit tests run without a wasm toolchain.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // Fails at the author's type, not inside generated bindings, when the
        // trait is missing.
        const _: fn() = || {
            fn must_implement_xingqiao_plugin<P: $crate::Plugin>() {}
            must_implement_xingqiao_plugin::<$plugin>();
        };
        #[cfg(target_arch = "wasm32")]
        $crate::__export_wasm!($plugin);
    };
}
