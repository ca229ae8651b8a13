//! A packed, register-blocked GEMM (the Goto/BLIS loop nest) that packs into scratch memory
//! the caller provides, so a training step allocates nothing.
//!
//! Every element of `c` is one chain of multiply-adds over `k` in order, starting from
//! zero: a later `kc` block reloads the partial sums from `c` rather than adding a block
//! sum to them. So the bits depend neither on the blocking nor on how the rows of `c` are
//! split over threads, only on the kernel (fused multiply-add or not), which is chosen once
//! per process.
//!
//! Thin products (at most [`THIN`](thin::THIN) rows, or a depth of at most `THIN`: a batch of one row
//! through a layer, or its weight gradient; or at most `THIN` columns of a small product:
//! a two-class output layer) skip packing, which would cost more than the product: they
//! stream the operands once (see `thin`) and take no scratch memory. They keep the one chain per
//! element, but for a few rows times a transposed `b`, which are dot products of
//! contiguous rows summed in [`LANES`](thin::LANES) interleaved partial sums. The bits still do not
//! depend on the thread count.

use core::mem::size_of;

use crate::scalar::Scalar;

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod direct;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) use direct::{gemm_small, small_fits};
mod kernel;
#[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
mod neon;
use kernel::{micro_portable, run};
#[cfg(feature = "rayon")]
mod split;
mod thin;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod transpose;
use thin::is_thin;

/// Micro-kernel tile (`mr × nr`) and cache blocking (`kc`, `mc`, `nc`) of one kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blocking {
    mr: usize,
    nr: usize,
    kc: usize,
    mc: usize,
    nc: usize,
}

const fn blocking(mr: usize, nr: usize, kc: usize, mc: usize, nc: usize) -> Blocking {
    Blocking { mr, nr, kc, mc, nc }
}

// Per instruction set and element type. A tile is 16 (AVX-512: 32 registers) or 12 (AVX2:
// 16 registers) vector accumulators, two vectors wide. kc = 256 and mc = 64 are
// matrixmultiply's; on a Zen 4, kc 128..320 and mc 64..256 measured the same within noise.
const PORTABLE_F32: Blocking = blocking(4, 4, 256, 64, 1024);
const PORTABLE_F64: Blocking = blocking(4, 4, 256, 64, 1024);
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX2_F32: Blocking = blocking(6, 16, 256, 72, 1024);
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX2_F64: Blocking = blocking(6, 8, 256, 72, 1024);
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX512_F32: Blocking = blocking(8, 32, 256, 64, 1024);
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX512_F64: Blocking = blocking(8, 16, 256, 64, 1024);
// NEON: 16 of the 32 vector registers accumulate (matrixmultiply's tiles and blocking).
#[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
const NEON_F32: Blocking = blocking(8, 8, 256, 64, 1024);
#[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
const NEON_F64: Blocking = blocking(8, 4, 256, 64, 1024);

/// The kernel versions compiled for this target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Isa {
    // Never chosen where NEON is (aarch64), but still tested there.
    #[cfg_attr(
        all(feature = "std", target_arch = "aarch64", target_feature = "neon"),
        allow(dead_code)
    )]
    Portable = 1,
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx2 = 2,
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx512 = 3,
    /// aarch64's baseline vectors, chosen at compile time.
    #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
    Neon = 4,
}

impl Isa {
    /// The best version this CPU runs, detected once.
    fn get() -> Isa {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            use core::sync::atomic::{AtomicU8, Ordering};
            static CHOSEN: AtomicU8 = AtomicU8::new(0);
            match CHOSEN.load(Ordering::Relaxed) {
                1 => Isa::Portable,
                2 => Isa::Avx2,
                3 => Isa::Avx512,
                _ => {
                    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
                    let isa = if avx2 && is_x86_feature_detected!("avx512f") {
                        Isa::Avx512
                    } else if avx2 {
                        Isa::Avx2
                    } else {
                        Isa::Portable
                    };
                    CHOSEN.store(isa as u8, Ordering::Relaxed);
                    isa
                }
            }
        }
        #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
        {
            Isa::Neon
        }
        #[cfg(not(any(
            all(feature = "std", target_arch = "x86_64"),
            all(feature = "std", target_arch = "aarch64", target_feature = "neon")
        )))]
        Isa::Portable
    }

    fn blocking<T>(self) -> Blocking {
        let f32 = size_of::<T>() == 4;
        match self {
            Isa::Portable if f32 => PORTABLE_F32,
            Isa::Portable => PORTABLE_F64,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Isa::Avx2 if f32 => AVX2_F32,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Isa::Avx2 => AVX2_F64,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Isa::Avx512 if f32 => AVX512_F32,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Isa::Avx512 => AVX512_F64,
            #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon if f32 => NEON_F32,
            #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon => NEON_F64,
        }
    }
}

/// Packed buffers start at this many bytes' alignment (one cache line, one AVX-512 vector).
const ALIGN: usize = 64;

/// A matrix read as `[rows, depth]`: element `(r, p)` is `data[r * rs + p * ds]`, and one of
/// the strides is 1.
#[derive(Clone, Copy)]
struct View<'a, T> {
    data: &'a [T],
    rs: usize,
    ds: usize,
}

impl<'a, T> View<'a, T> {
    fn new(data: &'a [T], rs: usize, ds: usize) -> Self {
        View { data, rs, ds }
    }

    /// The rows from `r` on.
    fn from(self, r: usize) -> Self {
        View {
            data: &self.data[r * self.rs..],
            ..self
        }
    }
}

/// How one call runs: whether it computes `cᵀ = op(b)ᵀ · op(a)ᵀ` (better tiles when `n` is
/// small), how many rows of `c` each thread takes, and the scratch per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    swap: bool,
    threads: usize,
    rows: usize,
    per_thread: usize,
    /// Elements of one packed panel of `op(b)` that the threads pack together and share
    /// (a split product, not swapped); 0 when each thread packs its own.
    shared: usize,
    /// Depths of that panel: all of `k` where the panel of all depths is small
    /// ([`SHARED_ALL`]), else at most the blocking's `kc`. (Only a split shares one.)
    #[cfg(feature = "rayon")]
    kc: usize,
}

impl Plan {
    /// Elements of scratch the plan uses.
    fn len(&self) -> usize {
        self.shared + self.threads * self.per_thread
    }
}

/// Multiply-adds from which a product may be split over threads. The split costs two
/// hand-offs to the crew (`par/crew.rs`, well under a microsecond each while its threads
/// spin) per product, or per block of `kc` depths when the packed panel of `b` is large
/// ([`SHARED_ALL`]), and each thread reading the part of the panel the others packed (a
/// 512 KiB buffer written on one CPU reads on the other in 7.2 µs here, 6.8 µs from the
/// reader's own cache).
/// Measured on a 2-vCPU AVX-512 virtual machine (Zen 4), 2 threads against 1: 64 × 784 ×
/// 128 (2²² multiply-adds) 135 → 95 µs, 256 × 1024 × 10 (2²¹) 187 → 105 µs, 1024 × 256 ×
/// 1024 5.1 → 2.5 ms; the M configuration's step (two products of 2²²·⁶) 280 → 232–238
/// µs (best of 40 batches of 200 steps, five processes each; 2²³ left M on one thread).
/// There, for seconds at a time, the M step at 2 threads took 580–740 µs (2.3× its time
/// on one thread) with its threads pinned to different CPUs, steal time unchanged, while
/// the step on one thread slowed too in the same minutes (280 → 330+ µs): the host's, not
/// a cost of the split; pieces four times finer did not help.
/// A product called inside a piece of another split kernel run on the crew runs whole on
/// that piece's thread (`par::kernel_threads`).
const PAR_MIN: usize = 1 << 20;

fn plan<T>(blk: Blocking, m: usize, k: usize, n: usize, threads: usize) -> Plan {
    plan_with::<T>(blk, m, k, n, threads, true)
}

/// [`plan`], sharing a panel of `op(b)` for all depths at once only if `all_depths`
/// allows it.
fn plan_with<T>(
    blk: Blocking,
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
    all_depths: bool,
) -> Plan {
    let tiles = |rows: usize, cols: usize| {
        rows.div_ceil(blk.mr) * blk.mr * (cols.div_ceil(blk.nr) * blk.nr)
    };
    // Swapped, `c` is written transposed, element by element: worth it only when it saves
    // much padding (`n` below the tile width).
    let swap = 4 * tiles(n, m) < 3 * tiles(m, n);
    // Threads take whole tiles of rows of `c`, which are columns of the swapped product.
    let unit = if swap { blk.nr } else { blk.mr };
    // saturating: a product planned for a budget check may be too large to run
    let madds = m.saturating_mul(k).saturating_mul(n);
    let t = if cfg!(feature = "rayon") && threads > 1 && madds >= PAR_MIN {
        threads.min(m.div_ceil(unit))
    } else {
        1
    };
    let rows = (m.div_ceil(t).div_ceil(unit) * unit).min(m);
    let t = m.div_ceil(rows.max(1));
    let align = ALIGN / size_of::<T>();
    let mut kc = k.min(blk.kc);
    let (per_thread, shared) = if madds == 0 {
        (0, 0)
    } else if cfg!(feature = "rayon") && t > 1 && !swap {
        // each thread its block of `a`; one panel of `b` for all
        let width = n.min(blk.nc).div_ceil(blk.nr) * blk.nr;
        // (each thread's panel of `a` grows with the depth too: at most 4 * kc)
        let bytes = width.saturating_mul(k).saturating_mul(size_of::<T>());
        if all_depths && bytes <= SHARED_ALL && k <= 4 * blk.kc {
            kc = k;
        }
        let a_len = rows.min(blk.mc).div_ceil(blk.mr) * blk.mr * kc;
        (align - 1 + a_len, align - 1 + width * kc)
    } else {
        (packs::<T>(blk, swap, rows, k, n), 0)
    };
    Plan {
        swap,
        threads: t,
        rows,
        per_thread,
        shared,
        #[cfg(feature = "rayon")]
        kc,
    }
}

/// The plan for up to `threads` threads that `have` elements of scratch hold. Short of
/// scratch (planned for another size: a run-time axis fed fewer rows, which may take the
/// other orientation), first the shared panels per block of depths, then fewer threads.
fn fitting<T>(blk: Blocking, m: usize, k: usize, n: usize, threads: usize, have: usize) -> Plan {
    let mut p = plan::<T>(blk, m, k, n, threads);
    if cfg!(feature = "rayon") && p.len() > have {
        p = plan_with::<T>(blk, m, k, n, threads, false);
    }
    while cfg!(feature = "rayon") && p.threads > 1 && p.len() > have {
        p = plan_with::<T>(blk, m, k, n, p.threads - 1, false);
    }
    p
}

/// Bytes up to which a split product packs the shared panel of `op(b)` for all its depths
/// at once (at most 4 `kc` of them), so that its threads meet twice per block of `nc`
/// columns rather than twice per block of `kc` depths too.
/// The M configuration's forward product 64 × 784 × 128 (a 392 KiB panel instead of four
/// of 128 KiB): its step at 2 threads 214-219 -> 199-206 µs, at 1 thread unchanged (the
/// step's other products are not split). 512 KiB: half a Zen 4 core's L2; the L
/// configuration's panels (1,024 columns) stay per block, and its peak RSS under 25 MiB
/// (with `kc` = 1,024 everywhere, so all depths at once: 27.4 MiB).
const SHARED_ALL: usize = 512 << 10;

/// Elements of the packed panels of one thread computing `rows` rows of a product of
/// depth `k` and `n` columns, swapped or not (non-decreasing in each size).
fn packs<T>(blk: Blocking, swap: bool, rows: usize, k: usize, n: usize) -> usize {
    let (mk, nk) = if swap { (n, rows) } else { (rows, n) };
    let kc = k.min(blk.kc);
    let a_len = mk.min(blk.mc).div_ceil(blk.mr) * blk.mr * kc;
    let b_len = nk.min(blk.nc).div_ceil(blk.nr) * blk.nr * kc;
    let align = ALIGN / size_of::<T>();
    align - 1 + a_len.div_ceil(align) * align + b_len
}

/// Elements of scratch `gemm` needs for these sizes when split over up to `threads` threads,
/// and for any smaller sizes (a run-time axis fed fewer rows): a smaller product may
/// choose the other orientation, whose panels can be larger, and runs on one thread if
/// the scratch holds no more.
pub(crate) fn scratch_len<T: Scalar>(m: usize, k: usize, n: usize, threads: usize) -> usize {
    scratch_len_with::<T>(Isa::get().blocking::<T>(), m, k, n, threads)
}

fn scratch_len_with<T>(blk: Blocking, m: usize, k: usize, n: usize, threads: usize) -> usize {
    if m == 0 || k == 0 || n == 0 || is_thin(m, k, n) {
        return 0;
    }
    let p = plan::<T>(blk, m, k, n, threads);
    let one = packs::<T>(blk, false, m, k, n).max(packs::<T>(blk, true, m, k, n));
    p.len().max(one)
}

/// `c[m, n]` (contiguous row-major, overwritten) `= op(a) · op(b)`, where `a` is `[m, k]`
/// row-major or, if `a_t`, stored as `[k, m]`; `b` is `[k, n]` or, if `b_t`, stored as
/// `[n, k]`. Packs into `scratch` and allocates nothing; uses fewer threads than
/// [`crate::par::threads`] allows if `scratch` is shorter than [`scratch_len`] asked for them.
///
/// # Panics
/// If a slice is shorter than its matrix, or `scratch` shorter than one thread needs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_t: bool,
    b: &[T],
    b_t: bool,
    c: &mut [T],
    scratch: &mut [T],
) {
    // a small product on AVX-512 (the S configuration's first layer and its weight
    // gradient): read in place, without packing; the packed kernel's bits. Not from 2^20
    // multiply-adds on, even on one thread: there it gains little on the packed GEMM (4-7%
    // on 512 x 128 x 128 and the like) and loses much where `b`'s rows are 4 KiB apart and
    // few (512 x 8 x 1024: 77 -> 45 GFLOP/s).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if !b_t
        && m.saturating_mul(k).saturating_mul(n) < PAR_MIN
        && direct::gemm_small(m, k, n, a, a_t, b, c)
    {
        return;
    }
    let isa = Isa::get();
    let threads = crate::par::kernel_threads();
    gemm_with(
        isa,
        isa.blocking::<T>(),
        threads,
        m,
        k,
        n,
        a,
        a_t,
        b,
        b_t,
        c,
        scratch,
    );
}

#[allow(clippy::too_many_arguments)]
fn gemm_with<T: Scalar>(
    isa: Isa,
    blk: Blocking,
    threads: usize,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_t: bool,
    b: &[T],
    b_t: bool,
    c: &mut [T],
    scratch: &mut [T],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(T::zero());
        return;
    }
    if is_thin(m, k, n) {
        let a = if a_t {
            View::new(a, 1, m)
        } else {
            View::new(a, k, 1)
        };
        match isa {
            Isa::Portable => thin::thin::<T, false>((m, k, n), a, b, b_t, c),
            // SAFETY: `Isa::Avx2` and `Isa::Avx512` are only chosen, or tested, where the CPU
            // has AVX2 and FMA.
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unsafe { x86::thin((m, k, n), a, b, b_t, c) },
            // Fused like the NEON micro-kernel (`f32::mul_add` is one `fmadd` there).
            #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon => thin::thin::<T, true>((m, k, n), a, b, b_t, c),
        }
        return;
    }
    let p = fitting::<T>(blk, m, k, n, threads, scratch.len());
    assert!(scratch.len() >= p.len(), "gemm scratch too short");
    let a = if a_t {
        View::new(a, 1, m)
    } else {
        View::new(a, k, 1)
    };
    // `b` read as `op(b)ᵀ`, `[n, k]`.
    let bt = if b_t {
        View::new(b, k, 1)
    } else {
        View::new(b, 1, n)
    };
    // Rows `r0..` of `c`, and the scratch of one thread.
    let part = |r0: usize, c: &mut [T], scratch: &mut [T]| {
        let rows = c.len() / n;
        let (a, s) = (a.from(r0), &mut scratch[..p.per_thread]);
        if p.swap {
            dispatch(isa, blk, (n, k, rows), bt, Rhs::View(a), c, (1, n), s);
        } else {
            dispatch(isa, blk, (rows, k, n), a, Rhs::View(bt), c, (n, 1), s);
        }
    };
    #[cfg(feature = "rayon")]
    if p.shared > 0 {
        split::split_sharing_b(isa, blk, p, (m, k, n), a, bt, c, scratch);
        return;
    }
    #[cfg(feature = "rayon")]
    if p.threads > 1 {
        let rows = p.rows;
        crate::par::pieces(c, rows * n, scratch, p.per_thread, &[], 0, &|i, c, s, _| {
            part(i * rows, c, s)
        });
        return;
    }
    part(0, c, scratch);
}

/// The right operand of one thread's product, `op(b)ᵀ` read as `[n, k]`: to be packed by
/// [`run`] itself, or depths `pc..pc + k` already packed into strips by the caller.
#[derive(Clone, Copy)]
enum Rhs<'a, T> {
    View(View<'a, T>),
    // Only a split product packs for its threads: without threads, one loop nest.
    #[cfg(feature = "rayon")]
    Packed {
        bp: &'a [T],
        pc: usize,
    },
}

/// Runs the kernel version `isa` on `c[i * rsc + j * csc] = Σ_p a(i, p) · b(j, p)`.
#[allow(clippy::too_many_arguments)]
fn dispatch<T: Scalar>(
    isa: Isa,
    blk: Blocking,
    mkn: (usize, usize, usize),
    a: View<T>,
    b: Rhs<T>,
    c: &mut [T],
    csr: (usize, usize),
    s: &mut [T],
) {
    #[cfg(all(
        feature = "std",
        any(
            target_arch = "x86_64",
            all(target_arch = "aarch64", target_feature = "neon")
        )
    ))]
    let f32 = size_of::<T>() == 4;
    match isa {
        // Both portable tiles are the 4 x 4 of `micro_portable`.
        Isa::Portable => run::<T, 4, 4>(micro_portable::<T>, blk, mkn, a, b, c, csr, s),
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Isa::Avx2 if f32 => {
            const B: Blocking = AVX2_F32;
            // SAFETY: `Isa::Avx2` is only chosen, or tested, where the CPU has AVX2 and FMA.
            unsafe { x86::avx2::<T, { B.mr }, { B.nr }>(blk, mkn, a, b, c, csr, s) }
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Isa::Avx2 => {
            const B: Blocking = AVX2_F64;
            // SAFETY: as above.
            unsafe { x86::avx2::<T, { B.mr }, { B.nr }>(blk, mkn, a, b, c, csr, s) }
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Isa::Avx512 if f32 => {
            const B: Blocking = AVX512_F32;
            // SAFETY: `Isa::Avx512` is only chosen, or tested, where the CPU has AVX-512F.
            unsafe { x86::avx512::<T, { B.mr }, { B.nr }>(blk, mkn, a, b, c, csr, s) }
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        Isa::Avx512 => {
            const B: Blocking = AVX512_F64;
            // SAFETY: as above.
            unsafe { x86::avx512::<T, { B.mr }, { B.nr }>(blk, mkn, a, b, c, csr, s) }
        }
        #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon if f32 => {
            const B: Blocking = NEON_F32;
            let micro = neon::micro::<T, { B.mr }, { B.nr }>;
            run::<T, { B.mr }, { B.nr }>(micro, blk, mkn, a, b, c, csr, s)
        }
        #[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon => {
            const B: Blocking = NEON_F64;
            let micro = neon::micro::<T, { B.mr }, { B.nr }>;
            run::<T, { B.mr }, { B.nr }>(micro, blk, mkn, a, b, c, csr, s)
        }
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86;

#[cfg(test)]
mod tests;
