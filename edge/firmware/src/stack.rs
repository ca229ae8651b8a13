//! The stack's high-water mark: [`paint`] fills the free RAM between the statics and the
//! stack pointer with a pattern at reset, [`peak`] finds the deepest word overwritten
//! since. (On the micro:bit's 16 KiB the heap and the stack share what the statics leave.)

use core::ptr::{addr_of, read_volatile, write_volatile};

const PAINT: u32 = 0x5AA5_C33C;

// Both runtimes (cortex-m-rt, riscv-rt) define these.
extern "C" {
    /// The end of the statics (`.bss`, `.uninit`).
    static __sheap: u32;
    /// The top of the stack.
    static _stack_start: u32;
}

fn bottom() -> usize {
    (addr_of!(__sheap) as usize + 3) & !3
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register.
    #[cfg(target_arch = "arm")]
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack));
    }
    // SAFETY: reads a register.
    #[cfg(target_arch = "riscv32")]
    unsafe {
        core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack));
    }
    sp
}

/// Paints the free stack below the current frame (keeping 256 bytes clear for this call).
#[inline(never)]
pub fn paint() {
    let end = stack_pointer().saturating_sub(256) & !3;
    let mut p = bottom();
    while p < end {
        // SAFETY: between the end of the statics and below the live stack: RAM nothing
        // else uses yet (the heap is a static array).
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The most bytes of stack used since [`paint`].
pub fn peak() -> usize {
    let mut p = bottom();
    // SAFETY: reads RAM below the live stack, painted by `paint`.
    while p < top() && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top() - p
}
