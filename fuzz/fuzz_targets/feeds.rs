//! Feeds: a fixed compiled machine with a run-time axis (and a fixed input, a label input
//! and parameters); random shapes, rows, NaN and infinite values, and handles that are
//! wrong (another graph's, a non-input's, an unknown name) into `feed`, `feed_slice`,
//! `feed_named`, `run`, `value`, `item` and an optimizer step. Every call may return
//! `Err`; none may panic or abort.

#![no_main]

#[path = "common.rs"]
mod common;

use common::Src;
use libfuzzer_sys::fuzz_target;
use tapegrad::ndarray::{arr1, ArrayD, IxDyn};
use tapegrad::prelude::*;
use tapegrad::Scalar;

fn scalar<T: Scalar>(v: f64) -> T {
    T::from_f64(v).unwrap_or_else(T::nan)
}

fn data<T: Scalar>(src: &mut Src) -> ArrayD<T> {
    let rank = src.below(4);
    let dims: Vec<usize> = (0..rank).map(|_| src.below(10)).collect();
    let n: usize = dims.iter().product();
    let values: Vec<T> = (0..n).map(|_| scalar(src.value())).collect();
    match ArrayD::from_shape_vec(IxDyn(&dims), values) {
        Ok(v) => v,
        Err(err) => panic!("the shape holds the values: {err}"),
    }
}

fn session<T: Scalar>(mut src: Src) {
    let g = Graph::<T>::new();
    let other = Graph::<T>::new();
    let x = g.input("x", (Dim::upto(8), 3));
    let y = g.input("y", Dim::upto(8));
    let k = g.input("k", [2]);
    let w = g.param("w", ArrayD::from_elem(IxDyn(&[3, 4]), scalar::<T>(0.5)));
    let b = g.param("b", arr1(&[T::zero(); 4]).into_dyn());
    let h = (x.matmul(w) + b).tanh();
    let loss = h.cross_entropy(y) + k.sum() + h.mean_axes(&[0], false).sum();
    let class = h.argmax(-1, false);
    let probs = h.softmax(-1);
    let grads = match g.grad(loss, &[w, b]) {
        Ok(gr) => gr,
        Err(err) => panic!("the fixed graph differentiates: {err}"),
    };
    let mut m = match g.compile(&[loss, class, probs], &grads) {
        Ok(m) => m,
        Err(err) => panic!("the fixed graph compiles: {err}"),
    };
    let stranger = other.input("x", (Dim::upto(8), 3));
    let handles = [x, y, k, w, h, loss, class, probs, stranger];
    let names = ["x", "y", "k", "w", "h", "", "x\0", "loss"];
    let mut adam = Adam::new(1e-2);
    while !src.is_empty() {
        let t = handles[src.below(handles.len())];
        let _ = match src.byte() % 8 {
            0 | 1 => m.feed(t, &data::<T>(&mut src)),
            2 => {
                let v = data::<T>(&mut src);
                m.feed_slice(t, v.as_slice().unwrap_or(&[]))
            }
            3 => m.feed_named(names[src.below(names.len())], &data::<T>(&mut src)),
            4 => m.run(),
            5 => m.value(t).map(|v| {
                let _ = v.iter().fold(T::zero(), |a, &b| a + b);
            }),
            6 => m.item(t).map(|_| ()),
            _ => adam.step(&mut m, &grads),
        };
    }
}

fuzz_target!(|data: &[u8]| {
    common::limit_memory();
    match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => session::<f64>(Src(rest)),
        Some((_, rest)) => session::<f32>(Src(rest)),
        None => {}
    }
});
