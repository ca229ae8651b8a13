//! Gradient checking: compare a graph's symbolic gradient with central finite
//! differences, in `f64`. Use it on your own functions and ops.

use alloc::format;
use alloc::vec::Vec;

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::graph::{Graph, Tensor};

/// Tolerances and step of [`gradcheck_with`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheck {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (to the numeric value).
    pub rtol: f64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-6,
            atol: 1e-6,
            rtol: 1e-4,
        }
    }
}

/// What a passing check measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// Elements compared.
    pub checked: usize,
    /// Largest `|analytic - numeric|`.
    pub max_abs_err: f64,
}

/// [`gradcheck_with`] with the default tolerances.
///
/// ```
/// use tapegrad::check::gradcheck;
/// let x = tapegrad::ndarray::arr1(&[0.3, -1.2, 2.0]).into_dyn();
/// let report = gradcheck(&[x], |_, t| (t[0].tanh() * t[0]).sum())?;
/// assert_eq!(report.checked, 3);
/// # Ok::<(), tapegrad::Error>(())
/// ```
///
/// # Errors
/// As for [`gradcheck_with`].
#[track_caller]
pub fn gradcheck<F>(inputs: &[ArrayD<f64>], f: F) -> Result<Report>
where
    F: for<'g> Fn(&'g Graph<f64>, &[Tensor<'g, f64>]) -> Tensor<'g, f64>,
{
    gradcheck_with(GradCheck::default(), inputs, f)
}

/// Builds `f` on parameters holding `inputs`, and checks the gradient of its output with
/// respect to every element of every input against the central difference
/// `(f(x + eps) - f(x - eps)) / (2 eps)`. A non-scalar output is first reduced with fixed
/// weights that differ per element, so every output element is checked.
///
/// # Errors
/// [`Error::GradCheck`] at the first element outside `atol + rtol * |numeric|`, or any
/// error from building, differentiating or running `f`.
#[track_caller]
pub fn gradcheck_with<F>(opts: GradCheck, inputs: &[ArrayD<f64>], f: F) -> Result<Report>
where
    F: for<'g> Fn(&'g Graph<f64>, &[Tensor<'g, f64>]) -> Tensor<'g, f64>,
{
    let g = Graph::new();
    let xs: Vec<Tensor<'_, f64>> = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| g.param(&format!("gradcheck.{i}"), v.clone()))
        .collect();
    let mut y = f(&g, &xs);
    if y.numel() != 1 {
        // weights 1, 1.1, 1.2, ... (cycling) make each output element count differently
        let mut w = ArrayD::zeros(y.shape().ix());
        for (k, v) in w.iter_mut().enumerate() {
            *v = 1.0 + 0.1 * (k % 7) as f64;
        }
        y = (y * g.constant(w)).sum();
    }
    let grads = g.grad(y, &xs)?;
    let mut m = g.compile(&[y], &grads)?;
    m.run()?;
    let analytic: Vec<ArrayD<f64>> = grads
        .tensors()
        .iter()
        .map(|t| m.value(*t).map(|v| v.to_owned()))
        .collect::<Result<_>>()?;
    let (mut checked, mut max_abs_err) = (0, 0.0f64);
    for (i, x) in inputs.iter().enumerate() {
        let mut probe = x.as_standard_layout().into_owned();
        let analytic = analytic[i].as_standard_layout();
        for k in 0..probe.len() {
            let x0 = probe.as_slice().map_or(0.0, |s| s[k]);
            let mut at = |v: f64| -> Result<f64> {
                if let Some(s) = probe.as_slice_mut() {
                    s[k] = v;
                }
                m.set_param(xs[i], &probe)?;
                m.run()?;
                m.item(y)
            };
            let plus = at(x0 + opts.eps)?;
            let minus = at(x0 - opts.eps)?;
            at(x0)?;
            let numeric = (plus - minus) / (2.0 * opts.eps);
            let a = analytic.as_slice().map_or(f64::NAN, |s| s[k]);
            let err = (a - numeric).abs();
            // written so that a NaN on either side fails
            let within = err <= opts.atol + opts.rtol * numeric.abs();
            if !within {
                return Err(Error::GradCheck {
                    input: i,
                    index: k,
                    analytic: a,
                    numeric,
                });
            }
            max_abs_err = max_abs_err.max(err);
            checked += 1;
        }
    }
    Ok(Report {
        checked,
        max_abs_err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Op;

    /// An op whose VJP is deliberately wrong (twice the true gradient), to show the
    /// checker catches it.
    #[derive(Debug)]
    struct WrongSquare;
    impl Op<f64> for WrongSquare {
        fn name(&self) -> &'static str {
            "wrong_square"
        }
        fn shape(
            &self,
            s: &[&crate::Shape],
        ) -> core::result::Result<crate::Shape, alloc::string::String> {
            Ok(s[0].clone())
        }
        fn forward(
            &self,
            x: &crate::ops::Inputs<'_, f64>,
            out: &mut crate::ops::Out<'_, f64>,
        ) -> Result<()> {
            for (o, &v) in out.slice().iter_mut().zip(x.slice(0)) {
                *o = v * v;
            }
            Ok(())
        }
        fn vjp<'g>(
            &self,
            x: &[Tensor<'g, f64>],
            _: Tensor<'g, f64>,
            g: Tensor<'g, f64>,
        ) -> Vec<Option<Tensor<'g, f64>>> {
            alloc::vec![Some(g * x[0] * 4.0)]
        }
    }

    #[test]
    fn catches_a_wrong_gradient() {
        let x = ndarray::arr1(&[0.5, 1.5]).into_dyn();
        let e = gradcheck(&[x], |g, t| {
            g.apply(WrongSquare, &[t[0]], core::panic::Location::caller())
        })
        .unwrap_err();
        match e {
            // analytic 4x = 2 against numeric 2x = 1 at x = 0.5
            Error::GradCheck {
                input: 0,
                index: 0,
                analytic,
                numeric,
            } => {
                approx::assert_abs_diff_eq!(analytic, 2.0, epsilon = 1e-12);
                approx::assert_abs_diff_eq!(numeric, 1.0, epsilon = 1e-6);
            }
            other => panic!("{other}"),
        }
    }
}
