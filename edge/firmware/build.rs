//! Puts the target's `memory.x` where the runtime's `link.x` finds it, and sets the heap
//! size: `FIRMWARE_HEAP` bytes if set, else the target's default.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let timing = env::var_os("CARGO_FEATURE_GEMM_TIMING").is_some();
    // Defaults: the training run's heap on each board; the GEMM timing mode holds three
    // 64 x 64 matrices and the packing scratch.
    let (memory, heap) = match target.as_str() {
        "thumbv7em-none-eabihf" => (
            "memory/mps2-an386.x",
            if timing { 256 * 1024 } else { 12 * 1024 },
        ),
        // 16 KiB of RAM: the heap's peak is 11,376 B and the stack's 3,936 B.
        "thumbv6m-none-eabi" => ("memory/microbit.x", 11 * 1024 + 512),
        t if t.starts_with("riscv32") => {
            ("memory/virt.x", if timing { 256 * 1024 } else { 12 * 1024 })
        }
        // A host `cargo check` of this crate has nothing to link.
        _ => ("memory/mps2-an386.x", 12 * 1024),
    };
    println!("cargo:rerun-if-env-changed=FIRMWARE_HEAP");
    let heap: usize = match env::var("FIRMWARE_HEAP") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
            Ok(n) => n,
            Err(e) => {
                println!("cargo:error=FIRMWARE_HEAP={v:?} is not a byte count: {e}");
                std::process::exit(1);
            }
        },
        _ => heap,
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed={memory}");
    if let Err(e) = fs::copy(memory, out.join("memory.x")) {
        println!("cargo:error=copying {memory}: {e}");
        std::process::exit(1);
    }
    if let Err(e) = fs::write(
        out.join("heap.rs"),
        format!("pub const HEAP_BYTES: usize = {heap};\n"),
    ) {
        println!("cargo:error=writing heap.rs: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-search={}", out.display());
}
