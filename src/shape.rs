//! Shapes, broadcasting and axis handling.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The shape of a tensor: its extent along each axis, outermost first. A scalar has the
/// empty shape `[]`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The shape `[]` of a scalar.
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The number of elements (1 for a scalar, 0 if any axis is empty).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// The extent of `axis`. Panics if `axis >= rank`; internal use only.
    pub(crate) fn dim(&self, axis: usize) -> usize {
        self.0[axis]
    }

    /// The ndarray dimension of this shape (no allocation for up to four axes).
    pub(crate) fn ix(&self) -> ndarray::IxDyn {
        ndarray::IxDyn(&self.0)
    }

    /// NumPy broadcasting of two shapes: align on the right, each pair of extents equal or
    /// one of them 1. `None` when they do not broadcast.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let r = self.rank().max(other.rank());
        let mut out = alloc::vec![0; r];
        for (i, o) in out.iter_mut().enumerate() {
            let a = self.dim_from_right(r - 1 - i);
            let b = other.dim_from_right(r - 1 - i);
            *o = match (a, b) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            };
        }
        Some(Shape(out))
    }

    /// Whether this shape broadcasts to `target` (a one-sided broadcast).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        self.rank() <= target.rank() && self.broadcast(target).as_ref() == Some(target)
    }

    fn dim_from_right(&self, k: usize) -> usize {
        if k < self.rank() {
            self.0[self.rank() - 1 - k]
        } else {
            1
        }
    }

    /// Checks a list of axes against the rank: in range and without repeats. Returns them
    /// sorted.
    pub(crate) fn check_axes(&self, axes: &[usize]) -> Result<Vec<usize>, String> {
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        for w in sorted.windows(2) {
            if w[0] == w[1] {
                return Err(format!("axis {} is given twice", w[0]));
            }
        }
        if let Some(&a) = sorted.iter().find(|&&a| a >= self.rank()) {
            return Err(format!(
                "axis {a} is out of range for a tensor of rank {}",
                self.rank()
            ));
        }
        Ok(sorted)
    }

    /// The shape left after reducing `axes` (sorted, checked), kept as 1 or removed.
    pub(crate) fn reduced(&self, axes: &[usize], keepdim: bool) -> Shape {
        let mut out = Vec::with_capacity(self.rank());
        for (i, &d) in self.0.iter().enumerate() {
            if axes.contains(&i) {
                if keepdim {
                    out.push(1);
                }
            } else {
                out.push(d);
            }
        }
        Shape(out)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn broadcast_known() {
        let a = Shape::from([4, 1, 3]);
        assert_eq!(
            a.broadcast(&Shape::from([5, 1])),
            Some(Shape::from([4, 5, 3]))
        );
        assert_eq!(a.broadcast(&Shape::scalar()), Some(a.clone()));
        assert_eq!(a.broadcast(&Shape::from([2])), None);
        assert!(Shape::from([3]).broadcasts_to(&a));
        assert!(!Shape::from([4, 5, 3]).broadcasts_to(&a));
    }

    #[test]
    fn axes_checked() {
        let s = Shape::from([2, 3]);
        assert_eq!(s.check_axes(&[1, 0]), Ok(alloc::vec![0, 1]));
        assert!(s.check_axes(&[2]).unwrap_err().contains("out of range"));
        assert!(s.check_axes(&[1, 1]).unwrap_err().contains("twice"));
        assert_eq!(s.reduced(&[1], true), Shape::from([2, 1]));
        assert_eq!(s.reduced(&[0, 1], false), Shape::scalar());
    }

    proptest! {
        // Broadcasting is commutative, and the result is reached by both sides.
        #[test]
        fn broadcast_commutes(a in proptest::collection::vec(1usize..4, 0..4),
                              b in proptest::collection::vec(1usize..4, 0..4)) {
            let (a, b) = (Shape::new(a), Shape::new(b));
            let ab = a.broadcast(&b);
            prop_assert_eq!(&ab, &b.broadcast(&a));
            if let Some(s) = ab {
                prop_assert!(a.broadcasts_to(&s));
                prop_assert!(b.broadcasts_to(&s));
                prop_assert_eq!(s.rank(), a.rank().max(b.rank()));
            }
        }
    }
}
