//! The one wasmtime `Engine` of a process, its `Linker`, and the epoch ticker
//! that gives every call its deadline.

use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Strategy};

use super::bindings;
use super::epoch::EpochTicker;
use super::error::PluginError;
use super::limits::SandboxLimits;
use super::store::CallState;

/// Shared by every loaded plugin; cheap to clone.
#[derive(Clone)]
pub struct PluginRuntime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) limits: SandboxLimits,
    /// Without it no deadline would ever fire: every call holds it running.
    pub(crate) ticker: EpochTicker,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime").field("limits", &self.inner.limits).finish_non_exhaustive()
    }
}

/// The host could not set up wasmtime (a host problem, never a plugin's).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the plugin runtime: {0}")]
pub struct RuntimeSetupError(String);

fn setup_error(err: impl std::fmt::Display) -> RuntimeSetupError {
    RuntimeSetupError(format!("{err:#}"))
}

const COMPONENT_LAYER: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

impl PluginRuntime {
    pub fn new(limits: SandboxLimits) -> Result<Self, RuntimeSetupError> {
        let engine = Engine::new(&engine_config(&limits)).map_err(setup_error)?;
        let mut linker = Linker::new(&engine);
        // Deny-all WASI (see `CallState::new`): std guests import it whether they use it or not.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(setup_error)?;
        bindings::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(setup_error)?;
        let ticker = EpochTicker::start(&engine, limits.epoch_tick).map_err(setup_error)?;
        Ok(Self { inner: Arc::new(RuntimeInner { engine, linker, limits, ticker }) })
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.inner.limits
    }

    /// Checks that `bytes` are a component (not a core module, not junk) and
    /// compiles them with Cranelift: the slow part of loading.
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, PluginError> {
        match bytes.get(..8) {
            Some(header) if header.starts_with(b"\0asm") => {
                if header[4..] == CORE_MODULE_VERSION {
                    return Err(PluginError::CoreModule);
                }
                if header[4..] != COMPONENT_LAYER {
                    return Err(PluginError::Compile(format!("unsupported binary version {:02x?}", &header[4..])));
                }
            }
            _ => return Err(PluginError::NotWasm),
        }
        Component::new(&self.inner.engine, bytes).map_err(|err| PluginError::Compile(format!("{err:#}")))
    }

    pub(crate) fn linker(&self) -> &Linker<CallState> {
        &self.inner.linker
    }

    /// Public only for the bench that measures the engine's pool with a core
    /// module (`benches/slot_reset.rs`); plugins never see it.
    #[doc(hidden)]
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

fn engine_config(limits: &SandboxLimits) -> Config {
    let calls = limits.max_concurrent_calls.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // A Rust std component has a handful of core instances, two memories
    // (its own and the WASI adapter's) and a few tables; a Python one
    // (componentize-py: libc, libpython and their adapters) has 14 core
    // instances, a JavaScript one (componentize-js) fewer.
    pool.total_component_instances(calls)
        .total_core_instances(calls.saturating_mul(16))
        .total_memories(calls.saturating_mul(4))
        .total_tables(calls.saturating_mul(8))
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_memory_size(limits.max_memory_bytes.max(limits.memory_bytes))
        // A slot's dirty pages are reset in place (PAGEMAP_SCAN, Linux 6.7+)
        // instead of unmapped, so the next call of the same plugin does not
        // fault them in again: halves a JavaScript plugin's instantiation.
        .linear_memory_keep_resident(limits.max_memory_bytes.max(limits.memory_bytes))
        .table_keep_resident(1 << 20)
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Threads and exceptions are compiled out of this build (no `threads`
        // or `gc` feature); GC is switched off explicitly.
        .wasm_gc(false)
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
