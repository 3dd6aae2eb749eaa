//! The demo plugins of `plugins/`, compiled by `build.rs` and embedded.

include!(concat!(env!("OUT_DIR"), "/demo_plugins.rs"));

/// The component bytes of one embedded demo, by crate name (`hello_lock`).
pub fn demo_bytes(name: &str) -> Option<&'static [u8]> {
    DEMO_PLUGINS.iter().find(|(demo, _)| *demo == name).map(|(_, bytes)| *bytes)
}
