//! Parameters with their gradients: the pairs a machine was compiled with, checked and
//! handed out in place to optimizers, the crate's and a user's own.

use super::{Machine, ParamGrad, Step};
use crate::error::{Caller, Error, Result};
use crate::grads::{AsGrads, GradHandles};
use crate::graph::Handle;
use crate::scalar::Scalar;

impl<T: Scalar> Machine<T> {
    /// The `(x, dx)` pairs this machine was compiled with, as `'static` handles: keep a
    /// clone beside a machine stored away from its graph, to step it.
    pub fn grads(&self) -> &GradHandles {
        &self.grads
    }

    /// Calls `f` with each parameter of `grads` (mutable, in place) and its gradient from
    /// the last run, in order: the door for an optimizer written outside the crate.
    /// Allocates nothing; every pair is checked before `f` is first called, so on an
    /// error nothing has been handed out. Capture hyper-parameters by value (a `move`
    /// closure): a value read through a captured reference may alias the parameter being
    /// written, so the compiler reloads it every element and cannot vectorize the loop
    /// (measured on the L configuration's SGD: 5× slower).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f64>::new();
    /// let w = g.param("w", tapegrad::ndarray::arr1(&[1.0, -2.0]));
    /// let loss = (w * w).sum(); // gradient 2w
    /// let grads = g.grad(loss, &[w])?;
    /// let mut m = g.compile(&[loss], &grads)?;
    /// m.run()?;
    /// // sign-SGD: p -= lr * sign(g)
    /// let lr = 0.5;
    /// m.for_each_pair(&grads, move |pg| {
    ///     for (p, &d) in pg.param.iter_mut().zip(pg.grad) {
    ///         *p -= lr * d.signum();
    ///     }
    /// })?;
    /// assert_eq!(m.value(w)?.as_slice(), Some(&[0.5, -1.5][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Mismatch`] if a pair is not one this machine was compiled with (pass the
    /// same gradients to `compile`) or a parameter appears twice; [`Error::WrongKind`] if
    /// an `x` is not a parameter; [`Error::NotRun`] before a successful run;
    /// [`Error::WrongGraph`] for gradients of another graph.
    #[track_caller]
    pub fn for_each_pair<G: AsGrads + ?Sized>(
        &mut self,
        grads: &G,
        f: impl FnMut(ParamGrad<'_, T>),
    ) -> Result<()> {
        let caller = Caller::here();
        let pairs = grads.grad_pairs();
        self.check_pairs(pairs, "for_each_pair", caller)?;
        self.each_pair(pairs, caller, f)
    }

    /// Checks that `pairs` can be stepped: each one this machine was compiled with, its
    /// `x` a parameter, no parameter twice, after a run. Allocates only to report an
    /// error.
    pub(crate) fn check_pairs(
        &self,
        pairs: &[(Handle, Handle)],
        what: &'static str,
        caller: Caller,
    ) -> Result<()> {
        let compiled = self.grads.grad_pairs();
        // the usual case, the compiled pairs themselves, is linear
        let same = pairs == compiled;
        for (k, pair) in pairs.iter().enumerate() {
            let (x, dx) = *pair;
            for h in [x, dx] {
                if h.graph != self.graph {
                    return Err(Error::WrongGraph { op: what, caller });
                }
            }
            if !same && !compiled.contains(pair) {
                return Err(Error::Mismatch {
                    what,
                    reason: alloc::format!(
                        "the gradient given for {} was not compiled into this machine as \
                         its gradient: pass the same `grads` to `compile` and to the step",
                        self.describe(x)
                    ),
                    caller,
                });
            }
            let (i, j) = (self.position(&x, caller)?, self.position(&dx, caller)?);
            self.expect_kind(i, "parameter", caller)?;
            self.readable(j, caller)?;
            if self.buf_of[i] == self.buf_of[j] {
                return Err(Error::Mismatch {
                    what,
                    reason: alloc::format!(
                        "the gradient of {} shares its buffer",
                        self.describe(x)
                    ),
                    caller,
                });
            }
            if !(same && self.distinct) && pairs[..k].iter().any(|p| p.0 == x) {
                return Err(Error::Mismatch {
                    what,
                    reason: alloc::format!("{} appears twice", self.describe(x)),
                    caller,
                });
            }
        }
        if !pairs.is_empty() && !self.ran {
            return Err(Error::NotRun {
                op: "gradient",
                caller,
            });
        }
        Ok(())
    }

    /// The name and element count of parameter `x` (after [`check_pairs`]).
    pub(crate) fn param_info(&self, x: Handle, caller: Caller) -> Result<(&str, usize)> {
        let i = self.position(&x, caller)?;
        match &self.steps[i] {
            Step::Param { name, .. } => Ok((name, self.numel[i])),
            s => Err(Error::WrongKind {
                expected: "parameter",
                got: s.kind(),
                caller,
            }),
        }
    }

    /// Calls `f` on each pair of `pairs`, already checked with [`check_pairs`].
    pub(crate) fn each_pair(
        &mut self,
        pairs: &[(Handle, Handle)],
        caller: Caller,
        mut f: impl FnMut(ParamGrad<'_, T>),
    ) -> Result<()> {
        for (index, (x, dx)) in pairs.iter().enumerate() {
            let (i, j) = (self.position(x, caller)?, self.position(dx, caller)?);
            let (bi, bj) = (self.buf_of[i] as usize, self.buf_of[j] as usize);
            let Step::Param { name, .. } = &self.steps[i] else {
                continue;
            };
            if bi == bj {
                continue;
            }
            // `bi != bj`, so the two buffers are distinct elements of `bufs`.
            let (pbuf, gbuf) = if bi < bj {
                let (lo, hi) = self.bufs.split_at_mut(bj);
                (&mut lo[bi], &hi[0])
            } else {
                let (lo, hi) = self.bufs.split_at_mut(bi);
                (&mut hi[0], &lo[bj])
            };
            f(ParamGrad {
                index,
                name,
                param: &mut pbuf[..self.numel[i]],
                grad: &gbuf[..self.numel[j]],
            });
        }
        Ok(())
    }

    /// `parameter "w"`, or the node's kind and id, for messages.
    pub(crate) fn describe(&self, x: Handle) -> alloc::string::String {
        match self.slot.get(x.id.index()).map(|&s| s as usize) {
            Some(i) if i < self.steps.len() => match &self.steps[i] {
                Step::Param { name, .. } => alloc::format!("parameter {name:?}"),
                Step::Input { name, .. } => alloc::format!("input {name:?}"),
                s => alloc::format!("node {} (`{}`)", x.id.0, s.kind()),
            },
            _ => alloc::format!("node {}", x.id.0),
        }
    }
}
