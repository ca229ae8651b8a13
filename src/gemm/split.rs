//! A product split over threads, sharing the packed panel of its right operand.

use core::mem::size_of;

use super::kernel::{blocks, pack};
use super::{dispatch, Blocking, Isa, Plan, Rhs, View, ALIGN};
use crate::scalar::Scalar;

/// A product split over `p.threads` threads by rows of `c`, as BLIS splits it: for each
/// block of `p.kc` depths and `nc` columns, the threads first pack the panel of `op(b)`
/// together, each a share of its `nr`-wide strips, then each multiplies its rows by the
/// whole panel, packing only its own rows of `a`. Each thread packing all of `op(b)` for
/// itself (the swapped split still does) would copy it once per thread: for the L
/// configuration's forward products, a third of the work per thread. Each element of
/// `c` is the same chain of multiply-adds as on one thread.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_sharing_b<T: Scalar>(
    isa: Isa,
    blk: Blocking,
    p: Plan,
    (m, k, n): (usize, usize, usize),
    a: View<T>,
    bt: View<T>,
    c: &mut [T],
    scratch: &mut [T],
) {
    debug_assert!(!p.swap && p.threads > 1 && m > 0);
    let align = ALIGN / size_of::<T>();
    let (bs, rest) = scratch.split_at_mut(p.shared);
    let skip = bs.as_ptr().align_offset(ALIGN).min(align - 1);
    let bs = &mut bs[skip..];
    for (jc, nc) in blocks(n, blk.nc) {
        for (pc, kc) in blocks(k, p.kc) {
            // strips per thread, packed side by side: strip `s` starts at `s * nr * kc`
            let strips = nc.div_ceil(blk.nr);
            let per = strips.div_ceil(p.threads) * blk.nr;
            let bp = &mut bs[..strips * blk.nr * kc];
            crate::par::pieces(bp, per * kc, &mut [], 0, &[], 0, &|i, dst, _, _| {
                let j = i * per;
                pack_rhs(blk.nr, dst, bt.from(jc + j), per.min(nc - j), pc, kc);
            });
            let bp = &*bp;
            let rows = p.rows;
            crate::par::pieces(c, rows * n, rest, p.per_thread, &[], 0, &|i, c, s, _| {
                let mkn = (c.len() / n, kc, nc);
                let b = Rhs::Packed { bp, pc };
                dispatch(isa, blk, mkn, a.from(i * rows), b, &mut c[jc..], (n, 1), s);
            });
        }
    }
}

/// `pack` into strips `nr` wide, the tile width of one of the kernels.
fn pack_rhs<T: Scalar>(nr: usize, dst: &mut [T], x: View<T>, rows: usize, p0: usize, kc: usize) {
    match nr {
        4 => pack::<T, 4>(dst, x, rows, p0, kc),
        8 => pack::<T, 8>(dst, x, rows, p0, kc),
        16 => pack::<T, 16>(dst, x, rows, p0, kc),
        32 => pack::<T, 32>(dst, x, rows, p0, kc),
        _ => unreachable!("no kernel's tiles are {nr} wide"),
    }
}
