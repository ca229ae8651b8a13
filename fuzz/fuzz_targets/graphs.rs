//! Random graphs: the fuzz input is a little program over a stack of tensors. Each step
//! records a leaf (inputs with fixed or run-time axes, parameters, constants, filled
//! tensors, on shapes with empty and huge extents) or an op of the public `Tensor` API
//! (unary, broadcasting binary, reductions with bad axes, layout, matmul, indexing,
//! losses, dropout, argmax, where, clamp, detach, pooling), now and then on a tensor of another
//! graph. Then: `grad`, a second-order `grad`, `compile`, feeds of random values and
//! rows, `run`, `value` and `item`. Every call may return `Err`; none may panic or abort.

#![no_main]

#[path = "common.rs"]
mod common;

use common::{tame, trace, Src};
use libfuzzer_sys::fuzz_target;
use tapegrad::ndarray::{ArrayD, IxDyn};
use tapegrad::ops::Window;
use tapegrad::prelude::*;
use tapegrad::Scalar;

fn scalar<T: Scalar>(v: f64) -> T {
    T::from_f64(v).unwrap_or_else(T::nan)
}

fn array<T: Scalar>(src: &mut Src, dims: &[usize]) -> Option<ArrayD<T>> {
    let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if !Src::fillable(n) {
        return None;
    }
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        values.push(scalar(src.value()));
    }
    ArrayD::from_shape_vec(IxDyn(dims), values).ok()
}

fn pick<'g, T: Scalar>(src: &mut Src, stack: &[Tensor<'g, T>]) -> Option<Tensor<'g, T>> {
    if stack.is_empty() {
        return None;
    }
    // mostly recent tensors, so chains grow deep; any one for fan-out
    let k = src.below(stack.len().min(4));
    Some(stack[stack.len() - 1 - k])
}

fn axes(src: &mut Src) -> Vec<i64> {
    (0..src.below(4)).map(|_| src.axis()).collect()
}

const PARAMS: [f64; 8] = [0.0, 0.5, 1.0, -1.0, 2.0, f64::NAN, f64::INFINITY, 1e-300];

/// One step of the program: a leaf or an op pushed on the stack.
fn step<'g, T: Scalar>(
    src: &mut Src,
    g: &'g Graph<T>,
    other: &'g Graph<T>,
    stack: &mut Vec<Tensor<'g, T>>,
    leaves: &mut usize,
) {
    let op = src.byte();
    let a = pick(src, stack);
    let b = pick(src, stack);
    let (Some(a), Some(b)) = (a, b) else {
        push_leaf(src, g, stack, leaves);
        return;
    };
    let p = PARAMS[src.below(PARAMS.len())];
    let t = match op % 64 {
        0..=4 => {
            push_leaf(src, g, stack, leaves);
            return;
        }
        // pooling: windows with zero, huge or too wide kernels and paddings included
        5 => {
            let (k, st, pad) = (src.extent(), src.below(4), src.extent());
            match src.below(6) {
                0 => a.max_pool1d(Window::new(k).stride(st).padding(pad)),
                1 => a.avg_pool1d(Window::new(k).stride(st).padding(pad)),
                2 => a.max_pool2d(Window::new(k).stride(st).padding(pad)),
                3 => a.avg_pool2d(Window::new([k, 2]).stride(st).padding(pad)),
                4 => a.adaptive_avg_pool1d(src.below(3)),
                _ => a.adaptive_avg_pool2d(src.below(3)),
            }
        }
        6 => a + b,
        7 => a - b,
        8 => a * b,
        9 => a / b,
        10 => a.maximum(b),
        11 => a.minimum(b),
        12 => -a,
        13 => a.abs(),
        14 => a.exp(),
        15 => a.log(),
        16 => a.relu(),
        17 => a.sigmoid(),
        18 => a.tanh(),
        19 => a.sqrt(),
        20 => a.square(),
        21 => a.gelu(),
        22 => a.sign(),
        23 => a.powf(p),
        24 => a.leaky_relu(p),
        25 => a.clamp(p, PARAMS[src.below(PARAMS.len())]),
        26 => a.sum(),
        27 => a.mean(),
        28 => a.max(),
        29 => a.sum_axes(&axes(src), src.byte() & 1 == 1),
        30 => a.mean_axes(&axes(src), src.byte() & 1 == 1),
        31 => a.max_axes(&axes(src), src.byte() & 1 == 1),
        32 => a.var(&axes(src), src.below(3), src.byte() & 1 == 1),
        33 => a.reshape(src.dims(4)),
        34 => a.permute(&axes(src)),
        35 => a.transpose(src.axis(), src.axis()),
        36 => a.narrow(src.axis(), src.extent(), src.extent()),
        37 => a.pad(src.axis(), src.extent(), src.extent()),
        38 => g.concat(&[a, b], src.axis()),
        39 => {
            let axis = src.axis();
            if trace() {
                eprintln!(
                    "stack {:?} {:?} axis {axis} run {:?}",
                    a.shape(),
                    b.shape(),
                    a.shape().run_axis()
                );
            }
            g.stack(&[a, b, a], axis)
        }
        40 => {
            let parts = a.split(src.extent(), src.axis());
            if trace() {
                eprintln!(
                    "op 40 on {:?}: {:?}",
                    a.shape(),
                    parts.iter().map(|p| p.shape()).collect::<Vec<_>>()
                );
            }
            stack.extend(parts.into_iter().take(4));
            return;
        }
        41 => {
            let parts = a.chunk(src.extent(), src.axis());
            if trace() {
                eprintln!(
                    "op 41 on {:?}: {:?}",
                    a.shape(),
                    parts.iter().map(|p| p.shape()).collect::<Vec<_>>()
                );
            }
            stack.extend(parts.into_iter().take(4));
            return;
        }
        42 | 43 => a.matmul(b),
        44 => a.index_select(b),
        45 => a.one_hot(src.extent()),
        46 => a.scatter_add(b, src.extent()),
        47 => a.softmax(src.axis()),
        48 => a.log_softmax(src.axis()),
        49 => a.cross_entropy(b),
        50 => a.mse(b),
        51 => a.dropout(p),
        52 => a.argmax(src.axis(), src.byte() & 1 == 1),
        53 => {
            let c = pick(src, stack).unwrap_or(a);
            a.where_(b, c)
        }
        54 => a.detach(),
        55 => a.broadcast_to(src.dims(4)),
        56 => a.flatten(src.axis(), src.axis()),
        57 => a.unsqueeze(src.axis()),
        58 => a.squeeze(src.axis()),
        59 => a.t(),
        60 => a.gt(b),
        61 => a.std(&axes(src), src.below(3), false),
        62 => a.min_axes(&axes(src), src.byte() & 1 == 1),
        // a tensor of another graph: every use of it is a located error
        _ => {
            let x = other.input("elsewhere", src.dims(2));
            if src.byte() & 1 == 1 {
                a + x
            } else {
                x.relu()
            }
        }
    };
    if trace() {
        eprintln!(
            "op {} on {:?} and {:?}: {:?}",
            op % 64,
            a.shape(),
            b.shape(),
            t.shape()
        );
    }
    stack.push(t);
}

fn push_leaf<'g, T: Scalar>(
    src: &mut Src,
    g: &'g Graph<T>,
    stack: &mut Vec<Tensor<'g, T>>,
    leaves: &mut usize,
) {
    *leaves += 1;
    let name = format!("l{leaves}");
    let dims = src.dims(4);
    let t = match src.byte() % 8 {
        0 | 1 => g.input(&name, dims),
        2 => {
            let bound = src.extent();
            g.input(&name, Shape::upto(bound, &dims[..dims.len().min(3)]))
        }
        3 | 4 => match array::<T>(src, &dims) {
            Some(v) => g.param(&name, v),
            None => g.full(dims, scalar(src.value())),
        },
        5 => match array::<T>(src, &dims) {
            Some(v) => g.constant(v),
            None => g.zeros(dims),
        },
        6 => g.full(dims, scalar(src.value())),
        // integer-valued, for ids and masks
        _ => {
            let n = src.extent();
            g.constant(tapegrad::ndarray::Array1::from_shape_fn(n.min(64), |i| {
                scalar::<T>((i % 3) as f64)
            }))
        }
    };
    if trace() {
        eprintln!("leaf {name}: {} {}", t.op_name(), t.shape());
    }
    stack.push(t);
}

fn feed<T: Scalar>(src: &mut Src, g: &Graph<T>, m: &mut Machine<T>) {
    for x in g.inputs() {
        let shape = x.shape();
        let mut dims = shape.dims().to_vec();
        if let Some(axis) = shape.run_axis() {
            let bound = shape.bound().unwrap_or(0);
            let rows = src.below(bound.min(8).saturating_add(2));
            let per_row = dims[axis] / bound.max(1);
            dims[axis] = rows.saturating_mul(per_row);
        }
        if src.byte().is_multiple_of(8) {
            // a wrong shape now and then
            dims.push(src.extent());
        }
        if let Some(v) = array::<T>(src, &dims) {
            let _ = if src.byte() & 1 == 0 {
                m.feed(x, &v)
            } else {
                m.feed_slice(x, v.as_slice().unwrap_or(&[]))
            };
        }
    }
}

fn program<T: Scalar>(mut src: Src) {
    let g = Graph::<T>::new();
    let other = Graph::<T>::new();
    let mut stack = Vec::new();
    let mut leaves = 0;
    let steps = 1 + src.below(24);
    for _ in 0..steps {
        step(&mut src, &g, &other, &mut stack, &mut leaves);
    }
    let Some(&top) = stack.last() else { return };
    let loss = if top.numel() == 1 { top } else { top.sum() };
    let mut wrt = g.params();
    if src.byte() & 1 == 1 {
        wrt.extend(g.inputs());
    }
    let Ok(grads) = g.grad(loss, &wrt) else {
        let _ = g.compile(&[top], &[]);
        return;
    };
    // second order: the gradient of a sum of a gradient
    let mut outputs = vec![top, loss];
    if !grads.is_empty() && src.byte() & 1 == 1 {
        let k = src.below(grads.len());
        let z = (grads[k] * grads[k]).sum();
        if let Ok(g2) = g.grad(z, &wrt) {
            outputs.extend(g2.tensors().iter().copied());
        }
    }
    outputs.extend(stack.iter().rev().take(3).copied());
    let compiled = if tame() || src.byte() & 1 == 1 {
        g.compile_within(&outputs, &grads, 256 << 20)
    } else {
        g.compile(&outputs, &grads)
    };
    if trace() {
        eprintln!("compile: {:?}", compiled.as_ref().map(|m| m.len()));
    }
    let Ok(mut m) = compiled else { return };
    m.set_training(src.byte() & 1 == 1);
    for _ in 0..2 {
        feed(&mut src, &g, &mut m);
        let _ = m.run();
        for &t in &outputs {
            let _ = m.value(t).map(|v| v.sum());
            let _ = m.item(t);
        }
    }
    let mut opt = Sgd::new(0.1);
    let _ = opt.step(&mut m, &grads);
}

fuzz_target!(|data: &[u8]| {
    common::limit_memory();
    match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => program::<f64>(Src(rest)),
        Some((_, rest)) => program::<f32>(Src(rest)),
        None => {}
    }
});
