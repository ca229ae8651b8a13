//! Axis arguments: non-negative from the front, negative from the back, resolved against
//! a shape's rank in one place.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::Shape;

impl Shape {
    /// `axis` as a position in this shape: a non-negative axis counts from the front, a
    /// negative one from the back (`-1` is the last axis, as in PyTorch).
    ///
    /// # Errors
    /// Why `axis` is out of range, in words.
    ///
    /// ```
    /// use tapegrad::Shape;
    /// let s = Shape::from([2, 3, 4]);
    /// assert_eq!(s.resolve_axis(-1), Ok(2));
    /// assert_eq!(s.resolve_axis(0usize), Ok(0));
    /// assert!(s.resolve_axis(3).is_err());
    /// ```
    pub fn resolve_axis<A: AxisArg>(&self, axis: A) -> Result<usize, String> {
        axis.resolve(self.rank()).ok_or_else(|| {
            let r = signed_rank(self.rank());
            let range = if r == 0 {
                String::from("a scalar has no axes")
            } else {
                format!("axes go from {} to {}", -r, r - 1)
            };
            format!("axis {axis} is out of range for a tensor of rank {r} ({range})")
        })
    }

    /// Where a new axis goes (`unsqueeze`, `stack`): `0..=rank`, a negative position
    /// counting from the back (`-1` appends, as in PyTorch).
    ///
    /// # Errors
    /// Why `axis` is out of range, in words.
    pub fn resolve_new_axis<A: AxisArg>(&self, axis: A) -> Result<usize, String> {
        let r = signed_rank(self.rank());
        axis.resolve(self.rank() + 1).ok_or_else(|| {
            format!(
                "a new axis at {axis} is out of range for a tensor of rank {r} (positions go \
                 from {} to {r})",
                -r - 1
            )
        })
    }

    /// `axes` resolved as by [`resolve_axis`](Shape::resolve_axis), checked for repeats
    /// (`1` and `-1` of a rank-2 shape are the same axis) and sorted.
    ///
    /// # Errors
    /// Why an axis is out of range or given twice, in words.
    pub fn resolve_axes<A: AxisArg>(&self, axes: &[A]) -> Result<Vec<usize>, String> {
        let resolved = axes
            .iter()
            .map(|&a| self.resolve_axis(a))
            .collect::<Result<Vec<_>, _>>()?;
        self.check_axes(&resolved)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for isize {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
}

/// An axis argument: `usize` counts from the front; `isize`, `i32` and `i64` may also be
/// negative and count from the back (`-1` is the last axis, as in PyTorch). Plain integer
/// literals work everywhere an axis is taken: `x.softmax(-1)`,
/// `x.sum_axes(&[0, -1], true)`. Sealed.
pub trait AxisArg: Copy + fmt::Display + fmt::Debug + sealed::Sealed {
    /// The axis of a tensor of `rank` axes, or `None` if out of range.
    fn resolve(self, rank: usize) -> Option<usize>;
}

/// `rank` as a signed number for messages: an `i64`, whose formatting is the `u64`'s
/// (an `i128` would link its own, 1.2 KB on a 32-bit microcontroller). A rank is far
/// below `i64::MAX`.
fn signed_rank(rank: usize) -> i64 {
    i64::try_from(rank).unwrap_or(i64::MAX)
}

/// `axis` (non-negative from the front, negative from the back) against `rank`.
fn resolve_signed(axis: i128, rank: usize) -> Option<usize> {
    let r = rank as i128;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        usize::try_from(a).ok()
    } else {
        None
    }
}

impl AxisArg for usize {
    fn resolve(self, rank: usize) -> Option<usize> {
        (self < rank).then_some(self)
    }
}

impl AxisArg for isize {
    fn resolve(self, rank: usize) -> Option<usize> {
        resolve_signed(self as i128, rank)
    }
}

impl AxisArg for i32 {
    fn resolve(self, rank: usize) -> Option<usize> {
        resolve_signed(self.into(), rank)
    }
}

impl AxisArg for i64 {
    fn resolve(self, rank: usize) -> Option<usize> {
        resolve_signed(self.into(), rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_axes_resolve_from_the_back() {
        let s = Shape::from([2, 3, 4]);
        // rank 3: -1 -> 2, -3 -> 0; 3 and -4 are out of range
        assert_eq!(s.resolve_axis(-1), Ok(2));
        assert_eq!(s.resolve_axis(-3i64), Ok(0));
        assert_eq!(s.resolve_axis(1isize), Ok(1));
        assert_eq!(s.resolve_axis(2usize), Ok(2));
        let e = s.resolve_axis(-4).unwrap_err();
        assert!(e.contains("axis -4") && e.contains("-3 to 2"), "{e}");
        assert!(s.resolve_axis(3usize).is_err());
        assert!(s.resolve_axis(usize::MAX).is_err());
        assert!(s.resolve_axis(i64::MIN).is_err());
        assert!(Shape::scalar()
            .resolve_axis(0)
            .unwrap_err()
            .contains("no axes"));
        // a new axis: 0..=3, or -4..=-1 from the back
        assert_eq!(s.resolve_new_axis(3), Ok(3));
        assert_eq!(s.resolve_new_axis(-1), Ok(3));
        assert_eq!(s.resolve_new_axis(-4), Ok(0));
        let e = s.resolve_new_axis(4usize).unwrap_err();
        assert!(e.contains("-4 to 3"), "{e}");
        assert!(s.resolve_new_axis(-5).is_err());
        assert_eq!(Shape::scalar().resolve_new_axis(-1), Ok(0));
        // literals mixing signs fall back to i32
        assert_eq!(s.resolve_axes(&[-1, 0]), Ok(alloc::vec![0, 2]));
        assert!(s.resolve_axes(&[2, -1]).unwrap_err().contains("twice"));
    }
}
