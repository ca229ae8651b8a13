//! The convolution kernels: im2col into scratch, then the crate's GEMM.
//!
//! For one sample and group, with `cols` the `[K, P]` unfolding of the input (row
//! `(c, i, j)`, column `(oy, ox)` holds `x[c, oy*sh + i*dh - ph, ox*sw + j*dw - pw]`, or 0 in
//! the padding):
//! - forward: `y[og, P] = w[og, K] · cols`;
//! - input gradient: `dcols[K, P] = w[og, K]ᵀ · gy[og, P]`, folded back (col2im, adding
//!   overlapping taps in a fixed order);
//! - weight gradient: `dw[og, K] = sum_n gy[n, og, P] · cols(x[n])ᵀ`, each sample's product
//!   in scratch, then summed over the samples in order.
//!
//! All three split the batch over threads in whole samples, each piece with its own part
//! of the scratch; every sample is computed by the same instructions whatever the split
//! (and the weight gradient's sum over samples runs after, in one order), so the bits do
//! not depend on the thread count. Per sample, the columns stay in cache: unfolding the
//! whole batch for one product (5 MB of columns for LeNet's first layer) measured slower. A 1×1 kernel with
//! stride 1 and no padding reads the input as its own columns.

use super::unfold::{col2im_add, im2col, padded_len};
use super::{Geom, Sizes};
use crate::gemm::{gemm, scratch_len};
use crate::scalar::Scalar;

/// Multiply-adds from which forward and input gradient split the batch over threads: a
/// piece is whole samples, much coarser than the GEMM's own split (`gemm::PAR_MIN`).
const PAR_MIN: usize = 1 << 20;

fn direct(g: &Geom, z: &Sizes) -> bool {
    z.kh == 1 && z.kw == 1 && g.stride == [1, 1] && g.padding == [0, 0]
}

fn madds(z: &Sizes) -> usize {
    z.n.saturating_mul(z.o)
        .saturating_mul(z.k())
        .saturating_mul(z.p())
}

/// Pieces the batch is split into, at most `fit` (pieces whose scratch fits).
fn pieces(z: &Sizes, fit: usize) -> usize {
    let t = crate::par::kernel_threads();
    if cfg!(feature = "rayon") && t > 1 && madds(z) >= PAR_MIN {
        t.min(z.n).min(fit).max(1)
    } else {
        1
    }
}

/// A piece's work on its samples: `(first sample, y, scratch, x)`.
type Piece<'f, T> = dyn Fn(usize, &mut [T], &mut [T], &[T]) + Sync + 'f;

/// Runs `f(first, y, scratch, x)` on the batch, split into pieces of whole samples: `y` holds
/// `y_per` elements per sample, `x` `x_per`, and each piece gets `per_piece` of scratch.
#[allow(clippy::too_many_arguments)]
fn split<T: Scalar>(
    z: &Sizes,
    per_piece: usize,
    y: &mut [T],
    y_per: usize,
    scratch: &mut [T],
    x: &[T],
    x_per: usize,
    f: &Piece<'_, T>,
) {
    let fit = scratch.len().checked_div(per_piece).unwrap_or(usize::MAX);
    let t = pieces(z, fit);
    if t <= 1 {
        f(0, y, scratch, x);
        return;
    }
    #[cfg(feature = "rayon")]
    {
        let per = z.n.div_ceil(t);
        crate::par::pieces(
            y,
            per * y_per,
            scratch,
            per_piece,
            x,
            per * x_per,
            &|i, y, s, x| f(i * per, y, s, x),
        );
    }
    #[cfg(not(feature = "rayon"))]
    let _ = (y_per, x_per);
}

/// `c[m, n] = a[m, k] · b[n, k]ᵀ`. A few rows (at most two of the GEMM's thin products
/// of 4 rows) run as thin products, dot products of contiguous rows that stream the
/// operands without packing them; more rows read `b` too often that way and take the
/// packed GEMM. Measured on LeNet's weight gradients (batch 64, one thread): 6 rows
/// 1.31 → 0.78 ms, 16 rows 1.12 → 1.90 ms. (The forward's products, whose `b` is not
/// transposed, were slower thin: 0.64 → 0.75 ms for 6 rows.)
#[allow(clippy::too_many_arguments)]
fn dots<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], c: &mut [T], scratch: &mut [T]) {
    if m > 2 * THIN {
        gemm(m, k, n, a, false, b, true, c, scratch);
        return;
    }
    for r0 in (0..m).step_by(THIN) {
        let r = THIN.min(m - r0);
        let (a, c) = (&a[r0 * k..(r0 + r) * k], &mut c[r0 * n..(r0 + r) * n]);
        gemm(r, k, n, a, false, b, true, c, scratch);
    }
}

/// `c[m, n] = a[m, k] · b[k, n]`, the forward's product: read in place where that applies
/// (`gemm::gemm_small`: a small product on AVX-512, the same bits), at any size (`gemm`
/// itself does so only below 2²⁰ multiply-adds, so [`forward_samples`] can count on it
/// here), else the packed GEMM.
/// The digits CNN's inference at batch 1, one thread, spent a fifth of its time packing
/// the weights and the columns of products of 16 to 64 rows (`bench -- infer`).
#[allow(clippy::too_many_arguments)]
fn product<T: Scalar>(m: usize, k: usize, n: usize, a: &[T], b: &[T], c: &mut [T], s: &mut [T]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if crate::gemm::gemm_small(m, k, n, a, false, b, c) {
        return;
    }
    gemm(m, k, n, a, false, b, false, c, s);
}

/// Rows of the GEMM's thin products (`gemm::thin::THIN`).
const THIN: usize = 4;

/// Samples unfolded side by side into one product in the forward and the input gradient:
/// enough that the product has about 512 columns. A small image's product alone pads its
/// last tile of columns and pays the GEMM's per-call work on little. LeNet's second layer
/// (100 positions, batch 64, one thread), forward and input gradient: 1.02 and 0.84 ms
/// one sample at a time, 0.85 and 0.75 ms five at a time (256 columns: 0.92, 1024: 0.85,
/// 2048: 0.94 for the forward). Each element is still one chain over the depth, so the
/// bits do not depend on how many samples share a product.
fn forward_block(z: &Sizes) -> usize {
    (512 / z.p().max(1)).clamp(1, z.n.max(1))
}

/// The forward's samples per product: one where a sample's product runs in place
/// (`gemm::small_fits`: the digits CNN at batch 64, one thread, 1.11 -> 0.95 ms), else
/// [`forward_block`].
#[cfg_attr(
    not(all(feature = "std", target_arch = "x86_64")),
    allow(clippy::extra_unused_type_parameters)
)]
fn forward_samples<T: Scalar>(z: &Sizes) -> usize {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if crate::gemm::small_fits::<T>(z.og, z.k(), z.p()) {
        return 1;
    }
    forward_block(z)
}

fn forward_piece<T: Scalar>(g: &Geom, z: &Sizes) -> usize {
    let s = forward_samples::<T>(z);
    let (cols, tmp) = if direct(g, z) && s == 1 {
        (0, 0)
    } else if s == 1 {
        (z.k() * z.p(), 0)
    } else {
        (z.k() * z.p() * s, z.og * z.p() * s)
    };
    cols + tmp + pad_len(g, z) + scratch_len::<T>(z.og, z.k(), z.p() * s, 1)
}

/// The forward's scratch for a padded channel (`unfold::im2col_padded`).
fn pad_len(g: &Geom, z: &Sizes) -> usize {
    if direct(g, z) {
        0
    } else {
        padded_len(g, z)
    }
}

/// Scratch of [`forward`]: one piece's columns, product and GEMM panels per thread.
pub(super) fn forward_scratch<T: Scalar>(g: &Geom, z: &Sizes) -> usize {
    forward_piece::<T>(g, z) * pieces(z, usize::MAX)
}

/// `y = conv(x, w)` for `x` `[N, C, H, W]`, `w` `[O, cg, kh, kw]`, `y` `[N, O, OH, OW]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward<T: Scalar>(
    g: &Geom,
    z: &Sizes,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
    scratch: &mut [T],
) {
    let (k, p, og) = (z.k(), z.p(), z.og);
    let (x_per, y_per) = (z.c * z.h * z.w, z.o * p);
    let dir = direct(g, z);
    let block = forward_samples::<T>(z);
    let add_bias = |yn: &mut [T]| {
        if let Some(b) = bias {
            for (row, &b) in yn.chunks_exact_mut(p).zip(b) {
                for v in row {
                    *v = *v + b;
                }
            }
        }
    };
    split(
        z,
        forward_piece::<T>(g, z),
        y,
        y_per,
        scratch,
        x,
        x_per,
        &|_, y, s, x| {
            if block == 1 {
                let (cols, gs) = s.split_at_mut(if dir { 0 } else { k * p });
                let (pad, gs) = gs.split_at_mut(pad_len(g, z));
                for (yn, xn) in y.chunks_exact_mut(y_per).zip(x.chunks_exact(x_per)) {
                    for gi in 0..g.groups {
                        let wg = &w[gi * og * k..(gi + 1) * og * k];
                        let yg = &mut yn[gi * og * p..(gi + 1) * og * p];
                        if dir {
                            let xg = &xn[gi * k * p..(gi + 1) * k * p];
                            gemm(og, k, p, wg, false, xg, false, yg, gs);
                        } else {
                            im2col(g, z, xn, gi * z.cg, cols, p, pad);
                            product(og, k, p, wg, cols, yg, gs);
                        }
                    }
                    add_bias(yn);
                }
                return;
            }
            let (cols, rest) = s.split_at_mut(k * p * block);
            let (tmp, gs) = rest.split_at_mut(og * p * block);
            let (pad, gs) = gs.split_at_mut(pad_len(g, z));
            let blocks = y.chunks_mut(y_per * block).zip(x.chunks(x_per * block));
            for (yb, xb) in blocks {
                let n = yb.len() / y_per;
                let ld = n * p;
                for gi in 0..g.groups {
                    let wg = &w[gi * og * k..(gi + 1) * og * k];
                    for (j, xn) in xb.chunks_exact(x_per).enumerate() {
                        im2col(g, z, xn, gi * z.cg, &mut cols[j * p..], ld, pad);
                    }
                    product(og, k, ld, wg, cols, tmp, gs);
                    for (j, yn) in yb.chunks_exact_mut(y_per).enumerate() {
                        for o in 0..og {
                            let dst = &mut yn[(gi * og + o) * p..(gi * og + o + 1) * p];
                            dst.copy_from_slice(&tmp[o * ld + j * p..o * ld + (j + 1) * p]);
                        }
                    }
                }
                for yn in yb.chunks_exact_mut(y_per) {
                    add_bias(yn);
                }
            }
        },
    );
}

fn input_grad_piece<T: Scalar>(g: &Geom, z: &Sizes) -> usize {
    let s = forward_block(z);
    let (cols, tmp) = if direct(g, z) && s == 1 {
        (0, 0)
    } else if s == 1 {
        (z.k() * z.p(), 0)
    } else {
        (z.k() * z.p() * s, z.og * z.p() * s)
    };
    cols + tmp + scratch_len::<T>(z.k(), z.og, z.p() * s, 1)
}

/// Scratch of [`input_grad`].
pub(super) fn input_grad_scratch<T: Scalar>(g: &Geom, z: &Sizes) -> usize {
    input_grad_piece::<T>(g, z) * pieces(z, usize::MAX)
}

/// `dx = conv_input_grad(gy, w)`, `dx` `[N, C, H, W]`.
pub(super) fn input_grad<T: Scalar>(
    g: &Geom,
    z: &Sizes,
    gy: &[T],
    w: &[T],
    dx: &mut [T],
    scratch: &mut [T],
) {
    let (k, p, og) = (z.k(), z.p(), z.og);
    let (x_per, y_per) = (z.c * z.h * z.w, z.o * p);
    let dir = direct(g, z);
    let block = forward_block(z);
    split(
        z,
        input_grad_piece::<T>(g, z),
        dx,
        x_per,
        scratch,
        gy,
        y_per,
        &|_, dx, s, gy| {
            if block == 1 {
                let (cols, gs) = s.split_at_mut(if dir { 0 } else { k * p });
                for (dn, gn) in dx.chunks_exact_mut(x_per).zip(gy.chunks_exact(y_per)) {
                    if !dir {
                        dn.fill(T::zero());
                    }
                    for gi in 0..g.groups {
                        let wg = &w[gi * og * k..(gi + 1) * og * k];
                        let gg = &gn[gi * og * p..(gi + 1) * og * p];
                        if dir {
                            let dg = &mut dn[gi * k * p..(gi + 1) * k * p];
                            gemm(k, og, p, wg, true, gg, false, dg, gs);
                        } else {
                            gemm(k, og, p, wg, true, gg, false, cols, gs);
                            col2im_add(g, z, cols, gi * z.cg, dn, p);
                        }
                    }
                }
                return;
            }
            // as the forward: samples side by side, `gy` gathered to `[og, n·P]`
            let (cols, rest) = s.split_at_mut(k * p * block);
            let (tmp, gs) = rest.split_at_mut(og * p * block);
            let blocks = dx.chunks_mut(x_per * block).zip(gy.chunks(y_per * block));
            for (db, gb) in blocks {
                let n = db.len() / x_per;
                let ld = n * p;
                db.fill(T::zero());
                for gi in 0..g.groups {
                    let wg = &w[gi * og * k..(gi + 1) * og * k];
                    for (j, gn) in gb.chunks_exact(y_per).enumerate() {
                        for o in 0..og {
                            let src = &gn[(gi * og + o) * p..(gi * og + o + 1) * p];
                            tmp[o * ld + j * p..o * ld + (j + 1) * p].copy_from_slice(src);
                        }
                    }
                    gemm(k, og, ld, wg, true, tmp, false, cols, gs);
                    for (j, dn) in db.chunks_exact_mut(x_per).enumerate() {
                        col2im_add(g, z, &cols[j * p..], gi * z.cg, dn, ld);
                    }
                }
            }
        },
    );
}

fn weight_grad_piece<T: Scalar>(z: &Sizes) -> usize {
    z.k() * z.p() + scratch_len::<T>(z.og, z.p(), z.k(), 1)
}

/// Scratch of [`weight_grad`]: each sample's own product `[O, K]`, and per piece its
/// columns and the GEMM's panels.
pub(super) fn weight_grad_scratch<T: Scalar>(_: &Geom, z: &Sizes) -> usize {
    z.n * z.o * z.k() + weight_grad_piece::<T>(z) * pieces(z, usize::MAX)
}

/// `dw = conv_weight_grad(x, gy)`, `dw` `[O, cg, kh, kw]`: each sample's
/// `gy[n, group] · cols(x[n, group])ᵀ`, then their sum over the samples in order (so the
/// bits do not depend on how the samples were split over threads).
pub(super) fn weight_grad<T: Scalar>(
    g: &Geom,
    z: &Sizes,
    x: &[T],
    gy: &[T],
    dw: &mut [T],
    scratch: &mut [T],
) {
    let (k, p, og) = (z.k(), z.p(), z.og);
    let (x_per, y_per, part) = (z.c * z.h * z.w, z.o * p, z.o * k);
    let dir = direct(g, z);
    let (parts, rest) = scratch.split_at_mut(z.n * part);
    split(
        z,
        weight_grad_piece::<T>(z),
        parts,
        part,
        rest,
        x,
        x_per,
        &|first, parts, s, x| {
            let (cols, gs) = s.split_at_mut(k * p);
            let samples = parts.chunks_exact_mut(part).zip(x.chunks_exact(x_per));
            for (i, (pn, xn)) in samples.enumerate() {
                let gn = &gy[(first + i) * y_per..(first + i + 1) * y_per];
                for gi in 0..g.groups {
                    let gg = &gn[gi * og * p..(gi + 1) * og * p];
                    let pg = &mut pn[gi * og * k..(gi + 1) * og * k];
                    if dir {
                        let xg = &xn[gi * k * p..(gi + 1) * k * p];
                        dots(og, p, k, gg, xg, pg, gs);
                    } else {
                        im2col(g, z, xn, gi * z.cg, cols, p, &mut []);
                        dots(og, p, k, gg, cols, pg, gs);
                    }
                }
            }
        },
    );
    dw.fill(T::zero());
    for pn in parts.chunks_exact(part) {
        for (d, &v) in dw.iter_mut().zip(pn) {
            *d = *d + v;
        }
    }
}

/// `db[o] = sum_{n, p} gy[n, o, p]` for `gy` `[n, o, p]`, in the pairwise tree of the
/// crate's sums.
pub(super) fn bias_grad<T: Scalar>(n: usize, o: usize, p: usize, gy: &[T], db: &mut [T]) {
    for (c, d) in db.iter_mut().enumerate().take(o) {
        *d = crate::ops::pairwise::sum_by(0, n, &|i| {
            crate::ops::pairwise::sum(&gy[(i * o + c) * p..(i * o + c + 1) * p])
        });
    }
}
