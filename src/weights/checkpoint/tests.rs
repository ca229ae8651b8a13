//! Checkpoints read strictly: every corrupt or mismatched one an `Err`, and nothing
//! changed by a failed load. (Resuming bit for bit: `tests/checkpoint.rs`.)

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::super::format::{self, Out};
use crate::error::Error;
use crate::graph::Graph;
use crate::machine::Machine;
use crate::optim::{Adam, AdamW, OptimState, Optimizer, Resumable, Sgd};
use crate::GradHandles;

/// `loss = sum((x w + b)^2)`, w `[2, 3]`, b `[3]`, x fixed; `steps` of `opt` taken.
fn trained<O: Optimizer<f32>>(opt: &mut O, steps: usize) -> (Machine<f32>, GradHandles) {
    let g = Graph::<f32>::new();
    let x = g.constant(ndarray::arr2(&[[1.0f32, -2.0], [0.5, 3.0]]));
    let w = g.param("w", ndarray::arr2(&[[0.1f32, 0.2, 0.3], [-0.4, 0.5, -0.6]]));
    let b = g.param("b", ndarray::arr1(&[0.01f32, 0.02, 0.03]));
    let loss = (x.matmul(w) + b).square().sum();
    let grads = g.grad(loss, &[w, b]).unwrap();
    let mut m = g.compile(&[loss], &grads).unwrap();
    for _ in 0..steps {
        m.run().unwrap();
        opt.step(&mut m, &grads).unwrap();
    }
    (m, grads.handles())
}

fn bits(m: &Machine<f32>) -> Vec<u32> {
    ["w", "b"]
        .iter()
        .flat_map(|n| {
            let v = m.value(m.handle_of(n).unwrap()).unwrap();
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        })
        .collect()
}

/// A machine of the model whose weights differ from any trained one, and its rng state.
fn fresh() -> Machine<f32> {
    let (mut m, _) = trained(&mut Sgd::new(0.0), 0);
    m.seed(99);
    m
}

#[test]
fn a_checkpoint_holds_weights_state_step_and_rng_under_plain_names() {
    let mut adam = Adam::new(0.01);
    let (m, _) = trained(&mut adam, 3);
    let bytes = m.save_checkpoint_to_bytes(&adam, 3).unwrap();
    let file = format::read(&bytes).unwrap();
    let mut names: Vec<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "b",
            "optim.exp_avg.b",
            "optim.exp_avg.w",
            "optim.exp_avg_sq.b",
            "optim.exp_avg_sq.w",
            "w"
        ]
    );
    assert_eq!(file.tensor("optim.exp_avg.w").unwrap().shape, [2, 3]);
    assert_eq!(file.meta("step"), Some("3"));
    assert_eq!(file.meta("optim"), Some("Adam"));
    assert_eq!(file.meta("optim.steps"), Some("3"));
    assert_eq!(file.meta("optim.param.0"), Some("w"));
    assert_eq!(file.meta("optim.param.1"), Some("b"));
    assert_eq!(file.meta("optim.setting.eps"), Some("1e-8"));
    assert_eq!(file.meta("rng"), Some("0"));

    let mut again = Adam::new(0.5); // another learning rate: restored from the file
    let mut m2 = fresh();
    assert_eq!(
        m2.load_checkpoint_from_bytes(&bytes, &mut again).unwrap(),
        3
    );
    assert_eq!(bits(&m2), bits(&m));
    assert_eq!(again.state::<f32>().unwrap(), adam.state::<f32>().unwrap());
    assert_eq!(crate::optim::LearningRate::lr(&again), 0.01);
    // the rng state came back (a fresh machine was seeded 99)
    assert_eq!(m2.save_checkpoint_to_bytes(&again, 3).unwrap(), bytes);
}

#[test]
fn optimizers_without_state_round_trip() {
    // SGD without momentum holds none; an Adam that never stepped neither
    let (m, _) = trained(&mut Sgd::new(0.1), 2);
    let bytes = m.save_checkpoint_to_bytes(&Sgd::new(0.1), 2).unwrap();
    let mut m2 = fresh();
    assert_eq!(
        m2.load_checkpoint_from_bytes(&bytes, &mut Sgd::new(0.1))
            .unwrap(),
        2
    );
    assert_eq!(bits(&m2), bits(&m));
    let bytes = m.save_checkpoint_to_bytes(&Adam::new(0.1), 0).unwrap();
    let mut adam = Adam::new(0.1);
    m2.load_checkpoint_from_bytes(&bytes, &mut adam).unwrap();
    assert_eq!(adam.state::<f32>().unwrap().buffers, vec![]);
}

/// Loads `bytes` into a fresh machine and `opt`, expects an `Err`, and checks that
/// neither changed.
fn refused<O: Resumable + core::fmt::Debug>(bytes: &[u8], opt: &mut O) -> Error {
    let mut m = fresh();
    let (before, state) = (bits(&m), opt.state::<f32>().unwrap());
    let rng = m.rng_state();
    let e = m.load_checkpoint_from_bytes(bytes, opt).unwrap_err();
    assert_eq!(bits(&m), before, "{e}");
    assert_eq!(m.rng_state(), rng, "{e}");
    assert_eq!(opt.state::<f32>().unwrap(), state, "{e}");
    e
}

fn stepped_adam() -> (Vec<u8>, Adam) {
    let mut adam = Adam::new(0.01);
    let (m, _) = trained(&mut adam, 2);
    (m.save_checkpoint_to_bytes(&adam, 2).unwrap(), adam)
}

#[test]
fn every_cut_of_a_checkpoint_is_refused_and_changes_nothing() {
    let (bytes, _) = stepped_adam();
    for n in 0..bytes.len() {
        let mut opt = Adam::new(0.01);
        refused(&bytes[..n], &mut opt);
    }
}

#[test]
fn another_optimizer_or_other_settings_are_refused() {
    let (bytes, _) = stepped_adam();
    for e in [
        refused(&bytes, &mut Sgd::new(0.01).momentum(0.9)),
        refused(&bytes, &mut AdamW::new(0.01)),
        refused(&bytes, &mut Adam::new(0.01).betas(0.9, 0.99)),
        refused(&bytes, &mut Adam::new(0.01).eps(1e-7)),
    ] {
        let msg = e.to_string();
        assert!(matches!(e, Error::Mismatch { .. }), "{msg}");
        assert!(msg.contains("tests.rs"), "located at the caller: {msg}");
    }
    let e = refused(&bytes, &mut Adam::new(0.01).betas(0.9, 0.99)).to_string();
    assert!(e.contains("beta2 was 0.999, this Adam's is 0.99"), "{e}");
}

#[test]
fn a_checkpoint_of_another_machine_is_refused() {
    let (bytes, _) = stepped_adam();
    // an f64 machine of the same names
    let g = Graph::<f64>::new();
    let w = g.param("w", ndarray::Array2::<f64>::zeros((2, 3)));
    let b = g.param("b", ndarray::Array1::<f64>::zeros(3));
    let mut m = g.compile(&[w, b], &[]).unwrap();
    let e = m
        .load_checkpoint_from_bytes(&bytes, &mut Adam::new(0.01))
        .unwrap_err();
    assert!(e.to_string().contains("saved by an f32 machine"), "{e}");
    // a machine without `b`
    let g = Graph::<f32>::new();
    let w = g.param("w", ndarray::Array2::<f32>::zeros((2, 3)));
    let mut m = g.compile(&[w], &[]).unwrap();
    let e = m
        .load_checkpoint_from_bytes(&bytes, &mut Adam::new(0.01))
        .unwrap_err();
    assert!(e.to_string().contains("parameter \"b\""), "{e}");
    assert_eq!(m.value(w).unwrap().sum(), 0.0);
    // a plain weights file is not a checkpoint
    let (m, _) = trained(&mut Sgd::new(0.1), 0);
    let e = refused(&m.save_to_bytes().unwrap(), &mut Adam::new(0.01));
    assert!(e.to_string().contains("no \"format\""), "{e}");
}

/// `bytes` rewritten: its tensors through `tensors`, its metadata through `meta`.
fn rewritten(
    bytes: &[u8],
    tensors: impl Fn(&mut Vec<(String, format::Dtype, Vec<usize>, Vec<u8>)>),
    meta: impl Fn(&mut Vec<(String, String)>),
) -> Vec<u8> {
    let file = format::read(bytes).unwrap();
    let mut ts: Vec<_> = file
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.dtype, t.shape.clone(), t.data.to_vec()))
        .collect();
    tensors(&mut ts);
    let mut md = file.metadata.clone();
    meta(&mut md);
    let outs = ts
        .iter()
        .map(|(n, d, s, data)| Out {
            name: n,
            dtype: *d,
            shape: s.clone(),
            data: data.clone(),
        })
        .collect();
    format::write_with(outs, &md).unwrap()
}

#[test]
fn a_checkpoint_not_whole_is_refused() {
    let (bytes, _) = stepped_adam();
    let set = |k: &'static str, v: &'static str| {
        move |md: &mut Vec<(String, String)>| {
            md.retain(|(key, _)| key != k);
            if !v.is_empty() {
                md.push((k.into(), v.into()));
            }
        }
    };
    let keep = |_: &mut Vec<(String, format::Dtype, Vec<usize>, Vec<u8>)>| {};
    let drop_tensor = |name: &'static str| {
        move |ts: &mut Vec<(String, format::Dtype, Vec<usize>, Vec<u8>)>| ts.retain(|t| t.0 != name)
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            rewritten(&bytes, drop_tensor("optim.exp_avg_sq.b"), |_| {}),
            "3 buffers after 2 steps",
        ),
        (rewritten(&bytes, drop_tensor("w"), |_| {}), "\"w\""),
        (
            rewritten(
                &bytes,
                |ts| {
                    ts.push((
                        "optim.exp_avg.extra".into(),
                        format::Dtype::F32,
                        vec![1],
                        vec![0; 4],
                    ))
                },
                |_| {},
            ),
            "optim.exp_avg.extra",
        ),
        (
            rewritten(
                &bytes,
                |ts| ts.push(("stray".into(), format::Dtype::F32, vec![1], vec![0; 4])),
                |_| {},
            ),
            "stray",
        ),
        (
            rewritten(
                &bytes,
                |ts| {
                    for t in ts.iter_mut().filter(|t| t.0 == "optim.exp_avg.w") {
                        t.2 = vec![3, 2];
                    }
                },
                |_| {},
            ),
            "optim.exp_avg.w",
        ),
        (
            rewritten(&bytes, keep, set("optim.param.1", "")),
            "optim.exp_avg.b",
        ),
        (
            rewritten(&bytes, keep, set("optim.param.2", "w")),
            "parameter \"w\" twice",
        ),
        (
            rewritten(&bytes, keep, set("optim.param.3", "w")),
            "unknown key \"optim.param.3\"",
        ),
        (
            rewritten(&bytes, keep, set("optim.steps", "0")),
            "after 0 steps",
        ),
        (
            rewritten(&bytes, keep, set("optim.steps", "-1")),
            "not a whole number",
        ),
        (rewritten(&bytes, keep, set("step", "")), "no \"step\""),
        (rewritten(&bytes, keep, set("rng", "x")), "\"rng\""),
        (
            rewritten(&bytes, keep, set("version", "2")),
            "version \"2\"",
        ),
        (
            rewritten(&bytes, keep, set("note", "hi")),
            "unknown key \"note\"",
        ),
        (
            rewritten(&bytes, keep, set("optim.setting.lr", "-1")),
            "learning rate",
        ),
        (
            rewritten(&bytes, keep, set("optim.setting.beta1", "")),
            "no setting \"beta1\"",
        ),
        (
            rewritten(&bytes, keep, set("optim.setting.amsgrad", "0")),
            "no setting \"amsgrad\"",
        ),
        (
            rewritten(&bytes, keep, set("optim.setting.eps", "tiny")),
            "not a number",
        ),
        (
            rewritten(&bytes, keep, set("optim", "Sgd")),
            "not of \"Adam\"",
        ),
    ];
    for (bad, want) in cases {
        let e = refused(&bad, &mut Adam::new(0.01)).to_string();
        assert!(e.contains(want), "want {want:?} in: {e}");
    }
    // the unchanged rewrite loads: the cases above fail for their change alone
    let same = rewritten(&bytes, keep, |_| {});
    fresh()
        .load_checkpoint_from_bytes(&same, &mut Adam::new(0.01))
        .unwrap();
}

#[test]
fn saving_state_for_another_machine_or_type_is_refused() {
    let (_, adam) = stepped_adam();
    let g = Graph::<f32>::new();
    let v = g.param("v", ndarray::Array1::<f32>::zeros(2));
    let m = g.compile(&[v], &[]).unwrap();
    let e = m.save_checkpoint_to_bytes(&adam, 2).unwrap_err();
    assert!(e.to_string().contains("parameter \"w\""), "{e}");
    let g = Graph::<f64>::new();
    let w = g.param("w", ndarray::Array2::<f64>::zeros((2, 3)));
    let b = g.param("b", ndarray::Array1::<f64>::zeros(3));
    let m = g.compile(&[w, b], &[]).unwrap();
    let e = m.save_checkpoint_to_bytes(&adam, 2).unwrap_err();
    assert!(
        e.to_string().contains("another element type than f64"),
        "{e}"
    );
}

#[test]
fn set_state_checks_its_buffers() {
    let (_, adam) = stepped_adam();
    let state: OptimState<f32> = adam.state().unwrap();
    let mut cases: Vec<(OptimState<f32>, &str)> = Vec::new();
    let mut s = state.clone();
    s.buffers[0].2.pop();
    cases.push((s, "different lengths"));
    let mut s = state.clone();
    s.buffers.push(s.buffers[0].clone());
    cases.push((s, "buffers after 2 steps"));
    let mut s = state.clone();
    s.buffers[1].0 = "momentum_buffer".into();
    cases.push((s, "slot \"momentum_buffer\""));
    let mut s = state.clone();
    let first = s.buffers[0].clone();
    s.buffers[2] = first.clone();
    s.buffers[3] = (String::from("exp_avg_sq"), first.1, first.2);
    cases.push((s, "parameter \"w\" twice"));
    for (s, want) in cases {
        let mut opt = Adam::new(0.01);
        let e = opt.set_state(&s).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?} in: {e}");
        assert_eq!(opt.state::<f32>().unwrap().buffers, vec![]);
    }
}

#[test]
fn an_f64_machine_resumes_bit_for_bit() {
    // loss = sum((w - c)^2) with SGD and Nesterov momentum: 3 + 3 steps against 6
    let build = || {
        let g = Graph::<f64>::new();
        let w = g.param("w", ndarray::arr1(&[0.3, -1.7, 2.2]));
        let loss = (w - g.constant(ndarray::arr1(&[1.0, 0.1, -0.5])))
            .square()
            .sum();
        let grads = g.grad(loss, &[w]).unwrap();
        (
            g.compile(&[loss], &grads).unwrap(),
            grads.handles(),
            w.handle(),
        )
    };
    let opt = || Sgd::new(0.05).momentum(0.8).nesterov(true);
    let train = |m: &mut Machine<f64>, o: &mut Sgd, g: &GradHandles, n| {
        for _ in 0..n {
            m.run().unwrap();
            o.step(m, g).unwrap();
        }
    };
    let (mut whole, g1, w) = build();
    let mut o1 = opt();
    train(&mut whole, &mut o1, &g1, 3);
    let bytes = whole.save_checkpoint_to_bytes(&o1, 3).unwrap();
    train(&mut whole, &mut o1, &g1, 3);
    let (mut resumed, g2, w2) = build();
    let mut o2 = opt();
    assert_eq!(
        resumed.load_checkpoint_from_bytes(&bytes, &mut o2).unwrap(),
        3
    );
    train(&mut resumed, &mut o2, &g2, 3);
    let bits = |m: &Machine<f64>, w| -> Vec<u64> {
        m.value(w).unwrap().iter().map(|x| x.to_bits()).collect()
    };
    assert_eq!(bits(&resumed, w2), bits(&whole, w));
    assert_eq!(format::read(&bytes).unwrap().meta("dtype"), Some("f64"));
}

/// An optimizer of a user's, stateful through `Resumable` alone.
#[derive(Debug, Default)]
struct Custom {
    slot: String,
    state: Option<OptimState<f32>>,
}

impl Resumable for Custom {
    fn state<T: crate::Scalar>(&self) -> crate::Result<OptimState<T>> {
        Ok(OptimState {
            kind: "Custom".into(),
            settings: vec![("lr".into(), 0.5)],
            steps: 1,
            buffers: vec![(self.slot.clone(), "b".into(), vec![T::of(1.5); 3])],
        })
    }

    fn set_state<T: crate::Scalar>(&mut self, state: &OptimState<T>) -> crate::Result<()> {
        self.state = Some(OptimState {
            kind: state.kind.clone(),
            settings: state.settings.clone(),
            steps: state.steps,
            buffers: state
                .buffers
                .iter()
                .map(|(s, p, v)| {
                    (
                        s.clone(),
                        p.clone(),
                        v.iter().map(|x| x.to_f32().unwrap_or(0.0)).collect(),
                    )
                })
                .collect(),
        });
        Ok(())
    }
}

#[test]
fn a_users_optimizer_round_trips_and_slot_names_are_checked() {
    let (m, _) = trained(&mut Sgd::new(0.1), 1);
    let custom = Custom {
        slot: "velocity".into(),
        state: None,
    };
    let bytes = m.save_checkpoint_to_bytes(&custom, 1).unwrap();
    let mut back = Custom::default();
    fresh()
        .load_checkpoint_from_bytes(&bytes, &mut back)
        .unwrap();
    assert_eq!(back.state, Some(custom.state::<f32>().unwrap()));
    for slot in ["", "a.b"] {
        let custom = Custom {
            slot: slot.into(),
            state: None,
        };
        let e = m.save_checkpoint_to_bytes(&custom, 1).unwrap_err();
        assert!(e.to_string().contains("slot name"), "{e}");
    }
}
