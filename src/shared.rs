//! The shared pointer of graph nodes and compiled steps: `Arc` where the target has atomic
//! compare-and-swap, `Rc` where it does not (Cortex-M0+, RISC-V imc), so the core builds
//! there. A `Machine` is `Send` only with `Arc`; chips without compare-and-swap run one
//! thread.

#[cfg(target_has_atomic = "ptr")]
pub(crate) use alloc::sync::Arc as Shared;

#[cfg(not(target_has_atomic = "ptr"))]
pub(crate) use alloc::rc::Rc as Shared;

/// The bytes of the heap block behind a `Shared` holding `value`: the strong and weak
/// counts, then the value (the layout of `Arc`'s and `Rc`'s inner block).
pub(crate) fn block_bytes<V: ?Sized>(value: &V) -> usize {
    let counts = core::alloc::Layout::new::<[usize; 2]>();
    counts
        .extend(core::alloc::Layout::for_value(value))
        .map_or(0, |(l, _)| l.pad_to_align().size())
}
