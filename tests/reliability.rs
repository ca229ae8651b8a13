//! Issue 11: empty axes, allocation-free steps at any rank, saves that survive stale
//! temporary files and symlinks, accurate long sums, and short, named messages.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use tapegrad::ndarray::{self, ArrayD, Dimension, IxDyn};
use tapegrad::prelude::*;

#[path = "common/counting.rs"]
mod counting;

/// A fresh directory of its own under the system's temporary directory.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tapegrad-reliability-{}-{what}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn machine_with(value: f32) -> (Machine<f32>, Vec<f32>) {
    let g = Graph::<f32>::new();
    let w = g.param("w", ndarray::arr1(&[value, value + 1.0]));
    let mut m = g.compile(&[w], &[]).unwrap();
    m.run().unwrap();
    (m, vec![value, value + 1.0])
}

fn saved_w(path: &std::path::Path) -> Vec<f32> {
    let (mut m, _) = machine_with(0.0);
    m.load(path).unwrap();
    let w = m.handle_of("w").unwrap();
    m.value(w).unwrap().iter().copied().collect()
}

#[test]
fn a_stale_temporary_file_does_not_stop_a_save() {
    let dir = temp_dir("stale");
    let path = dir.join("model.safetensors");
    // a crashed process with this pid left the temporary names the next saves would pick
    // (`.model.safetensors.<pid>-<n>.tmp`, n counting the saves of this process)
    let pid = std::process::id();
    let stale: Vec<PathBuf> = (0..64)
        .map(|n| dir.join(format!(".model.safetensors.{pid}-{n}.tmp")))
        .collect();
    for s in &stale {
        std::fs::write(s, b"half a file").unwrap();
    }
    let (m, want) = machine_with(3.0);
    m.save(&path).unwrap();
    assert_eq!(saved_w(&path), want);
    // saved again over the first: whole, never half-written
    let (m, want) = machine_with(5.0);
    m.save(&path).unwrap();
    assert_eq!(saved_w(&path), want);
    // the stale files are not ours to remove, and nothing of ours is left beside them
    for s in &stale {
        assert_eq!(std::fs::read(s).unwrap(), b"half a file");
    }
    let left = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(left, stale.len() + 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn saving_to_a_symlink_writes_its_target_and_keeps_the_link() {
    let dir = temp_dir("symlink");
    std::fs::create_dir_all(dir.join("real")).unwrap();
    let target = dir.join("real").join("weights.safetensors");
    let (m, _) = machine_with(1.0);
    m.save(&target).unwrap();
    // a relative link, and a link to that link
    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink("real/weights.safetensors", &link).unwrap();
    let link2 = dir.join("link2.safetensors");
    std::os::unix::fs::symlink(&link, &link2).unwrap();
    let (m, want) = machine_with(7.0);
    m.save(&link2).unwrap();
    for l in [&link, &link2] {
        let meta = std::fs::symlink_metadata(l).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{} was replaced",
            l.display()
        );
    }
    assert_eq!(saved_w(&target), want);
    assert_eq!(saved_w(&link2), want);
    // a dangling link: the save creates its target
    let dangling = dir.join("dangling.safetensors");
    std::os::unix::fs::symlink("real/new.safetensors", &dangling).unwrap();
    m.save(&dangling).unwrap();
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(saved_w(&dir.join("real").join("new.safetensors")), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn softmax_over_an_empty_axis_is_empty_and_leaves_the_graph_usable() {
    let g = Graph::<f64>::new();
    let x = g.param("x", ArrayD::<f64>::zeros(IxDyn(&[3, 0])));
    let other = g.param("o", ndarray::arr1(&[1.0, 2.0]));
    let p = x.softmax(-1);
    let lp = x.log_softmax(1);
    let dx = g.grad((p.sum() + lp.sum()) * 2.0, &[x]).unwrap()[0];
    let y = other.square().sum();
    let mut m = g.compile(&[p, lp, dx, y], &[]).unwrap();
    m.run().unwrap();
    assert_eq!(m.value(p).unwrap().shape(), &[3, 0]);
    assert_eq!(m.value(lp).unwrap().shape(), &[3, 0]);
    assert_eq!(m.value(dx).unwrap().shape(), &[3, 0]);
    assert_eq!(m.item(y).unwrap(), 5.0);
}

#[test]
fn cross_entropy_second_order_with_zero_classes() {
    let g = Graph::<f64>::new();
    // no rows and no classes: the mean over no rows is NaN (PyTorch), its gradients empty
    let logits = g.param("logits", ArrayD::<f64>::zeros(IxDyn(&[0, 0])));
    let ids = g.constant(ArrayD::<f64>::zeros(IxDyn(&[0])));
    let loss = logits.cross_entropy(ids);
    let d = g.grad(loss, &[logits]).unwrap()[0];
    let dd = g.grad(d.square().sum(), &[logits]).unwrap()[0];
    let other = g.param("o", ndarray::arr1(&[3.0]));
    let y = other * 2.0;
    let mut m = g.compile(&[loss, d, dd, y], &[]).unwrap();
    m.run().unwrap();
    assert!(m.item(loss).unwrap().is_nan());
    assert_eq!(m.value(d).unwrap().shape(), &[0, 0]);
    assert_eq!(m.value(dd).unwrap().shape(), &[0, 0]);
    assert_eq!(m.value(y).unwrap().as_slice(), Some(&[6.0][..]));
}

#[test]
fn a_tiny_class_id_prints_short() {
    let g = Graph::<f64>::new();
    let logits = g.param("logits", ndarray::arr2(&[[0.0, 1.0]]));
    let ids = g.input("ids", [1]);
    let loss = logits.cross_entropy(ids);
    let mut m = g.compile(&[loss], &[]).unwrap();
    m.feed(ids, &ndarray::arr1(&[1e-300])).unwrap();
    let e = m.run().unwrap_err().to_string();
    // `{}` prints 1e-300 as 0.000...0001, 302 characters; scientific notation is short
    assert!(e.contains("e-30"), "{e}");
    assert!(e.len() < 200, "{} characters: {e}", e.len());
}

#[test]
fn optimizer_pairing_errors_name_the_parameter() {
    let g = Graph::<f32>::new();
    let a = g.param("alpha", ndarray::arr1(&[1.0f32]));
    let b = g.param("beta", ndarray::arr1(&[2.0f32]));
    let loss = (a * b).sum();
    let grads = g.grad(loss, &[a, b]).unwrap();
    let only_a = grads.select(&[a]).unwrap();
    // compiled with alpha's gradient only, stepped with both
    let mut m = g.compile(&[loss], &only_a).unwrap();
    m.run().unwrap();
    let e = Sgd::new(0.1).step(&mut m, &grads).unwrap_err().to_string();
    assert!(e.contains("\"beta\""), "{e}");
    let e = Adam::new(0.1).step(&mut m, &grads).unwrap_err().to_string();
    assert!(e.contains("\"beta\""), "{e}");
    // a parameter the machine does not hold at all: named from the graph, not by its id
    let c = g.param("gamma", ndarray::arr1(&[3.0f32]));
    let all = g.grad((a * b * c).sum(), &[a, b, c]).unwrap();
    for e in [
        Sgd::new(0.1).step(&mut m, &all).unwrap_err(),
        Adam::new(0.1).step(&mut m, &all).unwrap_err(),
        tapegrad::optim::clip_grad_norm(&mut m, &all, 1.0).unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(e.contains("\"alpha\"") || e.contains("\"gamma\""), "{e}");
        assert!(!e.contains("node "), "{e}");
    }
}

/// `[1e8, then 2^20 - 1 ones]`: summed one by one in f32 every one is lost (1e8 + 1 rounds
/// back to 1e8, the ulp there being 8); the exact sum 101,048,575 is within 4 of an f32.
fn big_then_ones() -> Vec<f32> {
    let mut v = vec![1.0f32; 1 << 20];
    v[0] = 1e8;
    v
}

#[test]
fn long_f32_sums_are_accurate() {
    let v = big_then_ones();
    let exact = 1e8 + 1_048_575.0;
    let n = v.len();
    let g = Graph::<f32>::new();
    let x = g.constant(ndarray::Array1::from(v.clone()));
    let x2 = x.reshape([1, n]);
    let (s, rows, mean) = (x.sum(), x2.sum_axes(&[1], false), x.mean());
    let mut m = g.compile(&[s, rows, mean], &[]).unwrap();
    m.run().unwrap();
    let got = m.item(s).unwrap() as f64;
    assert!((got - exact).abs() <= 8.0, "sum {got}, exact {exact}");
    let got = m.value(rows).unwrap()[[0]] as f64;
    assert!((got - exact).abs() <= 8.0, "row sum {got}, exact {exact}");
    let got = m.item(mean).unwrap() as f64;
    let want = exact / n as f64;
    assert!(
        (got - want).abs() <= 8.0 / n as f64 + 1e-5,
        "mean {got}, want {want}"
    );
}

/// A large random vector against an f64 reference: the error of a pairwise sum grows as
/// log2(n) ulps of the sum of magnitudes, not as n.
#[test]
fn random_f32_sums_stay_within_log_n_ulps() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let n = 3_000_017;
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(0.0f32..1.0)).collect();
    let exact: f64 = v.iter().map(|&x| x as f64).sum();
    let g = Graph::<f32>::new();
    let x = g.constant(ndarray::Array1::from(v.clone()));
    let cols =
        g.constant(ndarray::Array2::from_shape_vec((n / 7, 7), v[..n / 7 * 7].to_vec()).unwrap());
    let (s, by_col) = (x.sum(), cols.sum_axes(&[0], false));
    // axes apart, as a batch norm's [0, 2] of [N, C, L]
    let (a, c, l) = (1000, 3, 999);
    let ncl =
        g.constant(ndarray::Array3::from_shape_vec((a, c, l), v[..a * c * l].to_vec()).unwrap());
    let by_channel = ncl.sum_axes(&[0, 2], false);
    let mut m = g.compile(&[s, by_col, by_channel], &[]).unwrap();
    // the same bits at any thread count
    let mut at = Vec::new();
    for threads in [1, 2, 3] {
        tapegrad::set_threads(threads);
        m.run().unwrap();
        at.push((m.item(s).unwrap(), m.value(by_channel).unwrap().to_owned()));
    }
    assert!(at.windows(2).all(|w| w[0] == w[1]), "{at:?}");
    let ulp = exact * f32::EPSILON as f64;
    let bound = (n as f64).log2() * ulp;
    let got = m.item(s).unwrap() as f64;
    assert!(
        (got - exact).abs() <= bound,
        "sum {got}, exact {exact}, bound {bound}"
    );
    // the column sums run down a strided axis: each one within its own bound
    let byc = m.value(by_col).unwrap().to_owned();
    for c in 0..7 {
        let e: f64 = (0..n / 7).map(|r| v[r * 7 + c] as f64).sum();
        let b = ((n / 7) as f64).log2() * e * f32::EPSILON as f64;
        let got = byc[[c]] as f64;
        assert!(
            (got - e).abs() <= b,
            "column {c}: {got}, exact {e}, bound {b}"
        );
    }
    let bych = m.value(by_channel).unwrap().to_owned();
    for ch in 0..c {
        let e: f64 = (0..a)
            .flat_map(|i| (0..l).map(move |k| (i * c + ch) * l + k))
            .map(|i| v[i] as f64)
            .sum();
        let b = ((a * l) as f64).log2() * e * f32::EPSILON as f64;
        let got = bych[[ch]] as f64;
        assert!(
            (got - e).abs() <= b,
            "channel {ch}: {got}, exact {e}, bound {b}"
        );
    }
}

/// Allocations of the calling thread in steps 2..=5 of `tanh(x).sum()` and its gradient,
/// `x` of the given rank.
fn allocations_at_rank(rank: usize) -> usize {
    tapegrad::set_threads(1);
    let dims: Vec<usize> = (0..rank).map(|a| 2 + a % 2).collect();
    let g = Graph::<f32>::new();
    let x = g.input("x", dims.as_slice());
    let w = g.param("w", ArrayD::<f32>::ones(IxDyn(&dims)));
    let mut y = (x * w).tanh().sum();
    if rank > 1 {
        // sums over axes apart, views and copies along inner axes, a broadcast `where`
        let h = x * w;
        y = y + h.sum_axes(&[0, rank - 1], false).sum();
        y = y + h.transpose(0, rank - 1).tanh().narrow(1, 1, 1).sum();
        y = y + h.pad(1, 1, 2).square().sum();
        y = y + g.concat(&[h, h.exp()], rank - 2).sum();
        let mask = h.sum_axes(&[0], true).gt(g.full([], 1.0));
        y = y + h.where_(mask, h * 2.0).sum();
        // other reductions and ops along inner axes, with their gradients
        y = y + h.max_axes(&[1], true).sum() + h.min_axes(&[rank - 1], false).sum();
        y = y + h.var(&[0, 2], 1, false).sum() + h.softmax(2).log_softmax(1).sum();
        y = y + h.maximum(h.sum_axes(&[1], true)).dropout(0.25).sum();
        y = y + (h.argmax(1, true) * h).sum();
        let m2 = h.reshape([
            dims[..rank - 2].iter().product(),
            dims[rank - 2],
            dims[rank - 1],
        ]);
        y = y + m2.matmul(m2.transpose(1, 2)).sum();
    }
    let grads = g.grad(y, &[w]).unwrap();
    let mut m = g.compile(&[y], &grads).unwrap();
    let xb = ArrayD::<f32>::from_shape_fn(IxDyn(&dims), |i| i.slice().iter().sum::<usize>() as f32);
    let mut sgd = Sgd::new(0.01);
    m.feed(x, &xb).unwrap();
    m.run().unwrap();
    sgd.step(&mut m, &grads).unwrap();
    let before = counting::thread_allocs();
    for _ in 0..4 {
        m.feed(x, &xb).unwrap();
        m.run().unwrap();
        sgd.step(&mut m, &grads).unwrap();
    }
    counting::thread_allocs() - before
}

/// Allocations of feeding a rank-`rank` input a view that is not in standard layout.
fn allocations_feeding_a_strided_view(rank: usize) -> usize {
    let dims: Vec<usize> = (0..rank).map(|a| 2 + a % 2).collect();
    let g = Graph::<f32>::new();
    let x = g.input("x", dims.as_slice());
    let y = x.tanh().sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    let mut rev = dims.clone();
    rev.reverse();
    let owned =
        ArrayD::<f32>::from_shape_fn(IxDyn(&rev), |i| i.slice().iter().sum::<usize>() as f32);
    // permuted axes, one of them flipped
    let mut view = owned.t();
    view.invert_axis(ndarray::Axis(1));
    m.feed(x, &view).unwrap();
    m.run().unwrap();
    assert_eq!(m.value(x).unwrap(), view, "rank {rank}");
    let before = counting::thread_allocs();
    for _ in 0..4 {
        m.feed(x, &view).unwrap();
        m.run().unwrap();
    }
    counting::thread_allocs() - before
}

#[test]
fn a_step_allocates_nothing_at_any_rank() {
    // a view with permuted or flipped axes is read through its strides; at rank >= 5
    // ndarray's own contiguity check (`as_slice_memory_order`) still allocates twice a
    // feed (its default strides and axis order, `IxDyn`s) where it was once an element
    for rank in [2, 4] {
        let n = allocations_feeding_a_strided_view(rank);
        assert_eq!(n, 0, "feed, rank {rank}");
    }
    for rank in [5, 6, 8] {
        let n = allocations_feeding_a_strided_view(rank);
        assert!(n <= 4 * 2, "feed, rank {rank}: {n} allocations in 4 steps");
    }
    for rank in [1, 4, 5, 6, 8] {
        assert_eq!(allocations_at_rank(rank), 0, "rank {rank}");
    }
}
