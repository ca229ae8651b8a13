//! The kernels for any window, one plane at a time: each window's rows and columns
//! clipped to the plane, the padding never read.

use super::window::{argmax, Geom};
use crate::scalar::Scalar;

/// Max pooling of plane `xp` (extent `hw`) into `o`: each window's value of `vp` at `xp`'s
/// arg-max (`xp`'s own when `None`).
pub(super) fn max<T: Scalar>(g: &Geom, hw: [usize; 2], xp: &[T], vp: Option<&[T]>, o: &mut [T]) {
    let vp = vp.unwrap_or(xp);
    g.windows(hw, |j, rows, cols| {
        o[j] = vp[argmax(xp, hw[1], rows, cols)];
    });
}

/// `gp` routed to the arg-max of `xp` in each window, summed where windows overlap.
pub(super) fn scatter<T: Scalar>(g: &Geom, hw: [usize; 2], xp: &[T], gp: &[T], o: &mut [T]) {
    o.fill(T::zero());
    g.windows(hw, |j, rows, cols| {
        let at = argmax(xp, hw[1], rows, cols);
        o[at] = o[at] + gp[j];
    });
}

/// Average pooling (`inv` = `1 / (k_h k_w)`, the padding counted) of plane `xp` into `o`.
pub(super) fn avg<T: Scalar>(g: &Geom, hw: [usize; 2], xp: &[T], inv: T, o: &mut [T]) {
    g.windows(hw, |j, rows, cols| {
        let mut sum = T::zero();
        for r in rows {
            for &v in &xp[r * hw[1] + cols.start..r * hw[1] + cols.end] {
                sum = sum + v;
            }
        }
        o[j] = sum * inv;
    });
}

/// `gp * inv` spread over each window of plane `o` (extent `hw`), summed where windows
/// overlap.
pub(super) fn avg_grad<T: Scalar>(g: &Geom, hw: [usize; 2], gp: &[T], inv: T, o: &mut [T]) {
    o.fill(T::zero());
    g.windows(hw, |j, rows, cols| {
        let share = gp[j] * inv;
        for r in rows {
            for v in &mut o[r * hw[1] + cols.start..r * hw[1] + cols.end] {
                *v = *v + share;
            }
        }
    });
}
