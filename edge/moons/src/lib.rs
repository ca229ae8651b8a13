//! The two-moons workload that tapegrad trains on every target (the Cortex-M4, M0 and
//! RISC-V firmware, WebAssembly, the host): the same code, seed and arithmetic, so the
//! targets print the same loss trace.
//!
//! A 2-16-2 ReLU MLP learns two interleaving half circles with SGD and momentum. The data
//! is a stream: each step draws a fresh batch into two small buffers
//! ([`tapegrad::data::two_moons_into`]), so no data set sits in memory, and the held-out
//! points are drawn from a second generator. Everything is f32.
//!
//! Losses are printed with [`Line`], which formats with integer arithmetic: no float
//! formatting code is linked into firmware.
#![no_std]

extern crate alloc;

use core::fmt;

use tapegrad::data::two_moons_into;
use tapegrad::ndarray::{s, Array1, Array2, ArrayD, ArrayView2, Axis};
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;
use tapegrad::{GradHandles, Handle};

/// What to train.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Seeds the initial weights, the training stream and the held-out stream.
    pub seed: u64,
    /// Rows per step (the run-time batch axis's bound).
    pub batch: usize,
    /// Steps per epoch: the loss printed is the mean over an epoch's steps.
    pub steps_per_epoch: usize,
    /// Epochs.
    pub epochs: usize,
    /// Held-out points for the accuracy.
    pub held_out: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Uniform noise on each coordinate.
    pub noise: f32,
    /// SGD learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
}

/// The configuration every target runs (and whose traces are compared).
///
/// A batch of 8 fits the Cortex-M4 firmware's 12 KiB heap: its peak, reached in
/// `compile` while the graph and the new machine coexist, was 11,376 B (16,828 B at a
/// batch of 32 and 12,900 B at 16; measured by `edge/firmware`).
pub const CONFIG: Config = Config {
    seed: 3,
    batch: 8,
    steps_per_epoch: 20,
    epochs: 20,
    held_out: 200,
    hidden: 16,
    noise: 0.15,
    lr: 0.1,
    momentum: 0.9,
};

/// A model being trained: the compiled machine, its optimizer and the batch buffers.
pub struct Moons {
    cfg: Config,
    m: Machine<f32>,
    opt: Sgd,
    x: Handle,
    y: Handle,
    loss: Handle,
    class: Handle,
    grads: GradHandles,
    xbuf: Array2<f32>,
    ybuf: Array1<f32>,
    stream: StdRng,
    steps: usize,
}

/// The layers' initial values `[w1, b1, w2, b2]`, in a frame of their own: the four
/// fallible results inlined into `Moons::new` took 700 bytes more of its frame on a
/// Cortex-M4 (on the micro:bit the stack and the heap share 16 KiB).
#[inline(never)]
///
/// One loop over the shapes: four `?` in a row each dropped what came before on their
/// own error path (1.2 KB of flash on a Cortex-M4); here one `Vec` is dropped.
fn initial_values(hidden: usize, rng: &mut StdRng) -> Result<[Option<ArrayD<f32>>; 4], Error> {
    let mut v: [Option<ArrayD<f32>>; 4] = Default::default();
    let shapes = [[2, hidden], [hidden, 0], [hidden, 2], [2, 0]];
    for (k, (out, [a, b])) in v.iter_mut().zip(shapes).enumerate() {
        // weights (k even) Kaiming-uniform, drawn in order from `rng`; biases zero
        *out = Some(if k % 2 == 0 {
            init::kaiming_uniform(Shape::from([a, b]), rng)?
        } else {
            init::zeros(Shape::from([a]))?
        });
    }
    Ok(v)
}

impl Moons {
    /// Builds the graph, its gradients and the machine (planned once for `cfg.batch`
    /// rows), and the initial weights from `cfg.seed`.
    ///
    /// # Errors
    /// What `grad` or `compile` return (none for a valid `cfg`).
    pub fn new(cfg: Config) -> Result<Self, Error> {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let [Some(w1), Some(b1), Some(w2), Some(b2)] = initial_values(cfg.hidden, &mut rng)? else {
            unreachable!("initial_values fills all four")
        };
        let g = Graph::<f32>::new();
        let x = g.input("x", (Dim::upto(cfg.batch), 2));
        let y = g.input("y", Dim::upto(cfg.batch));
        let (w1, b1) = (g.param("w1", w1), g.param("b1", b1));
        let (w2, b2) = (g.param("w2", w2), g.param("b2", b2));
        let logits = (x.matmul(w1) + b1).relu().matmul(w2) + b2;
        let loss = logits.cross_entropy(y);
        let class = logits.argmax(-1, false);
        let grads = g.grad(loss, &g.params())?;
        let m = g.compile(&[loss, class], &grads)?;
        Ok(Moons {
            cfg,
            m,
            opt: Sgd::new(cfg.lr).momentum(cfg.momentum),
            x: x.handle(),
            y: y.handle(),
            loss: loss.handle(),
            class: class.handle(),
            grads: grads.handles(),
            xbuf: Array2::zeros((cfg.batch, 2)),
            ybuf: Array1::zeros(cfg.batch),
            stream: StdRng::seed_from_u64(cfg.seed.wrapping_add(1)),
            steps: 0,
        })
    }

    /// One SGD step on a fresh batch; returns the batch's loss (before the update).
    ///
    /// # Errors
    /// What the machine or optimizer return (none here).
    pub fn step(&mut self) -> Result<f32, Error> {
        two_moons_into(
            self.xbuf.view_mut(),
            self.ybuf.view_mut(),
            self.cfg.noise,
            &mut self.stream,
        )?;
        self.m.feed(self.x, &self.xbuf)?;
        self.m.feed(self.y, &self.ybuf)?;
        self.m.run()?;
        self.opt.step(&mut self.m, &self.grads)?;
        self.steps += 1;
        self.m.item(self.loss)
    }

    /// An epoch of `cfg.steps_per_epoch` steps; returns their mean loss.
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn epoch(&mut self) -> Result<f32, Error> {
        let mut sum = 0.0;
        for _ in 0..self.cfg.steps_per_epoch {
            sum += self.step()?;
        }
        Ok(sum / self.cfg.steps_per_epoch as f32)
    }

    /// Classifies `points` (`[n, 2]`, any `n`) into `out` (0 or 1 each), through the same
    /// machine in batches of up to `cfg.batch` rows.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if `out` is not `n` long; what the machine returns.
    pub fn classify(&mut self, points: ArrayView2<'_, f32>, out: &mut [u8]) -> Result<(), Error> {
        let n = points.nrows();
        if out.len() != n {
            return Err(Error::Mismatch {
                what: "classify",
                reason: alloc::format!("{n} points but room for {} classes", out.len()),
                caller: tapegrad::Caller::here(),
            });
        }
        let training = self.m.training();
        self.m.set_training(false);
        let rows = self.cfg.batch;
        for (chunk, out) in points
            .axis_chunks_iter(Axis(0), rows)
            .zip(out.chunks_mut(rows))
        {
            self.m.feed(self.x, &chunk)?;
            // the loss is an output too: feed labels of the right length (their values
            // do not matter for the classes)
            self.m.feed(self.y, &self.ybuf.slice(s![..chunk.nrows()]))?;
            self.m.run()?;
            for (o, c) in out.iter_mut().zip(self.m.value(self.class)?.iter()) {
                *o = u8::from(*c != 0.0);
            }
        }
        self.m.set_training(training);
        Ok(())
    }

    /// Accuracy on `cfg.held_out` fresh points from their own stream: `(right, total)`.
    ///
    /// # Errors
    /// As [`classify`](Self::classify).
    pub fn accuracy(&mut self) -> Result<(usize, usize), Error> {
        let mut held_out = StdRng::seed_from_u64(self.cfg.seed.wrapping_add(2));
        let (mut right, total) = (0, self.cfg.held_out);
        let rows = self.cfg.batch;
        let (mut x, mut y) = (Array2::zeros((rows, 2)), Array1::zeros(rows));
        let mut classes = alloc::vec![0u8; rows];
        let mut done = 0;
        while done < total {
            let n = (total - done).min(rows);
            let (xs, ys) = (x.slice_mut(s![..n, ..]), y.slice_mut(s![..n]));
            two_moons_into(xs, ys, self.cfg.noise, &mut held_out)?;
            self.classify(x.slice(s![..n, ..]), &mut classes[..n])?;
            let labels = y.iter().take(n);
            right += classes
                .iter()
                .zip(labels)
                .filter(|(c, l)| f32::from(**c) == **l)
                .count();
            done += n;
        }
        Ok((right, total))
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The compiled machine (for its memory report).
    pub fn machine(&self) -> &Machine<f32> {
        &self.m
    }
}

/// A trace line, `epoch 3 loss 0.7409`, formatted with integer arithmetic (the loss
/// rounded to 4 decimals), so firmware links no float formatting.
pub struct Line {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The epoch's mean loss.
    pub loss: f32,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {} loss ", self.epoch)?;
        Fixed4(self.loss).fmt(f)
    }
}

/// An epoch's mean loss as its f32 bits, `epoch 3 loss_bits 3e42459e`: what two targets
/// compare when they must agree bit for bit (a host built without `std`, which uses the
/// portable kernels and the `libm` crate, agrees with the firmware).
pub struct Bits {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The epoch's mean loss.
    pub loss: f32,
}

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "epoch {} loss_bits {:08x}",
            self.epoch,
            self.loss.to_bits()
        )
    }
}

/// A value rounded to 4 decimals by integer arithmetic (`nan`, and `inf` beyond ±400,000).
pub struct Fixed4(pub f32);

impl fmt::Display for Fixed4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            return f.write_str("nan");
        }
        if !(-4.0e5..=4.0e5).contains(&v) {
            return f.write_str(if v < 0.0 { "-inf" } else { "inf" });
        }
        let sign = if v < 0.0 { "-" } else { "" };
        // f32 → u32 truncates; +0.5 rounds half up. Exact enough at 4 decimals below 4e5.
        let scaled = (v.abs() * 10_000.0 + 0.5) as u32;
        write!(f, "{sign}{}.{:04}", scaled / 10_000, scaled % 10_000)
    }
}
