//! The job types a server knows right now, by `job_type`:
//! - fixed ones, loaded at start and never changed: the embedded demos
//!   (unless `--no-demo-plugins`) and the files of `--plugins-dir`;
//! - uploaded ones: the active version of each job_type in `workflow_plugin`,
//!   as of the last `refresh` (every second, and at once after a change).
//!
//! A fixed job type always wins over an upload of the same name (an upload may
//! not silently replace a built-in; the admin API refuses such uploads).
//! Jobs remember the sha256 of the component that planned them; `for_job`
//! finds that exact version again, even after another one was activated.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use serde::Serialize;

use super::builtin::DEMO_PLUGINS;
use crate::db::{Database, DbError, plugins as stored};
use crate::runtime::{ArtifactCache, LoadedPlugin, PluginError, PluginRuntime};

/// Where a job type comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Embedded in the binary (the demos).
    Builtin,
    /// A file of `--plugins-dir`.
    File,
    /// Uploaded through `/admin/plugins`, stored in the database.
    Uploaded,
}

/// A loaded job type: the plugin, the digest of its component, its origin.
#[derive(Debug, Clone)]
pub struct PluginEntry {
    pub plugin: Arc<LoadedPlugin>,
    pub sha256: String,
    pub source: Source,
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

/// Why a component could not be loaded for use.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("compiling the component took longer than {0:?}")]
    TimedOut(Duration),
    #[error("the compiler thread failed: {0}")]
    Internal(String),
}

/// Hex sha256 of a component: its identity everywhere (table key, cache file, job record).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

pub struct Registry {
    runtime: PluginRuntime,
    cache: ArtifactCache,
    fixed: BTreeMap<String, PluginEntry>,
    uploaded: RwLock<BTreeMap<String, PluginEntry>>,
    /// Every version in use somewhere (active, or held by a running call).
    loaded: Mutex<HashMap<String, Weak<LoadedPlugin>>>,
    /// One compile at a time: Cranelift takes every core it is given.
    compiling: Arc<tokio::sync::Semaphore>,
    compile_timeout: Duration,
    /// One refresh at a time; also what an admin change waits on.
    refreshing: tokio::sync::Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("fixed", &self.fixed.keys()).finish_non_exhaustive()
    }
}

/// What a registry starts with.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub demos: bool,
    pub plugins_dir: Option<PathBuf>,
    /// The precompiled-artifact cache folder.
    pub cache_dir: PathBuf,
    pub compile_timeout: Duration,
}

impl Registry {
    /// Loads the fixed job types (blocking: it compiles; call it off the async threads).
    pub fn new(runtime: PluginRuntime, options: &RegistryOptions) -> Result<Self, RegistryError> {
        let cache = ArtifactCache::new(&runtime, options.cache_dir.clone());
        cache.prune_foreign();
        let mut registry = Self {
            runtime,
            cache,
            fixed: BTreeMap::new(),
            uploaded: RwLock::default(),
            loaded: Mutex::default(),
            compiling: Arc::new(tokio::sync::Semaphore::new(1)),
            compile_timeout: options.compile_timeout,
            refreshing: tokio::sync::Mutex::default(),
        };
        if options.demos {
            for (name, bytes) in DEMO_PLUGINS {
                let sha256 = sha256_hex(bytes);
                let plugin = registry
                    .cache
                    .load(&registry.runtime, &sha256, bytes)
                    .map_err(|source| RegistryError::Builtin { name, source })?;
                registry.add_fixed(plugin, sha256, Source::Builtin)?;
            }
        }
        if let Some(dir) = &options.plugins_dir {
            registry.load_dir(dir)?;
        }
        Ok(registry)
    }

    /// Every embedded demo, for tests and tools: compiled through a
    /// throwaway artifact cache that is deleted once they are loaded.
    pub fn with_demos(runtime: &PluginRuntime) -> Result<Self, RegistryError> {
        let cache_dir = std::env::temp_dir().join(format!("xingqiao-demos-{}", uuid::Uuid::new_v4().simple()));
        let options = RegistryOptions {
            demos: true,
            plugins_dir: None,
            cache_dir: cache_dir.clone(),
            compile_timeout: Duration::from_secs(60),
        };
        let registry = Self::new(runtime.clone(), &options);
        let _ = std::fs::remove_dir_all(cache_dir);
        registry
    }

    /// Loads every `*.wasm` of `dir` (sorted by name), refusing the whole
    /// folder on the first bad file so a typo never goes unnoticed.
    fn load_dir(&mut self, dir: &Path) -> Result<(), RegistryError> {
        let file_err = |path: &Path, reason: String| RegistryError::File { path: path.display().to_string(), reason };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|err| file_err(dir, err.to_string()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).map_err(|err| file_err(&path, err.to_string()))?;
            let sha256 = sha256_hex(&bytes);
            let plugin =
                self.cache.load(&self.runtime, &sha256, &bytes).map_err(|err| file_err(&path, err.to_string()))?;
            self.add_fixed(plugin, sha256, Source::File)?;
        }
        Ok(())
    }

    fn add_fixed(&mut self, plugin: LoadedPlugin, sha256: String, source: Source) -> Result<(), RegistryError> {
        let job_type = plugin.metadata().job_type.clone();
        if self.fixed.contains_key(&job_type) {
            return Err(RegistryError::DuplicateJobType(job_type));
        }
        let plugin = Arc::new(plugin);
        self.remember(&sha256, &plugin);
        self.fixed.insert(job_type, PluginEntry { plugin, sha256, source });
        Ok(())
    }

    fn remember(&self, sha256: &str, plugin: &Arc<LoadedPlugin>) {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.retain(|_, weak| weak.strong_count() > 0);
            loaded.insert(sha256.to_owned(), Arc::downgrade(plugin));
        }
    }

    fn recall(&self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.lock().ok()?.get(sha256)?.upgrade()
    }

    /// The plugin new jobs of `job_type` get.
    pub fn get(&self, job_type: &str) -> Option<Arc<LoadedPlugin>> {
        self.entry(job_type).map(|entry| entry.plugin)
    }

    pub fn entry(&self, job_type: &str) -> Option<PluginEntry> {
        if let Some(entry) = self.fixed.get(job_type) {
            return Some(entry.clone());
        }
        self.uploaded.read().ok()?.get(job_type).cloned()
    }

    /// Whether `job_type` is built in or loaded from `--plugins-dir`.
    pub fn fixed_source(&self, job_type: &str) -> Option<Source> {
        self.fixed.get(job_type).map(|entry| entry.source)
    }

    /// Every job type available now, sorted.
    pub fn job_types(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.fixed.keys().cloned().collect();
        if let Ok(uploaded) = self.uploaded.read() {
            names.extend(uploaded.keys().cloned());
        }
        names.into_iter().collect()
    }

    /// Every fixed job type with its entry, sorted.
    pub fn fixed_entries(&self) -> impl Iterator<Item = (&str, &PluginEntry)> {
        self.fixed.iter().map(|(name, entry)| (name.as_str(), entry))
    }

    /// Compiles (or takes from the artifact cache) the component `bytes`,
    /// off the async threads, one at a time, within the compile time bound.
    /// The bound stops the wait, not the compiler thread, which finishes in
    /// the background; the single compile slot stays taken until it does, so
    /// slow uploads cannot pile up threads.
    pub async fn load_bytes(&self, sha256: &str, bytes: Arc<Vec<u8>>) -> Result<Arc<LoadedPlugin>, LoadError> {
        if let Some(plugin) = self.recall(sha256) {
            return Ok(plugin);
        }
        let slot = self.compiling.clone().acquire_owned().await.map_err(|err| LoadError::Internal(err.to_string()))?;
        let (runtime, cache, digest) = (self.runtime.clone(), self.cache.clone(), sha256.to_owned());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let worker = tokio::task::spawn_blocking(move || {
            let _ = sender.send(cache.load(&runtime, &digest, &bytes));
        });
        let plugin = match tokio::time::timeout(self.compile_timeout, receiver).await {
            Ok(Ok(loaded)) => Arc::new(loaded?),
            Ok(Err(_)) => return Err(LoadError::Internal("the compiler thread ended without an answer".into())),
            Err(_) => {
                // Keep the slot until the abandoned compile ends.
                tokio::spawn(async move {
                    let _ = worker.await;
                    drop(slot);
                });
                return Err(LoadError::TimedOut(self.compile_timeout));
            }
        };
        drop(slot);
        self.remember(sha256, &plugin);
        Ok(plugin)
    }

    /// The exact plugin version a job was planned by (`sha256` on its row);
    /// for a fixed job type whose component changed (a new binary), the
    /// current one; `None` when it is gone or cannot be loaded (logged).
    pub async fn for_job(&self, db: &Database, job_type: &str, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        if sha256.is_empty() {
            return self.get(job_type);
        }
        if let Some(entry) = self.entry(job_type).filter(|entry| entry.sha256 == sha256) {
            return Some(entry.plugin);
        }
        if let Some(plugin) = self.recall(sha256) {
            return Some(plugin);
        }
        // A built-in (or `--plugins-dir`) job type is not versioned in the
        // database: after an upgrade, the one this binary has serves its old jobs.
        if let Some(entry) = self.fixed.get(job_type) {
            return Some(entry.plugin.clone());
        }
        match self.fetch(db, sha256).await {
            Ok(plugin) => Some(plugin),
            Err(err) => {
                tracing::warn!(job_type, sha256, error = %err, "the job's plugin version cannot be loaded");
                None
            }
        }
    }

    async fn fetch(&self, db: &Database, sha256: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        let bytes = stored::bytes(&mut db.conn().await?, sha256)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no stored component"))?;
        if sha256_hex(&bytes) != sha256 {
            anyhow::bail!("the stored component does not match its sha256");
        }
        Ok(self.load_bytes(sha256, Arc::new(bytes)).await?)
    }

    /// Brings the uploaded job types in line with the database's active
    /// versions. A version that cannot be loaded is logged and skipped (the
    /// previous one stays in use) and tried again at the next refresh.
    pub async fn refresh(&self, db: &Database) -> Result<(), DbError> {
        let mut shadowed = self.refreshing.lock().await;
        let active = stored::active(&mut db.conn().await?).await?;
        let current: BTreeMap<String, PluginEntry> = self.uploaded.read().map(|map| map.clone()).unwrap_or_default();
        let mut next = BTreeMap::new();
        for (job_type, sha256) in active {
            if self.fixed.contains_key(&job_type) {
                if shadowed.insert(job_type.clone()) {
                    tracing::warn!(
                        job_type,
                        sha256,
                        "an uploaded plugin has the name of a fixed job type; it is ignored here"
                    );
                }
                continue;
            }
            if let Some(entry) = current.get(&job_type).filter(|entry| entry.sha256 == sha256) {
                next.insert(job_type, entry.clone());
                continue;
            }
            match self.fetch(db, &sha256).await {
                Ok(plugin) => {
                    tracing::info!(job_type, version = plugin.metadata().version, sha256, "plugin version active");
                    next.insert(job_type, PluginEntry { plugin, sha256, source: Source::Uploaded });
                }
                Err(err) => {
                    tracing::error!(job_type, sha256, error = %err, "cannot load the active plugin version");
                    if let Some(entry) = current.get(&job_type) {
                        next.insert(job_type, entry.clone());
                    }
                }
            }
        }
        for job_type in current.keys().filter(|job_type| !next.contains_key(*job_type)) {
            tracing::info!(job_type, "plugin disabled");
        }
        if let Ok(mut uploaded) = self.uploaded.write() {
            *uploaded = next;
        }
        Ok(())
    }
}
