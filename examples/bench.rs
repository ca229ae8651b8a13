//! The mlp-step benchmark of DESIGN.md, one line per configuration and thread count:
//!
//! `mlp-step cfg=S threads=1 median_us=… gflops=… peak_rss_kb=…`
//!
//! Run with `cargo run --release --example bench` (all of S, M, L at 1 and 2 threads), or
//! `-- S 2` for one configuration. Each configuration runs in a child process of its own,
//! so that its peak RSS (VmHWM, Linux) is its own.
//!
//! `-- batch` compiles L once with a run-time batch axis of up to 256 rows, at 1 thread,
//! and prints one line per number of rows fed to that one machine:
//! `mlp-step cfg=L threads=1 batch=N median_us=…` for N in 1, 16, 64, 256 (`BENCH_ROWS=1,8`
//! for others), then `mlp-run …` lines for `run` alone (forward and backward, no
//! optimizer step) on the same machine, and `mlp-forward …` lines for the forward pass
//! alone (a machine compiled for the logits).
//!
//! `-- cnn` runs the cnn-step configuration `lenet` (`bench_cnn/mod.rs`) at 1 and 2
//! threads, each in a child process (`-- cnn lenet 2` for one):
//! `cnn-step cfg=lenet threads=1 median_us=… peak_rss_kb=…`.
//!
//! `-- infer` times inference (feed, run, read the logits) of the digits MLP and CNN
//! (`bench_infer/mod.rs`) at batch 1 and 64 on machines compiled for up to 64 rows, at 1
//! and 2 threads, each in a child process (`-- infer 2` for one):
//! `infer model=mlp batch=1 threads=1 median_us=… system=tapegrad`.
//!
//! `-- gemm` times the matrix products of one S, one M and one L step (`bench_gemm/shapes.rs`)
//! through tapegrad's GEMM and matrixmultiply's `sgemm`, at 1 and 2 threads, each in a
//! child process (`-- gemm 2` for one), one line per product and a total per step:
//! `gemm cfg=L role=forward layer=1 shape=256x784x1024 ta=0 tb=0 threads=1 tapegrad_us=…
//! matrixmultiply_us=… tapegrad_gflops=… ratio=…` (`ratio`: tapegrad's time over
//! matrixmultiply's), `gemm-total cfg=L threads=1 …`. `cargo bench --bench gemm` is the
//! criterion version.

use std::process::{Command, ExitCode};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use tapegrad::ndarray::{Axis, Slice};
use tapegrad::nn::MlpBuilder;
use tapegrad::prelude::*;
use tapegrad::Dim;

#[path = "bench_cnn/mod.rs"]
mod cnn;
#[path = "bench_gemm/mod.rs"]
mod gemm;
#[path = "bench_infer/mod.rs"]
mod infer;

/// Layer sizes and batch of a configuration.
fn config(name: &str) -> Option<(&'static [usize], usize)> {
    match name {
        "S" => Some((&[64, 32, 10], 32)),
        "M" => Some((&[784, 128, 10], 64)),
        "L" => Some((&[784, 1024, 1024, 10], 256)),
        _ => None,
    }
}

/// Multiply-adds ×2 of the GEMMs of one step: forward, plus the weight gradient of every
/// layer and the input gradient of every layer but the first.
fn flops(sizes: &[usize], batch: usize) -> f64 {
    let layers = sizes.windows(2).map(|w| (w[0] * w[1]) as f64);
    let fwd: f64 = layers.clone().sum();
    let first = (sizes[0] * sizes[1]) as f64;
    2.0 * batch as f64 * (3.0 * fwd - first)
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The mlp-step network recorded on `g`, its gradients, and fixed random inputs and
/// labels for the bound's rows.
struct Net<'g> {
    x: Tensor<'g, f32>,
    y: Tensor<'g, f32>,
    logits: Tensor<'g, f32>,
    loss: Tensor<'g, f32>,
    grads: Grads<'g, f32>,
    data: (ndarray::Array2<f32>, ndarray::Array1<f32>),
}

impl<'g> Net<'g> {
    fn record(
        g: &'g Graph<f32>,
        sizes: &[usize],
        x_shape: impl Into<Shape>,
        y_shape: impl Into<Shape>,
    ) -> tapegrad::Result<Net<'g>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let x = g.input("x", x_shape);
        let y = g.input("y", y_shape);
        let logits = MlpBuilder::new(sizes).build(g, "mlp", &mut rng).forward(x);
        let loss = logits.cross_entropy(y);
        let grads = g.grad(loss, &g.params())?;
        let (rows, classes) = (y.shape().dims()[0], sizes[sizes.len() - 1]);
        let xb = ndarray::Array2::from_shape_fn((rows, sizes[0]), |_| rng.random_range(-1.0..1.0));
        let yb = ndarray::Array1::from_shape_fn(rows, |_| rng.random_range(0..classes) as f32);
        Ok(Net {
            x,
            y,
            logits,
            loss,
            grads,
            data: (xb, yb),
        })
    }
}

fn run_one(name: &str, threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    let (sizes, batch) = config(name).ok_or("unknown configuration (use S, M or L)")?;
    tapegrad::set_threads(threads);
    let g = Graph::<f32>::new();
    let net = Net::record(&g, sizes, [batch, sizes[0]], [batch])?;
    // Handles, so that the graph can move into the machine: the parameters' values are
    // then held once, not twice (what set the peak RSS of L).
    let Net {
        x,
        y,
        loss,
        grads,
        data: (xb, yb),
        ..
    } = net;
    let (x, y, loss, grads) = (x.handle(), y.handle(), loss.handle(), &grads.handles());
    let mut m = g.into_machine(&[loss], grads)?;
    let mut opt = Sgd::new(0.01);
    let mut step = |m: &mut Machine<f32>| -> tapegrad::Result<()> {
        m.feed(x, &xb)?;
        m.feed(y, &yb)?;
        m.run()?;
        opt.step(m, grads)
    };
    let per_step = flops(sizes, batch);
    let median = median_secs(|| step(&mut m))?;
    println!(
        "mlp-step cfg={name} threads={threads} median_us={:.1} gflops={:.2} peak_rss_kb={}",
        median * 1e6,
        per_step / median / 1e9,
        peak_rss_kb()
    );
    let mem = m.memory();
    eprintln!(
        "  memory cfg={name}: params {} B, grads {} B, inputs {} B, workspace {} B, \
         outputs {} B, constants {} B, scratch {} B, metadata {} B, total {} B, \
         unplanned {} B; loss {:.4}",
        mem.params,
        mem.grads,
        mem.inputs,
        mem.workspace,
        mem.outputs,
        mem.constants,
        mem.scratch,
        mem.metadata,
        mem.total(),
        mem.unplanned,
        m.item(loss)?
    );
    Ok(())
}

/// The median seconds of `step` over about a second of work, after a short warm-up.
fn median_secs(
    mut step: impl FnMut() -> tapegrad::Result<()>,
) -> Result<f64, Box<dyn std::error::Error>> {
    for _ in 0..5 {
        step()?;
    }
    let t = Instant::now();
    step()?;
    let once = t.elapsed().as_secs_f64();
    let n = ((1.0 / once) as usize).clamp(20, 20_000);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[n / 2])
}

/// L compiled once with a run-time batch axis of up to 256 rows, at 1 thread: the median
/// step for each number of rows fed to that one machine.
fn batch_sizes() -> Result<(), Box<dyn std::error::Error>> {
    let (sizes, bound) = config("L").ok_or("no L configuration")?;
    tapegrad::set_threads(1);
    let g = Graph::<f32>::new();
    let net = Net::record(&g, sizes, (Dim::upto(bound), sizes[0]), Dim::upto(bound))?;
    let (x, y, h, grads) = (net.x, net.y, net.logits, &net.grads);
    let mut m = g.compile(&[net.loss], grads)?;
    let (xb, yb) = net.data;
    let mut opt = Sgd::new(0.01);
    let list: Vec<usize> = match std::env::var("BENCH_ROWS") {
        Ok(v) => v.split(',').filter_map(|r| r.parse().ok()).collect(),
        Err(_) => vec![1, 16, 64, 256],
    };
    let rows_of = |rows: usize| {
        (
            xb.slice_axis(Axis(0), Slice::from(..rows)),
            yb.slice_axis(Axis(0), Slice::from(..rows)),
        )
    };
    // The step, then the run alone (forward + backward, no update), on the same machine.
    for update in [true, false] {
        for &rows in &list {
            let (xr, yr) = rows_of(rows);
            let median = median_secs(|| {
                m.feed(x, &xr)?;
                m.feed(y, &yr)?;
                m.run()?;
                if update {
                    opt.step(&mut m, grads)?;
                }
                Ok(())
            })?;
            if update {
                println!(
                    "mlp-step cfg=L threads=1 batch={rows} median_us={:.1} gflops={:.2}",
                    median * 1e6,
                    flops(sizes, rows) / median / 1e9
                );
            } else {
                println!(
                    "mlp-run cfg=L threads=1 batch={rows} median_us={:.1}",
                    median * 1e6
                );
            }
        }
    }
    // The forward pass alone (serving, generating): a machine for the logits only.
    let mut fwd = g.compile(&[h], &[])?;
    for &rows in &list {
        let (xr, _) = rows_of(rows);
        let median = median_secs(|| {
            fwd.feed(x, &xr)?;
            fwd.run()
        })?;
        println!(
            "mlp-forward cfg=L threads=1 batch={rows} median_us={:.1}",
            median * 1e6
        );
    }
    Ok(())
}

/// Per-op overhead: a chain of 10,000 tiny elementwise ops (`t = tanh(t) * w`, shape [1]),
/// forward and backward, in ns per forward node and per tape step; and the time to
/// record, differentiate and compile a 100,000-node chain.
fn overhead() -> Result<(), Box<dyn std::error::Error>> {
    tapegrad::set_threads(1);
    let g = Graph::<f32>::new();
    let x = g.input("x", [1]);
    let w = g.param("w", ndarray::arr1(&[0.999f32]));
    let mut t = x;
    let nodes = 10_000;
    for _ in 0..nodes / 2 {
        t = t.tanh() * w;
    }
    let loss = t.sum();
    let grads = g.grad(loss, &[w])?;
    let mut m = g.compile(&[loss], &grads)?;
    m.feed(x, &ndarray::arr1(&[0.5f32]))?;
    m.run()?;
    let reps = 200;
    let start = Instant::now();
    for _ in 0..reps {
        m.run()?;
    }
    let per_run = start.elapsed().as_secs_f64() / reps as f64;
    println!(
        "op-overhead nodes={nodes} tape_steps={} ns_per_node={:.1} ns_per_step={:.1}",
        m.len(),
        per_run * 1e9 / nodes as f64,
        per_run * 1e9 / m.len() as f64
    );

    let start = Instant::now();
    let g = Graph::<f32>::new();
    let x = g.param("x", ndarray::arr1(&[0.5f32]));
    let mut t = x;
    for _ in 0..100_000 / 2 {
        t = t.tanh() * 0.999;
    }
    let recorded = start.elapsed().as_secs_f64();
    let gx = g.grad(t.sum(), &[x])?;
    let differentiated = start.elapsed().as_secs_f64();
    let mut m = g.compile(&[t], &gx)?;
    let compiled = start.elapsed().as_secs_f64();
    m.run()?;
    println!(
        "graph-100k nodes={} record_ms={:.1} grad_ms={:.1} compile_ms={:.1} run_ms={:.2}",
        g.len(),
        recorded * 1e3,
        (differentiated - recorded) * 1e3,
        (compiled - differentiated) * 1e3,
        (start.elapsed().as_secs_f64() - compiled) * 1e3
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("gemm") {
        return gemm::main(&args[1..]);
    }
    type Bench = fn() -> Result<(), Box<dyn std::error::Error>>;
    let special: Option<(&str, Bench)> = match args.first().map(String::as_str) {
        Some("overhead") => Some(("overhead", overhead)),
        Some("batch") => Some(("batch", batch_sizes)),
        _ => None,
    };
    if let Some((what, f)) = special {
        return match f() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench {what}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let [infer, threads] = &args[..] {
        if infer == "infer" {
            let threads = threads.parse().unwrap_or(1);
            return match infer::run(threads) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench infer {threads}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    if let [cnn, cfg, threads] = &args[..] {
        if cnn == "cnn" {
            let threads = threads.parse().unwrap_or(1);
            return match cnn::run(cfg, threads) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench cnn {cfg} {threads}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    if let [cfg, threads] = &args[..] {
        let threads = threads.parse().unwrap_or(1);
        return match run_one(cfg, threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench {cfg} {threads}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find this program to run the configurations");
        return ExitCode::FAILURE;
    };
    let first = args.first().map(String::as_str);
    if first == Some("cnn") || first == Some("infer") {
        let mut ok = true;
        for threads in ["1", "2"] {
            let status = match first {
                Some("cnn") => Command::new(&me).args(["cnn", "lenet", threads]).status(),
                _ => Command::new(&me).args(["infer", threads]).status(),
            };
            ok &= matches!(status, Ok(s) if s.success());
        }
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let mut ok = matches!(Command::new(&me).arg("overhead").status(), Ok(s) if s.success());
    for cfg in ["S", "M", "L"] {
        for threads in ["1", "2"] {
            let status = Command::new(&me).args([cfg, threads]).status();
            ok &= matches!(status, Ok(s) if s.success());
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
