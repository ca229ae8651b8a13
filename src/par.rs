//! The thread-count knob and the parallel loops of the kernels.
//!
//! Work is split over at most [`threads()`] pieces, and only above sizes where splitting
//! measured faster; each element is computed by the same instructions whatever the split,
//! so results are bit-identical at any thread count. The pieces go to a crew of helper
//! threads of the crate's own (`par/crew.rs`), or to rayon's pool when the crew is busy
//! with another thread's kernel.

#[cfg(feature = "rayon")]
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::scalar::Scalar;

#[cfg(feature = "rayon")]
mod crew;

#[cfg(feature = "rayon")]
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads kernels may use: 1 runs everything on the calling thread, 0 (the
/// default) uses as many as rayon's global pool has. Takes effect at the next kernel; it
/// can be changed at any time. Without the `rayon` feature everything runs on the caller.
///
/// Compiling a machine, or the first kernel split over threads, starts `n - 1` helper
/// threads, which live as long as the process. Between pieces they wait spinning, for about 300 µs after their last
/// piece, then sleep: while a training loop runs they keep their CPUs busy (a hand-off
/// then costs well under a microsecond, against tens of microseconds to wake a sleeping
/// thread). Set 1 where other work needs those CPUs more, or power matters.
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
            0 => rayon_core::current_num_threads(),
            n => n,
        }
    }
    #[cfg(not(feature = "rayon"))]
    1
}

/// How many threads a kernel may split over here: [`threads()`], but 1 inside a piece of
/// a kernel already split over the crew (a convolution's samples, whose products then
/// run whole on the piece's thread).
pub(crate) fn kernel_threads() -> usize {
    #[cfg(feature = "rayon")]
    if crew::in_piece() {
        return 1;
    }
    threads()
}

/// Starts the helper threads [`threads()`] asks for, if they are not running yet (a
/// machine calls it when compiled, so that no run starts them: starting one allocates).
pub(crate) fn prepare() {
    #[cfg(feature = "rayon")]
    crew::prepare(threads().saturating_sub(1));
}

/// Elements below which an elementwise kernel stays on one thread.
#[cfg(feature = "rayon")]
const ELEMENTWISE_MIN: usize = 1 << 16;

/// `f(o, a, i)` over `o` and `a` (equal lengths), `i` the flat index.
pub(crate) fn zip<T: Scalar>(o: &mut [T], a: &[T], f: impl Fn(&mut T, T, usize) + Sync) {
    #[cfg(feature = "rayon")]
    {
        let t = kernel_threads();
        if t > 1 && o.len() >= ELEMENTWISE_MIN {
            let chunk = o.len().div_ceil(t);
            pieces(o, chunk, &mut [], 0, a, chunk, &|c, o, _, a| {
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
        let t = kernel_threads();
        if t > 1 && o.len() >= ELEMENTWISE_MIN {
            let chunk = o.len().div_ceil(t);
            pieces(o, chunk, &mut [], 0, &[], 0, &|c, o, _, _| {
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

/// `f(run)` over consecutive runs of `o` that together cover it once, on the crew's
/// threads for a long `o`: for a kernel that computes many elements at once.
pub(crate) fn runs<T: Scalar>(o: &mut [T], f: impl Fn(&mut [T]) + Sync) {
    runs3(o, &mut [], &[], |o, _, _| f(o))
}

/// `f(o, s, a)` over consecutive runs of `o` and the same runs of `a` (as long as `o`, or
/// empty) and of `s` (which holds the same number of elements, 0 or more, for each element
/// of `o`), on the crew's threads for a long `o`: an optimizer's update of a parameter `o`
/// from its gradient `a` and its state `s`. Split like [`zip`].
pub(crate) fn runs3<T: Scalar>(
    o: &mut [T],
    s: &mut [T],
    a: &[T],
    f: impl Fn(&mut [T], &mut [T], &[T]) + Sync,
) {
    #[cfg(feature = "rayon")]
    {
        let t = kernel_threads();
        if t > 1 && o.len() >= ELEMENTWISE_MIN {
            let chunk = o.len().div_ceil(t);
            debug_assert_eq!(
                s.len() % o.len(),
                0,
                "runs3: s is not w elements per element"
            );
            let sc = chunk * (s.len() / o.len());
            pieces(o, chunk, s, sc, a, chunk, &|_, o, s, a| f(o, s, a));
            return;
        }
    }
    f(o, s, a)
}

/// A piece's work: its index and its parts of the three slices given to [`pieces`].
#[cfg(feature = "rayon")]
pub(crate) type Piece<'f, T> = dyn Fn(usize, &mut [T], &mut [T], &[T]) + Sync + 'f;

/// Cuts `o`, `s` and `a` into pieces of `oc`, `sc` and `ac` elements (a slice given a
/// piece size of 0, or shorter than its pieces, gives empty or short parts) and runs `f` on
/// piece `k` of each, for every `k`, on rayon's pool: halves are handed to
/// `rayon_core::join` until one piece is left, as rayon's `par_chunks_mut` does, so no
/// piece allocates. Taking `f` as a trait object, this is compiled once per element type,
/// not once per kernel: the kernels' loops stay inlined in their closures.
#[cfg(feature = "rayon")]
pub(crate) fn pieces<T: Send + Sync>(
    o: &mut [T],
    oc: usize,
    s: &mut [T],
    sc: usize,
    a: &[T],
    ac: usize,
    f: &Piece<'_, T>,
) {
    let n = o.len().div_ceil(oc.max(1));
    if n > 1 && on_crew(n, (o, oc), (s, sc), (a, ac), f) {
        return;
    }
    by_join(o, oc, s, sc, a, ac, f);
}

/// A slice's pointer, shared with the crew's threads.
#[cfg(feature = "rayon")]
struct Base<T>(*mut T, usize);

#[cfg(feature = "rayon")]
impl<T> Clone for Base<T> {
    fn clone(&self) -> Self {
        *self
    }
}

#[cfg(feature = "rayon")]
impl<T> Copy for Base<T> {}

// SAFETY: the crew's threads make disjoint pieces of the slice (see `on_crew`).
#[cfg(feature = "rayon")]
unsafe impl<T: Send + Sync> Sync for Base<T> {}

#[cfg(feature = "rayon")]
impl<T> Base<T> {
    /// Piece `k` of `c` elements, as `pieces` cuts it: `(start, len)`.
    fn piece(self, k: usize, c: usize) -> (usize, usize) {
        let lo = k.saturating_mul(c).min(self.1);
        (lo, k.saturating_add(1).saturating_mul(c).min(self.1) - lo)
    }
}

/// [`pieces`] on the crew (`crew.rs`); `false` if it is not available (nothing run).
#[cfg(feature = "rayon")]
fn on_crew<T: Send + Sync>(
    n: usize,
    (o, oc): (&mut [T], usize),
    (s, sc): (&mut [T], usize),
    (a, ac): (&[T], usize),
    f: &Piece<'_, T>,
) -> bool {
    let helpers = threads().saturating_sub(1).min(n - 1);
    let (o, s) = (Base(o.as_mut_ptr(), o.len()), Base(s.as_mut_ptr(), s.len()));
    let a = Base(a.as_ptr().cast_mut(), a.len());
    crew::run(n, helpers, &|k| {
        let ((o0, ol), (s0, sl), (a0, al)) = (o.piece(k, oc), s.piece(k, sc), a.piece(k, ac));
        // SAFETY: the crew runs each `k` in `0..n` exactly once, while the three slices
        // are borrowed by this call, and pieces `k` of each are disjoint ranges (`a`'s are
        // only read).
        let (o, s, a) = unsafe {
            (
                core::slice::from_raw_parts_mut(o.0.add(o0), ol),
                core::slice::from_raw_parts_mut(s.0.add(s0), sl),
                core::slice::from_raw_parts(a.0.add(a0).cast_const(), al),
            )
        };
        f(k, o, s, a);
    })
}

/// [`pieces`] by `rayon_core::join`.
#[cfg(feature = "rayon")]
fn by_join<T: Send + Sync>(
    o: &mut [T],
    oc: usize,
    s: &mut [T],
    sc: usize,
    a: &[T],
    ac: usize,
    f: &Piece<'_, T>,
) {
    fn go<T: Send + Sync>(
        first: usize,
        (o, oc): (&mut [T], usize),
        (s, sc): (&mut [T], usize),
        (a, ac): (&[T], usize),
        f: &Piece<'_, T>,
    ) {
        let n = o.len().div_ceil(oc.max(1));
        if n <= 1 {
            f(first, o, s, a);
            return;
        }
        let half = n / 2;
        let (o0, o1) = o.split_at_mut((half * oc).min(o.len()));
        let (s0, s1) = s.split_at_mut((half * sc).min(s.len()));
        let (a0, a1) = a.split_at((half * ac).min(a.len()));
        rayon_core::join(
            || go(first, (o0, oc), (s0, sc), (a0, ac), f),
            || go(first + half, (o1, oc), (s1, sc), (a1, ac), f),
        );
    }
    go(0, (o, oc), (s, sc), (a, ac), f);
}

#[cfg(all(test, feature = "rayon"))]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;
    use std::sync::Mutex;

    use super::{by_join, pieces, Piece};

    type Split = fn(&mut [f32], usize, &mut [f32], usize, &[f32], usize, &Piece<'_, f32>);

    #[test]
    fn every_piece_runs_once_with_its_parts() {
        // on the crew where it is free, and by join
        for split in [pieces::<f32> as Split, by_join::<f32>] {
            runs_once_with_its_parts(split);
        }
    }

    fn runs_once_with_its_parts(pieces: Split) {
        for len in [1usize, 2, 5, 7, 64, 100] {
            for oc in [1usize, 2, 3, 7, 64, 200] {
                let n = len.div_ceil(oc);
                let mut o = vec![0.0f32; len];
                let mut s = vec![0.0f32; n * 2];
                let a: Vec<f32> = (0..len * 3).map(|i| i as f32).collect();
                let seen = Mutex::new(Vec::new());
                pieces(&mut o, oc, &mut s, 2, &a, oc * 3, &|k, o, s, a| {
                    // piece k: elements k * oc.. of o, 2 of scratch, 3 * oc of a
                    for (j, x) in o.iter_mut().enumerate() {
                        *x += (k * oc + j) as f32 + 1.0;
                    }
                    s.fill(k as f32 + 1.0);
                    assert_eq!(a.first().copied(), Some((k * oc * 3) as f32));
                    seen.lock().unwrap().push(k);
                });
                let mut seen = seen.into_inner().unwrap();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "len {len} oc {oc}");
                let want: Vec<f32> = (0..len).map(|i| i as f32 + 1.0).collect();
                assert_eq!(o, want, "len {len} oc {oc}");
                let parts: Vec<f32> = (0..n * 2).map(|i| (i / 2 + 1) as f32).collect();
                assert_eq!(s, parts, "len {len} oc {oc}");
            }
        }
    }
}
