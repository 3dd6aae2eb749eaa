//! Command-line tools that reuse the server's own code.

pub mod builder;
pub mod local_run;
pub mod plugin;
pub mod project;
pub mod remote;
pub mod scaffold;
