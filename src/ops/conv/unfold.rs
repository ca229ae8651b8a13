//! Unfolding a sample into the columns of a convolution's product (im2col) and folding
//! them back (col2im), for the kernels of `kernel.rs`.
//!
//! A column row `(c, i, j)` holds, at output position `(oy, ox)`,
//! `x[c, oy*sh + i*dh - ph, ox*sw + j*dw - pw]`, or 0 in the padding.

use super::{Geom, Sizes};
use crate::scalar::Scalar;

/// Unfolds channels `c0..c0 + cg` of one sample `x` `[C, H, W]` into `cols` `[K, P]`, rows
/// `ld` apart; `pad` is scratch for [`im2col_padded`], used if it holds [`padded_len`].
pub(super) fn im2col<T: Scalar>(
    g: &Geom,
    z: &Sizes,
    x: &[T],
    c0: usize,
    cols: &mut [T],
    ld: usize,
    pad: &mut [T],
) {
    let need = padded_len(g, z);
    if need > 0 && pad.len() >= need {
        im2col_padded(g, z, x, c0, cols, ld, &mut pad[..need]);
    } else if g.stride == [1, 1] && z.ow == z.w {
        im2col_rows(g, z, x, c0, cols, ld);
    } else {
        im2col_taps(g, z, x, c0, cols, ld);
    }
}

/// Elements of the scratch of [`im2col_padded`] (one channel with its padding), or 0 where
/// it does not apply: stride 1, output rows as wide as the input's, and a small image.
pub(super) fn padded_len(g: &Geom, z: &Sizes) -> usize {
    let [ph, pw] = g.padding;
    if g.stride == [1, 1] && z.ow == z.w && z.w <= SHORT && z.h <= SHORT {
        (z.h + 2 * ph) * (z.w + 2 * pw)
    } else {
        0
    }
}

/// [`im2col`] of a small image at stride 1 with output rows as wide as the input's
/// ("same" padding), through a copy of each channel with its padding in `pad`: every
/// output row of a column row is then one copy of `w` elements, with no zeroing of taps
/// in the padding. Row-shifting a small image ([`im2col_rows`]) spent more on the
/// bookkeeping of each column row (its zeroed rows and columns) than on its copies.
fn im2col_padded<T: Scalar>(
    g: &Geom,
    z: &Sizes,
    x: &[T],
    c0: usize,
    cols: &mut [T],
    ld: usize,
    pad: &mut [T],
) {
    // rows of a width the compiler knows are copied by a few vector moves each
    match z.w {
        4 => padded::<T, 4>(g, z, x, c0, cols, ld, pad),
        8 => padded::<T, 8>(g, z, x, c0, cols, ld, pad),
        16 => padded::<T, 16>(g, z, x, c0, cols, ld, pad),
        _ => padded::<T, 0>(g, z, x, c0, cols, ld, pad),
    }
}

/// [`im2col_padded`] for rows `W` wide (`W == z.w`), or of any width if `W` is 0.
fn padded<T: Scalar, const W: usize>(
    g: &Geom,
    z: &Sizes,
    x: &[T],
    c0: usize,
    cols: &mut [T],
    ld: usize,
    pad: &mut [T],
) {
    let [ph, pw] = g.padding;
    let [dh, dw] = g.dilation;
    let w = if W > 0 { W } else { z.w };
    let (hw, p) = (z.h * w, z.p());
    let wp = w + 2 * pw;
    let put = |dst: &mut [T], src: &[T]| {
        if W > 0 {
            dst[..W].copy_from_slice(&src[..W]);
        } else {
            copy(dst, &src[..dst.len()]);
        }
    };
    zero(pad);
    let mut r = 0;
    for c in c0..c0 + z.cg {
        let xc = &x[c * hw..(c + 1) * hw];
        for (y, xr) in xc.chunks_exact(w).enumerate() {
            put(&mut pad[(y + ph) * wp + pw..][..w], xr);
        }
        for i in 0..z.kh {
            for j in 0..z.kw {
                let row = &mut cols[r * ld..r * ld + p];
                r += 1;
                for (oy, o) in row.chunks_exact_mut(w).enumerate() {
                    put(o, &pad[(oy + i * dh) * wp + j * dw..]);
                }
            }
        }
    }
}

/// [`im2col`] of any geometry, output row by output row.
fn im2col_taps<T: Scalar>(g: &Geom, z: &Sizes, x: &[T], c0: usize, cols: &mut [T], ld: usize) {
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let [dh, dw] = g.dilation;
    let (ow, hw) = (z.ow, z.h * z.w);
    let mut r = 0;
    for c in c0..c0 + z.cg {
        let xc = &x[c * hw..(c + 1) * hw];
        for i in 0..z.kh {
            for j in 0..z.kw {
                let row = &mut cols[r * ld..r * ld + z.p()];
                let (lo, hi) = valid(j * dw, pw, sw, z.w, ow);
                for oy in 0..z.oh {
                    let o = &mut row[oy * ow..(oy + 1) * ow];
                    let iy = oy * sh + i * dh;
                    if iy < ph || iy - ph >= z.h {
                        o.fill(T::zero());
                        continue;
                    }
                    let xr = &xc[(iy - ph) * z.w..(iy - ph + 1) * z.w];
                    o[..lo].fill(T::zero());
                    o[hi..].fill(T::zero());
                    if sw == 1 {
                        let s = lo + j * dw - pw;
                        o[lo..hi].copy_from_slice(&xr[s..s + hi - lo]);
                    } else {
                        for (ox, o) in o.iter_mut().enumerate().take(hi).skip(lo) {
                            *o = xr[ox * sw + j * dw - pw];
                        }
                    }
                }
                r += 1;
            }
        }
    }
}

/// [`im2col`] at stride 1 with output rows as wide as the input's ("same" padding, as
/// `3×3` with padding 1): a column row is then the input channel shifted by one offset,
/// so its inside is one copy, and the taps that fall in the padding are zeroed after (whole
/// rows above and below, a few columns at the sides). Output row by output row, a small
/// image (8×8) spent most of its unfolding in calls to copy and fill a few elements: the
/// digits CNN's inference at batch 1, one thread (`bench -- infer`), 37 → 25 µs, batch 64
/// 2.1 → 1.4 ms (a shared, noisy machine).
fn im2col_rows<T: Scalar>(g: &Geom, z: &Sizes, x: &[T], c0: usize, cols: &mut [T], ld: usize) {
    let [ph, pw] = g.padding;
    let [dh, dw] = g.dilation;
    let (w, hw, oh, p) = (z.w, z.h * z.w, z.oh, z.p());
    let mut r = 0;
    for c in c0..c0 + z.cg {
        let xc = &x[c * hw..(c + 1) * hw];
        for i in 0..z.kh {
            // output rows whose tap row `oy + i*dh - ph` is inside the input
            let top = ph.saturating_sub(i * dh).min(oh);
            let bottom = (z.h + ph).saturating_sub(i * dh).clamp(top, oh);
            for j in 0..z.kw {
                let row = &mut cols[r * ld..r * ld + p];
                r += 1;
                zero(&mut row[..top * w]);
                zero(&mut row[bottom * w..]);
                if top == bottom {
                    continue;
                }
                // the columns whose tap is inside the row (`valid` at stride 1, without
                // its divisions: per column row they cost a few % of a small image)
                let lo = pw.saturating_sub(j * dw).min(w);
                let hi = (w + pw).saturating_sub(j * dw).clamp(lo, w);
                // the block's first element reads x[(top + i*dh - ph) * w + (j*dw - pw)]
                let start = (top + i * dh - ph) * w;
                let block = &mut row[top * w..bottom * w];
                let len = block.len();
                // element t reads xc[start + t + j*dw - pw]: clip to the channel (the taps
                // clipped are in the padding columns, zeroed below)
                let t_lo = pw.saturating_sub(start + j * dw).min(len);
                let t_hi = (hw + pw).saturating_sub(start + j * dw).clamp(t_lo, len);
                let s = start + t_lo + j * dw - pw;
                copy(&mut block[t_lo..t_hi], &xc[s..s + t_hi - t_lo]);
                for ox in (0..lo).chain(hi..w) {
                    for v in block.iter_mut().skip(ox).step_by(w) {
                        *v = T::zero();
                    }
                }
            }
        }
    }
}

/// Elements [`copy`] and [`zero`] move at a time.
const RUN: usize = 8;

/// Runs from which [`copy`] and [`zero`] call the library.
const SHORT: usize = 64;

/// `dst = src` (`dst.len() == src.len()`) for the short runs of a small image's column
/// rows: up to [`SHORT`] elements as runs of [`RUN`] (the last one overlapping), each
/// under a condition, so that the compiler neither calls `memcpy` for them nor turns the
/// loop back into one call. For the digits CNN (8×8 and 4×4 maps) the library calls, a
/// few hundred per run of tens of elements each, cost more than the copies.
// The loops by index, under a condition, are what keeps them from becoming library calls.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn copy<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len();
    if n > SHORT {
        dst.copy_from_slice(src);
    } else if n < RUN / 2 {
        for k in 0..RUN / 2 {
            if k < n {
                dst[k] = src[k];
            }
        }
    } else if n < RUN {
        let h = RUN / 2;
        dst[..h].copy_from_slice(&src[..h]);
        dst[n - h..].copy_from_slice(&src[n - h..n]);
    } else {
        for k in 0..SHORT / RUN {
            let at = k * RUN;
            if at + RUN <= n {
                dst[at..at + RUN].copy_from_slice(&src[at..at + RUN]);
            }
        }
        dst[n - RUN..].copy_from_slice(&src[n - RUN..n]);
    }
}

/// `dst = 0`, as [`copy`] copies.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn zero<T: Scalar>(dst: &mut [T]) {
    let n = dst.len();
    let zeros = [T::zero(); RUN];
    if n > SHORT {
        dst.fill(T::zero());
    } else if n < RUN {
        for k in 0..RUN {
            if k < n {
                dst[k] = T::zero();
            }
        }
    } else {
        for k in 0..SHORT / RUN {
            let at = k * RUN;
            if at + RUN <= n {
                dst[at..at + RUN].copy_from_slice(&zeros);
            }
        }
        dst[n - RUN..].copy_from_slice(&zeros);
    }
}

/// The output columns `lo..hi` whose tap at offset `off` lands inside an input row of
/// `w`: `0 <= ox*s + off - pad < w`.
fn valid(off: usize, pad: usize, s: usize, w: usize, ow: usize) -> (usize, usize) {
    let lo = if pad > off {
        (pad - off).div_ceil(s)
    } else {
        0
    }
    .min(ow);
    let hi = if w + pad > off {
        (w + pad - off).div_ceil(s)
    } else {
        0
    };
    (lo, hi.min(ow).max(lo))
}

/// Adds `cols` `[K, P]` (rows `ld` apart) back onto channels `c0..c0 + cg` of one sample's
/// `dx` `[C, H, W]`: the adjoint of [`im2col`].
pub(super) fn col2im_add<T: Scalar>(
    g: &Geom,
    z: &Sizes,
    cols: &[T],
    c0: usize,
    dx: &mut [T],
    ld: usize,
) {
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let [dh, dw] = g.dilation;
    let (ow, hw) = (z.ow, z.h * z.w);
    let mut r = 0;
    for c in c0..c0 + z.cg {
        let xc = &mut dx[c * hw..(c + 1) * hw];
        for i in 0..z.kh {
            for j in 0..z.kw {
                let row = &cols[r * ld..r * ld + z.p()];
                let (lo, hi) = valid(j * dw, pw, sw, z.w, ow);
                for oy in 0..z.oh {
                    let iy = oy * sh + i * dh;
                    if iy < ph || iy - ph >= z.h {
                        continue;
                    }
                    let o = &row[oy * ow..(oy + 1) * ow];
                    let xr = &mut xc[(iy - ph) * z.w..(iy - ph + 1) * z.w];
                    if sw == 1 {
                        let s = lo + j * dw - pw;
                        for (x, &v) in xr[s..s + hi - lo].iter_mut().zip(&o[lo..hi]) {
                            *x = *x + v;
                        }
                    } else {
                        for (ox, &v) in o.iter().enumerate().take(hi).skip(lo) {
                            let ix = ox * sw + j * dw - pw;
                            xr[ix] = xr[ix] + v;
                        }
                    }
                }
                r += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::super::{Geom, Sizes};
    use crate::shape::Shape;

    /// The row-shifting unfold against the tap-by-tap one, on every geometry it takes:
    /// kernels 1 to 5 with their "same" padding, dilation, a height padding other than the
    /// width's (rows of zeros, rows past the image), one row, a wide image; each column
    /// row between sentinels that neither may touch; and the unfolding through a padded
    /// channel (`im2col_padded`) at the widths it has copies of a known length for (4, 8,
    /// 16) and at others.
    #[test]
    fn rows_unfold_as_taps_do() {
        let cases = [
            ([3, 3], [1, 1], [1, 1], [8, 8]),
            ([5, 5], [2, 2], [1, 1], [6, 7]),
            ([1, 1], [0, 0], [1, 1], [4, 5]),
            ([3, 3], [2, 2], [2, 2], [7, 6]),
            ([3, 3], [0, 1], [1, 1], [5, 4]),
            ([2, 3], [3, 1], [1, 1], [3, 9]),
            ([3, 5], [1, 2], [3, 1], [6, 5]),
            ([3, 3], [1, 1], [1, 1], [1, 1]),
            ([1, 3], [0, 1], [1, 1], [1, 33]),
            ([3, 3], [1, 1], [1, 1], [3, 16]),
        ];
        for (k, pad, dil, [h, w]) in cases {
            let g = Geom {
                spatial: 2,
                stride: [1, 1],
                padding: pad,
                dilation: dil,
                groups: 1,
            };
            let (c, o) = (2, 3);
            let z: Sizes = g
                .sizes(&Shape::new([1, c, h, w]), &Shape::new([o, c, k[0], k[1]]))
                .unwrap();
            assert_eq!(z.ow, z.w, "{k:?} {pad:?} {dil:?}: not a row-shifting case");
            let x: alloc::vec::Vec<f32> = (0..c * h * w).map(|v| v as f32 + 1.0).collect();
            let ld = z.p() + 3;
            let fresh = || vec![-7.0f32; z.k() * ld];
            let (mut rows, mut taps) = (fresh(), fresh());
            super::im2col_rows(&g, &z, &x, 0, &mut rows, ld);
            super::im2col_taps(&g, &z, &x, 0, &mut taps, ld);
            assert_eq!(rows, taps, "{k:?} {pad:?} {dil:?} {h}x{w}");
            // through a padded channel (its scratch starting as garbage), as `im2col` picks
            let mut padded = fresh();
            let mut scratch = vec![-5.0f32; super::padded_len(&g, &z) + 2];
            assert!(
                scratch.len() > 2,
                "{k:?} {pad:?} {dil:?}: not a padded case"
            );
            super::im2col(&g, &z, &x, 0, &mut padded, ld, &mut scratch);
            assert_eq!(padded, taps, "padded {k:?} {pad:?} {dil:?} {h}x{w}");
            for r in 0..z.k() {
                assert_eq!(&rows[r * ld + z.p()..(r + 1) * ld], &[-7.0; 3]);
            }
        }
    }
}
