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

#[cfg(all(feature = "std", target_arch = "aarch64", target_feature = "neon"))]
mod neon;
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
}

impl Plan {
    /// Elements of scratch the plan uses.
    fn len(&self) -> usize {
        self.shared + self.threads * self.per_thread
    }
}

/// Multiply-adds from which a product may be split over threads. The split costs two
/// hand-offs to the crew (`par/crew.rs`, well under a microsecond each while its threads
/// spin) per block of `kc` depths, and the packed panel of `b` crossing between cores.
/// Measured on a 2-vCPU AVX-512 virtual machine (Zen 4), 2 threads against 1: 64 × 784 ×
/// 128 (2²² multiply-adds) 135 → 95 µs, 256 × 1024 × 10 (2²¹) 187 → 105 µs, 1024 × 256 ×
/// 1024 5.1 → 2.5 ms; some processes there ran the small products slower on 2 threads than
/// on 1 (see the crew's notes), so the split starts where a piece is still several
/// microseconds of work.
const PAR_MIN: usize = 1 << 23;

fn plan<T>(blk: Blocking, m: usize, k: usize, n: usize, threads: usize) -> Plan {
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
    let kc = k.min(blk.kc);
    let (per_thread, shared) = if madds == 0 {
        (0, 0)
    } else if cfg!(feature = "rayon") && t > 1 && !swap {
        // each thread its block of `a`; one panel of `b` for all
        let a_len = rows.min(blk.mc).div_ceil(blk.mr) * blk.mr * kc;
        let b_len = n.min(blk.nc).div_ceil(blk.nr) * blk.nr * kc;
        (align - 1 + a_len, align - 1 + b_len)
    } else {
        (packs::<T>(blk, swap, rows, k, n), 0)
    };
    Plan {
        swap,
        threads: t,
        rows,
        per_thread,
        shared,
    }
}

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
    let isa = Isa::get();
    let threads = crate::par::threads();
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
    let mut p = plan::<T>(blk, m, k, n, threads);
    while cfg!(feature = "rayon") && p.threads > 1 && p.len() > scratch.len() {
        p = plan::<T>(blk, m, k, n, p.threads - 1);
    }
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
        split_sharing_b(isa, blk, p, (m, k, n), a, bt, c, scratch);
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

/// A product split over `p.threads` threads by rows of `c`, as BLIS splits it: for each
/// block of `kc` depths and `nc` columns, the threads first pack the panel of `op(b)`
/// together, each a share of its `nr`-wide strips, then each multiplies its rows by the
/// whole panel, packing only its own rows of `a`. Each thread packing all of `op(b)` for
/// itself (the swapped split still does) would copy it once per thread: for the L
/// configuration's forward products, a third of the work per thread. Each element of
/// `c` is the same chain of multiply-adds as on one thread.
#[cfg(feature = "rayon")]
#[allow(clippy::too_many_arguments)]
fn split_sharing_b<T: Scalar>(
    isa: Isa,
    blk: Blocking,
    p: Plan,
    (m, k, n): (usize, usize, usize),
    a: View<T>,
    bt: View<T>,
    c: &mut [T],
    scratch: &mut [T],
) {
    debug_assert!(!p.swap && p.threads > 1 && m > 0);
    let align = ALIGN / size_of::<T>();
    let (bs, rest) = scratch.split_at_mut(p.shared);
    let skip = bs.as_ptr().align_offset(ALIGN).min(align - 1);
    let bs = &mut bs[skip..];
    for (jc, nc) in blocks(n, blk.nc) {
        for (pc, kc) in blocks(k, blk.kc) {
            // strips per thread, packed side by side: strip `s` starts at `s * nr * kc`
            let strips = nc.div_ceil(blk.nr);
            let per = strips.div_ceil(p.threads) * blk.nr;
            let bp = &mut bs[..strips * blk.nr * kc];
            crate::par::pieces(bp, per * kc, &mut [], 0, &[], 0, &|i, dst, _, _| {
                let j = i * per;
                pack_rhs(blk.nr, dst, bt.from(jc + j), per.min(nc - j), pc, kc);
            });
            let bp = &*bp;
            let rows = p.rows;
            crate::par::pieces(c, rows * n, rest, p.per_thread, &[], 0, &|i, c, s, _| {
                let mkn = (c.len() / n, kc, nc);
                let b = Rhs::Packed { bp, pc };
                dispatch(isa, blk, mkn, a.from(i * rows), b, &mut c[jc..], (n, 1), s);
            });
        }
    }
}

/// `pack` into strips `nr` wide, the tile width of one of the kernels.
#[cfg(feature = "rayon")]
fn pack_rhs<T: Scalar>(nr: usize, dst: &mut [T], x: View<T>, rows: usize, p0: usize, kc: usize) {
    match nr {
        4 => pack::<T, 4>(dst, x, rows, p0, kc),
        8 => pack::<T, 8>(dst, x, rows, p0, kc),
        16 => pack::<T, 16>(dst, x, rows, p0, kc),
        32 => pack::<T, 32>(dst, x, rows, p0, kc),
        _ => unreachable!("no kernel's tiles are {nr} wide"),
    }
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

/// The micro-kernel without vector instructions beyond the target's baseline: `micro`
/// for a 4 x 4 tile without fused multiply-adds (the same operations in the same order,
/// so the same bits), written out so that its sixteen accumulators stay in registers.
/// At opt-level "s" LLVM does not unroll `micro`'s loops and keeps its accumulator array
/// on the stack: measured on QEMU's Cortex-M4 (`edge/firmware`, feature `gemm-timing`),
/// a 64 x 64 x 64 f32 product took 11.86 instructions per multiply-add that way and 2.12
/// with this kernel, packing included (its loop: 28 instructions per 16 multiply-adds).
#[inline(never)]
fn micro_portable<T: Scalar>(ap: &[T], bp: &[T], c: &mut [T], rsc: usize, load: bool) {
    // Row `i` of the tile, loaded or zero.
    let row = |i: usize| -> [T; 4] {
        if load {
            let c = &c[i * rsc..][..4];
            [c[0], c[1], c[2], c[3]]
        } else {
            [T::zero(); 4]
        }
    };
    let (mut c0, mut c1, mut c2, mut c3) = (row(0), row(1), row(2), row(3));
    // `acc[j] += a * b[j]` for the four columns; constant indices only, so the arrays
    // become sixteen scalars.
    #[inline(always)]
    fn madd<T: Scalar>(acc: &mut [T; 4], a: T, b: &[T; 4]) {
        acc[0] = a * b[0] + acc[0];
        acc[1] = a * b[1] + acc[1];
        acc[2] = a * b[2] + acc[2];
        acc[3] = a * b[3] + acc[3];
    }
    for (a, b) in ap.chunks_exact(4).zip(bp.chunks_exact(4)) {
        let b = &[b[0], b[1], b[2], b[3]];
        madd(&mut c0, a[0], b);
        madd(&mut c1, a[1], b);
        madd(&mut c2, a[2], b);
        madd(&mut c3, a[3], b);
    }
    let mut put = |i: usize, acc: [T; 4]| {
        let c = &mut c[i * rsc..][..4];
        c[0] = acc[0];
        c[1] = acc[1];
        c[2] = acc[2];
        c[3] = acc[3];
    };
    put(0, c0);
    put(1, c1);
    put(2, c2);
    put(3, c3);
}

/// The loop nest and micro-kernel compiled for wider vectors; the caller checks the CPU.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
    use super::{micro, run, Blocking, Rhs, View};
    use crate::scalar::Scalar;

    /// `super::thin` with fused multiply-adds, vectorized for AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn thin<T: Scalar>(
        mkn: (usize, usize, usize),
        a: View<T>,
        b: &[T],
        b_t: bool,
        c: &mut [T],
    ) {
        super::thin::thin::<T, true>(mkn, a, b, b_t, c)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<T: Scalar, const MR: usize, const NR: usize>(
        blk: Blocking,
        mkn: (usize, usize, usize),
        a: View<T>,
        b: Rhs<T>,
        c: &mut [T],
        csr: (usize, usize),
        s: &mut [T],
    ) {
        // SAFETY: we run on a CPU with AVX2 and FMA (this function's contract).
        let micro = |ap: &_, bp: &_, c: &mut _, rsc, load| unsafe {
            micro_avx2::<T, MR, NR>(ap, bp, c, rsc, load)
        };
        run::<T, MR, NR>(micro, blk, mkn, a, b, c, csr, s)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    unsafe fn micro_avx2<T: Scalar, const MR: usize, const NR: usize>(
        ap: &[T],
        bp: &[T],
        c: &mut [T],
        rsc: usize,
        load: bool,
    ) {
        micro::<T, MR, NR, true>(ap, bp, c, rsc, load)
    }

    // The loop nest without AVX-512: with it LLVM turns the strided stores of packing into
    // scatters, which are slow.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx512<T: Scalar, const MR: usize, const NR: usize>(
        blk: Blocking,
        mkn: (usize, usize, usize),
        a: View<T>,
        b: Rhs<T>,
        c: &mut [T],
        csr: (usize, usize),
        s: &mut [T],
    ) {
        // SAFETY: we run on a CPU with AVX-512F (this function's contract).
        let micro = |ap: &_, bp: &_, c: &mut _, rsc, load| unsafe {
            micro_avx512::<T, MR, NR>(ap, bp, c, rsc, load)
        };
        run::<T, MR, NR>(micro, blk, mkn, a, b, c, csr, s)
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline(never)]
    unsafe fn micro_avx512<T: Scalar, const MR: usize, const NR: usize>(
        ap: &[T],
        bp: &[T],
        c: &mut [T],
        rsc: usize,
        load: bool,
    ) {
        micro::<T, MR, NR, true>(ap, bp, c, rsc, load)
    }
}

/// One thread's product: the loops over `nc` columns and `kc` depths, packing `b` (unless
/// the caller packed it), then [`block`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(feature = "rayon"), allow(clippy::infallible_destructuring_match))]
fn run<T: Scalar, const MR: usize, const NR: usize>(
    micro: impl Fn(&[T], &[T], &mut [T], usize, bool),
    blk: Blocking,
    (m, k, n): (usize, usize, usize),
    a: View<T>,
    b: Rhs<T>,
    c: &mut [T],
    (rsc, csc): (usize, usize),
    scratch: &mut [T],
) {
    debug_assert!(blk.mr == MR && blk.nr == NR && blk.mc % MR == 0 && blk.nc % NR == 0);
    let align = ALIGN / size_of::<T>();
    let skip = scratch.as_ptr().align_offset(ALIGN).min(align - 1);
    let b = match b {
        Rhs::View(b) => b,
        #[cfg(feature = "rayon")]
        Rhs::Packed { bp, pc } => {
            let ap = &mut scratch[skip..];
            let c = (c, 0);
            return block::<T, MR, NR>(&micro, blk, (m, k, n), a, pc, bp, c, (rsc, csc), ap);
        }
    };
    let kc_max = k.min(blk.kc);
    let a_len = m.min(blk.mc).div_ceil(MR) * MR * kc_max;
    let (ap, bp) = scratch[skip..].split_at_mut(a_len.div_ceil(align) * align);
    for (jc, nc) in blocks(n, blk.nc) {
        for (pc, kc) in blocks(k, blk.kc) {
            let bp = &mut bp[..nc.div_ceil(NR) * NR * kc];
            pack::<T, NR>(bp, b.from(jc), nc, pc, kc);
            let c = (&mut *c, jc * csc);
            block::<T, MR, NR>(&micro, blk, (m, kc, nc), a, pc, bp, c, (rsc, csc), ap);
        }
    }
}

/// `c (+)= a · b` for all `m` rows of `a` (depths `pc..pc + kc`) and the `nc` columns
/// packed in `bp`, into `c.0` from element `c.1` on: the loop over `mc` rows, packing `a`
/// into `ap`, then over the `nr`- and `mr`-wide strips calling the micro-kernel `micro`.
/// Adds to `c` unless `pc` is 0.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<T: Scalar, const MR: usize, const NR: usize>(
    micro: &impl Fn(&[T], &[T], &mut [T], usize, bool),
    blk: Blocking,
    (m, kc, nc): (usize, usize, usize),
    a: View<T>,
    pc: usize,
    bp: &[T],
    (c, c0): (&mut [T], usize),
    (rsc, csc): (usize, usize),
    ap: &mut [T],
) {
    for (ic, mc) in blocks(m, blk.mc) {
        let ap = &mut ap[..mc.div_ceil(MR) * MR * kc];
        pack::<T, MR>(ap, a.from(ic), mc, pc, kc);
        // Strip `jr / NR` of `bp` starts at `jr * kc`, and likewise for `ap`.
        for jr in (0..nc).step_by(NR) {
            let bp = &bp[jr * kc..][..NR * kc];
            for ir in (0..mc).step_by(MR) {
                let (i, ap) = (ic + ir, &ap[ir * kc..][..MR * kc]);
                let tile = (MR.min(m - i), NR.min(nc - jr));
                let c = &mut c[c0 + i * rsc + jr * csc..];
                if csc == 1 && tile == (MR, NR) {
                    micro(ap, bp, c, rsc, pc > 0);
                } else {
                    // Edge tiles and transposed `c` go through a whole tile.
                    let mut t = [[T::zero(); NR]; MR];
                    if pc > 0 {
                        load(&mut t, c, (rsc, csc), tile);
                    }
                    micro(ap, bp, t.as_flattened_mut(), NR, pc > 0);
                    store(&t, c, (rsc, csc), tile);
                }
            }
        }
    }
}

/// `(start, len)` of the blocks of `step` that cover `0..n` (without the divisions of
/// `step_by`, which show in small products).
fn blocks(n: usize, step: usize) -> impl Iterator<Item = (usize, usize)> {
    core::iter::successors(Some(0), move |&s| Some(s + step))
        .take_while(move |&s| s < n)
        .map(move |s| (s, step.min(n - s)))
}

/// Packs rows `0..rows`, depths `p0..p0 + kc` of `x` into panels of `W` rows, each panel
/// depth-major (`W` values per depth), zero past the last row.
// Not inlined: inside the loop nest it made LLVM spill the loop state (60 ns more per call,
// measured), and copying gains nothing from the wider vectors.
#[inline(never)]
fn pack<T: Scalar, const W: usize>(dst: &mut [T], x: View<T>, rows: usize, p0: usize, kc: usize) {
    for r in (0..rows).step_by(W) {
        let (panel, w) = (&mut dst[r * kc..][..W * kc], W.min(rows - r));
        // Partial panels avoid `copy_from_slice` and `fill` of a variable length: calls to
        // memcpy and memset per depth dominate small products.
        if x.rs == 1 {
            for (p, d) in panel.chunks_exact_mut(W).enumerate() {
                let src = &x.data[r + (p0 + p) * x.ds..];
                if w == W {
                    d.copy_from_slice(&src[..W]);
                } else {
                    for (i, d) in d.iter_mut().enumerate() {
                        *d = if i < w { src[i] } else { T::zero() };
                    }
                }
            }
        } else {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if w == W && transpose::applies::<T>(W) {
                transpose::panel(panel, x, r, p0, kc, W);
                continue;
            }
            if w < W {
                panel.fill(T::zero());
            }
            for (i, row) in (r..r + w).enumerate() {
                let src = &x.data[row * x.rs + p0..][..kc];
                for (d, &v) in panel.chunks_exact_mut(W).zip(src) {
                    d[i] = v;
                }
            }
        }
    }
}

/// The `MR × NR` tile whose row `i` is `c[i * rsc..][..NR]` `=`, or if `load` `+=`, the
/// product of packed panels: `kc` steps of `MR` values of `a` and `NR` of `b`.
#[inline(always)]
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
fn micro<T: Scalar, const MR: usize, const NR: usize, const FUSED: bool>(
    ap: &[T],
    bp: &[T],
    c: &mut [T],
    rsc: usize,
    load: bool,
) {
    let mut acc = [[T::zero(); NR]; MR];
    if load {
        for (i, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&c[i * rsc..][..NR]);
        }
    }
    // LLVM must unroll the rows, vectorize the columns and keep `acc` in registers. Which
    // loop order gets it to do so depends on the shape (checked in the assembly): with 8
    // rows and rows outermost it vectorizes across rows instead, with gathers; with 6 rows
    // and columns outermost it hoists all broadcasts and spills.
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        // As arrays, so that the loops below have constant trip counts.
        let a: &[T; MR] = a.try_into().unwrap();
        let b: &[T; NR] = b.try_into().unwrap();
        if MR % 4 == 0 {
            for (j, &b) in b.iter().enumerate() {
                for (acc, &a) in acc.iter_mut().zip(a) {
                    acc[j] = if FUSED {
                        a.mul_add(b, acc[j])
                    } else {
                        a * b + acc[j]
                    };
                }
            }
        } else {
            for (acc, &a) in acc.iter_mut().zip(a) {
                for (acc, &b) in acc.iter_mut().zip(b) {
                    *acc = if FUSED {
                        a.mul_add(b, *acc)
                    } else {
                        a * b + *acc
                    };
                }
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        c[i * rsc..][..NR].copy_from_slice(acc);
    }
}

/// Copies the `rows × cols` part of a tile of `c` into `acc`.
#[inline(always)]
fn load<T: Scalar, const MR: usize, const NR: usize>(
    acc: &mut [[T; NR]; MR],
    c: &[T],
    (rsc, csc): (usize, usize),
    (rows, cols): (usize, usize),
) {
    if csc == 1 && cols == NR {
        for (i, acc) in acc.iter_mut().enumerate().take(rows) {
            acc.copy_from_slice(&c[i * rsc..][..NR]);
        }
        return;
    }
    for (i, acc) in acc.iter_mut().enumerate().take(rows) {
        for (j, acc) in acc.iter_mut().enumerate().take(cols) {
            *acc = c[i * rsc + j * csc];
        }
    }
}

/// Copies `acc` into the `rows × cols` part of a tile of `c`.
#[inline(always)]
fn store<T: Scalar, const MR: usize, const NR: usize>(
    acc: &[[T; NR]; MR],
    c: &mut [T],
    (rsc, csc): (usize, usize),
    (rows, cols): (usize, usize),
) {
    if csc == 1 && cols == NR {
        for (i, acc) in acc.iter().enumerate().take(rows) {
            c[i * rsc..][..NR].copy_from_slice(acc);
        }
        return;
    }
    for (i, acc) in acc.iter().enumerate().take(rows) {
        for (j, &acc) in acc.iter().enumerate().take(cols) {
            c[i * rsc + j * csc] = acc;
        }
    }
}

#[cfg(test)]
mod tests;
