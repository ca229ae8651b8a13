//! The shared pointer of graph nodes and compiled steps: `Arc` where the target has atomic
//! compare-and-swap, `Rc` where it does not (Cortex-M0+, RISC-V imc), so the core builds
//! there. A `Machine` is `Send` only with `Arc`; chips without compare-and-swap run one
//! thread.

#[cfg(target_has_atomic = "ptr")]
pub(crate) use alloc::sync::Arc as Shared;

#[cfg(not(target_has_atomic = "ptr"))]
pub(crate) use alloc::rc::Rc as Shared;
