//! The geometry of a convolution: its parameters, the sizes they give, and the shape
//! checks every conv op shares.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::shape::Shape;

/// Stride, padding, dilation and groups of a convolution, as `[height, width]` (a 1-D
/// convolution: height 1 with stride 1, no padding, dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    /// 1 or 2 spatial axes.
    pub(super) spatial: usize,
    pub(super) stride: [usize; 2],
    pub(super) padding: [usize; 2],
    pub(super) dilation: [usize; 2],
    pub(super) groups: usize,
}

/// The sizes of one convolution: batch `n`, input `[c, h, w]`, output `[o, oh, ow]`,
/// kernel `[kh, kw]`; per group `cg` input and `og` output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) cg: usize,
    pub(super) og: usize,
}

impl Sizes {
    /// Rows of one group's columns: `cg * kh * kw`.
    pub(super) fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }
    /// Output positions per channel.
    pub(super) fn p(&self) -> usize {
        self.oh * self.ow
    }
}

impl Geom {
    pub(super) fn name(&self) -> &'static str {
        if self.spatial == 1 {
            "conv1d"
        } else {
            "conv2d"
        }
    }

    /// `[n, c, h, w]` of an input (`[n, c, l]` is `[n, c, 1, l]`).
    pub(super) fn nchw(&self, s: &Shape, what: &str) -> core::result::Result<[usize; 4], String> {
        let d = s.dims();
        match (self.spatial, d) {
            (1, &[n, c, l]) => Ok([n, c, 1, l]),
            (2, &[n, c, h, w]) => Ok([n, c, h, w]),
            _ => Err(format!(
                "the {what} must be {}, got {s}",
                if self.spatial == 1 {
                    "[N, C, L] (rank 3)"
                } else {
                    "[N, C, H, W] (rank 4)"
                }
            )),
        }
    }

    /// `[o, cg, kh, kw]` of a weight.
    pub(super) fn weight(&self, s: &Shape) -> core::result::Result<[usize; 4], String> {
        if s.run().is_some() {
            return Err(format!("the weight {s} cannot have a run-time axis"));
        }
        let d = s.dims();
        match (self.spatial, d) {
            (1, &[o, cg, k]) => Ok([o, cg, 1, k]),
            (2, &[o, cg, kh, kw]) => Ok([o, cg, kh, kw]),
            _ => Err(format!(
                "the weight must be {}, got {s}",
                if self.spatial == 1 {
                    "[O, C/groups, K] (rank 3)"
                } else {
                    "[O, C/groups, KH, KW] (rank 4)"
                }
            )),
        }
    }

    /// The parameters' own checks, and the output extent of each spatial axis.
    pub(super) fn out_hw(
        &self,
        hw: [usize; 2],
        k: [usize; 2],
    ) -> core::result::Result<[usize; 2], String> {
        let axis = |i: usize| if self.spatial == 1 { 0 } else { i };
        if self.groups == 0 {
            return Err(String::from("groups must be at least 1, got 0"));
        }
        let mut out = [0; 2];
        for i in 0..2 {
            if self.stride[i] == 0 {
                return Err(format!(
                    "the stride must be at least 1, got {:?}",
                    self.user(self.stride)
                ));
            }
            if self.dilation[i] == 0 {
                return Err(format!(
                    "the dilation must be at least 1, got {:?}",
                    self.user(self.dilation)
                ));
            }
            let padded = hw[i].saturating_add(2 * self.padding[i]);
            let span = self.dilation[i]
                .saturating_mul(k[i].saturating_sub(1))
                .saturating_add(1);
            if k[i] == 0 || span > padded {
                return Err(format!(
                    "the kernel (extent {}, dilated {span}) is larger than the padded input \
                     (extent {}, padded {padded}) along spatial axis {}",
                    k[i],
                    hw[i],
                    axis(i)
                ));
            }
            out[i] = (padded - span) / self.stride[i] + 1;
        }
        Ok(out)
    }

    /// Per-axis parameters as the user gave them (only the length for 1-D).
    pub(super) fn user(&self, a: [usize; 2]) -> Vec<usize> {
        if self.spatial == 1 {
            vec![a[1]]
        } else {
            a.to_vec()
        }
    }

    /// The sizes of `conv(x, w)`, checked.
    pub(super) fn sizes(&self, x: &Shape, w: &Shape) -> core::result::Result<Sizes, String> {
        let xd = self.nchw(x, "input")?;
        if x.run().is_some_and(|r| r.axis != 0) {
            return Err(format!(
                "only the batch axis (0) may be a run-time axis, got {x}"
            ));
        }
        self.sizes_of(xd, self.weight(w)?)
    }

    /// The sizes of a convolution of `[n, c, h, w]` with `[o, cg, kh, kw]`, checked
    /// without allocating (the kernels call it at every run).
    pub(super) fn sizes_of(
        &self,
        [n, c, h, wd]: [usize; 4],
        [o, cg, kh, kw]: [usize; 4],
    ) -> core::result::Result<Sizes, String> {
        let [oh, ow] = self.out_hw([h, wd], [kh, kw])?;
        let g = self.groups;
        if c % g != 0 || o % g != 0 {
            return Err(format!(
                "groups ({g}) must divide the input channels ({c}) and the output channels ({o})"
            ));
        }
        if cg * g != c {
            return Err(format!(
                "the input has {c} channels, the weight expects {} ({cg} per group × {g} groups)",
                cg * g
            ));
        }
        Ok(Sizes {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            oh,
            ow,
            cg,
            og: o / g,
        })
    }

    /// `[n, o, (oh,) ow]` with the batch's run-time axis, if any.
    pub(super) fn out_shape(&self, z: &Sizes, batch: &Shape) -> Shape {
        let dims = if self.spatial == 1 {
            vec![z.n, z.o, z.ow]
        } else {
            vec![z.n, z.o, z.oh, z.ow]
        };
        Shape::with_dims_of(dims, batch.run())
    }

    /// Checks that `gy` is the output shape of a convolution of sizes `z`.
    pub(super) fn check_grad_out(
        &self,
        z: &Sizes,
        x: &Shape,
        gy: &Shape,
    ) -> core::result::Result<(), String> {
        let want = self.out_shape(z, x);
        if *gy != want || gy.bound() != x.bound() {
            return Err(format!("the output gradient must be {want}, got {gy}"));
        }
        Ok(())
    }

    pub(super) fn spatial_dims(&self, hw: [usize; 2]) -> Vec<usize> {
        self.user(hw)
    }
}
