//! One thread's product: the Goto/BLIS loop nest over blocks of `c`, packing the operands
//! into panels, and the micro-kernels it calls.

use core::mem::size_of;

#[cfg(all(feature = "std", target_arch = "x86_64"))]
use super::transpose;
use super::{Blocking, Rhs, View, ALIGN};
use crate::scalar::Scalar;

/// The micro-kernel without vector instructions beyond the target's baseline: `micro`
/// for a 4 x 4 tile without fused multiply-adds (the same operations in the same order,
/// so the same bits), written out so that its sixteen accumulators stay in registers.
/// At opt-level "s" LLVM does not unroll `micro`'s loops and keeps its accumulator array
/// on the stack: measured on QEMU's Cortex-M4 (`edge/firmware`, feature `gemm-timing`),
/// a 64 x 64 x 64 f32 product took 11.86 instructions per multiply-add that way and 2.12
/// with this kernel, packing included (its loop: 28 instructions per 16 multiply-adds).
#[inline(never)]
pub(super) fn micro_portable<T: Scalar>(ap: &[T], bp: &[T], c: &mut [T], rsc: usize, load: bool) {
    // Row `i` of the tile, loaded or zero.
    let row = |i: usize| -> [T; 4] {
        if load {
            let c = &c[i * rsc..][..4];
            [c[0], c[1], c[2], c[3]]
        } else {
            [T::zero(); 4]
        }
    };
    let (mut c0, mut c1, mut c2, mut c3) = (row(0), row(1), row(2), row(3));
    // `acc[j] += a * b[j]` for the four columns; constant indices only, so the arrays
    // become sixteen scalars.
    #[inline(always)]
    fn madd<T: Scalar>(acc: &mut [T; 4], a: T, b: &[T; 4]) {
        acc[0] = a * b[0] + acc[0];
        acc[1] = a * b[1] + acc[1];
        acc[2] = a * b[2] + acc[2];
        acc[3] = a * b[3] + acc[3];
    }
    for (a, b) in ap.chunks_exact(4).zip(bp.chunks_exact(4)) {
        let b = &[b[0], b[1], b[2], b[3]];
        madd(&mut c0, a[0], b);
        madd(&mut c1, a[1], b);
        madd(&mut c2, a[2], b);
        madd(&mut c3, a[3], b);
    }
    let mut put = |i: usize, acc: [T; 4]| {
        let c = &mut c[i * rsc..][..4];
        c[0] = acc[0];
        c[1] = acc[1];
        c[2] = acc[2];
        c[3] = acc[3];
    };
    put(0, c0);
    put(1, c1);
    put(2, c2);
    put(3, c3);
}

/// One thread's product: the loops over `nc` columns and `kc` depths, packing `b` (unless
/// the caller packed it), then [`block`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(feature = "rayon"), allow(clippy::infallible_destructuring_match))]
pub(super) fn run<T: Scalar, const MR: usize, const NR: usize>(
    micro: impl Fn(&[T], &[T], &mut [T], usize, bool),
    blk: Blocking,
    (m, k, n): (usize, usize, usize),
    a: View<T>,
    b: Rhs<T>,
    c: &mut [T],
    (rsc, csc): (usize, usize),
    scratch: &mut [T],
) {
    debug_assert!(blk.mr == MR && blk.nr == NR && blk.mc % MR == 0 && blk.nc % NR == 0);
    let align = ALIGN / size_of::<T>();
    let skip = scratch.as_ptr().align_offset(ALIGN).min(align - 1);
    let b = match b {
        Rhs::View(b) => b,
        #[cfg(feature = "rayon")]
        Rhs::Packed { bp, pc } => {
            let ap = &mut scratch[skip..];
            let c = (c, 0);
            return block::<T, MR, NR>(&micro, blk, (m, k, n), a, pc, bp, c, (rsc, csc), ap);
        }
    };
    let kc_max = k.min(blk.kc);
    let a_len = m.min(blk.mc).div_ceil(MR) * MR * kc_max;
    let (ap, bp) = scratch[skip..].split_at_mut(a_len.div_ceil(align) * align);
    for (jc, nc) in blocks(n, blk.nc) {
        for (pc, kc) in blocks(k, blk.kc) {
            let bp = &mut bp[..nc.div_ceil(NR) * NR * kc];
            pack::<T, NR>(bp, b.from(jc), nc, pc, kc);
            let c = (&mut *c, jc * csc);
            block::<T, MR, NR>(&micro, blk, (m, kc, nc), a, pc, bp, c, (rsc, csc), ap);
        }
    }
}

/// `c (+)= a · b` for all `m` rows of `a` (depths `pc..pc + kc`) and the `nc` columns
/// packed in `bp`, into `c.0` from element `c.1` on: the loop over `mc` rows, packing `a`
/// into `ap`, then over the `nr`- and `mr`-wide strips calling the micro-kernel `micro`.
/// Adds to `c` unless `pc` is 0.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<T: Scalar, const MR: usize, const NR: usize>(
    micro: &impl Fn(&[T], &[T], &mut [T], usize, bool),
    blk: Blocking,
    (m, kc, nc): (usize, usize, usize),
    a: View<T>,
    pc: usize,
    bp: &[T],
    (c, c0): (&mut [T], usize),
    (rsc, csc): (usize, usize),
    ap: &mut [T],
) {
    for (ic, mc) in blocks(m, blk.mc) {
        let ap = &mut ap[..mc.div_ceil(MR) * MR * kc];
        pack::<T, MR>(ap, a.from(ic), mc, pc, kc);
        // Strip `jr / NR` of `bp` starts at `jr * kc`, and likewise for `ap`.
        for jr in (0..nc).step_by(NR) {
            let bp = &bp[jr * kc..][..NR * kc];
            for ir in (0..mc).step_by(MR) {
                let (i, ap) = (ic + ir, &ap[ir * kc..][..MR * kc]);
                let tile = (MR.min(m - i), NR.min(nc - jr));
                let c = &mut c[c0 + i * rsc + jr * csc..];
                if csc == 1 && tile == (MR, NR) {
                    micro(ap, bp, c, rsc, pc > 0);
                } else {
                    // Edge tiles and transposed `c` go through a whole tile.
                    let mut t = [[T::zero(); NR]; MR];
                    if pc > 0 {
                        load(&mut t, c, (rsc, csc), tile);
                    }
                    micro(ap, bp, t.as_flattened_mut(), NR, pc > 0);
                    store(&t, c, (rsc, csc), tile);
                }
            }
        }
    }
}

/// `(start, len)` of the blocks of `step` that cover `0..n` (without the divisions of
/// `step_by`, which show in small products).
pub(super) fn blocks(n: usize, step: usize) -> impl Iterator<Item = (usize, usize)> {
    core::iter::successors(Some(0), move |&s| Some(s + step))
        .take_while(move |&s| s < n)
        .map(move |s| (s, step.min(n - s)))
}

/// Packs rows `0..rows`, depths `p0..p0 + kc` of `x` into panels of `W` rows, each panel
/// depth-major (`W` values per depth), zero past the last row.
// Not inlined: inside the loop nest it made LLVM spill the loop state (60 ns more per call,
// measured), and copying gains nothing from the wider vectors.
#[inline(never)]
pub(super) fn pack<T: Scalar, const W: usize>(
    dst: &mut [T],
    x: View<T>,
    rows: usize,
    p0: usize,
    kc: usize,
) {
    for r in (0..rows).step_by(W) {
        let (panel, w) = (&mut dst[r * kc..][..W * kc], W.min(rows - r));
        // Partial panels avoid `copy_from_slice` and `fill` of a variable length: calls to
        // memcpy and memset per depth dominate small products.
        if x.rs == 1 {
            for (p, d) in panel.chunks_exact_mut(W).enumerate() {
                let src = &x.data[r + (p0 + p) * x.ds..];
                if w == W {
                    d.copy_from_slice(&src[..W]);
                } else {
                    for (i, d) in d.iter_mut().enumerate() {
                        *d = if i < w { src[i] } else { T::zero() };
                    }
                }
            }
        } else {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if w == W && transpose::applies::<T>(W) {
                transpose::panel(panel, x, r, p0, kc, W);
                continue;
            }
            if w < W {
                panel.fill(T::zero());
            }
            for (i, row) in (r..r + w).enumerate() {
                let src = &x.data[row * x.rs + p0..][..kc];
                for (d, &v) in panel.chunks_exact_mut(W).zip(src) {
                    d[i] = v;
                }
            }
        }
    }
}

/// The `MR × NR` tile whose row `i` is `c[i * rsc..][..NR]` `=`, or if `load` `+=`, the
/// product of packed panels: `kc` steps of `MR` values of `a` and `NR` of `b`.
#[inline(always)]
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
pub(super) fn micro<T: Scalar, const MR: usize, const NR: usize, const FUSED: bool>(
    ap: &[T],
    bp: &[T],
    c: &mut [T],
    rsc: usize,
    load: bool,
) {
    let mut acc = [[T::zero(); NR]; MR];
    if load {
        for (i, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&c[i * rsc..][..NR]);
        }
    }
    // LLVM must unroll the rows, vectorize the columns and keep `acc` in registers. Which
    // loop order gets it to do so depends on the shape (checked in the assembly): with 8
    // rows and rows outermost it vectorizes across rows instead, with gathers; with 6 rows
    // and columns outermost it hoists all broadcasts and spills.
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        // As arrays, so that the loops below have constant trip counts.
        let a: &[T; MR] = a.try_into().unwrap();
        let b: &[T; NR] = b.try_into().unwrap();
        if MR % 4 == 0 {
            for (j, &b) in b.iter().enumerate() {
                for (acc, &a) in acc.iter_mut().zip(a) {
                    acc[j] = if FUSED {
                        a.mul_add(b, acc[j])
                    } else {
                        a * b + acc[j]
                    };
                }
            }
        } else {
            for (acc, &a) in acc.iter_mut().zip(a) {
                for (acc, &b) in acc.iter_mut().zip(b) {
                    *acc = if FUSED {
                        a.mul_add(b, *acc)
                    } else {
                        a * b + *acc
                    };
                }
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        c[i * rsc..][..NR].copy_from_slice(acc);
    }
}

/// Copies the `rows × cols` part of a tile of `c` into `acc`.
#[inline(always)]
fn load<T: Scalar, const MR: usize, const NR: usize>(
    acc: &mut [[T; NR]; MR],
    c: &[T],
    (rsc, csc): (usize, usize),
    (rows, cols): (usize, usize),
) {
    if csc == 1 && cols == NR {
        for (i, acc) in acc.iter_mut().enumerate().take(rows) {
            acc.copy_from_slice(&c[i * rsc..][..NR]);
        }
        return;
    }
    for (i, acc) in acc.iter_mut().enumerate().take(rows) {
        for (j, acc) in acc.iter_mut().enumerate().take(cols) {
            *acc = c[i * rsc + j * csc];
        }
    }
}

/// Copies `acc` into the `rows × cols` part of a tile of `c`.
#[inline(always)]
fn store<T: Scalar, const MR: usize, const NR: usize>(
    acc: &[[T; NR]; MR],
    c: &mut [T],
    (rsc, csc): (usize, usize),
    (rows, cols): (usize, usize),
) {
    if csc == 1 && cols == NR {
        for (i, acc) in acc.iter().enumerate().take(rows) {
            c[i * rsc..][..NR].copy_from_slice(acc);
        }
        return;
    }
    for (i, acc) in acc.iter().enumerate().take(rows) {
        for (j, &acc) in acc.iter().enumerate().take(cols) {
            c[i * rsc + j * csc] = acc;
        }
    }
}
