//! Instruction counts. QEMU runs with `-icount shift=0`: every instruction advances the
//! virtual clock by exactly 1 ns. Cortex-M (M4 and M0 alike) reads SysTick, which QEMU
//! clocks from that virtual clock at the board's core frequency; RISC-V reads `minstret`. [`calibrate`] runs a loop of a known number of
//! instructions to convert ticks to instructions, so the counts do not rest on a clock
//! rate assumed here.
//!
//! The M4's DWT cycle counter is not used: QEMU models no cycles (not checked here on
//! QEMU 7.2; users of older versions report CYCCNT reading 0), while SysTick runs on the
//! virtual clock that `-icount` makes exact. The measured calibrations: 2,000,000
//! instructions are 50,000 ticks on mps2-an386 (40 per tick: 25 MHz), 32,000 on the
//! micro:bit (62.5 per tick: 16 MHz), and 2,000,009 retired instructions on RISC-V (the
//! loop and 9 instructions of the measurement itself).

/// Iterations of the calibration loop, two instructions each (decrement, branch).
pub const LOOP_ITERATIONS: u32 = 1_000_000;
/// Instructions of the calibration loop.
pub const LOOP_INSTRUCTIONS: u64 = 2 * LOOP_ITERATIONS as u64;

#[cfg(target_arch = "arm")]
mod imp {
    use core::sync::atomic::{AtomicU32, Ordering};

    use cortex_m::peripheral::syst::SystClkSource;
    use cortex_m::peripheral::SYST;
    use cortex_m_rt::exception;

    const RELOAD: u32 = 0x00FF_FFFF;
    static WRAPS: AtomicU32 = AtomicU32::new(0);

    #[exception]
    fn SysTick() {
        // A load and a store: thumbv6m has no atomic read-modify-write; the main thread
        // only reads WRAPS.
        WRAPS.store(WRAPS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Starts SysTick on the processor clock, counting down over 2^24 ticks and counting
    /// its wraps.
    pub fn start(mut syst: SYST) {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // The cleared counter reads 0 until it reloads at the first tick (without a wrap).
        while SYST::get_current() == 0 {}
    }

    /// Ticks since `start`.
    pub fn ticks() -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            if WRAPS.load(Ordering::Relaxed) == wraps {
                return u64::from(wraps) * (u64::from(RELOAD) + 1) + u64::from(RELOAD - current);
            }
        }
    }

    /// `n` iterations of a two-instruction loop.
    #[inline(never)]
    pub fn spin(n: u32) {
        // SAFETY: only a register is changed.
        unsafe {
            core::arch::asm!("2:", "subs {0}, #1", "bne 2b", inout(reg) n => _, options(nomem, nostack));
        }
    }
}

#[cfg(target_arch = "riscv32")]
mod imp {
    /// Nothing to start: `minstret` counts from reset.
    pub fn start() {}

    /// Instructions retired since reset (`minstret`; its high half re-read across a carry).
    pub fn ticks() -> u64 {
        loop {
            let (hi, lo, hi2): (u32, u32, u32);
            // SAFETY: reading counters has no side effects; machine mode may read them.
            unsafe {
                core::arch::asm!("csrr {0}, minstreth", "csrr {1}, minstret", "csrr {2}, minstreth",
                    out(reg) hi, out(reg) lo, out(reg) hi2, options(nomem, nostack));
            }
            if hi == hi2 {
                return (u64::from(hi) << 32) | u64::from(lo);
            }
        }
    }

    /// `n` iterations of a two-instruction loop.
    #[inline(never)]
    pub fn spin(n: u32) {
        // SAFETY: only a register is changed.
        unsafe {
            core::arch::asm!("2:", "addi {0}, {0}, -1", "bnez {0}, 2b", inout(reg) n => _, options(nomem, nostack));
        }
    }
}

pub use imp::{start, ticks};

/// Ticks per [`LOOP_INSTRUCTIONS`] instructions, measured once.
pub fn calibrate() -> u64 {
    let t0 = ticks();
    imp::spin(LOOP_ITERATIONS);
    ticks() - t0
}

/// Instructions in `ticks`, given `calibration` ticks per [`LOOP_INSTRUCTIONS`].
pub fn instructions(ticks: u64, calibration: u64) -> u64 {
    if calibration == 0 {
        return 0;
    }
    (ticks * LOOP_INSTRUCTIONS + calibration / 2) / calibration
}
