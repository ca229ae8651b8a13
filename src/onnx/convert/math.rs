//! Arithmetic, activations, matrix products and softmax.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::super::attr::Attrs;
use super::super::import::{input, need, Ctx};
use super::super::proto::NodeProto;
use super::super::value::{axis, Const, Data, Value, BATCH, R};
use super::shape::to_2d;
use crate::Scalar;

/// Add, Sub, Mul, Div with NumPy broadcasting; folded when both sides are constants.
pub(super) fn binary<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    Attrs::only(node, &[])?;
    let (a, b) = (need(node, 0)?, need(node, 1)?);
    let op = node.op_type.as_str();
    if ctx.is_const(a) && ctx.is_const(b) {
        return fold(op, &ctx.konst(a)?, &ctx.konst(b)?).map(Value::C);
    }
    let (a, b) = (ctx.tensor(a)?, ctx.tensor(b)?);
    Ok(Value::T(match op {
        "Add" => a + b,
        "Sub" => a - b,
        "Mul" => a * b,
        _ => a / b,
    }))
}

/// Elementwise arithmetic on constants of one shape, or with a one-element side.
fn fold(op: &str, a: &Const, b: &Const) -> R<Const> {
    let dims = match (a.len(), b.len()) {
        (_, 1) => a.dims.clone(),
        (1, _) => b.dims.clone(),
        _ if a.dims == b.dims => a.dims.clone(),
        _ => {
            return Err(format!(
                "folding constants of shapes {:?} and {:?} is not supported",
                a.dims, b.dims
            ))
        }
    };
    let n = a.len().max(b.len());
    let at = |i: usize, len: usize| if len == 1 { 0 } else { i };
    let data = match (&a.data, &b.data) {
        (Data::I(x), Data::I(y)) => {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let (p, q) = (x[at(i, x.len())], y[at(i, y.len())]);
                if p == BATCH || q == BATCH {
                    return Err(String::from(
                        "arithmetic on the run-time batch size is not supported",
                    ));
                }
                v.push(
                    match op {
                        "Add" => p.checked_add(q),
                        "Sub" => p.checked_sub(q),
                        "Mul" => p.checked_mul(q),
                        _ => p.checked_div(q),
                    }
                    .ok_or_else(|| format!("{op} of {p} and {q} overflows or divides by 0"))?,
                );
            }
            Data::I(v)
        }
        _ => {
            let (x, y) = (a.as_floats()?, b.as_floats()?);
            Data::F(
                (0..n)
                    .map(|i| {
                        let (p, q) = (x[at(i, x.len())], y[at(i, y.len())]);
                        match op {
                            "Add" => p + q,
                            "Sub" => p - q,
                            "Mul" => p * q,
                            _ => p / q,
                        }
                    })
                    .collect(),
            )
        }
    };
    Ok(Const { dims, data })
}

/// Relu, Tanh, Sigmoid.
pub(super) fn unary<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    Attrs::only(node, &[])?;
    let x = ctx.tensor(need(node, 0)?)?;
    Ok(Value::T(match node.op_type.as_str() {
        "Relu" => x.relu(),
        "Tanh" => x.tanh(),
        _ => x.sigmoid(),
    }))
}

/// `alpha op(A) op(B) + beta C`, `op` a transpose when `transA` / `transB` is set.
pub(super) fn gemm<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["alpha", "beta", "transA", "transB"])?;
    let (alpha, beta) = (at.float("alpha", 1.0)?, at.float("beta", 1.0)?);
    let mut a = ctx.tensor(need(node, 0)?)?;
    let mut b = ctx.tensor(need(node, 1)?)?;
    if a.rank() != 2 || b.rank() != 2 {
        return Err(format!(
            "A and B must be matrices, got shapes {} and {}",
            a.shape(),
            b.shape()
        ));
    }
    if at.int("transA", 0)? != 0 {
        a = a.t();
    }
    if at.int("transB", 0)? != 0 {
        b = b.t();
    }
    let mut y = a.matmul(b);
    if alpha != 1.0 {
        y = y * T::of(alpha as f64);
    }
    if let Some(c) = input(node, 2) {
        let mut c = ctx.tensor(c)?;
        if beta != 1.0 {
            c = c * T::of(beta as f64);
        }
        y = y + c;
    }
    Ok(Value::T(y))
}

/// NumPy's matmul for the ranks tapegrad's `matmul` takes.
pub(super) fn matmul<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    Attrs::only(node, &[])?;
    let a = ctx.tensor(need(node, 0)?)?;
    let b = ctx.tensor(need(node, 1)?)?;
    Ok(Value::T(a.matmul(b)))
}

/// Softmax and LogSoftmax: over one axis from opset 13, over the axes from `axis` on
/// (the input coerced to a matrix) before.
pub(super) fn softmax<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["axis"])?;
    let x = ctx.tensor(need(node, 0)?)?;
    let log = node.op_type == "LogSoftmax";
    let f = |t: crate::Tensor<'g, T>, a: usize| {
        if log {
            t.log_softmax(a)
        } else {
            t.softmax(a)
        }
    };
    let rank = x.rank();
    if ctx.opset >= 13 {
        let a = axis(at.int("axis", -1)?, rank)?;
        return Ok(Value::T(f(x, a)));
    }
    let a = axis(at.int("axis", 1)?, rank)?;
    if a + 1 == rank {
        return Ok(Value::T(f(x, a)));
    }
    let m = to_2d(x, a)?;
    Ok(Value::T(f(m, 1).reshape(x.shape())))
}
