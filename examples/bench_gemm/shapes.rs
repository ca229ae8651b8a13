//! The matrix products of one mlp-step training step (`examples/bench.rs`), as tapegrad's
//! `matmul` runs them, and the same product through matrixmultiply's `sgemm`. Shared by
//! `examples/bench_gemm/mod.rs` and `benches/gemm.rs`.
//!
//! A layer `x · W` (`x` `[batch, in]`, `W` `[in, out]`) runs forward `x · W`; its VJP
//! (`src/ops/matmul.rs`) runs the weight gradient `xᵀ · dy` with `x` read transposed in
//! place (`a_t`), and the input gradient `dy · Wᵀ` with `W` read transposed (`b_t`). The
//! first layer's input gradient is recorded but not compiled (`x` is an input, and no
//! output needs it), so a step of `n` layers runs `3n - 1` products: 8 for L, 5 for M.

/// One product `c[m, n] = op(a) · op(b)`: `a` is `[m, k]` or, if `a_t`, stored `[k, m]`;
/// `b` is `[k, n]` or, if `b_t`, stored `[n, k]`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a_t: bool,
    pub b_t: bool,
    /// `forward`, `weight-grad` or `input-grad`, and the layer (from 1).
    pub role: &'static str,
    pub layer: usize,
}

impl Gemm {
    /// Multiply-adds times 2.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }

    /// `MxKxN`.
    pub fn label(&self) -> String {
        format!("{}x{}x{}", self.m, self.k, self.n)
    }
}

/// Layer sizes and batch of the mlp-step configurations these products come from.
pub const CONFIGS: [(&str, &[usize], usize); 3] = [
    ("S", &[64, 32, 10], 32),
    ("M", &[784, 128, 10], 64),
    ("L", &[784, 1024, 1024, 10], 256),
];

/// The products of one step of an MLP of layer `sizes` on `batch` rows: the forward
/// products in layer order, then the backward ones from the last layer down.
pub fn step_gemms(sizes: &[usize], batch: usize) -> Vec<Gemm> {
    let layer = |i: usize| (sizes[i], sizes[i + 1]);
    let mut v: Vec<Gemm> = (0..sizes.len() - 1)
        .map(|i| {
            let (d_in, d_out) = layer(i);
            Gemm {
                m: batch,
                k: d_in,
                n: d_out,
                a_t: false,
                b_t: false,
                role: "forward",
                layer: i + 1,
            }
        })
        .collect();
    for i in (0..sizes.len() - 1).rev() {
        let (d_in, d_out) = layer(i);
        // dW = xᵀ · dy: `x` stored [batch, in] read as [in, batch]
        v.push(Gemm {
            m: d_in,
            k: batch,
            n: d_out,
            a_t: true,
            b_t: false,
            role: "weight-grad",
            layer: i + 1,
        });
        // dx = dy · Wᵀ: `W` stored [in, out] read as [out, in]
        if i > 0 {
            v.push(Gemm {
                m: batch,
                k: d_out,
                n: d_in,
                a_t: false,
                b_t: true,
                role: "input-grad",
                layer: i + 1,
            });
        }
    }
    v
}

/// `len` values in [-1, 1) from a linear congruential generator.
pub fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// `g` through matrixmultiply's `sgemm`, the transposed sides read through their strides
/// (free, as for tapegrad's packing). Uses the threads `MATMUL_NUM_THREADS` gave it when
/// the process first called it (matrixmultiply's `threading` feature).
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn sgemm(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (m, k, n) = (g.m, g.k, g.n);
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "sgemm {}: operands too short",
        g.label()
    );
    let (rsa, csa) = if g.a_t { (1, m) } else { (k, 1) };
    let (rsb, csb) = if g.b_t { (1, k) } else { (n, 1) };
    // SAFETY: the strides address `a` as [m, k] and `b` as [k, n] within their lengths
    // (checked above) and `c` as [m, n] row-major.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

/// Operands, outputs (tapegrad's, matrixmultiply's) and scratch of `g` for `threads`.
pub struct Buffers {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub c: Vec<f32>,
    pub c_mm: Vec<f32>,
    pub scratch: Vec<f32>,
}

impl Buffers {
    pub fn new(g: &Gemm, threads: usize) -> Buffers {
        let len = tapegrad::__bench::gemm_scratch_len_f32(g.m, g.k, g.n, threads);
        Buffers {
            a: values(g.m * g.k, 1),
            b: values(g.k * g.n, 2),
            c: vec![0.0; g.m * g.n],
            c_mm: vec![0.0; g.m * g.n],
            scratch: vec![0.0; len],
        }
    }

    /// tapegrad's product into `c`.
    pub fn tapegrad(&mut self, g: &Gemm) -> tapegrad::Result<()> {
        tapegrad::__bench::gemm_f32(
            g.m,
            g.k,
            g.n,
            &self.a,
            g.a_t,
            &self.b,
            g.b_t,
            &mut self.c,
            &mut self.scratch,
        )
    }

    /// matrixmultiply's product into `c_mm`.
    pub fn matrixmultiply(&mut self, g: &Gemm) {
        sgemm(g, &self.a, &self.b, &mut self.c_mm)
    }

    /// The largest difference between the two products, relative to the largest element
    /// (NaN if either has one).
    pub fn max_rel_diff(&self) -> f32 {
        let scale = self.c_mm.iter().fold(0.0f32, |s, x| s.max(x.abs()));
        let diff = self.c.iter().zip(&self.c_mm).fold(0.0f32, |d, (x, y)| {
            let e = (x - y).abs();
            if e.is_nan() || e > d {
                e
            } else {
                d
            }
        });
        diff / scale.max(f32::MIN_POSITIVE)
    }
}
