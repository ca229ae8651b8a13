//! Checkpoints that resume: 10 steps, a checkpoint, 10 more steps from it (in this
//! process, and in a fresh process) give bit for bit the weights of 20 uninterrupted
//! steps, for SGD with momentum, Adam and AdamW with schedules, on a model with dropout
//! (so the machine's random state is covered too).
#![cfg(feature = "std")]

use std::path::{Path, PathBuf};
use std::process::Command;

use tapegrad::nn::{Activation, MlpBuilder};
use tapegrad::optim::Resumable;
use tapegrad::prelude::*;
use tapegrad::rand::SeedableRng;
use tapegrad::{GradHandles, Handle};

#[path = "common/counting.rs"]
mod counting;
use counting::thread_allocs;

/// The run's halves: steps `0..HALF`, then `HALF..2 * HALF`.
const HALF: usize = 10;

/// The child's side of `resumes_in_a_fresh_process`: where it finds the checkpoints.
const DIR_VAR: &str = "TAPEGRAD_RESUME_DIR";

/// An MLP 4-8-8-3 with dropout 0.25, mean squared error; every process builds the same.
struct Model {
    g: Graph<f32>,
}

/// The compiled model, its input and target, and its gradients.
struct Run {
    m: Machine<f32>,
    x: Handle,
    t: Handle,
    grads: GradHandles,
}

impl Model {
    fn run(&self) -> Run {
        let mut rng = tapegrad::rand::rngs::StdRng::seed_from_u64(7);
        let g = &self.g;
        let mlp = MlpBuilder::new(&[4, 8, 8, 3])
            .activation(Activation::Tanh)
            .dropout(0.25)
            .build(g, "mlp", &mut rng);
        let x = g.input("x", [6, 4]);
        let t = g.input("t", [6, 3]);
        let loss = (mlp.forward(x) - t).square().mean();
        let grads = g.grad(loss, &mlp.params()).unwrap();
        let mut m = g.compile(&[loss], &grads).unwrap();
        m.seed(42);
        Run {
            m,
            x: x.handle(),
            t: t.handle(),
            grads: grads.handles(),
        }
    }
}

fn model() -> Model {
    Model { g: Graph::new() }
}

/// The batch of step `step`: a function of the step alone, so a resumed process feeds
/// what the uninterrupted one fed.
fn batch(step: usize) -> (ndarray::Array2<f32>, ndarray::Array2<f32>) {
    let s = step as f32;
    let x = ndarray::Array2::from_shape_fn((6, 4), |(i, j)| ((i * 4 + j) as f32 * 0.37 + s).sin());
    let t = ndarray::Array2::from_shape_fn((6, 3), |(i, j)| ((i + 2 * j) as f32 * 0.21 - s).cos());
    (x, t)
}

/// The optimizers and schedules under test, by name.
#[derive(Clone, Copy, Debug)]
enum Kind {
    SgdMomentum,
    AdamCosine,
    AdamWStep,
}

const KINDS: [Kind; 3] = [Kind::SgdMomentum, Kind::AdamCosine, Kind::AdamWStep];

/// Trains `run` from step `from` to `to` with `opt`, the learning rate of `lr(step)`.
fn train<O: Optimizer<f32>>(
    run: &mut Run,
    opt: &mut O,
    lr: impl Fn(usize) -> f64,
    from: usize,
    to: usize,
) {
    for step in from..to {
        opt.set_lr(lr(step)).unwrap();
        let (x, t) = batch(step);
        run.m.feed(run.x, &x).unwrap();
        run.m.feed(run.t, &t).unwrap();
        run.m.run().unwrap();
        opt.step(&mut run.m, &run.grads).unwrap();
    }
}

/// Every parameter's bits, by name.
fn bits(m: &Machine<f32>) -> Vec<(String, Vec<u32>)> {
    let names: Vec<String> = m.params().map(|(n, _)| n.to_string()).collect();
    names
        .into_iter()
        .map(|n| {
            let v = m.value(m.handle_of(&n).unwrap()).unwrap();
            (n, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

/// What each kind does: `Some(path)` saves a checkpoint after the first half there and
/// stops; otherwise, from a checkpoint at `resume` (or from scratch), trains to the end.
/// Returns the weights' bits at the end.
fn scenario(kind: Kind, save: Option<&Path>, resume: Option<&Path>) -> Vec<(String, Vec<u32>)> {
    fn go<O: Optimizer<f32> + Resumable>(
        mut opt: O,
        lr: impl Fn(usize) -> f64,
        save: Option<&Path>,
        resume: Option<&Path>,
    ) -> Vec<(String, Vec<u32>)> {
        let model = model();
        let mut run = model.run();
        let mut from = 0;
        if let Some(path) = resume {
            from = run.m.load_checkpoint(path, &mut opt).unwrap();
            assert_eq!(from, HALF);
        }
        if let Some(path) = save {
            train(&mut run, &mut opt, &lr, 0, HALF);
            run.m.save_checkpoint(path, &opt, HALF).unwrap();
        } else {
            train(&mut run, &mut opt, &lr, from, 2 * HALF);
        }
        bits(&run.m)
    }
    match kind {
        Kind::SgdMomentum => {
            let sched = StepLr::new(0.05, 4, 0.5);
            let opt = Sgd::new(0.05).momentum(0.9).weight_decay(1e-3);
            go(opt, |s| sched.lr(s), save, resume)
        }
        Kind::AdamCosine => {
            let sched = WarmupCosineLr::new(1e-2, 1e-4, 5, 2 * HALF);
            go(Adam::new(sched.lr(0)), |s| sched.lr(s), save, resume)
        }
        Kind::AdamWStep => {
            let sched = StepLr::new(3e-3, 3, 0.7);
            let opt = AdamW::new(3e-3).betas(0.8, 0.99).weight_decay(0.1);
            go(opt, |s| sched.lr(s), save, resume)
        }
    }
}

/// A directory of its own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tapegrad-ckpt-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ckpt(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(format!("{kind:?}.ckpt"))
}

fn out(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(format!("{kind:?}.safetensors"))
}

#[test]
fn resumes_bit_for_bit_in_this_process() {
    let dir = TempDir::new("in-process");
    for kind in KINDS {
        let whole = scenario(kind, None, None);
        let path = ckpt(&dir.0, kind);
        let first_half = scenario(kind, Some(&path), None);
        assert_ne!(
            first_half, whole,
            "{kind:?}: the second half changes the weights"
        );
        let resumed = scenario(kind, None, Some(&path));
        assert_eq!(resumed, whole, "{kind:?}");
    }
}

/// The second half of `resumes_in_a_fresh_process`, in the process it starts.
#[test]
#[ignore = "run by resumes_in_a_fresh_process, in a process of its own"]
fn resume_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    for kind in KINDS {
        let model = model();
        let mut run = model.run();
        let resumed = scenario(kind, None, Some(&ckpt(&dir, kind)));
        // the weights travel back as a plain weights file
        for (name, v) in &resumed {
            let h = run.m.handle_of(name).unwrap();
            let shape = run.m.value(h).unwrap().raw_dim();
            let values = v.iter().map(|&b| f32::from_bits(b)).collect();
            let a = ndarray::ArrayD::from_shape_vec(shape, values).unwrap();
            run.m.set_param(h, &a).unwrap();
        }
        run.m.save(out(&dir, kind)).unwrap();
    }
}

#[test]
fn resumes_in_a_fresh_process() {
    let dir = TempDir::new("fresh");
    let mut wholes = Vec::new();
    for kind in KINDS {
        wholes.push(scenario(kind, None, None));
        scenario(kind, Some(&ckpt(&dir.0, kind)), None);
    }
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args(["resume_child", "--exact", "--ignored", "--test-threads=1"])
        .env(DIR_VAR, &dir.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (kind, whole) in KINDS.into_iter().zip(wholes) {
        let model = model();
        let mut run = model.run();
        run.m.load(out(&dir.0, kind)).unwrap();
        assert_eq!(bits(&run.m), whole, "{kind:?}");
    }
}

/// Without the machine's random state, dropout would draw other masks after a resume:
/// the checkpoint is what makes the runs agree, not the seed.
#[test]
fn the_random_state_travels_in_the_checkpoint() {
    let dir = TempDir::new("rng");
    let path = ckpt(&dir.0, Kind::AdamCosine);
    let whole = scenario(Kind::AdamCosine, None, None);
    scenario(Kind::AdamCosine, Some(&path), None);
    let sched = WarmupCosineLr::new(1e-2, 1e-4, 5, 2 * HALF);
    let mut opt = Adam::new(sched.lr(0));
    let model = model();
    let mut run = model.run();
    let from = run.m.load_checkpoint(&path, &mut opt).unwrap();
    run.m.seed(42); // the state of a fresh machine, not the one saved
    train(&mut run, &mut opt, |s| sched.lr(s), from, 2 * HALF);
    assert_ne!(bits(&run.m), whole);
}

/// The optimizer state a checkpoint brings is the state steps use: after a load and one
/// run, training steps allocate nothing (a fresh optimizer's first step allocates its
/// moments).
#[test]
fn steps_after_a_load_allocate_nothing() {
    let dir = TempDir::new("alloc");
    let path = ckpt(&dir.0, Kind::AdamWStep);
    scenario(Kind::AdamWStep, Some(&path), None);
    let adamw = || AdamW::new(3e-3).betas(0.8, 0.99).weight_decay(0.1);
    let model = model();
    let mut run = model.run();
    let mut opt = adamw();
    let from = run.m.load_checkpoint(&path, &mut opt).unwrap();
    let batches: Vec<_> = (from..from + 5).map(batch).collect();
    let feed = |run: &mut Run, (x, t): &(ndarray::Array2<f32>, ndarray::Array2<f32>)| {
        run.m.feed(run.x, x).unwrap();
        run.m.feed(run.t, t).unwrap();
        run.m.run().unwrap();
    };
    feed(&mut run, &batches[0]); // a machine's first run may allocate
    let before = thread_allocs();
    opt.step(&mut run.m, &run.grads).unwrap();
    for b in &batches[1..] {
        feed(&mut run, b);
        opt.step(&mut run.m, &run.grads).unwrap();
    }
    assert_eq!(thread_allocs() - before, 0);
    // the counter counts: without the checkpoint, the first step makes the moments
    let before = thread_allocs();
    adamw().step(&mut run.m, &run.grads).unwrap();
    assert!(thread_allocs() > before);
}

#[test]
fn a_checkpoint_is_written_whole_or_not_at_all() {
    let dir = TempDir::new("io");
    let path = ckpt(&dir.0, Kind::SgdMomentum);
    scenario(Kind::SgdMomentum, Some(&path), None);
    let before = std::fs::read(&path).unwrap();
    let model = model();
    let run = model.run();
    let opt = Sgd::new(0.05).momentum(0.9);
    // no such directory: an `Err` naming the path
    let missing = dir.0.join("no/such/dir/x.ckpt");
    let e = run.m.save_checkpoint(&missing, &opt, 0).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("no/such/dir"), "{e}");
    // a state of another machine: refused before anything is written
    let mut adam = Adam::new(0.01);
    {
        let g = Graph::<f32>::new();
        let v = g.param("v", tapegrad::init::zeros([2]).unwrap());
        let grads = g.grad(v.square().sum(), &[v]).unwrap();
        let mut m = g.compile(&[], &grads).unwrap();
        m.run().unwrap();
        adam.step(&mut m, &grads).unwrap();
    }
    assert!(run.m.save_checkpoint(&path, &adam, 0).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // nothing but the checkpoint in the directory: no temporary file left behind
    let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert_eq!(names.len(), 1);
}
