//! Matrix products: `[M, K] × [K, N]`, batched `[B, M, K] × [B, K, N]`, and
//! `[B, M, K] × [K, N]` (the 2-D side shared by the batch).
//!
//! The op carries "stored transposed" flags for either side, so the transposes that its
//! own VJP needs (`G·Bᵀ`, `Aᵀ·G`) are read in place by the GEMM's packing, never copied
//! into a transposed tensor. The GEMM (`gemm.rs`) packs into the machine's planned
//! scratch memory, so a product allocates nothing.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::panic::Location;

use super::{Inputs, Op, Out};
use crate::error::Result;
use crate::gemm::{gemm, scratch_len};
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::{RunAxis, Shape};

/// `op(lhs) · op(rhs)`, where `op` transposes the last two axes of a side whose flag is set.
#[derive(Debug, Clone, Copy)]
pub struct MatMul {
    /// `lhs` is stored as `[.., K, M]`.
    pub lhs_t: bool,
    /// `rhs` is stored as `[.., N, K]`.
    pub rhs_t: bool,
}

/// `(batch, m, k)` of a side as the product sees it.
fn mk(s: &Shape, t: bool) -> (usize, usize, usize) {
    let d = s.dims();
    let r = d.len();
    let b = if r == 3 { d[0] } else { 1 };
    let (x, y) = (d[r - 2], d[r - 1]);
    if t {
        (b, y, x)
    } else {
        (b, x, y)
    }
}

/// The role of an operand's run-time axis: 0 the batch of a 3-D operand, 1 the rows
/// (`m` of the lhs, `k` of the rhs), 2 the columns (`k` of the lhs, `n` of the rhs).
fn run_role(s: &Shape, t: bool) -> Option<(usize, RunAxis)> {
    let r = s.run()?;
    let pos = if s.rank() == 3 { r.axis } else { r.axis + 1 };
    let role = match (pos, t) {
        (0, _) => 0,
        (1, false) | (2, true) => 1,
        _ => 2,
    };
    Some((role, r))
}

/// Where the product's run-time axis goes: a batch stays the batch, the lhs rows stay
/// the rows, the rhs columns stay the columns, and a contraction over the run-time axis
/// of both operands leaves none.
fn out_run(
    a: &Shape,
    ta: bool,
    b: &Shape,
    tb: bool,
    rank: usize,
) -> core::result::Result<Option<RunAxis>, String> {
    let (ra, rb) = (run_role(a, ta), run_role(b, tb));
    let batch_b = b.rank() == 3;
    let mut out = Vec::new();
    match (ra, rb) {
        // the same extent at the bounds is another extent at the rows fed unless the
        // bounds agree
        (Some((_, p)), Some((_, q))) if p.bound != q.bound => {
            return Err(format!(
                "the operands' run-time axes have different bounds ({} and {})",
                p.bound, q.bound
            ))
        }
        (Some((2, _)), Some((1, _))) => {}
        (Some((2, _)), _) | (_, Some((1, _))) => {
            return Err(String::from(
                "the inner dimension is a run-time axis of one operand but fixed in the other",
            ))
        }
        (Some((0, p)), Some((0, _))) => out.push(RunAxis { axis: 0, ..p }),
        (Some((0, _)), _) if batch_b => {
            return Err(String::from(
                "the batch is a run-time axis of one operand only",
            ))
        }
        (_, Some((0, _))) => {
            return Err(String::from(
                "the batch is a run-time axis of one operand only",
            ))
        }
        _ => {}
    }
    match ra {
        Some((0, p)) if !batch_b => out.push(RunAxis { axis: 0, ..p }),
        Some((1, p)) => out.push(RunAxis {
            axis: rank - 2,
            ..p
        }),
        _ => {}
    }
    if let Some((2, p)) = rb {
        out.push(RunAxis {
            axis: rank - 1,
            ..p
        });
    }
    match out.as_slice() {
        [] => Ok(None),
        [r] => Ok(Some(*r)),
        _ => Err(String::from(
            "the product would have two run-time axes (rows of the lhs and columns of the rhs)",
        )),
    }
}

impl<T: Scalar> Op<T> for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn shape(&self, s: &[&Shape]) -> core::result::Result<Shape, String> {
        let (a, b) = (s[0], s[1]);
        match (a.rank(), b.rank()) {
            (2, 2) | (3, 3) | (3, 2) => {}
            _ => {
                return Err(format!(
                    "takes 2-D × 2-D, 3-D × 3-D or 3-D × 2-D operands, got ranks {} and {}",
                    a.rank(),
                    b.rank()
                ))
            }
        }
        if a.rank() == 3 && b.rank() == 2 && self.lhs_t {
            return Err(String::from("a transposed 3-D lhs cannot share a 2-D rhs"));
        }
        let (ba, m, k) = mk(a, self.lhs_t);
        let (bb, k2, n) = mk(b, self.rhs_t);
        if k != k2 {
            return Err(format!("inner dimensions differ: {k} and {k2}"));
        }
        if a.rank() == 3 && b.rank() == 3 && ba != bb {
            return Err(format!("batch sizes differ: {ba} and {bb}"));
        }
        let dims = if a.rank() == 3 {
            vec![ba, m, n]
        } else {
            vec![m, n]
        };
        let run = out_run(a, self.lhs_t, b, self.rhs_t, dims.len())?;
        Ok(Shape::with_dims_of(dims, run))
    }

    fn takes_run_axis(&self) -> bool {
        true
    }

    fn scratch(&self, s: &[&Shape]) -> usize {
        let (batch, m, k) = mk(s[0], self.lhs_t);
        let (_, _, n) = mk(s[1], self.rhs_t);
        let rows = if s[1].rank() == 2 { batch * m } else { m };
        scratch_len::<T>(rows, k, n, crate::par::threads())
    }

    fn forward(&self, x: &Inputs<'_, T>, out: &mut Out<'_, T>) -> Result<()> {
        let (sa, sb) = (x.shape(0), x.shape(1));
        let (batch, m, k) = mk(sa, self.lhs_t);
        let (_, _, n) = mk(sb, self.rhs_t);
        let (a, b) = (x.slice(0), x.slice(1));
        let (c, scratch) = out.with_scratch();
        if sb.rank() == 2 {
            // A 2-D rhs is shared by the batch: the batch folds into the rows of one GEMM.
            gemm(batch * m, k, n, a, self.lhs_t, b, self.rhs_t, c, scratch);
        } else {
            let (la, lb, lc) = (m * k, k * n, m * n);
            for i in 0..batch {
                gemm(
                    m,
                    k,
                    n,
                    &a[i * la..(i + 1) * la],
                    self.lhs_t,
                    &b[i * lb..(i + 1) * lb],
                    self.rhs_t,
                    &mut c[i * lc..(i + 1) * lc],
                    scratch,
                );
            }
        }
        Ok(())
    }

    fn vjp<'g>(
        &self,
        x: &[Tensor<'g, T>],
        _: Tensor<'g, T>,
        g: Tensor<'g, T>,
    ) -> Vec<Option<Tensor<'g, T>>> {
        let (a, b, ta, tb) = (x[0], x[1], self.lhs_t, self.rhs_t);
        // C = op(A) op(B):  dop(A) = G op(B)ᵀ,  dop(B) = op(A)ᵀ G, transposed back where
        // a side is stored transposed.
        let da = if ta {
            b.matmul_t(g, tb, true)
        } else {
            g.matmul_t(b, false, !tb)
        };
        if a.rank() == 3 && b.rank() == 2 && a.shape().run_axis() == Some(1) {
            // rows that are a run-time axis cannot fold into the batch: sum the batched
            // products instead (the lhs is never stored transposed here)
            let db = if tb {
                g.matmul_t(a, true, false)
            } else {
                a.matmul_t(g, true, false)
            };
            return vec![Some(da), Some(db.sum_axes(&[0], false))];
        }
        let (a2, g2) = if a.rank() == 3 && b.rank() == 2 {
            // the shared rhs gets the sum over the batch: fold the batch into rows
            let (sa, sg) = (a.shape(), g.shape());
            (
                a.reshape([sa.dim(0) * sa.dim(1), sa.dim(2)]),
                g.reshape([sg.dim(0) * sg.dim(1), sg.dim(2)]),
            )
        } else {
            (a, g)
        };
        let db = if tb {
            g2.matmul_t(a2, true, ta)
        } else {
            a2.matmul_t(g2, !ta, false)
        };
        vec![Some(da), Some(db)]
    }
}

impl<'g, T: Scalar> Tensor<'g, T> {
    /// Matrix product: `[M, K] × [K, N] → [M, N]`, `[B, M, K] × [B, K, N] → [B, M, N]`, or
    /// `[B, M, K] × [K, N] → [B, M, N]`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let a = g.constant(tapegrad::ndarray::arr2(&[[1.0, 2.0], [3.0, 4.0]]));
    /// let b = g.constant(tapegrad::ndarray::arr2(&[[1.0], [1.0]]));
    /// let c = a.matmul(b);
    /// let mut m = g.compile(&[c], &[])?;
    /// m.run()?;
    /// assert_eq!(m.value(c)?.as_slice(), Some(&[3.0, 7.0][..]));
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    #[track_caller]
    pub fn matmul(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
        self.matmul_t(rhs, false, false)
    }

    /// `op(self) · op(rhs)` where a set flag means that side is stored transposed.
    #[track_caller]
    pub(crate) fn matmul_t(self, rhs: Tensor<'g, T>, lhs_t: bool, rhs_t: bool) -> Tensor<'g, T> {
        self.apply(MatMul { lhs_t, rhs_t }, &[self, rhs], Location::caller())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, eval, grads_of, rand_array};
    use approx::assert_abs_diff_eq;
    use ndarray::{arr2, Array3, Axis};

    #[test]
    fn known_product_and_gradient() {
        let a = arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn();
        let b = arr2(&[[5.0, 6.0], [7.0, 8.0]]).into_dyn();
        let c = eval(&[a.clone(), b.clone()], |_, x| x[0].matmul(x[1]));
        assert_eq!(c, arr2(&[[19.0, 22.0], [43.0, 50.0]]).into_dyn());
        // y = sum(A B): dy/dA = 1 Bᵀ (row sums of B), dy/dB = Aᵀ 1 (column sums of A)
        let g = grads_of(&[a, b], |_, x| x[0].matmul(x[1]));
        assert_eq!(g[0], arr2(&[[11.0, 15.0], [11.0, 15.0]]).into_dyn());
        assert_eq!(g[1], arr2(&[[4.0, 4.0], [6.0, 6.0]]).into_dyn());
    }

    #[test]
    fn batched_matches_per_batch_products() {
        let a = rand_array(&[3, 2, 4], 1, -1.0, 1.0);
        let b = rand_array(&[3, 4, 5], 2, -1.0, 1.0);
        let w = rand_array(&[4, 5], 3, -1.0, 1.0);
        let c = eval(&[a.clone(), b.clone()], |_, x| x[0].matmul(x[1]));
        let cw = eval(&[a.clone(), w.clone()], |_, x| x[0].matmul(x[1]));
        let a3: Array3<f64> = a.into_dimensionality().unwrap();
        let b3: Array3<f64> = b.into_dimensionality().unwrap();
        let w2 = w.into_dimensionality::<ndarray::Ix2>().unwrap();
        for i in 0..3 {
            let want = a3.index_axis(Axis(0), i).dot(&b3.index_axis(Axis(0), i));
            let want_w = a3.index_axis(Axis(0), i).dot(&w2);
            for ((x, y), z) in c.index_axis(Axis(0), i).iter().zip(&want).zip(&want_w) {
                assert_abs_diff_eq!(*x, *y, epsilon = 1e-12);
                let _ = z;
            }
            for (x, y) in cw.index_axis(Axis(0), i).iter().zip(&want_w) {
                assert_abs_diff_eq!(*x, *y, epsilon = 1e-12);
            }
        }
    }

    #[test]
    fn gradcheck_all_forms_and_second_order() {
        let cases: [(&[usize], &[usize]); 4] = [
            (&[3, 4], &[4, 2]),
            (&[2, 3, 4], &[2, 4, 5]),
            (&[2, 3, 4], &[4, 5]),
            (&[1, 1], &[1, 3]),
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let a = rand_array(sa, 20 + i as u64, -1.0, 1.0);
            let b = rand_array(sb, 30 + i as u64, -1.0, 1.0);
            check(&[a.clone(), b.clone()], |_, x| x[0].matmul(x[1]));
            // a product with both inputs appearing twice exercises the VJP's own VJP
            check(&[a, b], |g, x| {
                let y = x[0].matmul(x[1]).square().sum();
                let d = g.grad(y, &[x[0], x[1]]).unwrap();
                (d[0] * x[0]).sum() + (d[1] * x[1]).sum()
            });
        }
    }

    #[test]
    fn shape_errors_name_both_shapes() {
        let g = crate::Graph::<f32>::new();
        let a = g.input("a", [2, 3]);
        let b = g.input("b", [4, 5]);
        let _ = a.matmul(b);
        let e = g.check().unwrap_err().to_string();
        assert!(
            e.contains("`matmul`") && e.contains("[2, 3], [4, 5]") && e.contains("3 and 4"),
            "{e}"
        );
        let g = crate::Graph::<f32>::new();
        let _ = g.input("a", [2, 3, 4]).matmul(g.input("b", [3, 4, 5]));
        assert!(g
            .check()
            .unwrap_err()
            .to_string()
            .contains("batch sizes differ"));
        let g = crate::Graph::<f32>::new();
        let _ = g.input("a", [4]).matmul(g.input("b", [4, 5]));
        assert!(g.check().unwrap_err().to_string().contains("ranks 1 and 2"));
    }
}
