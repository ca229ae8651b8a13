//! A printable table of parameters.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::scalar::Scalar;
use crate::shape::Shape;

/// A table of parameters (name, shape, element count) that prints like a model summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    rows: Vec<(String, Shape)>,
}

impl Summary {
    /// A summary of `(name, shape)` rows.
    pub fn new<'a>(rows: impl IntoIterator<Item = (&'a str, &'a Shape)>) -> Self {
        Summary {
            rows: rows
                .into_iter()
                .map(|(n, s)| (String::from(n), s.clone()))
                .collect(),
        }
    }

    /// The number of scalar parameters (`usize::MAX` if more than a `usize` counts: a
    /// summary may be made of any shapes, not only of a graph's).
    pub fn total(&self) -> usize {
        self.rows
            .iter()
            .fold(0usize, |n, (_, s)| n.saturating_add(s.numel()))
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shapes: Vec<String> = self.rows.iter().map(|(_, s)| format!("{s}")).collect();
        let wn = self
            .rows
            .iter()
            .map(|(n, _)| n.len())
            .chain([9])
            .max()
            .unwrap_or(9);
        let ws = shapes.iter().map(String::len).chain([5]).max().unwrap_or(5);
        writeln!(f, "{:<wn$}  {:<ws$}  {:>10}", "parameter", "shape", "count")?;
        for ((name, shape), s) in self.rows.iter().zip(&shapes) {
            writeln!(f, "{name:<wn$}  {s:<ws$}  {:>10}", shape.numel())?;
        }
        write!(f, "{:<wn$}  {:<ws$}  {:>10}", "total", "", self.total())
    }
}

impl<T: Scalar> crate::Machine<T> {
    /// The machine's parameters as a printable [`Summary`].
    pub fn summary(&self) -> Summary {
        Summary::new(self.params())
    }
}
