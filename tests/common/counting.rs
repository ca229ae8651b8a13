//! The counting global allocator of the zero-allocation tests. It counts per thread, so
//! tests running in parallel and the harness's own threads cannot disturb a count:
//! [`thread_allocs`] is the calling thread's count; threads that [`join_pool`] (a test's
//! thread and rayon's workers) also add to [`pool_allocs`]. [`thread_live_bytes`] follows
//! the bytes the calling thread holds (allocated minus freed, as the layouts ask).

#![allow(dead_code)] // each test binary uses part of it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    static MINE: Cell<usize> = const { Cell::new(0) };
    static POOLED: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

static POOL: AtomicUsize = AtomicUsize::new(0);

/// Allocations made so far by the calling thread.
pub fn thread_allocs() -> usize {
    MINE.with(Cell::get)
}

/// Bytes allocated by the calling thread minus bytes it freed (a block freed by another
/// thread than the one that allocated it skews both threads' figures).
pub fn thread_live_bytes() -> isize {
    LIVE.with(Cell::get)
}

/// The most [`thread_live_bytes`] has been since [`reset_thread_peak`].
pub fn thread_peak_bytes() -> isize {
    PEAK.with(Cell::get)
}

/// Starts [`thread_peak_bytes`] again from the bytes held now.
pub fn reset_thread_peak() {
    PEAK.with(|p| p.set(thread_live_bytes()));
}

fn live(delta: isize) {
    let _ = LIVE.try_with(|c| {
        let now = c.get() + delta;
        c.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

/// Counts the calling thread's allocations in [`pool_allocs`] from now on.
pub fn join_pool() {
    POOLED.with(|p| p.set(true));
}

/// Allocations made so far by the threads that joined the pool.
pub fn pool_allocs() -> usize {
    POOL.load(Ordering::Relaxed)
}

fn count() {
    // `try_with`: a thread whose locals are being torn down is not counted
    let _ = MINE.try_with(|c| c.set(c.get() + 1));
    if POOLED.try_with(Cell::get).unwrap_or(false) {
        POOL.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        live(l.size() as isize);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        live(-(l.size() as isize));
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        live(n as isize - l.size() as isize);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
