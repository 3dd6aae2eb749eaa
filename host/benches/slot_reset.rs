//! `cargo bench -p xingqiao --bench slot_reset`: how many of a plugin's
//! written memory pages the sandbox's pool keeps between two calls, on the
//! server's own wasmtime engine (`PluginRuntime`).
//!
//! A core module with a 64 KiB data image writes N pages per call, each
//! separate from the next, so the call leaves N runs of written pages. A
//! page the slot kept costs nothing the next time; a page it gave back is
//! faulted in again. Prints one JSON line per N: minor page faults and
//! microseconds per call (a fresh store and instance each time, as a plugin
//! call gets).
//!
//! Why it is here: wasmtime 48 resets a slot by asking the kernel for its
//! written pages (`PAGEMAP_SCAN`) and keeps at most 32 runs of them resident
//! (`MAX_REGIONS` in its `pagemap.rs`); a Python component writes far more
//! runs, which is a fifth of its plugin work (README, "Writing a plugin").
//! Run this again after a wasmtime upgrade to see whether that bound moved.

use std::time::Instant;

use serde_json::json;
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection, MemArg, MemorySection,
    MemoryType, Module, TypeSection, ValType,
};
use xingqiao::runtime::{PluginRuntime, SandboxLimits};

#[path = "common/proc_stat.rs"]
pub mod proc_stat;
use proc_stat::minor_faults;

const PAGE: i32 = 4096;
const CALLS: u32 = 2_000;

/// `touch(n)`: writes one word at every other 4 KiB page, n times.
fn module_writing_separate_pages() -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], []);
    let mut functions = FunctionSection::new();
    functions.function(0);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType { minimum: 256, maximum: None, memory64: false, shared: false, page_size_log2: None });
    let mut exports = ExportSection::new();
    exports.export("touch", ExportKind::Func, 0);
    let mut touch = Function::new([(1, ValType::I32)]);
    let store = MemArg { offset: 0, align: 2, memory_index: 0 };
    touch
        .instructions()
        .block(wasm_encoder::BlockType::Empty)
        .loop_(wasm_encoder::BlockType::Empty)
        .local_get(1)
        .local_get(0)
        .i32_ge_s()
        .br_if(1)
        .local_get(1)
        .i32_const(2 * PAGE)
        .i32_mul()
        .local_get(1)
        .i32_store(store)
        .local_get(1)
        .i32_const(1)
        .i32_add()
        .local_set(1)
        .br(0)
        .end()
        .end()
        .end();
    let mut code = CodeSection::new();
    code.function(&touch);
    // A data image, as every real plugin has: the slot is then reset from it.
    let mut data = DataSection::new();
    data.active(0, &ConstExpr::i32_const(0), [1u8; 65_536]);
    let mut module = Module::new();
    module.section(&types).section(&functions).section(&memories).section(&exports).section(&code).section(&data);
    module.finish()
}

fn main() {
    let runtime = PluginRuntime::new(SandboxLimits::default()).unwrap_or_else(|err| panic!("{err}"));
    let engine = runtime.engine();
    let module = wasmtime::Module::new(engine, module_writing_separate_pages()).unwrap_or_else(|err| panic!("{err}"));
    let linker = wasmtime::Linker::<()>::new(engine);
    let pre = linker.instantiate_pre(&module).unwrap_or_else(|err| panic!("{err}"));
    let call = |runs: i32| {
        let mut store = wasmtime::Store::new(engine, ());
        // The engine interrupts by epoch; no deadline matters here.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre.instantiate(&mut store).unwrap_or_else(|err| panic!("{err}"));
        let touch = instance.get_typed_func::<i32, ()>(&mut store, "touch").unwrap_or_else(|err| panic!("{err}"));
        touch.call(&mut store, runs).unwrap_or_else(|err| panic!("{err}"));
    };
    for runs in [8, 16, 31, 32, 33, 34, 40, 64, 128, 256] {
        for _ in 0..50 {
            call(runs);
        }
        let faults = minor_faults();
        let started = Instant::now();
        for _ in 0..CALLS {
            call(runs);
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
        let line = json!({
            "bench": "slot_reset",
            "runs_of_written_pages": runs,
            "minor_faults_per_call": ((minor_faults() - faults) as f64 / f64::from(CALLS) * 10.0).round() / 10.0,
            "us_per_call": (us * 10.0).round() / 10.0,
        });
        println!("{line}");
    }
}
