//! The job types a server knows: the demo plugins built into the binary,
//! files of `--plugins-dir`, and versions uploaded through the admin API.

mod builtin;
mod registry;
mod sync;

pub use builtin::{DEMO_PLUGINS, demo_bytes};
pub use registry::{LoadError, PluginEntry, Registry, RegistryError, RegistryOptions, Source, sha256_hex};
pub use sync::{PluginChanges, keep_in_step};
