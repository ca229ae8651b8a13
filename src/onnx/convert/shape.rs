//! Movement and shape operators, and the integer shape arithmetic exporters emit
//! (`Shape`, `Gather`, `Unsqueeze`, `Concat`), folded at import time.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::super::attr::Attrs;
use super::super::import::{input, need, Ctx};
use super::super::proto::NodeProto;
use super::super::value::{axis, decode, numel, Const, Data, Value, BATCH, R};
use crate::{Scalar, Shape, Tensor};

/// The shape `x` takes for ONNX reshape `target` (entries: extents, `0` to copy the
/// input's extent unless `allowzero`, one `-1` to infer, [`BATCH`] for the run-time axis).
/// With a run-time batch axis in `x`, the result must keep it as its first axis.
pub(crate) fn target_shape(x: &Shape, target: &[i64], allowzero: bool) -> R<Shape> {
    let dims = x.dims();
    let run = x.run_axis();
    // fixed extents of the input: everything but the run-time axis
    let fixed: usize = dims
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != run)
        .map(|(_, &d)| d)
        .product();
    let mut out: Vec<Option<usize>> = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        out.push(match t {
            BATCH => None,
            0 if !allowzero => {
                let d = *dims.get(i).ok_or_else(|| {
                    format!(
                        "shape entry {i} is 0 (copy) but the input has rank {}",
                        dims.len()
                    )
                })?;
                if run == Some(i) {
                    None
                } else {
                    Some(d)
                }
            }
            -1 if infer.is_none() => {
                infer = Some(i);
                Some(1)
            }
            t if t >= 0 => Some(t as usize),
            t => return Err(format!("invalid shape entry {t} in {target:?}")),
        });
    }
    let known: usize = out.iter().flatten().product();
    let batches = out.iter().filter(|d| d.is_none()).count();
    if let (Some(_), None, 0, Some(i)) = (run, None::<()>, batches, infer) {
        // the -1 stands for the batch when the rest already holds every fixed extent
        if known == fixed {
            out[i] = None;
            infer = None;
        }
    }
    let batches = out.iter().filter(|d| d.is_none()).count();
    if let Some(i) = infer {
        if known == 0 || fixed % known != 0 {
            return Err(format!("cannot infer the -1 of {target:?} for input {x}"));
        }
        out[i] = Some(fixed / known);
    }
    let rest: Vec<usize> = out.iter().flatten().copied().collect();
    if numel(&rest)? != fixed {
        return Err(format!("cannot reshape {x} to {target:?}"));
    }
    match (run, batches) {
        (None, 0) => Ok(Shape::new(rest)),
        (Some(_), 1) if out[0].is_none() => Ok(Shape::upto(x.bound().unwrap_or(0), &rest)),
        _ => Err(format!(
            "reshaping {x} to {target:?} would move or merge the run-time batch axis; it \
             must stay the first axis"
        )),
    }
}

/// `x` as a matrix `[prod(dims[..a]), prod(dims[a..])]` (ONNX Flatten).
pub(super) fn to_2d<T: Scalar>(x: Tensor<'_, T>, a: usize) -> R<Tensor<'_, T>> {
    let s = x.shape();
    let part = |r: core::ops::Range<usize>| -> i64 {
        if s.run_axis().is_some_and(|i| r.contains(&i)) {
            // a run-time axis merged with fixed extents of 1 is still the batch
            if r.clone()
                .filter(|&i| Some(i) != s.run_axis())
                .all(|i| s.dims()[i] == 1)
            {
                return BATCH;
            }
            return -2;
        }
        r.map(|i| s.dims()[i] as i64).product()
    };
    let t = [part(0..a), part(a..s.rank())];
    if t.contains(&-2) {
        return Err(format!(
            "flattening {s} at axis {a} would merge the run-time batch axis with other axes"
        ));
    }
    Ok(x.reshape(target_shape(&s, &t, true)?))
}

pub(super) fn flatten<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["axis"])?;
    let x = ctx.tensor(need(node, 0)?)?;
    let rank = x.rank();
    let a = at.int("axis", 1)?;
    let a = if a == rank as i64 {
        rank
    } else {
        axis(a, rank)?
    };
    Ok(Value::T(to_2d(x, a)?))
}

pub(super) fn reshape<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["allowzero"])?;
    let target = ctx.konst(need(node, 1)?)?.as_ints()?;
    let allowzero = at.int("allowzero", 0)? != 0;
    let x = need(node, 0)?;
    if ctx.is_const(x) {
        let mut c = ctx.konst(x)?;
        let s = target_shape(&Shape::new(c.dims.clone()), &target, allowzero)?;
        c.dims = s.dims().to_vec();
        return Ok(Value::C(c));
    }
    let x = ctx.tensor(x)?;
    Ok(Value::T(x.reshape(target_shape(
        &x.shape(),
        &target,
        allowzero,
    )?)))
}

pub(super) fn transpose<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["perm"])?;
    let x = ctx.tensor(need(node, 0)?)?;
    let perm = match at.ints("perm")? {
        Some(p) => p,
        None => (0..x.rank() as i64).rev().collect(),
    };
    if perm.len() != x.rank() {
        return Err(format!("perm {perm:?} does not fit rank {}", x.rank()));
    }
    Ok(Value::T(x.permute(&perm)))
}

/// Shape: the extents as an INT64 constant, the run-time axis as the batch marker.
pub(super) fn shape<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["start", "end"])?;
    let x = need(node, 0)?;
    let v: Vec<i64> = if ctx.is_const(x) {
        ctx.konst(x)?.dims.iter().map(|&d| d as i64).collect()
    } else {
        let s = ctx.tensor(x)?.shape();
        (0..s.rank())
            .map(|i| {
                if s.run_axis() == Some(i) {
                    BATCH
                } else {
                    s.dims()[i] as i64
                }
            })
            .collect()
    };
    let r = v.len() as i64;
    let clip = |i: i64| (if i < 0 { i + r } else { i }).clamp(0, r) as usize;
    let (s, e) = (clip(at.int("start", 0)?), clip(at.int("end", r)?));
    let v = v[s..e.max(s)].to_vec();
    Ok(Value::C(Const::ints(vec![v.len()], v)))
}

/// Unsqueeze and Squeeze: axes from the attribute (opset < 13) or the second input.
pub(super) fn squeeze<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["axes"])?;
    let axes = match (input(node, 1), at.ints("axes")?) {
        (Some(a), _) => Some(ctx.konst(a)?.as_ints()?),
        (None, a) => a,
    };
    let un = node.op_type == "Unsqueeze";
    let x = need(node, 0)?;
    let dims = if ctx.is_const(x) {
        ctx.konst(x)?.dims
    } else {
        ctx.tensor(x)?.shape().dims().to_vec()
    };
    let mut axes = match axes {
        Some(a) => {
            let rank = if un { dims.len() + a.len() } else { dims.len() };
            a.iter().map(|&i| axis(i, rank)).collect::<R<Vec<_>>>()?
        }
        None if un => return Err(String::from("Unsqueeze needs axes")),
        None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    if ctx.is_const(x) {
        let mut c = ctx.konst(x)?;
        for &a in axes.iter().rev().filter(|_| !un) {
            if c.dims[a] != 1 {
                return Err(format!("cannot squeeze axis {a} of extent {}", c.dims[a]));
            }
            c.dims.remove(a);
        }
        for &a in axes.iter().filter(|_| un) {
            if a > c.dims.len() {
                return Err(format!("axis {a} is out of range"));
            }
            c.dims.insert(a, 1);
        }
        return Ok(Value::C(c));
    }
    let mut t = ctx.tensor(x)?;
    if un {
        for &a in &axes {
            t = t.unsqueeze(a);
        }
    } else {
        for &a in axes.iter().rev() {
            t = t.squeeze(a);
        }
    }
    Ok(Value::T(t))
}

pub(super) fn constant<'g, T: Scalar>(node: &NodeProto) -> R<Value<'g, T>> {
    let at = Attrs::only(
        node,
        &[
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
        ],
    )?;
    let c = if let Some(t) = at.tensor("value")? {
        decode(t)?
    } else if at.has("value_float") {
        Const {
            dims: vec![],
            data: Data::F(vec![at.float("value_float", 0.0)? as f64]),
        }
    } else if let Some(v) = at.floats("value_floats")? {
        Const {
            dims: vec![v.len()],
            data: Data::F(v.iter().map(|&x| x as f64).collect()),
        }
    } else if at.has("value_int") {
        Const::ints(vec![], vec![at.int("value_int", 0)?])
    } else if let Some(v) = at.ints("value_ints")? {
        Const::ints(vec![v.len()], v)
    } else {
        return Err(String::from("Constant has no value"));
    };
    Ok(Value::C(c))
}

/// Identity, and Dropout in inference (its optional `training_mode` must be false).
pub(super) fn identity<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    let known: &[&str] = if node.op_type == "Dropout" {
        &["ratio", "seed", "is_test"]
    } else {
        &[]
    };
    let at = Attrs::only(node, known)?;
    if node.op_type == "Dropout" {
        let training = match input(node, 2) {
            Some(t) => ctx.konst(t)?.as_floats()?.iter().any(|&v| v != 0.0),
            None => false,
        };
        if training || (at.has("is_test") && at.int("is_test", 1)? == 0) {
            return Err(String::from(
                "Dropout in training mode is not supported (export the model in eval mode)",
            ));
        }
        if node.output.get(1).is_some_and(|m| !m.is_empty()) {
            return Err(String::from("Dropout's mask output is not supported"));
        }
    }
    ctx.value(need(node, 0)?)
}
