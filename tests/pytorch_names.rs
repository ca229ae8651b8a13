//! The PyTorch-style names from outside the crate: plain integer literals as axes (negative
//! ones counting from the back), shapes in every form a user has at hand, and bad axes or
//! sizes as shape errors that point at the user's line.

use ndarray::{arr2, Array};
use tapegrad::prelude::*;
use tapegrad::AxisArg;

// `&[2, 12]` is what a user writes; that it compiles is the point
#[allow(clippy::needless_borrows_for_generic_args)]
#[test]
fn literals_and_shapes_compile_in_every_form() -> Result<()> {
    let g = Graph::<f32>::new();
    let x = g.input("x", [2, 3, 4]);
    let dims = vec![2usize, 12];
    let slice: &[usize] = &dims;
    let shape = Shape::from([2, 12]);
    // reshape from an array, a borrowed array, a slice, a Vec, a &Vec, a Shape, a &Shape
    for y in [
        x.reshape([2, 12]),
        x.reshape(&[2, 12]),
        x.reshape(slice),
        x.reshape(dims.clone()),
        x.reshape(&dims),
        x.reshape(shape.clone()),
        x.reshape(&shape),
    ] {
        assert_eq!(y.shape(), shape);
    }
    // axes as literals of either sign, as usize variables, and as a Vec
    let last: usize = 2;
    let axes = vec![0usize, 2];
    assert_eq!(x.softmax(-1).shape(), x.softmax(last).shape());
    assert_eq!(x.sum_axes(&[0, -1], true).shape(), Shape::from([1, 3, 1]));
    assert_eq!(x.sum_axes(&axes, false).shape(), Shape::from([3]));
    assert_eq!(x.mean_axes(&[-2isize], false).shape(), Shape::from([2, 4]));
    assert_eq!(x.max_axes(&[1i64], false).shape(), Shape::from([2, 4]));
    assert_eq!(x.argmax(-1, false).shape(), Shape::from([2, 3]));
    assert_eq!(x.narrow(-1, 1, 2).shape(), Shape::from([2, 3, 2]));
    assert_eq!(x.permute(&[-1, 0, 1]).shape(), Shape::from([4, 2, 3]));
    assert_eq!(x.transpose(-2, -1).shape(), Shape::from([2, 4, 3]));
    assert_eq!(g.concat(&[x, x], -3).shape(), Shape::from([4, 3, 4]));
    assert_eq!(g.stack(&[x, x], -1).shape(), Shape::from([2, 3, 4, 2]));
    assert_eq!(x.var(&[-1], 1, false).shape(), Shape::from([2, 3]));
    // an empty list names its type (the CHANGELOG's migration)
    assert_eq!(x.sum_axes(&[] as &[usize], false).shape(), x.shape());
    g.check()?;
    // a user's own generic helper can take any axis type through the trait
    fn last_softmax<'g, A: AxisArg>(t: Tensor<'g, f32>, axis: A) -> Tensor<'g, f32> {
        t.log_softmax(axis)
    }
    assert_eq!(last_softmax(x, -1).shape(), x.shape());
    Ok(())
}

#[test]
fn a_small_classifier_head_with_the_new_names() -> Result<()> {
    // logits [[1, 3, 2], [0, -1, 5]]: argmax [1, 2], so accuracy against [1, 0] is 1/2;
    // the standardised rows (x - mean) / std (correction 1) have mean 0 and std 1
    let g = Graph::<f64>::new();
    let logits = g.constant(arr2(&[[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]]));
    let ids = g.constant(ndarray::arr1(&[1.0, 0.0]));
    let acc = logits.argmax(-1, false).eq(ids).mean();
    let z = (logits - logits.mean_axes(&[-1], true)) / logits.std(&[-1], 1, true);
    let z_std = z.std(&[-1], 1, false);
    let probs = g.stack(&logits.softmax(-1).split(1, 0), 0).squeeze(1);
    let mut m = g.compile(&[acc, z_std, probs], &[])?;
    m.run()?;
    assert_eq!(m.value(acc)?[[]], 0.5);
    for s in m.value(z_std)?.iter() {
        approx::assert_abs_diff_eq!(*s, 1.0, epsilon = 1e-12);
    }
    assert_eq!(m.value(probs)?.shape(), &[2, 3]);
    let row_sums = m.value(probs)?.sum_axis(ndarray::Axis(1));
    for s in row_sums.iter() {
        approx::assert_abs_diff_eq!(*s, 1.0, epsilon = 1e-12);
    }
    Ok(())
}

#[test]
fn bad_axes_and_sizes_point_at_the_callers_line() {
    type Build = fn(&Graph<f32>) -> u32;
    let cases: [(&str, Build); 12] = [
        ("softmax", |g| (g.input("x", [2, 3]).softmax(-3), line!()).1),
        ("log_softmax", |g| {
            (g.input("x", [2, 3]).log_softmax(2), line!()).1
        }),
        ("sum", |g| {
            (g.input("x", [2, 3]).sum_axes(&[0, -2], true), line!()).1
        }),
        ("narrow", |g| {
            (g.input("x", [2, 3]).narrow(-3, 0, 1), line!()).1
        }),
        ("transpose", |g| {
            (g.input("x", [2, 3]).transpose(0, -3), line!()).1
        }),
        ("argmin", |g| {
            (g.input("x", [2, 3]).argmin(5, true), line!()).1
        }),
        ("min", |g| {
            (g.input("x", [2, 3]).min_axes(&[-9], true), line!()).1
        }),
        ("std", |g| {
            (g.input("x", [2, 3]).std(&[7], 1, true), line!()).1
        }),
        ("squeeze", |g| (g.input("x", [2, 3]).squeeze(-1), line!()).1),
        ("flatten", |g| {
            (g.input("x", [2, 3]).flatten(-1, 0), line!()).1
        }),
        ("split", |g| {
            (g.input("x", [2, 3]).split(0, 1)[0], line!()).1
        }),
        ("where", |g| {
            let x = g.input("x", [2, 3]);
            (x.where_(g.input("m", [2]), x), line!()).1
        }),
    ];
    for (op, build) in cases {
        let g = Graph::<f32>::new();
        let line = build(&g);
        let e = g.compile(&[], &[]).unwrap_err();
        match &e {
            Error::Shape {
                op: got, caller, ..
            } => {
                assert_eq!(*got, op, "{e}");
                assert!(caller.file.ends_with("pytorch_names.rs"), "{e}");
                assert_eq!(caller.line, line, "{e}");
            }
            other => panic!("{op}: expected a shape error, got {other}"),
        }
    }
    // a good graph after all this still compiles
    let g = Graph::<f32>::new();
    let y = g.input("x", [2, 3]).std(&[-1], 0, false);
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(
        g.get("x").unwrap(),
        &Array::from_shape_vec((2, 3), vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0]).unwrap(),
    )
    .unwrap();
    m.run().unwrap();
    // population std of [1, 2, 3] = sqrt(2/3)
    approx::assert_abs_diff_eq!(
        m.value(y).unwrap()[[0]],
        (2.0f32 / 3.0).sqrt(),
        epsilon = 1e-6
    );
}
