use super::*;
use crate::optim::test_util::fixture;
use alloc::string::ToString;
use approx::assert_relative_eq;

#[test]
fn powi_by_squaring_matches_the_library_power() {
    assert_eq!(powi(0.9, 0), 1.0);
    assert_eq!(powi(0.9, 1), 0.9);
    for t in [2u64, 3, 7, 10, 100, 1000, 12_345, 1 << 20] {
        for b in [0.9, 0.999, 0.5, 0.0] {
            assert_relative_eq!(powi(b, t), b.powf(t as f64), max_relative = 1e-13);
        }
    }
}

/// Adam written out for one element with the textbook bias-corrected moments,
/// independently of the optimizer: returns `p` after the steps.
fn reference(mut p: f64, gs: &[f64], lr: f64, eps: f64, wd: f64) -> f64 {
    let (b1, b2) = (0.9, 0.999);
    let (mut m, mut v) = (0.0, 0.0);
    for (k, &g) in gs.iter().enumerate() {
        let t = (k + 1) as i32;
        let g = g + wd * p;
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        let m_hat = m / (1.0 - b1.powi(t));
        let v_hat = v / (1.0 - b2.powi(t));
        // PyTorch puts eps outside the bias-corrected root: sqrt(v̂) + eps
        p -= lr * m_hat / (v_hat.sqrt() + eps);
    }
    p
}

#[test]
fn the_state_names_each_moment_and_set_state_restores_them() {
    // betas (0.5, 0.75), w = [1, -1], g = [1, -2] then [0.5, 3]:
    // exp_avg    = 0.5 (0.5 g1) + 0.5 g2     = [0.5, 1.0]
    // exp_avg_sq = 0.75 (0.25 g1²) + 0.25 g2² = [0.25, 3.0]
    use crate::optim::Resumable;
    let mut f = fixture([1.0, -1.0]);
    let mut opt = Adam::new(0.1).betas(0.5, 0.75);
    for g in [[1.0, -2.0], [0.5, 3.0]] {
        f.run_with(g);
        opt.step(&mut f.m, &f.grads).unwrap();
    }
    let state = opt.state::<f64>().unwrap();
    let slot = |name: &str| {
        let b = state.buffers.iter().find(|b| b.0 == name && b.1 == "w");
        b.unwrap().2.clone()
    };
    assert_eq!(slot("exp_avg"), [0.5, 1.0]);
    assert_eq!(slot("exp_avg_sq"), [0.25, 3.0]);
    // a third step from a restored state, and from moments set by hand
    let mut again = Adam::new(0.1).betas(0.5, 0.75);
    again.set_state(&state).unwrap();
    let mut changed = state.clone();
    for b in &mut changed.buffers {
        b.2 = if b.0 == "exp_avg" {
            vec![2.0, 0.0]
        } else {
            vec![4.0, 1.0]
        };
    }
    let mut by_hand = Adam::new(0.1).betas(0.5, 0.75);
    by_hand.set_state(&changed).unwrap();
    let w = f.w();
    let step = |opt: &mut Adam| {
        let mut f = fixture(w);
        f.run_with([0.0, 0.0]);
        opt.step(&mut f.m, &f.grads).unwrap();
        f.w()
    };
    let (w1, w2, w3) = (step(&mut opt), step(&mut again), step(&mut by_hand));
    assert_eq!(w1, w2);
    // t = 3, g = 0: m = 0.5 m, v = 0.75 v; p -= 0.1 m / (1 - 0.125) / sqrt(v / (1 - 0.421875))
    for (k, (m, v)) in [(2.0f64, 4.0f64), (0.0, 1.0)].into_iter().enumerate() {
        let (m, v) = (0.5 * m / 0.875, 0.75 * v / 0.578125);
        assert_relative_eq!(
            w3[k],
            w[k] - 0.1 * m / (v.sqrt() + 1e-8),
            max_relative = 1e-12
        );
    }
}

#[test]
fn three_steps_by_hand() {
    // lr 0.1, betas (0.5, 0.75), eps 0, element 0 (p = 1; g = 1, 0.5, -1):
    // t=1: m = 0.5,   v = 0.25,     m̂ = 1,   v̂ = 1       p = 1 - 0.1 * 1 = 0.9
    // t=2: m = 0.5,   v = 0.25,     m̂ = 0.5/0.75 = 2/3,  v̂ = 0.25/0.4375 = 4/7
    //      p = 0.9 - 0.1 * (2/3) / sqrt(4/7) = 0.9 - 0.0881917... = 0.8118083
    // t=3: m = -0.25, v = 0.4375,   m̂ = -0.25/0.875 = -2/7,
    //      v̂ = 0.4375/(1 - 0.421875) = 0.4375/0.578125 = 28/37
    //      p = 0.8118083 + 0.1 * (2/7) / sqrt(28/37)
    let p2 = 0.9 - 0.1 * (2.0 / 3.0) / (4.0f64 / 7.0).sqrt();
    let p3 = p2 + 0.1 * (2.0 / 7.0) / (28.0f64 / 37.0).sqrt();
    assert_relative_eq!(p2, 0.811808, epsilon = 1e-6);
    let mut f = fixture([1.0, -1.0]);
    let mut opt = Adam::new(0.1).betas(0.5, 0.75);
    opt.eps = 1e-300; // below an ulp of sqrt(v̂): the hand computation has none
    for g in [[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]] {
        f.run_with(g);
        opt.step(&mut f.m, &f.grads).unwrap();
    }
    assert_relative_eq!(f.w()[0], p3, epsilon = 1e-14);
}

#[test]
fn against_reference_with_weight_decay() {
    let gs = [
        [1.0, -2.0],
        [0.5, 3.0],
        [-1.0, 0.25],
        [2.0, 0.0],
        [1e-3, -1e-3],
    ];
    for (wd, eps) in [(0.0, 1e-8), (0.1, 1e-8), (0.3, 0.5)] {
        let mut f = fixture([1.0, -1.0]);
        let mut opt = Adam::new(0.05).eps(eps);
        opt = opt.weight_decay(wd);
        for g in gs {
            f.run_with(g);
            opt.step(&mut f.m, &f.grads).unwrap();
        }
        for (i, p0) in [1.0, -1.0].into_iter().enumerate() {
            let g: [f64; 5] = core::array::from_fn(|k| gs[k][i]);
            let want = reference(p0, &g, 0.05, eps, wd);
            assert_relative_eq!(f.w()[i], want, max_relative = 1e-13);
        }
    }
}

#[test]
fn f32_machine() {
    use crate::graph::Graph;
    let g = Graph::<f32>::new();
    let w = g.param("w", ndarray::arr1(&[1.0f32, -1.0]));
    let loss = (w * w).sum(); // g = 2w
    let grads = g.grad(loss, &[w]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    let mut opt = Adam::new(0.01);
    let mut p = 1.0f64;
    let (mut m1, mut v) = (0.0, 0.0);
    for t in 1..=4 {
        m.run().unwrap();
        opt.step(&mut m, &grads).unwrap();
        let g = 2.0 * p;
        m1 = 0.9 * m1 + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        let (mh, vh) = (m1 / (1.0 - 0.9f64.powi(t)), v / (1.0 - 0.999f64.powi(t)));
        p -= 0.01 * mh / (vh.sqrt() + 1e-8);
    }
    assert_relative_eq!(m.value(w).unwrap()[[0]], p as f32, max_relative = 1e-6);
    assert_relative_eq!(m.value(w).unwrap()[[1]], -p as f32, max_relative = 1e-6);
}

#[test]
fn bad_settings() {
    for (b1, b2) in [(1.0, 0.999), (0.9, -0.1), (f64::NAN, 0.9), (0.9, 1.5)] {
        let e = Adam::new(1e-3).betas(b1, b2).check().unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        assert!(e.to_string().contains("is not in [0, 1)"), "{e}");
    }
    let e = Adam::new(1e-3).betas(0.9, 1.0).check().unwrap_err();
    assert_eq!(e.to_string(), "invalid beta2: 1 is not in [0, 1)");
    for eps in [0.0, -1e-8, f64::NAN, f64::INFINITY] {
        let e = Adam::new(1e-3).eps(eps).check().unwrap_err();
        assert!(e.to_string().starts_with("invalid eps: "), "{e}");
    }
    let e = Adam::new(-1e-3).check().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid learning rate: -0.001 is not a finite number >= 0"
    );
    assert!(Adam::new(f64::NAN).check().is_err());
    assert!(Adam::new(1e-3).weight_decay(f64::NAN).check().is_err());
    assert!(Adam::new(0.0).betas(0.0, 0.0).check().is_ok());
}

#[test]
fn a_step_with_no_pairs_makes_no_state() {
    // a machine compiled without gradients (`m.grads()` empty) stepped by mistake
    // first: the optimizer stays free for the parameters of its first real step
    let mut f = fixture([1.0, -1.0]);
    f.run_with([1.0, 1.0]);
    let mut opt = Adam::new(0.1);
    opt.step(&mut f.m, &[]).unwrap();
    opt.step(&mut f.m, &crate::GradHandles::default()).unwrap();
    assert!(alloc::format!("{opt:?}").contains("params: 0"), "{opt:?}");
    opt.step(&mut f.m, &f.grads).unwrap();
    // the first step moves each element by lr
    assert_relative_eq!(f.w()[0], 0.9, epsilon = 1e-6);
}

#[test]
fn state_is_per_element_type() {
    let mut f = fixture([1.0, -1.0]);
    f.run_with([1.0, 1.0]);
    let mut opt = Adam::new(0.1);
    opt.step(&mut f.m, &f.grads).unwrap();
    let copy = opt.clone();
    assert!(alloc::format!("{copy:?}").contains("element: \"f64\""));
    let g = crate::graph::Graph::<f32>::new();
    let w = g.param("w", ndarray::arr1(&[1.0f32, 2.0]));
    let grads = g.grad(w.square().sum(), &[w]).unwrap();
    let mut m = g.compile(grads.tensors(), &grads).unwrap();
    m.run().unwrap();
    let e = opt.step(&mut m, &grads).unwrap_err();
    assert!(
        e.to_string().contains("another element type than f32"),
        "{e}"
    );
}
