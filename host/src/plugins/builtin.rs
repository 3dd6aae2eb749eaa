//! The demo plugins of `plugins/`, compiled by `build.rs` and embedded.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::{LoadedPlugin, PluginError, PluginRuntime};

include!(concat!(env!("OUT_DIR"), "/demo_plugins.rs"));

/// The component bytes of one embedded demo, by crate name (`hello_lock`).
pub fn demo_bytes(name: &str) -> Option<&'static [u8]> {
    DEMO_PLUGINS.iter().find(|(demo, _)| *demo == name).map(|(_, bytes)| *bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("plugin {path}: {reason}")]
    File { path: String, reason: String },
    #[error("built-in plugin {name}: {source}")]
    Builtin { name: &'static str, source: PluginError },
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
            let plugin = runtime.load(bytes).map_err(|source| RegistryError::Builtin { name, source })?;
            registry.insert(plugin)?;
        }
        Ok(registry)
    }

    /// Loads every `*.wasm` of `dir` (sorted by name), refusing the whole
    /// folder on the first bad file so a typo never goes unnoticed.
    pub fn load_dir(&mut self, runtime: &PluginRuntime, dir: &std::path::Path) -> Result<(), RegistryError> {
        let file_err =
            |path: &std::path::Path, reason: String| RegistryError::File { path: path.display().to_string(), reason };
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(|err| file_err(dir, err.to_string()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).map_err(|err| file_err(&path, err.to_string()))?;
            let plugin = runtime.load(&bytes).map_err(|err| file_err(&path, err.to_string()))?;
            self.insert(plugin)?;
        }
        Ok(())
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
