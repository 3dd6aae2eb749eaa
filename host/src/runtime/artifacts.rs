//! Precompiled plugins on disk, keyed by the component's sha256 and by the
//! wasmtime engine's compatibility: a restart, or another look at a version
//! already seen, links in milliseconds instead of running Cranelift again.
//!
//! Safety contract: wasmtime trusts a precompiled artifact completely (it is
//! machine code). Only files this cache wrote are ever deserialized: names are
//! built from a checked hex digest, files appear by atomic rename after a
//! successful compile, and anything wasmtime refuses is deleted and rebuilt.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use super::error::PluginError;
use super::plugin::LoadedPlugin;
use super::sandbox::PluginRuntime;

#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    /// Changes with wasmtime's version and every engine setting that affects code.
    engine_key: String,
}

/// 64 lowercase hex digits: what a file name may be built from.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ArtifactCache {
    pub fn new(runtime: &PluginRuntime, dir: PathBuf) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        runtime.engine().precompile_compatibility_hash().hash(&mut hasher);
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    /// Deletes what can never be loaded again: artifacts of another engine
    /// (an older binary, other settings) and half-written files of a crash.
    /// Artifacts of this engine stay, old versions included: a running job
    /// may still need its own. Returns how many files went.
    pub fn prune_foreign(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let current = format!("-{}.cwasm", self.engine_key);
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.len() > 64 && is_sha256(&name[..64]);
            if ours && !name.ends_with(&current) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %self.dir.display(), "pruned precompiled plugins no engine here can load");
        }
        removed
    }

    fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// Loads the component `bytes` whose digest is `sha256` (computed by the
    /// caller), from its precompiled artifact when there is one. Only a
    /// component that loads completely is written to the cache.
    pub fn load(&self, runtime: &PluginRuntime, sha256: &str, bytes: &[u8]) -> Result<LoadedPlugin, PluginError> {
        let path = self.path_of(sha256);
        if let Some(component) = path.as_deref().and_then(|path| self.read(runtime, path)) {
            return LoadedPlugin::link(runtime, &component, bytes);
        }
        let component = runtime.compile(bytes)?;
        let plugin = LoadedPlugin::link(runtime, &component, bytes)?;
        if let Some(path) = path {
            self.write(&path, &component);
        }
        Ok(plugin)
    }

    #[expect(unsafe_code, reason = "deserializing precompiled code this cache itself wrote (see the module docs)")]
    fn read(&self, runtime: &PluginRuntime, path: &Path) -> Option<Component> {
        if !path.is_file() {
            return None;
        }
        // SAFETY: `path` is named by a checked digest inside our own cache
        // folder and was created by `write` (rename after a successful
        // compile); wasmtime checks the header and engine compatibility.
        match unsafe { Component::deserialize_file(runtime.engine(), path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "unusable precompiled plugin; compiling again");
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }

    /// A failed write only costs a compile next time, so it is logged, not returned.
    fn write(&self, path: &Path, component: &Component) {
        let written = component.serialize().map_err(|err| err.to_string()).and_then(|artifact| {
            std::fs::create_dir_all(&self.dir).map_err(|err| err.to_string())?;
            let partial = path.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&partial, artifact).map_err(|err| err.to_string())?;
            std::fs::rename(&partial, path).map_err(|err| {
                let _ = std::fs::remove_file(&partial);
                err.to_string()
            })
        });
        if let Err(err) = written {
            tracing::warn!(path = %path.display(), error = %err, "cannot cache the precompiled plugin");
        }
    }
}
