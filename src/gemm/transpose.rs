//! Packing a panel whose rows lie along the depth (`x.ds == 1`: the rows of `a` in `x · W`,
//! the rows of `W` read transposed in `dy · Wᵀ`) is a transpose: `W` rows of `kc` values
//! become `kc` groups of `W`. Element by element it took 7% of the M configuration's step
//! (`perf record`); here, on x86-64 with AVX (whenever an AVX2 or AVX-512 kernel runs), 8
//! rows by 8 depths at a time through eight vector registers. Only 4-byte values, moved
//! as bits: the same result as the element loop, bit for bit.

use core::arch::x86_64::*;

use super::View;

/// Whether [`panel`] can pack a full panel of `w` rows of `T` on this CPU.
#[inline(always)]
pub(super) fn applies<T>(w: usize) -> bool {
    // AVX2 and FMA are what `Isa::Avx2` and `Isa::Avx512` require; the result is cached
    // by std after the first query
    size_of::<T>() == 4 && w % 8 == 0 && is_x86_feature_detected!("avx")
}

/// `panel[p * w + i] = x(r + i, p0 + p)` for `i < w`, `p < kc`, where [`applies`] holds.
#[inline(always)]
pub(super) fn panel<T: Copy>(
    panel: &mut [T],
    x: View<T>,
    r: usize,
    p0: usize,
    kc: usize,
    w: usize,
) {
    debug_assert!(applies::<T>(w) && x.ds == 1);
    let rows = |i: usize| &x.data[(r + i) * x.rs + p0..][..kc];
    let full = kc / 8 * 8;
    let out = &mut panel[..kc * w];
    for g in (0..w).step_by(8) {
        let src: [&[T]; 8] = core::array::from_fn(|i| rows(g + i));
        // SAFETY: `applies` checked that the CPU has AVX and that `T` is 4 bytes; the
        // loads read `src[i][p..p + 8]` and the stores write `out[(p + d) * w + g..][..8]`
        // for `p + 8 <= full <= kc` and `g + 8 <= w`, inside the slices.
        unsafe { blocks(&src, out, full, w, g) };
        for p in full..kc {
            for (i, s) in src.iter().enumerate() {
                out[p * w + g + i] = s[p];
            }
        }
    }
}

/// The 8 × 8 blocks of depths `0..full` (a multiple of 8) of the rows `src`, transposed
/// into `out` at column `g` of rows `w` wide.
#[target_feature(enable = "avx")]
unsafe fn blocks<T>(src: &[&[T]; 8], out: &mut [T], full: usize, w: usize, g: usize) {
    let o = out.as_mut_ptr().cast::<f32>();
    for p in (0..full).step_by(8) {
        // SAFETY: see `panel`; unaligned loads and stores.
        unsafe {
            macro_rules! ld {
                ($i:expr) => {
                    _mm256_loadu_ps(src[$i].as_ptr().cast::<f32>().add(p))
                };
            }
            macro_rules! st {
                ($d:expr, $v:expr) => {
                    _mm256_storeu_ps(o.add((p + $d) * w + g), $v)
                };
            }
            let (r0, r1, r2, r3) = (ld!(0), ld!(1), ld!(2), ld!(3));
            let (r4, r5, r6, r7) = (ld!(4), ld!(5), ld!(6), ld!(7));
            let t0 = _mm256_unpacklo_ps(r0, r1);
            let t1 = _mm256_unpackhi_ps(r0, r1);
            let t2 = _mm256_unpacklo_ps(r2, r3);
            let t3 = _mm256_unpackhi_ps(r2, r3);
            let t4 = _mm256_unpacklo_ps(r4, r5);
            let t5 = _mm256_unpackhi_ps(r4, r5);
            let t6 = _mm256_unpacklo_ps(r6, r7);
            let t7 = _mm256_unpackhi_ps(r6, r7);
            // depths 0 and 4 of rows 0..4 in s0, 1 and 5 in s1, ...; rows 4..8 in s4..s8
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            st!(0, _mm256_permute2f128_ps::<0x20>(s0, s4));
            st!(1, _mm256_permute2f128_ps::<0x20>(s1, s5));
            st!(2, _mm256_permute2f128_ps::<0x20>(s2, s6));
            st!(3, _mm256_permute2f128_ps::<0x20>(s3, s7));
            st!(4, _mm256_permute2f128_ps::<0x31>(s0, s4));
            st!(5, _mm256_permute2f128_ps::<0x31>(s1, s5));
            st!(6, _mm256_permute2f128_ps::<0x31>(s2, s6));
            st!(7, _mm256_permute2f128_ps::<0x31>(s3, s7));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{applies, panel};
    use crate::gemm::View;
    use alloc::vec::Vec;

    /// The vector transpose writes what the element loop of `pack` writes, for every
    /// panel width a kernel uses with 4-byte values, depths around the 8-wide blocks,
    /// rows with a stride and a starting depth.
    #[test]
    fn equals_the_element_loop() {
        if !applies::<f32>(8) {
            return;
        }
        for w in [8usize, 16, 32] {
            for kc in [1usize, 7, 8, 9, 16, 23, 256] {
                let (rs, r, p0) = (kc + 5, 3, 2);
                let x: Vec<f32> = (0..(r + w) * rs).map(|i| i as f32 * 0.5 - 7.0).collect();
                let v = View::new(&x, rs, 1);
                let mut got = alloc::vec![f32::NAN; kc * w + 4];
                panel(&mut got, v, r, p0, kc, w);
                for p in 0..kc {
                    for i in 0..w {
                        let want = x[(r + i) * rs + p0 + p];
                        assert_eq!(
                            got[p * w + i].to_bits(),
                            want.to_bits(),
                            "w {w} kc {kc} p {p} i {i}"
                        );
                    }
                }
                assert!(
                    got[kc * w..].iter().all(|v| v.is_nan()),
                    "wrote past the panel"
                );
            }
        }
    }
}
