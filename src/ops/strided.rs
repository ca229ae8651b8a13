//! Copies between row-major buffers without ndarray views: a view of rank above 4 keeps
//! its shape and strides on the heap (`IxDyn`), so building one per step allocated at
//! rank >= 5. These loops keep their indices on the stack, at any rank.

/// Counters on the stack. Extent-1 axes are dropped first, and an output with
/// `usize::BITS` axes of extent >= 2 would hold more than `usize::MAX` elements. Sized by
/// the target's word (32 on a microcontroller), as the three arrays of a gather are a
/// frame of `3 * MAX_AXES` words on the stack of every step that moves data.
const MAX_AXES: usize = usize::BITS as usize;

/// The extent of axis `a` of `dims` and its row-major stride, `prod dims[a+1..]`.
pub(crate) fn axis_stride(dims: &[usize], a: usize) -> (usize, usize) {
    (dims[a], dims[a + 1..].iter().product())
}

/// `dims` seen as `[outer, dims[axis], inner]`.
pub(crate) fn around(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = dims[..axis].iter().product();
    (outer, dims[axis], dims[axis + 1..].iter().product())
}

/// `out` (row-major over the extents of `axes`) from `x`: element `(i_0, .., i_r)` of
/// `out` is `x[sum_k i_k * stride_k]`, `axes` giving `(extent_k, stride_k)`.
pub(crate) fn gather<T: Copy>(
    x: &[T],
    axes: impl Iterator<Item = (usize, usize)> + Clone,
    out: &mut [T],
) {
    let signed = axes.map(|(e, s)| (e, s as isize));
    gather_signed(x, 0, signed, out);
}

/// [`gather`] from `x[base]`, with strides that may be negative (an ndarray view's, in
/// elements): offsets `base + sum_k i_k * stride_k`, all inside `x`.
pub(crate) fn gather_signed<T: Copy>(
    x: &[T],
    base: usize,
    axes: impl Iterator<Item = (usize, isize)> + Clone,
    out: &mut [T],
) {
    if out.is_empty() {
        return;
    }
    let (mut d, mut st, mut r) = ([0usize; MAX_AXES], [0isize; MAX_AXES], 0);
    for (e, s) in axes.filter(|&(e, _)| e != 1) {
        if r == MAX_AXES {
            // The outermost axis so far would advance only after `2^MAX_AXES` elements,
            // more than `out` can hold: it stays at index 0 and is dropped.
            d.copy_within(1.., 0);
            st.copy_within(1.., 0);
            r -= 1;
        }
        (d[r], st[r]) = (e, s);
        r += 1;
    }
    if r == 0 {
        out[0] = x[base];
        return;
    }
    let (n, s) = (d[r - 1], st[r - 1]);
    let mut idx = [0usize; MAX_AXES];
    let mut base = base as isize;
    for row in out.chunks_exact_mut(n) {
        for (j, o) in row.iter_mut().enumerate() {
            *o = x[(base + j as isize * s) as usize];
        }
        // the odometer over the outer axes
        let mut k = r - 1;
        while k > 0 {
            k -= 1;
            idx[k] += 1;
            base += st[k];
            if idx[k] < d[k] {
                break;
            }
            base -= st[k] * d[k] as isize;
            idx[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gather;
    use alloc::vec::Vec;

    #[test]
    fn gather_transposes_at_any_rank() {
        // out[a, b, c, d, e, f] = x[f, e, d, c, b, a] for x of dims [2, 1, 3, 2, 1, 2]
        // (b and e are always 0)
        let dims = [2usize, 1, 3, 2, 1, 2];
        let n: usize = dims.iter().product();
        let x: Vec<u32> = (0..n as u32).collect();
        let stride = |a: usize| dims[a + 1..].iter().product::<usize>();
        let axes = (0..6).rev().map(|a| (dims[a], stride(a)));
        let mut out = alloc::vec![0u32; n];
        gather(&x, axes.clone(), &mut out);
        let mut want = Vec::new();
        for a in 0..2 {
            for c in 0..2 {
                for d in 0..3 {
                    for f in 0..2 {
                        let at = f * stride(0) + d * stride(2) + c * stride(3) + a * stride(5);
                        want.push(x[at]);
                    }
                }
            }
        }
        assert_eq!(out, want);
    }

    #[test]
    fn gather_past_max_axes_keeps_the_inner_ones() {
        // 70 axes of extent 2, as outer ones that never advance within `out` (16 elements)
        // would: the 4 innermost decide every offset, the others stay at index 0
        let x: Vec<u32> = (0..100).collect();
        let outer = core::iter::repeat_n((2usize, 50usize), 66);
        let inner = [(2usize, 1usize), (2, 2), (2, 4), (2, 8)];
        let mut out = [0u32; 16];
        gather(&x, outer.chain(inner), &mut out);
        // out index k = 8 i0 + 4 i1 + 2 i2 + i3 reads i0 + 2 i1 + 4 i2 + 8 i3: k's bits reversed
        let want: Vec<u32> = (0..16u32).map(|k| k.reverse_bits() >> 28).collect();
        assert_eq!(out.to_vec(), want);
    }
}
