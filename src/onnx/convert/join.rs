//! Joining and indexing: Concat and Gather, folded when their inputs are constants.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::super::attr::Attrs;
use super::super::import::{need, Ctx};
use super::super::proto::NodeProto;
use super::super::value::{axis, Const, Data, Value, R};
use crate::Scalar;

pub(super) fn concat<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["axis"])?;
    let names: Vec<&str> = node.input.iter().map(String::as_str).collect();
    let first = names.first().ok_or("Concat needs at least one input")?;
    if names.iter().all(|n| ctx.is_const(n)) {
        let cs = names.iter().map(|n| ctx.konst(n)).collect::<R<Vec<_>>>()?;
        let a = axis(at.int("axis", 0)?, cs[0].dims.len())?;
        return concat_consts(&cs, a).map(Value::C);
    }
    let ts = names.iter().map(|n| ctx.tensor(n)).collect::<R<Vec<_>>>()?;
    let a = axis(at.int("axis", 0)?, ctx.tensor(first)?.rank())?;
    Ok(Value::T(ctx.g.concat(&ts, a)))
}

fn concat_consts(cs: &[Const], a: usize) -> R<Const> {
    let d0 = &cs[0].dims;
    let outer: usize = d0[..a].iter().product();
    let mut dims = d0.clone();
    dims[a] = 0;
    for c in cs {
        let same = c.dims.len() == d0.len() && (0..d0.len()).all(|i| i == a || c.dims[i] == d0[i]);
        if !same {
            return Err(format!(
                "cannot concatenate constants {:?} and {d0:?}",
                c.dims
            ));
        }
        dims[a] += c.dims[a];
    }
    let ints = cs.iter().all(|c| matches!(c.data, Data::I(_)));
    let (mut fv, mut iv) = (Vec::new(), Vec::new());
    for o in 0..outer {
        for c in cs {
            let n = c.len() / outer.max(1);
            match (&c.data, ints) {
                (Data::I(v), true) => iv.extend_from_slice(&v[o * n..(o + 1) * n]),
                _ => fv.extend_from_slice(&c.as_floats()?[o * n..(o + 1) * n]),
            }
        }
    }
    let data = if ints { Data::I(iv) } else { Data::F(fv) };
    Ok(Const { dims, data })
}

pub(super) fn gather<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    let at = Attrs::only(node, &["axis"])?;
    let (data, ids) = (need(node, 0)?, need(node, 1)?);
    if !ctx.is_const(ids) {
        // ids fed at run time (stored as T): an embedding lookup along axis 0
        let (d, i) = (ctx.tensor(data)?, ctx.tensor(ids)?);
        if at.int("axis", 0)? != 0 {
            return Err(String::from("indices computed by the graph need axis 0"));
        }
        return Ok(Value::T(d.index_select(i)));
    }
    let ids = ctx.konst(ids)?;
    let rank = if ctx.is_const(data) {
        ctx.konst(data)?.dims.len()
    } else {
        ctx.tensor(data)?.rank()
    };
    let a = axis(at.int("axis", 0)?, rank)?;
    let extent = if ctx.is_const(data) {
        ctx.konst(data)?.dims[a]
    } else {
        ctx.tensor(data)?.shape().dims()[a]
    };
    let idx = ids
        .as_ints()?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + extent as i64 } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| j < extent)
                .ok_or_else(|| format!("index {i} is out of range for extent {extent}"))
        })
        .collect::<R<Vec<usize>>>()?;
    if ctx.is_const(data) {
        let c = ctx.konst(data)?;
        let outer: usize = c.dims[..a].iter().product();
        let inner: usize = c.dims[a + 1..].iter().product();
        let mut flat = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            for &j in &idx {
                flat.extend((0..inner).map(|k| (o * extent + j) * inner + k));
            }
        }
        let dims = [&c.dims[..a], &ids.dims[..], &c.dims[a + 1..]].concat();
        return Ok(Value::C(c.pick(dims, &flat)));
    }
    let x = ctx.tensor(data)?;
    match ids.dims.len() {
        0 => Ok(Value::T(x.narrow(a, idx[0], 1).squeeze(a))),
        _ if a == 0 => {
            let v: Vec<T> = idx.iter().map(|&i| T::of(i as f64)).collect();
            let c = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&ids.dims), v)
                .map_err(|e| format!("{e}"))?;
            Ok(Value::T(x.index_select(ctx.g.constant(c))))
        }
        1 => {
            let parts: Vec<_> = idx.iter().map(|&i| x.narrow(a, i, 1)).collect();
            Ok(Value::T(ctx.g.concat(&parts, a)))
        }
        _ => Err(String::from(
            "indices of rank 2 or more are supported only on axis 0",
        )),
    }
}
