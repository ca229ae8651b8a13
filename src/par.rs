//! The thread-count knob and the parallel loops of the kernels.
//!
//! Work is split over at most [`threads()`] pieces, and only above sizes where splitting
//! measured faster; each element is computed by the same instructions whatever the split,
//! so results are bit-identical at any thread count.

#[cfg(feature = "rayon")]
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::scalar::Scalar;

#[cfg(feature = "rayon")]
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads kernels may use: 1 runs everything on the calling thread, 0 (the
/// default) uses as many as rayon's global pool has. Takes effect at the next kernel; it
/// can be changed at any time. Without the `rayon` feature everything runs on the caller.
pub fn set_threads(n: usize) {
    #[cfg(feature = "rayon")]
    THREADS.store(n, Ordering::Relaxed);
    #[cfg(not(feature = "rayon"))]
    let _ = n;
}

/// How many threads kernels may use (see [`set_threads`]).
pub fn threads() -> usize {
    #[cfg(feature = "rayon")]
    {
        match THREADS.load(Ordering::Relaxed) {
            0 => rayon::current_num_threads(),
            n => n,
        }
    }
    #[cfg(not(feature = "rayon"))]
    1
}

/// Elements below which an elementwise kernel stays on one thread.
#[cfg(feature = "rayon")]
const ELEMENTWISE_MIN: usize = 1 << 16;

/// `f(o, a, i)` over `o` and `a` (equal lengths), `i` the flat index.
pub(crate) fn zip<T: Scalar>(o: &mut [T], a: &[T], f: impl Fn(&mut T, T, usize) + Sync) {
    #[cfg(feature = "rayon")]
    {
        let t = threads();
        if t > 1 && o.len() >= ELEMENTWISE_MIN {
            use rayon::prelude::*;
            let chunk = o.len().div_ceil(t);
            o.par_chunks_mut(chunk)
                .zip(a.par_chunks(chunk))
                .enumerate()
                .for_each(|(c, (o, a))| {
                    for (j, (o, &a)) in o.iter_mut().zip(a).enumerate() {
                        f(o, a, c * chunk + j);
                    }
                });
            return;
        }
    }
    for (i, (o, &a)) in o.iter_mut().zip(a).enumerate() {
        f(o, a, i);
    }
}

/// `f(o, i)` over `o`, `i` the flat index.
pub(crate) fn each<T: Scalar>(o: &mut [T], f: impl Fn(&mut T, usize) + Sync) {
    #[cfg(feature = "rayon")]
    {
        let t = threads();
        if t > 1 && o.len() >= ELEMENTWISE_MIN {
            use rayon::prelude::*;
            let chunk = o.len().div_ceil(t);
            o.par_chunks_mut(chunk).enumerate().for_each(|(c, o)| {
                for (j, o) in o.iter_mut().enumerate() {
                    f(o, c * chunk + j);
                }
            });
            return;
        }
    }
    for (i, o) in o.iter_mut().enumerate() {
        f(o, i);
    }
}
