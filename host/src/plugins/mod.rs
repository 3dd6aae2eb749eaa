//! The job types a server knows: the demo plugins built into the binary (and,
//! later, uploaded versions).

mod builtin;

pub use builtin::{DEMO_PLUGINS, Registry, RegistryError, demo_bytes};
