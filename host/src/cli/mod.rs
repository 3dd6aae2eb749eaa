//! Command-line tools that reuse the server's own code.

pub mod plugin;
