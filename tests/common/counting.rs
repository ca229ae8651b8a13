//! The counting global allocator of the zero-allocation tests. It counts per thread, so
//! tests running in parallel and the harness's own threads cannot disturb a count:
//! [`thread_allocs`] is the calling thread's count; threads that [`join_pool`] (a test's
//! thread and rayon's workers) also add to [`pool_allocs`].

#![allow(dead_code)] // each test binary uses part of it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    static MINE: Cell<usize> = const { Cell::new(0) };
    static POOLED: Cell<bool> = const { Cell::new(false) };
}

static POOL: AtomicUsize = AtomicUsize::new(0);

/// Allocations made so far by the calling thread.
pub fn thread_allocs() -> usize {
    MINE.with(Cell::get)
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
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
