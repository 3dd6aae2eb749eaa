//! The demo plugins of `plugins/`, compiled by `build.rs` and embedded.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::{LoadedPlugin, PluginError, PluginRuntime};

include!(concat!(env!("OUT_DIR"), "/demo_plugins.rs"));

/// The component bytes of one embedded demo, by crate name (`hello_lock`).
pub fn demo_bytes(name: &str) -> Option<&'static [u8]> {
    DEMO_PLUGINS
        .iter()
        .find(|(demo, _)| *demo == name)
        .map(|(_, bytes)| *bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("built-in plugin {name}: {source}")]
    Builtin {
        name: &'static str,
        source: PluginError,
    },
    #[error("two plugins claim job_type {0:?}")]
    DuplicateJobType(String),
}

/// Loaded plugins by `job_type`.
#[derive(Debug, Default)]
pub struct Registry {
    by_job_type: BTreeMap<String, Arc<LoadedPlugin>>,
}

impl Registry {
    /// Every embedded demo, compiled once.
    pub fn with_demos(runtime: &PluginRuntime) -> Result<Self, RegistryError> {
        let mut registry = Self::default();
        for (name, bytes) in DEMO_PLUGINS {
            let plugin = runtime
                .load(bytes)
                .map_err(|source| RegistryError::Builtin { name, source })?;
            registry.insert(plugin)?;
        }
        Ok(registry)
    }

    pub fn insert(&mut self, plugin: LoadedPlugin) -> Result<(), RegistryError> {
        let job_type = plugin.metadata().job_type.clone();
        if self.by_job_type.contains_key(&job_type) {
            return Err(RegistryError::DuplicateJobType(job_type));
        }
        self.by_job_type.insert(job_type, Arc::new(plugin));
        Ok(())
    }

    pub fn get(&self, job_type: &str) -> Option<Arc<LoadedPlugin>> {
        self.by_job_type.get(job_type).cloned()
    }

    pub fn job_types(&self) -> impl Iterator<Item = &str> {
        self.by_job_type.keys().map(String::as_str)
    }
}
