//! tapegrad training on an emulated microcontroller: the shared two-moons workload
//! (`moons`), its loss trace (and each epoch's loss bits) and accuracy over semihosting,
//! then one line of figures: `heap_peak_bytes=… heap_bytes=… stack_peak_bytes=…
//! planned_bytes=… flash_bytes=… instructions_per_step=…` (the heap's peak and its size,
//! the stack's high-water mark, `machine.memory().total()`, the flash image, and the mean
//! instructions of a training step). QEMU exits with the firmware's status: 0 when the
//! accuracy is at least 95%, 1 below, 2 on an error (printed as `error` only: formatting
//! tapegrad's messages would link about 8 KB), 3 on a fault or panic (panics abort, so no
//! message). `run.sh` builds and runs it for each target.
//!
//! With the `gemm-timing` feature it times one matrix product instead (`gemm_timing.rs`).
#![no_std]
#![no_main]

extern crate alloc;

mod counter;
#[cfg(feature = "gemm-timing")]
mod gemm_timing;
mod heap;
mod stack;

use semihosting::println;

/// Where the flash image starts (the memory.x of each board). Only the training run
/// prints the image's size.
#[cfg(all(target_arch = "arm", not(feature = "gemm-timing")))]
const FLASH_ORIGIN: usize = 0;
#[cfg(all(target_arch = "riscv32", not(feature = "gemm-timing")))]
const FLASH_ORIGIN: usize = 0x8000_0000;

/// Bytes of the flash image: code, read-only data and the initial values of `.data`
/// (stored after them and copied to RAM at reset), from the runtime's linker symbols.
#[cfg(not(feature = "gemm-timing"))]
fn flash_bytes() -> usize {
    // Both runtimes (cortex-m-rt, riscv-rt) define these.
    extern "C" {
        static __sidata: u8;
        static __sdata: u8;
        static __edata: u8;
    }
    // Only the symbols' addresses are taken; they are never read.
    let (load, start, end) = (
        core::ptr::addr_of!(__sidata) as usize,
        core::ptr::addr_of!(__sdata) as usize,
        core::ptr::addr_of!(__edata) as usize,
    );
    load + (end - start) - FLASH_ORIGIN
}

#[cfg(target_arch = "arm")]
#[cortex_m_rt::entry]
fn main() -> ! {
    stack::paint();
    heap::init();
    match cortex_m::Peripherals::take() {
        Some(p) => counter::start(p.SYST),
        None => semihosting::process::exit(2),
    }
    semihosting::process::exit(run())
}

#[cfg(target_arch = "riscv32")]
#[riscv_rt::entry]
fn main() -> ! {
    stack::paint();
    heap::init();
    counter::start();
    semihosting::process::exit(run())
}

/// The firmware's exit status.
fn run() -> i32 {
    let calibration = counter::calibrate();
    println!(
        "calibration: {} instructions counted as {} ticks",
        counter::LOOP_INSTRUCTIONS,
        calibration
    );
    #[cfg(feature = "gemm-timing")]
    let result = gemm_timing::run(calibration);
    #[cfg(not(feature = "gemm-timing"))]
    let result = build().and_then(|model| train(model, calibration));
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        // The message is not formatted (see the crate doc).
        Err(_) => {
            println!("error");
            2
        }
    }
}

/// The model, built in a frame of its own that is gone before training (on the
/// micro:bit, the stack and the heap share 16 KiB).
#[cfg(not(feature = "gemm-timing"))]
#[inline(never)]
fn build() -> Result<alloc::boxed::Box<moons::Moons>, tapegrad::Error> {
    moons::Moons::new(moons::CONFIG).map(alloc::boxed::Box::new)
}

/// Trains and prints the trace and figures; `Ok(false)` below 95% accuracy.
#[cfg(not(feature = "gemm-timing"))]
#[inline(never)]
fn train(
    mut model: alloc::boxed::Box<moons::Moons>,
    calibration: u64,
) -> Result<bool, tapegrad::Error> {
    use moons::{Bits, Line, CONFIG};

    let mut ticks = 0;
    for epoch in 1..=CONFIG.epochs {
        let t0 = counter::ticks();
        let loss = model.epoch()?;
        ticks += counter::ticks() - t0;
        println!("{}", Line { epoch, loss });
        println!("{}", Bits { epoch, loss });
    }
    let (right, total) = model.accuracy()?;
    println!("accuracy {}/{}", right, total);
    let steps = model.steps().max(1) as u64;
    println!(
        "heap_peak_bytes={} heap_bytes={} stack_peak_bytes={} planned_bytes={} flash_bytes={} instructions_per_step={}",
        heap::HEAP.peak(),
        heap::HEAP_BYTES,
        stack::peak(),
        model.machine().memory().total(),
        flash_bytes(),
        counter::instructions(ticks, calibration) / steps
    );
    Ok(right * 100 >= total * 95)
}

/// Built with `panic=immediate-abort` (`.cargo/config.toml`), a panic (an allocation
/// failure included) aborts before reaching this handler: an undefined instruction, so
/// a HardFault or trap below, status 3. Were it reached, it would end the run the same way.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    semihosting::process::exit(3)
}

/// Faults end the run with status 3.
#[cfg(target_arch = "arm")]
#[cortex_m_rt::exception]
unsafe fn HardFault(_: &cortex_m_rt::ExceptionFrame) -> ! {
    semihosting::process::exit(3)
}

/// Traps (an illegal instruction, a misaligned access) end the run with status 3.
#[cfg(target_arch = "riscv32")]
#[export_name = "ExceptionHandler"]
fn exception(_: &riscv_rt::TrapFrame) -> ! {
    semihosting::process::exit(3)
}
