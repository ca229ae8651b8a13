//! The kernels for windows that tile the plane (stride = kernel, no padding) of kernel
//! `[1, 2]`, `[1, 3]`, `[2, 2]` or `[3, 3]`: LeNet's and most CNNs' pooling. With the
//! kernel a constant, each window is an unrolled run of compares or adds with no range
//! bookkeeping, and every input cell belongs to at most one window, so the gradients
//! store into cells instead of adding into them.
//!
//! Each output is computed with the same operations, in the same order, as the general
//! kernels of `general.rs` (`argmax`'s row-major scan with its NaN rule, sums from zero, a
//! gradient cell `0 + g`), so the results are bit-identical to them.

use super::window::Geom;
use crate::scalar::Scalar;

/// Runs `$f::<T, KH, KW>($args)` for a tiling window of a kernel with a fast path: whether
/// it did.
macro_rules! by_kernel {
    ($g:expr, $f:ident($($a:expr),*)) => {
        match $g.tiling() {
            Some([1, 2]) => { $f::<T, 1, 2>($($a),*); true }
            Some([1, 3]) => { $f::<T, 1, 3>($($a),*); true }
            Some([2, 2]) => { $f::<T, 2, 2>($($a),*); true }
            Some([3, 3]) => { $f::<T, 3, 3>($($a),*); true }
            _ => false,
        }
    };
}

/// Max pooling of plane `xp` of extent `hw` into `o`, taking each window's value of `vp`
/// at `xp`'s arg-max (`xp`'s own when `None`), if the window has a fast path.
pub(super) fn max<T: Scalar>(
    g: &Geom,
    hw: [usize; 2],
    xp: &[T],
    vp: Option<&[T]>,
    o: &mut [T],
) -> bool {
    by_kernel!(g, max_k(hw, xp, vp, o))
}

/// `gp` routed to the arg-max of `xp` in each window, into plane `o`, if the window has a
/// fast path.
pub(super) fn scatter<T: Scalar>(
    g: &Geom,
    hw: [usize; 2],
    xp: &[T],
    gp: &[T],
    o: &mut [T],
) -> bool {
    by_kernel!(g, scatter_k(hw, xp, gp, o))
}

/// Average pooling (`inv` = `1 / (k_h k_w)`) of plane `xp` into `o`, if the window has a
/// fast path.
pub(super) fn avg<T: Scalar>(g: &Geom, hw: [usize; 2], xp: &[T], inv: T, o: &mut [T]) -> bool {
    by_kernel!(g, avg_k(hw, xp, inv, o))
}

/// Average pooling's gradient: `gp * inv` spread over each window of plane `o`, if the
/// window has a fast path.
pub(super) fn avg_grad<T: Scalar>(g: &Geom, hw: [usize; 2], gp: &[T], inv: T, o: &mut [T]) -> bool {
    by_kernel!(g, avg_grad_k(hw, gp, inv, o))
}

/// Rows `oh KH ..` of a plane of width `w`, each cut to the `ow KW` columns the windows
/// cover.
#[inline(always)]
fn rows<T, const KH: usize>(p: &[T], w: usize, oh: usize, cols: usize) -> [&[T]; KH] {
    core::array::from_fn(|i| &p[(oh * KH + i) * w..][..cols])
}

/// The value of window `ow`'s largest cell: the first of equal ones, the last NaN if any
/// (as `window::argmax`).
#[inline(always)]
fn top<T: Scalar, const KH: usize, const KW: usize>(r: &[&[T]; KH], ow: usize) -> T {
    let mut best = r[0][ow * KW];
    for row in r {
        for j in 0..KW {
            let v = row[ow * KW + j];
            best = if v > best || v.is_nan() { v } else { best };
        }
    }
    best
}

/// One step of [`top`]'s scan: `v` if it is larger than `best` or NaN. The scan keeps
/// the first of the largest cells, or the last NaN, and that choice of a cell does not
/// depend on how the scan is grouped: `pick(pick(a, b), pick(c, d))` is the same cell
/// (the same bits) as the scan of `a, b, c, d`, with half the chain of dependent compares.
/// (A 2×2 window's value one by one cost a tenth of the digits CNN's inference at batch 1.)
#[inline(always)]
fn pick<T: Scalar>(best: T, v: T) -> T {
    if v > best || v.is_nan() {
        v
    } else {
        best
    }
}

/// The row-major index in the window of window `ow`'s largest cell (see [`top`]). Found
/// from the largest value rather than tracked along with it: tracking it made the compiler
/// branch on each comparison, which on data without order mispredicts half the time and
/// cost more than the rest of the gradient; these scans are compares and conditional
/// moves.
#[inline(always)]
fn arg<T: Scalar, const KH: usize, const KW: usize>(r: &[&[T]; KH], ow: usize) -> usize {
    let best = top::<T, KH, KW>(r, ow);
    // the last NaN (a branch the data almost never takes), else the first cell equal to
    // the largest (`==`: a -0 and a 0 tie, as in the scan)
    let mut at = 0;
    if best.is_nan() {
        for (i, row) in r.iter().enumerate() {
            for j in 0..KW {
                at = if row[ow * KW + j].is_nan() {
                    i * KW + j
                } else {
                    at
                };
            }
        }
    } else {
        for (i, row) in r.iter().enumerate().rev() {
            for j in (0..KW).rev() {
                at = if row[ow * KW + j] == best {
                    i * KW + j
                } else {
                    at
                };
            }
        }
    }
    at
}

fn max_k<T: Scalar, const KH: usize, const KW: usize>(
    hw: [usize; 2],
    xp: &[T],
    vp: Option<&[T]>,
    o: &mut [T],
) {
    let [oh_n, ow_n] = [hw[0] / KH, hw[1] / KW];
    let cols = ow_n * KW;
    for (oh, orow) in o.chunks_exact_mut(ow_n).take(oh_n).enumerate() {
        let xr = rows::<T, KH>(xp, hw[1], oh, cols);
        match vp {
            None if KH == 2 && KW == 2 => {
                let cells = xr[0].chunks_exact(2).zip(xr[1].chunks_exact(2));
                for (y, (a, b)) in orow.iter_mut().zip(cells) {
                    *y = pick(pick(a[0], a[1]), pick(b[0], b[1]));
                }
            }
            None => {
                for (ow, y) in orow.iter_mut().enumerate() {
                    *y = top::<T, KH, KW>(&xr, ow);
                }
            }
            Some(vp) => {
                let vr = rows::<T, KH>(vp, hw[1], oh, cols);
                for (ow, y) in orow.iter_mut().enumerate() {
                    let at = arg::<T, KH, KW>(&xr, ow);
                    *y = vr[at / KW][ow * KW + at % KW];
                }
            }
        }
    }
}

/// Clears the cells of plane `o` (extent `hw`) that no window covers: the columns right of
/// the last window, and the rows below it.
fn clear_uncovered<T: Scalar, const KH: usize, const KW: usize>(hw: [usize; 2], o: &mut [T]) {
    let [h, w] = [hw[0] / KH * KH, hw[1] / KW * KW];
    if w < hw[1] {
        for row in o.chunks_exact_mut(hw[1]).take(h) {
            row[w..].fill(T::zero());
        }
    }
    o[h * hw[1]..].fill(T::zero());
}

fn scatter_k<T: Scalar, const KH: usize, const KW: usize>(
    hw: [usize; 2],
    xp: &[T],
    gp: &[T],
    o: &mut [T],
) {
    let [oh_n, ow_n] = [hw[0] / KH, hw[1] / KW];
    let cols = ow_n * KW;
    o.fill(T::zero());
    for (oh, (block, grow)) in o
        .chunks_exact_mut(KH * hw[1])
        .zip(gp.chunks_exact(ow_n))
        .take(oh_n)
        .enumerate()
    {
        let xr = rows::<T, KH>(xp, hw[1], oh, cols);
        for (ow, &gv) in grow.iter().enumerate() {
            let at = arg::<T, KH, KW>(&xr, ow);
            // 0 + g: the general kernel adds into a cleared plane
            block[at / KW * hw[1] + ow * KW + at % KW] = T::zero() + gv;
        }
    }
}

/// The `KH` rows of width `w` of `block`, each cut to its first `cols` cells.
#[inline(always)]
fn split_rows<T, const KH: usize>(block: &mut [T], w: usize, cols: usize) -> [&mut [T]; KH] {
    let mut it = block.chunks_exact_mut(w);
    core::array::from_fn(|_| match it.next() {
        Some(r) => &mut r[..cols],
        None => &mut [],
    })
}

fn avg_k<T: Scalar, const KH: usize, const KW: usize>(
    hw: [usize; 2],
    xp: &[T],
    inv: T,
    o: &mut [T],
) {
    let [oh_n, ow_n] = [hw[0] / KH, hw[1] / KW];
    let cols = ow_n * KW;
    for (oh, orow) in o.chunks_exact_mut(ow_n).take(oh_n).enumerate() {
        let xr = rows::<T, KH>(xp, hw[1], oh, cols);
        for (ow, y) in orow.iter_mut().enumerate() {
            let mut sum = T::zero();
            for row in &xr {
                for j in 0..KW {
                    sum = sum + row[ow * KW + j];
                }
            }
            *y = sum * inv;
        }
    }
}

fn avg_grad_k<T: Scalar, const KH: usize, const KW: usize>(
    hw: [usize; 2],
    gp: &[T],
    inv: T,
    o: &mut [T],
) {
    let [oh_n, ow_n] = [hw[0] / KH, hw[1] / KW];
    let cols = ow_n * KW;
    clear_uncovered::<T, KH, KW>(hw, o);
    for (block, grow) in o
        .chunks_exact_mut(KH * hw[1])
        .zip(gp.chunks_exact(ow_n))
        .take(oh_n)
    {
        let mut or: [&mut [T]; KH] = split_rows(block, hw[1], cols);
        for (ow, &gv) in grow.iter().enumerate() {
            // 0 + g / k: the general kernel adds the share into a cleared plane
            let v = T::zero() + gv * inv;
            for row in or.iter_mut() {
                for j in 0..KW {
                    row[ow * KW + j] = v;
                }
            }
        }
    }
}
