//! Convolution, pooling and batch normalization (1-D and 2-D).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::super::attr::{extents, Attrs};
use super::super::import::{input, need, Ctx};
use super::super::proto::NodeProto;
use super::super::value::{Value, R};
use crate::ops::{Conv1dOptions, Conv2dOptions, Window};
use crate::{Scalar, Tensor};

/// Spatial settings shared by Conv and the pools, checked against what tapegrad does.
struct Spatial {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    pads: Vec<usize>,
    dilations: Vec<usize>,
}

fn spatial(at: &Attrs<'_>, d: usize, kernel: Option<Vec<usize>>) -> R<Spatial> {
    match at.string("auto_pad")?.as_deref() {
        None | Some("NOTSET") | Some("VALID") => {}
        Some(p) => {
            return Err(format!(
                "auto_pad {p:?} is not supported (only NOTSET, VALID)"
            ))
        }
    }
    let valid = at.string("auto_pad")?.as_deref() == Some("VALID");
    let list = |name: &str, default: usize, min: i64| -> R<Vec<usize>> {
        match at.ints(name)? {
            Some(v) => extents(name, &v, min),
            None => Ok(alloc::vec![default; if name == "pads" { 2 * d } else { d }]),
        }
    };
    let kernel = match (at.ints("kernel_shape")?, kernel) {
        (Some(k), w) => {
            let k = extents("kernel_shape", &k, 1)?;
            if w.as_ref().is_some_and(|w| *w != k) {
                return Err(format!(
                    "kernel_shape {k:?} does not match the weight {w:?}"
                ));
            }
            k
        }
        (None, Some(w)) => w,
        (None, None) => return Err(String::from("kernel_shape is required")),
    };
    let s = Spatial {
        kernel,
        strides: list("strides", 1, 1)?,
        pads: list("pads", 0, 0)?,
        dilations: list("dilations", 1, 1)?,
    };
    if s.kernel.len() != d
        || s.strides.len() != d
        || s.dilations.len() != d
        || s.pads.len() != 2 * d
    {
        return Err(format!(
            "kernel_shape, strides, dilations and pads must have {d}, {d}, {d} and {} entries",
            2 * d
        ));
    }
    if s.pads[..d] != s.pads[d..] {
        return Err(format!(
            "pads {:?} differ at the start and the end of an axis; only symmetric padding is \
             supported",
            s.pads
        ));
    }
    if valid && s.pads.iter().any(|&p| p != 0) {
        return Err(String::from("auto_pad VALID with non-zero pads"));
    }
    Ok(s)
}

/// The spatial rank of an `[N, C, ...]` input: 1 or 2.
fn rank_of<T: Scalar>(x: Tensor<'_, T>) -> R<usize> {
    match x.rank() {
        3 => Ok(1),
        4 => Ok(2),
        r => Err(format!(
            "only 1-D and 2-D inputs ([N, C, L], [N, C, H, W]) are supported, got rank {r}"
        )),
    }
}

pub(super) fn conv<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    let at = Attrs::only(
        node,
        &[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ],
    )?;
    let x = ctx.tensor(need(node, 0)?)?;
    let w = ctx.tensor(need(node, 1)?)?;
    let b = input(node, 2).map(|b| ctx.tensor(b)).transpose()?;
    let d = rank_of(x)?;
    let wk = w.shape().dims().get(2..).map(<[usize]>::to_vec);
    let s = spatial(&at, d, wk)?;
    let groups = at.int("group", 1)?;
    let groups = usize::try_from(groups)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| format!("group {groups} must be >= 1"))?;
    Ok(Value::T(if d == 2 {
        let o = Conv2dOptions {
            stride: [s.strides[0], s.strides[1]],
            padding: [s.pads[0], s.pads[1]],
            dilation: [s.dilations[0], s.dilations[1]],
            groups,
        };
        x.conv2d(w, b, o)
    } else {
        let o = Conv1dOptions {
            stride: s.strides[0],
            padding: s.pads[0],
            dilation: s.dilations[0],
            groups,
        };
        x.conv1d(w, b, o)
    }))
}

/// MaxPool and AveragePool (`ceil_mode` 0, no dilation; `count_include_pad` either way).
pub(super) fn pool<'g, T: Scalar>(ctx: &mut Ctx<'g, '_, T>, node: &NodeProto) -> R<Value<'g, T>> {
    let max = node.op_type == "MaxPool";
    let known: &[&str] = if max {
        &[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ]
    } else {
        &[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
        ]
    };
    let at = Attrs::only(node, known)?;
    if at.int("ceil_mode", 0)? != 0 {
        return Err(String::from("ceil_mode 1 is not supported"));
    }
    if max && node.output.get(1).is_some_and(|o| !o.is_empty()) {
        return Err(String::from("MaxPool's Indices output is not supported"));
    }
    let x = ctx.tensor(need(node, 0)?)?;
    let d = rank_of(x)?;
    let s = spatial(&at, d, None)?;
    if s.dilations.iter().any(|&v| v != 1) {
        return Err(format!(
            "dilations {:?} are not supported (only 1)",
            s.dilations
        ));
    }
    let pool = |t: Tensor<'g, T>| {
        if d == 2 {
            let win = Window::new([s.kernel[0], s.kernel[1]])
                .stride([s.strides[0], s.strides[1]])
                .padding([s.pads[0], s.pads[1]]);
            if max {
                t.max_pool2d(win)
            } else {
                t.avg_pool2d(win)
            }
        } else {
            let win = Window::new(s.kernel[0])
                .stride(s.strides[0])
                .padding(s.pads[0]);
            if max {
                t.max_pool1d(win)
            } else {
                t.avg_pool1d(win)
            }
        }
    };
    let y = pool(x);
    let padded = s.pads.iter().any(|&p| p != 0);
    if max || !padded || at.int("count_include_pad", 0)? != 0 {
        return Ok(Value::T(y));
    }
    // count_include_pad = 0: divide by the share of each window inside the input, which
    // is the same pooling of ones (tapegrad's average counts the padding)
    let dims = x.shape().dims()[2..].to_vec();
    let ones = ctx.g.ones([&[1, 1][..], &dims].concat());
    Ok(Value::T(y / pool(ones)))
}

pub(super) fn global_avg_pool<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    Attrs::only(node, &[])?;
    let x = ctx.tensor(need(node, 0)?)?;
    Ok(Value::T(if rank_of(x)? == 2 {
        x.adaptive_avg_pool2d(1)
    } else {
        x.adaptive_avg_pool1d(1)
    }))
}

/// BatchNormalization in inference form: scale and B are trainable parameters; the
/// running mean and variance are buffers (saved with the weights, not trained, updated
/// only if the machine is set to training mode, with PyTorch's momentum `1 - momentum`).
pub(super) fn batch_norm<'g, T: Scalar>(
    ctx: &mut Ctx<'g, '_, T>,
    node: &NodeProto,
) -> R<Value<'g, T>> {
    let at = Attrs::only(
        node,
        &["epsilon", "momentum", "training_mode", "spatial", "is_test"],
    )?;
    if at.int("training_mode", 0)? != 0 {
        return Err(String::from(
            "training_mode 1 is not supported (export in eval mode)",
        ));
    }
    if at.int("spatial", 1)? != 1 {
        return Err(String::from("spatial 0 is not supported"));
    }
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(String::from(
            "only the output Y is supported (inference form)",
        ));
    }
    let x = ctx.tensor(need(node, 0)?)?;
    let scale = ctx.tensor(need(node, 1)?)?;
    let bias = ctx.tensor(need(node, 2)?)?;
    let mean = ctx.buffer(need(node, 3)?)?;
    let var = ctx.buffer(need(node, 4)?)?;
    let eps = at.float("epsilon", 1e-5)? as f64;
    let momentum = 1.0 - at.float("momentum", 0.9)? as f64;
    Ok(Value::T(x.batch_norm(
        mean,
        var,
        Some(scale),
        Some(bias),
        momentum,
        eps,
    )))
}
