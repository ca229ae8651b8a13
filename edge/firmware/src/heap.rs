//! The global allocator: embedded-alloc's linked-list heap over a static array of
//! `HEAP_BYTES` (set by the build), wrapped to record the peak of the bytes it holds.

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

include!(concat!(env!("OUT_DIR"), "/heap.rs"));

/// A heap that remembers the most bytes it held at once.
pub struct PeakHeap {
    heap: LlffHeap,
    peak: AtomicUsize,
}

impl PeakHeap {
    const fn new() -> Self {
        PeakHeap {
            heap: LlffHeap::empty(),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most bytes held at once (allocations rounded as the allocator rounds them).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is forwarded to `LlffHeap`; the peak is bookkeeping. A load and a
// store (no read-modify-write, which thumbv6m and rv32imc lack) suffice: the firmware
// allocates from one thread and never from an interrupt handler.
unsafe impl GlobalAlloc for PeakHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { self.heap.alloc(layout) };
        let used = self.heap.used();
        if used > self.peak.load(Ordering::Relaxed) {
            self.peak.store(used, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

#[global_allocator]
pub static HEAP: PeakHeap = PeakHeap::new();

/// Hands the static array to the allocator; call once, first thing.
pub fn init() {
    static mut MEMORY: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];
    // SAFETY: called once, before any allocation; nothing else refers to `MEMORY`.
    unsafe {
        HEAP.heap
            .init(core::ptr::addr_of_mut!(MEMORY) as usize, HEAP_BYTES)
    }
}
