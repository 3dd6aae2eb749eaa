//! Host bindings of the WIT world, alone in this module: generated code calls
//! methods that other traits in scope (diesel's `RunQueryDsl`, …) would hijack.

wasmtime::component::bindgen!({
    path: "../wit/workflow@0.1.0",
    world: "plugin",
    // Host functions return `wasmtime::Result` so a resource limit can stop the guest.
    imports: { default: trappable },
    additional_derives: [PartialEq],
});

pub use xingqiao::workflow::host::{AddTaskError, LogLevel, TaskOptions};
