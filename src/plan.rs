//! The buffer plan: which buffer each tape step writes, decided once at compile time.
//!
//! Liveness over the tape: a step's buffer is free again after its last reader ran. A new
//! step takes the smallest free buffer that fits (best fit), or a new one. Leaves (inputs,
//! parameters, constants) and requested outputs are pinned: never reused. A view step
//! (reshape, detach) writes nothing and shares its input's buffer, which then lives as long
//! as the view's readers too.

use alloc::collections::BTreeSet;
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
    // Free buffers by (size, id): the best fit is the first at or above the size wanted.
    let mut free: BTreeSet<(usize, u32)> = BTreeSet::new();
    for (i, s) in steps.iter().enumerate() {
        if s.view {
            buf_of[i] = buf_of[root[i]];
        } else {
            let fit = free.range((s.numel, 0)..).next().copied();
            buf_of[i] = match (fit, s.inputs.is_empty()) {
                (Some(key), false) => {
                    free.remove(&key);
                    key.1
                }
                _ => {
                    sizes.push(s.numel);
                    (sizes.len() - 1) as u32
                }
            };
        }
        // Free what this step read for the last time; the output was placed first, so it
        // never shares a buffer with its own inputs.
        for (k, &j) in s.inputs.iter().enumerate() {
            let r = root[j as usize];
            let seen = s.inputs[..k].iter().any(|&p| root[p as usize] == r);
            if last[r] == i && !seen {
                let b = buf_of[r];
                free.insert((sizes[b as usize], b));
            }
        }
        // A value nobody reads (possible only for an unpinned dead step) frees at once.
        if !s.view && last[i] < i {
            let b = buf_of[i];
            free.insert((sizes[b as usize], b));
        }
    }
    let kept = root.iter().map(|&r| last[r] == FOREVER).collect();
    Plan {
        buf_of,
        sizes,
        kept,
        root,
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
        }
    }

    fn op(numel: usize, inputs: &[u32], pinned: bool) -> StepInfo<'_> {
        StepInfo {
            numel,
            inputs,
            view: false,
            pinned,
        }
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
                numel: 3,
                inputs: &[1],
                view: true,
                pinned: false,
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
            op(2, &[3], true),     // takes the 3
        ];
        let p = plan(&s);
        assert_eq!(p.buf_of[4], p.buf_of[2]);
    }
}
