//! The buffer plan: which buffer each tape step writes, decided once at compile time.
//!
//! Liveness over the tape: a step's buffer is free again after its last reader ran. A new
//! step takes the smallest free buffer that fits (best fit), or a new one; one larger than
//! itself only if no larger value is made while it lives (it would keep that buffer from
//! it). Leaves (inputs, parameters, constants) and requested outputs are pinned: never
//! reused. A view step (reshape, detach) writes nothing and shares its input's buffer,
//! which then lives as long as the view's readers too.

use alloc::vec;
use alloc::vec::Vec;

/// What the planner needs to know of one step.
pub(crate) struct StepInfo<'a> {
    /// Elements written.
    pub numel: usize,
    /// Positions of the steps read.
    pub inputs: &'a [u32],
    /// Shares input 0's buffer instead of writing one.
    pub view: bool,
    /// Never reused once written (a requested output). Leaves (no inputs) hold values
    /// from compile time on: they always get a buffer of their own, never reused.
    pub pinned: bool,
    /// Inputs (by position) whose buffer the kernel may overwrite with its output.
    pub in_place: &'a [usize],
}

/// The plan: each step's buffer and each buffer's size in elements.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub buf_of: Vec<u32>,
    pub sizes: Vec<usize>,
    /// Whether a step's buffer is never reused, so its value can be read after a run.
    pub kept: Vec<bool>,
    /// The step whose buffer a step's value lives in (itself unless it is a view).
    pub root: Vec<usize>,
    /// For a step computed in place, the input (by position) whose buffer it overwrites.
    pub in_place: Vec<Option<usize>>,
}

const FOREVER: usize = usize::MAX;

pub(crate) fn plan(steps: &[StepInfo<'_>]) -> Plan {
    let n = steps.len();
    // The step whose buffer a step's value lives in (itself unless it is a view).
    let mut root: Vec<usize> = (0..n).collect();
    for (i, s) in steps.iter().enumerate() {
        if s.view {
            root[i] = root[s.inputs[0] as usize];
        }
    }
    // The last step that reads each root's buffer.
    let mut last = vec![0usize; n];
    for (i, s) in steps.iter().enumerate() {
        for &j in s.inputs {
            let r = root[j as usize];
            last[r] = last[r].max(i);
        }
        if s.pinned || s.inputs.is_empty() {
            last[root[i]] = FOREVER;
        }
    }
    let mut buf_of = vec![0u32; n];
    let mut sizes: Vec<usize> = Vec::new();
    // Free buffers by (size, id), sorted: the best fit is the first at or above the size
    // wanted. A sorted `Vec` rather than a `BTreeSet`: compile time is not at stake, and
    // the tree's code is several KiB of every binary.
    let mut free: Vec<(usize, u32)> = Vec::new();
    let release = |free: &mut Vec<(usize, u32)>, key: (usize, u32)| {
        let at = free.partition_point(|&k| k < key);
        free.insert(at, key);
    };
    let mut in_place = vec![None; n];
    for (i, s) in steps.iter().enumerate() {
        // In place: an input read for the last time here, by this operand only, whose
        // buffer is an op's (not a leaf's) and exactly the output's size.
        let reuse = s.in_place.iter().copied().find(|&k| {
            let r = root[s.inputs[k] as usize];
            let alone = s.inputs.iter().filter(|&&p| root[p as usize] == r).count() == 1;
            last[r] == i && alone && !steps[r].inputs.is_empty() && steps[r].numel == s.numel
        });
        if s.view {
            buf_of[i] = buf_of[root[i]];
        } else if let Some(k) = reuse {
            buf_of[i] = buf_of[root[s.inputs[k] as usize]];
            in_place[i] = Some(k);
        } else {
            // A value kept after the run (an output, or what an output views) takes a free
            // buffer only of exactly its size: a larger one would be kept whole. Another
            // takes a larger one only if no larger value is made while it lives, which
            // may need that buffer (in an MLP's backward pass, the loss gradient
            // `[batch, classes]` sat in a freed `[batch, hidden]` buffer, and the next
            // `[batch, hidden]` gradient took a new one); else a new one of its own size.
            // Leaves always get their own.
            let larger_made = || {
                let during = steps.iter().take(last[i].saturating_add(1)).skip(i + 1);
                during
                    .filter(|t| !t.view && !t.inputs.is_empty())
                    .any(|t| t.numel > s.numel)
            };
            let at = free.partition_point(|&(n, _)| n < s.numel);
            let fit = free
                .get(at)
                .filter(|&&(n, _)| n == s.numel || (last[i] != FOREVER && !larger_made()));
            buf_of[i] = match (fit, s.inputs.is_empty()) {
                (Some(&(_, b)), false) => {
                    free.remove(at);
                    b
                }
                _ => {
                    sizes.push(s.numel);
                    (sizes.len() - 1) as u32
                }
            };
        }
        // Free what this step read for the last time (but the buffer it took over in
        // place); the output was placed first, so it never shares a buffer with its other
        // inputs.
        for (k, &j) in s.inputs.iter().enumerate() {
            let r = root[j as usize];
            let seen = s.inputs[..k].iter().any(|&p| root[p as usize] == r);
            if last[r] == i && !seen && in_place[i] != Some(k) {
                let b = buf_of[r];
                release(&mut free, (sizes[b as usize], b));
            }
        }
        // A value nobody reads (possible only for an unpinned dead step) frees at once.
        if !s.view && last[i] < i {
            let b = buf_of[i];
            release(&mut free, (sizes[b as usize], b));
        }
    }
    let kept = root.iter().map(|&r| last[r] == FOREVER).collect();
    Plan {
        buf_of,
        sizes,
        kept,
        root,
        in_place,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(numel: usize) -> StepInfo<'static> {
        StepInfo {
            numel,
            inputs: &[],
            view: false,
            pinned: false,
            in_place: &[],
        }
    }

    fn op(numel: usize, inputs: &[u32], pinned: bool) -> StepInfo<'_> {
        StepInfo {
            numel,
            inputs,
            view: false,
            pinned,
            in_place: &[],
        }
    }

    fn in_place<'a>(numel: usize, inputs: &'a [u32], k: &'a [usize]) -> StepInfo<'a> {
        StepInfo {
            in_place: k,
            ..op(numel, inputs, false)
        }
    }

    #[test]
    fn in_place_only_over_a_dying_op_output_read_once() {
        let s = [
            leaf(4),                       // 0: x
            op(4, &[0], false),            // 1: a = f(x)
            in_place(4, &[1], &[0]),       // 2: b = g(a), a dies here: b takes a's buffer
            in_place(4, &[0], &[0]),       // 3: c = g(x): x is a leaf, never overwritten
            in_place(4, &[2, 2], &[0, 1]), // 4: d = b * b: b read twice, not in place
            in_place(4, &[2, 4], &[0]),    // 5: e = b + d, b dies here: in place
            op(4, &[3, 5], true),
        ];
        let p = plan(&s);
        assert_eq!(
            p.in_place,
            vec![None, None, Some(0), None, None, Some(0), None]
        );
        assert_eq!(p.buf_of[2], p.buf_of[1]);
        assert_ne!(p.buf_of[3], p.buf_of[0]);
        assert_ne!(p.buf_of[4], p.buf_of[2]);
        assert_eq!(p.buf_of[5], p.buf_of[2]);
    }

    #[test]
    fn a_small_value_leaves_a_large_buffer_to_a_large_value() {
        // s lives while b is made: in a's freed buffer (the only free one), it would make
        // b take a new one (22 elements in all); in one of its own, b takes a's
        let s = [
            leaf(1),
            op(10, &[0], false),  // 1: a
            op(1, &[1], false),   // 2: t = f(a), a dies
            op(1, &[2], false),   // 3: s = f(t), read by 5
            op(10, &[0], false),  // 4: b
            op(1, &[3, 4], true), // 5: kept: takes t's buffer, free by then
        ];
        let p = plan(&s);
        assert_eq!(p.buf_of[4], p.buf_of[1]);
        assert_eq!(p.buf_of[5], p.buf_of[2]);
        assert_eq!(p.sizes.iter().sum::<usize>(), 10 + 1 + 1 + 1);
    }

    #[test]
    fn chain_reuses_two_buffers() {
        // x -> a -> b -> c -> d (output): a's buffer is free once b ran, so c takes it,
        // and d takes b's
        let s = [
            leaf(4),
            op(4, &[0], false),
            op(4, &[1], false),
            op(4, &[2], false),
            op(4, &[3], true),
        ];
        let p = plan(&s);
        assert_eq!(p.buf_of, vec![0, 1, 2, 1, 2]);
        assert_eq!(p.sizes, vec![4, 4, 4]);
    }

    #[test]
    fn output_never_shares_with_its_inputs() {
        // b = f(a, a) reads a for the last time, yet must not write into a's buffer
        let s = [
            leaf(2),
            op(2, &[0], false),
            op(2, &[1, 1], false),
            op(2, &[2], true),
        ];
        let p = plan(&s);
        assert_ne!(p.buf_of[2], p.buf_of[1]);
        assert_eq!(p.buf_of[3], p.buf_of[1]);
    }

    #[test]
    fn views_extend_the_life_of_their_root() {
        // v = view(a); c = g(x) must not take a's buffer while v is still to be read
        let s = [
            leaf(3),
            op(3, &[0], false),
            StepInfo {
                view: true,
                ..op(3, &[1], false)
            },
            op(3, &[0], false),
            op(3, &[2, 3], true),
        ];
        let p = plan(&s);
        assert_eq!(p.buf_of[2], p.buf_of[1]);
        assert_ne!(p.buf_of[3], p.buf_of[1]);
    }

    #[test]
    fn best_fit_picks_the_smallest_buffer_that_fits() {
        let s = [
            leaf(1),
            op(10, &[0], false),
            op(3, &[0], false),
            op(1, &[1, 2], false), // frees 10 and 3
            op(2, &[3], false),    // takes the 3
            op(1, &[4], true),
        ];
        let p = plan(&s);
        assert_eq!(p.buf_of[4], p.buf_of[2]);
    }

    #[test]
    fn kept_values_take_buffers_of_their_own_size() {
        let s = [
            leaf(1),
            op(10, &[0], false),
            op(3, &[0], false),
            op(1, &[1, 2], false), // frees 10 and 3
            op(2, &[3], true),     // an output: neither 10 nor 3 is kept for it
            op(3, &[3], false),
            StepInfo {
                view: true,
                ..op(3, &[5], true) // an output that views step 5
            },
        ];
        let p = plan(&s);
        assert_eq!(p.sizes[p.buf_of[4] as usize], 2);
        assert!(p.buf_of[4] != p.buf_of[1] && p.buf_of[4] != p.buf_of[2]);
        // the root of a kept view is kept too: it may take the free 3, not the 10
        assert_eq!(p.sizes[p.buf_of[5] as usize], 3);
        assert_eq!(p.buf_of[6], p.buf_of[5]);
    }
}
