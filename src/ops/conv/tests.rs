use alloc::vec::Vec;

use ndarray::{ArrayD, IxDyn};

use super::super::testing::{assert_close, check, eval, rand_array};
use super::{Conv1dOptions, Conv2dOptions};
use crate::prelude::*;

/// A direct 6-loop convolution in f64 (the definition, independent of im2col and GEMM),
/// on `[N, C, H, W]` and `[O, C/g, KH, KW]`.
fn reference(x: &ArrayD<f64>, w: &ArrayD<f64>, o: Conv2dOptions) -> ArrayD<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (oc, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let og = oc / o.groups;
    let out = |i: usize, e: usize, k: usize| {
        (e + 2 * o.padding[i] - o.dilation[i] * (k - 1) - 1) / o.stride[i] + 1
    };
    let (oh, ow) = (out(0, h, kh), out(1, wd, kw));
    let mut y = ArrayD::zeros(IxDyn(&[n, oc, oh, ow]));
    for b in 0..n {
        for f in 0..oc {
            let grp = f / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0.0;
                    for ci in 0..cg {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy * o.stride[0] + i * o.dilation[0]) as isize
                                    - o.padding[0] as isize;
                                let ix = (ox * o.stride[1] + j * o.dilation[1]) as isize
                                    - o.padding[1] as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    let xv = x[[b, grp * cg + ci, iy as usize, ix as usize]];
                                    s += xv * w[[f, ci, i, j]];
                                }
                            }
                        }
                    }
                    y[[b, f, oy, ox]] = s;
                }
            }
        }
    }
    let _ = c;
    y
}

/// Geometries that cross every branch of the kernels: padding on either side, strides
/// that skip input, dilation, groups, a 1×1 kernel read directly.
fn cases() -> Vec<(&'static [usize], &'static [usize], Conv2dOptions)> {
    let d = Conv2dOptions::default();
    alloc::vec![
        (&[2, 3, 5, 6], &[4, 3, 3, 3], d),
        (
            &[2, 2, 5, 5],
            &[3, 2, 2, 3],
            d.stride([2, 3]).padding([1, 2])
        ),
        (
            &[1, 4, 6, 7],
            &[6, 2, 3, 2],
            d.dilation([2, 1]).groups(2).padding(1)
        ),
        (&[2, 3, 4, 4], &[5, 3, 1, 1], d),
        (
            &[1, 2, 3, 3],
            &[2, 1, 3, 3],
            d.padding(2).groups(2).stride(2)
        ),
        (&[3, 1, 7, 7], &[7, 1, 5, 5], d.padding(2)),
    ]
}

#[test]
fn conv2d_matches_pytorch() {
    // x = torch.arange(48.).reshape(2,2,3,4)/10 - 1; w = torch.arange(16.).reshape(4,1,2,2)/8 - .5
    // b = [0.1, -0.2, 0.3, -0.4]
    // F.conv2d(x, w, b, stride=(2,1), padding=1, dilation=(1,2), groups=2)  (float64)
    let want = [
        0.2125, 0.45, 0.4125, 0.3, 0.3, 0.6, 0.475, 0.3, -0.5375, -0.75, -0.6875, -0.4, -0.3, -0.3,
        -0.225, -0.2, 0.5625, 0.8, 0.9625, 0.6, 1.7, 2.9, 3.175, 1.6, 0.0125, 0.4, 0.6625, 0.1,
        1.9, 4.0, 4.475, 1.9, -0.0875, -0.45, -0.4875, -0.3, -0.9, -2.4, -2.525, -1.5, 0.3625,
        0.75, 0.8125, 0.2, 0.9, 1.5, 1.575, 0.4, 2.6625, 4.7, 4.8625, 2.4, 5.3, 9.5, 9.775, 4.6,
        3.3125, 6.7, 6.9625, 3.1, 7.9, 15.4, 15.875, 7.3,
    ];
    let x = ArrayD::from_shape_fn(IxDyn(&[2, 2, 3, 4]), |i| {
        (((i[0] * 2 + i[1]) * 3 + i[2]) * 4 + i[3]) as f64 / 10.0 - 1.0
    });
    let w = ArrayD::from_shape_fn(IxDyn(&[4, 1, 2, 2]), |i| {
        (((i[0] * 2 + i[2]) * 2) + i[3]) as f64 / 8.0 - 0.5
    });
    let b = ndarray::arr1(&[0.1, -0.2, 0.3, -0.4]).into_dyn();
    let o = Conv2dOptions::default()
        .stride([2, 1])
        .padding(1)
        .dilation([1, 2])
        .groups(2);
    let y = eval(&[x, w, b], |_, t| t[0].conv2d(t[1], Some(t[2]), o));
    assert_eq!(y.shape(), &[2, 4, 2, 4]);
    for (g, w) in y.iter().zip(want) {
        approx::assert_abs_diff_eq!(*g, w, epsilon = 1e-12);
    }
}

#[test]
fn conv1d_matches_pytorch() {
    // x1 = [[[1,2,3,4,5],[0.5,-1,2,0,1]]]; w1 = [[[1,0,-1],[2,1,0]],[[0,1,0],[-1,-1,1]]]
    // F.conv1d(x1, w1, None, stride=2, padding=1) = [[[-1.5, -2, 5], [-0.5, 2, 4]]]
    // (first output: window [0, 1, 2] / [0, 0.5, -1]: -2 + 0.5 = -1.5)
    let x = ndarray::arr3(&[[[1.0, 2.0, 3.0, 4.0, 5.0], [0.5, -1.0, 2.0, 0.0, 1.0]]]);
    let w = ndarray::arr3(&[
        [[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]],
        [[0.0, 1.0, 0.0], [-1.0, -1.0, 1.0]],
    ]);
    let o = Conv1dOptions::default().stride(2).padding(1);
    let y = eval(&[x.into_dyn(), w.into_dyn()], |_, t| {
        t[0].conv1d(t[1], None, o)
    });
    let want = ndarray::arr3(&[[[-1.5, -2.0, 5.0], [-0.5, 2.0, 4.0]]]).into_dyn();
    assert_close(&y, &want);
}

#[test]
fn conv2d_matches_the_definition() {
    for (i, (xs, ws, o)) in cases().into_iter().enumerate() {
        let x = rand_array(xs, 10 + i as u64, -1.0, 1.0);
        let w = rand_array(ws, 20 + i as u64, -1.0, 1.0);
        let y = eval(&[x.clone(), w.clone()], |_, t| t[0].conv2d(t[1], None, o));
        assert_close(&y, &reference(&x, &w, o));
    }
}

#[test]
fn gradcheck_first_and_second_order() {
    for (i, (xs, ws, o)) in cases().into_iter().enumerate() {
        let x = rand_array(xs, 30 + i as u64, -1.0, 1.0);
        let w = rand_array(ws, 40 + i as u64, -1.0, 1.0);
        let b = rand_array(&ws[..1], 50 + i as u64, -1.0, 1.0);
        check(&[x.clone(), w.clone(), b.clone()], |_, t| {
            t[0].conv2d(t[1], Some(t[2]), o).square()
        });
        // bilinear: a zero Hessian would pass trivially, so differentiate a gradient of a
        // square, whose VJP runs every conv op's own VJP
        check(&[x, w, b], |g, t| {
            let y = t[0].conv2d(t[1], Some(t[2]), o).square().sum();
            let d = g.grad(y, &[t[0], t[1], t[2]]).unwrap();
            (d[0] * t[0]).sum() + (d[1] * t[1]).sum() + (d[2] * t[2]).sum()
        });
    }
    let x = rand_array(&[2, 4, 9], 60, -1.0, 1.0);
    let w = rand_array(&[2, 2, 3], 61, -1.0, 1.0);
    let o = Conv1dOptions::default()
        .stride(2)
        .padding(2)
        .dilation(2)
        .groups(2);
    check(&[x.clone(), w.clone()], |_, t| {
        t[0].conv1d(t[1], None, o).square()
    });
    check(&[x, w], |g, t| {
        let y = t[0].conv1d(t[1], None, o).square().sum();
        let d = g.grad(y, &[t[0], t[1]]).unwrap();
        (d[0] * t[0]).sum() + (d[1] * t[1]).sum()
    });
}

#[test]
fn run_time_batch_computes_the_rows_fed() {
    let g = Graph::<f64>::new();
    let x = g.input("x", (Dim::upto(4), 2, 5, 5));
    let wv = rand_array(&[3, 2, 3, 3], 70, -1.0, 1.0);
    let w = g.param("w", wv.clone());
    let o = Conv2dOptions::default().padding(1).stride(2);
    let y = x.conv2d(w, None, o);
    assert_eq!(y.shape().run_axis(), Some(0));
    let loss = y.square().sum();
    let grads = g.grad(loss, &[w]).unwrap();
    let mut m = g.compile(&[y, loss], &grads).unwrap();
    for rows in [4, 1, 0, 3] {
        let xv = rand_array(&[rows, 2, 5, 5], 71 + rows as u64, -1.0, 1.0);
        m.feed(x, &xv).unwrap();
        m.run().unwrap();
        let want = reference(&xv, &wv, o);
        assert_close(&m.value(y).unwrap().to_owned(), &want);
        // the same loss and gradient as a graph with a fixed batch of `rows`
        let gf = Graph::<f64>::new();
        let xf = gf.constant(xv.clone());
        let wf = gf.param("w", wv.clone());
        let lf = xf.conv2d(wf, None, o).square().sum();
        let gr = gf.grad(lf, &[wf]).unwrap();
        let mut mf = gf.compile(&[lf], &gr).unwrap();
        mf.run().unwrap();
        approx::assert_abs_diff_eq!(m.item(loss).unwrap(), mf.item(lf).unwrap(), epsilon = 1e-12);
        let (a, b) = (m.value(grads[0]).unwrap(), mf.value(gr[0]).unwrap());
        assert_close(&a.to_owned(), &b.to_owned());
    }
}

/// The error of recording `f`, which must be a shape error of `op` at `line` of this file
/// whose message holds `says`.
#[track_caller]
fn refused(f: impl for<'g> Fn(&'g Graph<f32>) -> u32, op: &str, says: &str) {
    let g = Graph::<f32>::new();
    let line = f(&g);
    let e = g.check().unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{s}");
    assert!(
        s.contains(&alloc::format!("`{op}`")) && s.contains(says),
        "{s}"
    );
    assert!(s.contains(&alloc::format!("{}:{line}", file!())), "{s}");
}

#[test]
fn bad_inputs_are_located_errors() {
    let d = Conv2dOptions::default();
    /// Records a conv2d and returns the line it was called from.
    #[track_caller]
    fn c2(g: &Graph<f32>, x: &[usize], w: &[usize], o: Conv2dOptions) -> u32 {
        let (x, w) = (g.input("x", x.to_vec()), g.input("w", w.to_vec()));
        let _ = x.conv2d(w, None, o);
        core::panic::Location::caller().line()
    }
    // kernel larger than the padded input; with padding (5 + 2 = 7 < 8) and dilation
    // (2 * (3 - 1) + 1 = 5 > 4)
    refused(
        |g| c2(g, &[1, 1, 5, 5], &[1, 1, 6, 6], d),
        "conv2d",
        "larger than the padded",
    );
    refused(
        |g| c2(g, &[1, 1, 5, 5], &[1, 1, 8, 1], d.padding(1)),
        "conv2d",
        "padded 7",
    );
    refused(
        |g| c2(g, &[1, 1, 4, 4], &[1, 1, 3, 3], d.dilation(2)),
        "conv2d",
        "dilated 5",
    );
    refused(
        |g| c2(g, &[1, 1, 4, 4], &[1, 1, 3, 3], d.stride([1, 0])),
        "conv2d",
        "stride must be at least 1",
    );
    refused(
        |g| c2(g, &[1, 1, 4, 4], &[1, 1, 3, 3], d.dilation(0)),
        "conv2d",
        "dilation must be at least 1",
    );
    refused(
        |g| c2(g, &[1, 2, 4, 4], &[2, 2, 3, 3], d.groups(0)),
        "conv2d",
        "groups must be at least 1",
    );
    refused(
        |g| c2(g, &[1, 3, 4, 4], &[2, 1, 3, 3], d.groups(2)),
        "conv2d",
        "must divide",
    );
    refused(
        |g| c2(g, &[1, 4, 4, 4], &[3, 2, 3, 3], d.groups(2)),
        "conv2d",
        "must divide",
    );
    refused(
        |g| c2(g, &[1, 3, 4, 4], &[2, 2, 3, 3], d),
        "conv2d",
        "has 3 channels",
    );
    refused(|g| c2(g, &[3, 4, 4], &[2, 3, 3, 3], d), "conv2d", "rank 4");
    refused(|g| c2(g, &[1, 3, 4, 4], &[2, 3, 3], d), "conv2d", "rank 4");
    let o1 = Conv1dOptions::default();
    refused(
        |g| {
            let (x, w, b) = (
                g.input("x", [1, 2, 5]),
                g.input("w", [4, 2, 3]),
                g.input("b", [3]),
            );
            let line = line!() + 1;
            let _ = x.conv1d(w, Some(b), o1);
            line
        },
        "conv1d",
        "bias must be [4]",
    );
    refused(
        |g| {
            let (x, w) = (g.input("x", [1, 2, 5, 5]), g.input("w", [4, 2, 3]));
            let line = line!() + 1;
            let _ = x.conv1d(w, None, o1);
            line
        },
        "conv1d",
        "rank 3",
    );
    refused(
        |g| {
            let (x, w) = (g.input("x", [1, 2, 5]), g.input("w", [4, 2, 3]));
            let line = line!() + 1;
            let _ = x.conv1d(w, None, o1.stride(0));
            line
        },
        "conv1d",
        "stride must be at least 1, got [0]",
    );
}

#[test]
fn gradients_are_the_adjoints_on_small_and_large_images() {
    // f = sum(conv(x, w) * v) is linear in x and in w, so <df/dx, x> = f = <df/dw, w>.
    // Large images (over 256 positions) take the kernels' one-sample path, small ones
    // put several samples side by side into one product.
    let d = Conv2dOptions::default();
    let cases: [(&[usize], &[usize], Conv2dOptions); 4] = [
        (&[3, 2, 20, 20], &[4, 2, 3, 3], d.padding(1)),
        (
            &[2, 4, 17, 18],
            &[6, 2, 3, 2],
            d.groups(2).stride([1, 2]).dilation(2),
        ),
        (&[3, 3, 17, 17], &[5, 3, 1, 1], d),
        (&[5, 2, 6, 6], &[4, 1, 3, 3], d.groups(2).padding(2)),
    ];
    for (i, (xs, ws, o)) in cases.into_iter().enumerate() {
        let x = rand_array(xs, 80 + i as u64, -1.0, 1.0);
        let w = rand_array(ws, 90 + i as u64, -1.0, 1.0);
        let y = reference(&x, &w, o);
        let v = rand_array(y.shape(), 100 + i as u64, -1.0, 1.0);
        let g = Graph::<f64>::new();
        let (xt, wt, vt) = (
            g.param("x", x.clone()),
            g.param("w", w.clone()),
            g.constant(v),
        );
        let yt = xt.conv2d(wt, None, o);
        let f = (yt * vt).sum();
        let d = g.grad(f, &[xt, wt]).unwrap();
        let (ex, ew) = ((d[0] * xt).sum(), (d[1] * wt).sum());
        let mut m = g.compile(&[yt, f, ex, ew], &[]).unwrap();
        m.run().unwrap();
        assert_close(&m.value(yt).unwrap().to_owned(), &y);
        let fv = m.item(f).unwrap();
        approx::assert_relative_eq!(m.item(ex).unwrap(), fv, max_relative = 1e-10);
        approx::assert_relative_eq!(m.item(ew).unwrap(), fv, max_relative = 1e-10);
        assert!(fv.abs() > 1e-3);
    }
}

#[test]
fn a_sample_gets_the_same_bits_alone_or_in_a_batch() {
    // The kernels put several small images side by side into one product; each output
    // element is still one chain over the depth, whatever its neighbours. With 16 input
    // channels each sample's forward product is small enough to run in place
    // (`gemm::gemm_small` on AVX-512 CPUs); with 32 it is packed.
    for c in [32, 16] {
        same_bits_alone_or_in_a_batch(c);
    }
}

fn same_bits_alone_or_in_a_batch(c: usize) {
    let o = Conv2dOptions::default().padding(1);
    let x = rand_array(&[9, c, 8, 8], 7, -1.0, 1.0).mapv(|v| v as f32);
    let w = rand_array(&[32, c, 3, 3], 8, -1.0, 1.0).mapv(|v| v as f32);
    let run = |x: ndarray::ArrayD<f32>| {
        let g = Graph::<f32>::new();
        let (xt, wt) = (g.param("x", x), g.param("w", w.clone()));
        let y = xt.conv2d(wt, None, o);
        let dx = g.grad(y.square().sum(), &[xt]).unwrap()[0];
        let mut m = g.compile(&[y, dx], &[]).unwrap();
        m.run().unwrap();
        (
            m.value(y).unwrap().to_owned(),
            m.value(dx).unwrap().to_owned(),
        )
    };
    let (y, dx) = run(x.clone());
    for i in 0..9 {
        let xi = x.slice_axis(ndarray::Axis(0), (i..i + 1).into()).to_owned();
        let (yi, dxi) = run(xi);
        let bits = |a: &ndarray::ArrayD<f32>, b: ndarray::ArrayViewD<f32>| {
            a.iter()
                .zip(b.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits())
        };
        assert!(
            bits(&yi, y.slice_axis(ndarray::Axis(0), (i..i + 1).into())),
            "y {i}"
        );
        assert!(
            bits(&dxi, dx.slice_axis(ndarray::Axis(0), (i..i + 1).into())),
            "dx {i}"
        );
    }
}
