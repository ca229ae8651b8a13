//! tapegrad trains the two-moons workload ([`moons`]) in WebAssembly: a `no_std` + `alloc`
//! cdylib for `wasm32-unknown-unknown` whose exports are plain `extern "C"` functions over
//! numbers and pointers into its own memory (no wasm-bindgen, no imports), so Node and a
//! browser drive it with a few lines of JavaScript (`train.mjs`, `index.html`).
//!
//! The calls, in order: [`moons_new`], then [`moons_epoch`] once per epoch (with
//! [`moons_trace`] for its printed line), [`moons_accuracy`] on the held-out points
//! ([`moons_held_out`] gives them, to draw), and [`moons_points`] + [`moons_classify`] for
//! any set of points, such as a grid for the decision boundary. A failed call returns a
//! value that says so (`-1`, NaN, a null pointer, 0), never a trap, except when memory
//! cannot grow.
//!
//! Text crosses as bytes: [`moons_trace`] writes a line into a buffer and returns its
//! length, [`moons_text`] its address. The line is formatted by [`moons::Line`] with
//! integer arithmetic, the same code every other target prints with, so no float
//! formatting is linked.
//!
//! The module is single-threaded (no `atomics` target feature): each export runs to its
//! end before the next is called, which is what makes the global state below sound.
//!
//! On other targets the crate links std (its allocator and panic handler) instead of its
//! own, for its test (one test drives the exports in sequence: the state is global) and
//! for `examples/bits.rs`, the host's loss bits with the portable GEMM kernel.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt::Write;

use moons::{Line, Moons, CONFIG};
use tapegrad::data::two_moons_into;
use tapegrad::ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::SeedableRng;

// The allocator. tapegrad allocates while building and compiling the model and, after
// that, only in calls outside the training step (accuracy, classify, errors), so the heap
// must free as well as grow: a bump allocator would leak on every accuracy or boundary
// redraw of a page that keeps running. Talc is a maintained free-list allocator for
// `no_std` and wasm that grows linear memory with `memory.grow` on demand; with
// `disable-realloc-in-place` it is a few KB of code (Rust's std uses dlmalloc on wasm,
// which is larger).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// More points than this in one [`moons_points`] call is refused (16 MiB of coordinates).
pub const MAX_POINTS: usize = 1 << 21;

/// Everything the exports share.
struct State {
    model: Option<Moons>,
    epoch: usize,
    loss: f32,
    text: String,
    points: Vec<f32>,
    classes: Vec<u8>,
    held_out: Vec<f32>,
}

struct Global(UnsafeCell<State>);

// SAFETY: wasm32-unknown-unknown without the `atomics` feature has one thread, and no
// export calls back into JavaScript, so no two borrows of the state ever overlap. (On
// the host, the crate's one test is the only caller.)
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(State {
    model: None,
    epoch: 0,
    loss: f32::NAN,
    text: String::new(),
    points: Vec::new(),
    classes: Vec::new(),
    held_out: Vec::new(),
}));

fn state() -> &'static mut State {
    // SAFETY: see `Global`: each export takes this borrow once and drops it on return.
    unsafe { &mut *STATE.0.get() }
}

/// Builds a fresh model from [`moons::CONFIG`] (replacing any earlier one): the graph,
/// its gradients and the machine, planned once. Returns 0, or -1 if it could not be built.
#[no_mangle]
pub extern "C" fn moons_new() -> i32 {
    let s = state();
    s.model = None;
    s.epoch = 0;
    s.loss = f32::NAN;
    match Moons::new(CONFIG) {
        Ok(model) => {
            s.model = Some(model);
            0
        }
        Err(_) => -1,
    }
}

/// Trains one epoch ([`Moons::epoch`]: `steps_per_epoch` SGD steps on fresh batches) and
/// returns its mean loss; NaN if there is no model or a step failed.
#[no_mangle]
pub extern "C" fn moons_epoch() -> f32 {
    let s = state();
    let Some(model) = s.model.as_mut() else {
        return f32::NAN;
    };
    match model.epoch() {
        Ok(loss) => {
            s.epoch += 1;
            s.loss = loss;
            loss
        }
        Err(_) => f32::NAN,
    }
}

/// Writes the last epoch's trace line (`epoch 3 loss 0.7409`, as every target prints it)
/// into the text buffer and returns its length in bytes (read it at [`moons_text`]); 0
/// before the first epoch.
#[no_mangle]
pub extern "C" fn moons_trace() -> usize {
    let s = state();
    s.text.clear();
    if s.epoch == 0 {
        return 0;
    }
    let line = Line {
        epoch: s.epoch,
        loss: s.loss,
    };
    match write!(s.text, "{line}") {
        Ok(()) => s.text.len(),
        Err(_) => 0,
    }
}

/// Address of the text buffer that [`moons_trace`] fills (UTF-8, its length returned
/// there). Valid until the next call into the module.
#[no_mangle]
pub extern "C" fn moons_text() -> *const u8 {
    state().text.as_ptr()
}

/// Epochs the configuration trains.
#[no_mangle]
pub extern "C" fn moons_epochs() -> usize {
    CONFIG.epochs
}

/// Held-out points correctly classified ([`Moons::accuracy`]), out of
/// [`moons_held_out_len`]; -1 if there is no model or classifying failed.
#[no_mangle]
pub extern "C" fn moons_accuracy() -> i32 {
    let Some(model) = state().model.as_mut() else {
        return -1;
    };
    match model.accuracy() {
        Ok((right, _)) => i32::try_from(right).unwrap_or(-1),
        Err(_) => -1,
    }
}

/// How many held-out points [`moons_accuracy`] scores and [`moons_held_out`] returns.
#[no_mangle]
pub extern "C" fn moons_held_out_len() -> usize {
    CONFIG.held_out
}

/// The held-out points that [`moons_accuracy`] scores (the same stream: seed + 2), for
/// drawing: `n` = [`moons_held_out_len`] rows of `x, y` (`2n` f32) followed by their `n`
/// labels (0.0 or 1.0). Null if memory ran out. Valid until the next call to this function.
#[no_mangle]
pub extern "C" fn moons_held_out() -> *const f32 {
    let s = state();
    let n = CONFIG.held_out;
    s.held_out.clear();
    if s.held_out.try_reserve_exact(3 * n).is_err() {
        return core::ptr::null();
    }
    s.held_out.resize(3 * n, 0.0);
    let (xy, labels) = s.held_out.split_at_mut(2 * n);
    let (Ok(points), labels) = (
        ArrayViewMut2::from_shape((n, 2), xy),
        ArrayViewMut1::from(labels),
    ) else {
        return core::ptr::null();
    };
    let mut rng = StdRng::seed_from_u64(CONFIG.seed.wrapping_add(2));
    match two_moons_into(points, labels, CONFIG.noise, &mut rng) {
        Ok(()) => s.held_out.as_ptr(),
        Err(_) => core::ptr::null(),
    }
}

/// Makes room for `n` points and returns the address where the caller writes them as
/// `x, y` pairs (`2n` f32), for [`moons_classify`]. Null if `n` is 0 or above
/// [`MAX_POINTS`], or memory ran out. Valid until the next call to this function.
#[no_mangle]
pub extern "C" fn moons_points(n: usize) -> *mut f32 {
    let s = state();
    if n == 0 || n > MAX_POINTS {
        return core::ptr::null_mut();
    }
    s.points.clear();
    s.classes.clear();
    if s.points.try_reserve_exact(2 * n).is_err() || s.classes.try_reserve_exact(n).is_err() {
        return core::ptr::null_mut();
    }
    s.points.resize(2 * n, 0.0);
    s.classes.resize(n, 0);
    s.points.as_mut_ptr()
}

/// Classifies the `n` points written at [`moons_points`]`(n)` through the trained machine
/// ([`Moons::classify`]) and returns the address of their `n` classes (one byte each, 0 or
/// 1). Null if there is no model, `n` is not the count given to [`moons_points`], or
/// classifying failed.
#[no_mangle]
pub extern "C" fn moons_classify(n: usize) -> *const u8 {
    let s = state();
    let Some(model) = s.model.as_mut() else {
        return core::ptr::null();
    };
    if n == 0 || 2 * n != s.points.len() {
        return core::ptr::null();
    }
    let Ok(points) = ArrayView2::from_shape((n, 2), &s.points[..]) else {
        return core::ptr::null();
    };
    match model.classify(points, &mut s.classes) {
        Ok(()) => s.classes.as_ptr(),
        Err(_) => core::ptr::null(),
    }
}

/// Bytes the compiled machine planned for its values (`machine.memory().total()`); 0
/// without a model.
#[no_mangle]
pub extern "C" fn moons_planned_bytes() -> usize {
    state()
        .model
        .as_ref()
        .map_or(0, |m| m.machine().memory().total())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> &'static str {
        let s = state();
        &s.text
    }

    // One test: the exports share one global state, as in the module.
    #[test]
    fn exports_train_classify_and_refuse_misuse() {
        // before a model: every call says it failed, none traps
        assert!(moons_epoch().is_nan());
        assert_eq!(moons_trace(), 0);
        assert_eq!(moons_accuracy(), -1);
        assert_eq!(moons_planned_bytes(), 0);
        assert!(moons_classify(1).is_null());

        assert_eq!(moons_new(), 0);
        assert!(moons_planned_bytes() > 0);
        assert_eq!(moons_trace(), 0, "no line before the first epoch");
        assert!(moons_points(0).is_null());
        assert!(moons_points(MAX_POINTS + 1).is_null());

        let mut losses = Vec::new();
        for epoch in 1..=moons_epochs() {
            let loss = moons_epoch();
            assert!(loss.is_finite());
            let len = moons_trace();
            assert_eq!(len, text().len());
            // the line every target prints: "epoch N loss X.XXXX"
            let want = alloc::format!("epoch {epoch} loss {}", moons::Fixed4(loss));
            assert_eq!(text(), want);
            losses.push(loss);
        }
        assert!(losses[losses.len() - 1] < losses[0] / 4.0, "{losses:?}");

        let right = moons_accuracy();
        let total = moons_held_out_len();
        assert!(
            right >= 0 && right as usize * 100 >= total * 95,
            "{right}/{total}"
        );

        // the held-out points, classified one by one, score what moons_accuracy says
        let held = moons_held_out();
        assert!(!held.is_null());
        // SAFETY: moons_held_out returns 3 * total f32 that live until its next call.
        let held = unsafe { core::slice::from_raw_parts(held, 3 * total) }.to_vec();
        let (xy, labels) = held.split_at(2 * total);
        assert!(labels.iter().all(|&l| l == 0.0 || l == 1.0));
        let points = moons_points(total);
        assert!(!points.is_null());
        // SAFETY: moons_points(total) returns room for 2 * total f32.
        unsafe { core::slice::from_raw_parts_mut(points, 2 * total) }.copy_from_slice(xy);
        assert!(
            moons_classify(total - 1).is_null(),
            "a count other than the points'"
        );
        let classes = moons_classify(total);
        assert!(!classes.is_null());
        // SAFETY: moons_classify(total) returns total classes.
        let classes = unsafe { core::slice::from_raw_parts(classes, total) };
        let again = classes
            .iter()
            .zip(labels)
            .filter(|(c, l)| f32::from(**c) == **l)
            .count();
        assert_eq!(again, right as usize);

        // a fresh model starts the same trace again (the seed is fixed)
        assert_eq!(moons_new(), 0);
        assert_eq!(moons_epoch().to_bits(), losses[0].to_bits());
    }
}
