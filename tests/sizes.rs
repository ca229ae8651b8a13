//! Sizes never overflow and never abort (issue 11): every extent a user gives is
//! multiplied and added with checks, and whatever would pass `isize::MAX` bytes (or
//! `tapegrad::max_bytes`) is a located `Error::TooLarge`, never a panic, a wrapped size or
//! an allocator abort. The limit itself is tested in `tests/max_bytes.rs`, alone in its
//! binary, since it is process-wide.

use ndarray::arr1;
use tapegrad::data::{train_test_split, Batches};
use tapegrad::nn::{Linear, MlpBuilder};
use tapegrad::prelude::*;
use tapegrad::rand::{rngs::StdRng, SeedableRng};
use tapegrad::{init, Shape};

const B32: usize = 1 << 32;

/// An `Error::TooLarge` from `what`, naming `shapes`, called at `line` of this file; its
/// message says all of that too.
#[track_caller]
fn assert_too_large(e: &Error, what: &str, shapes: &[Shape], line: u32) {
    match e {
        Error::TooLarge {
            what: got,
            shapes: got_shapes,
            bytes,
            limit,
            caller,
        } => {
            assert_eq!(*got, what, "{e}");
            assert_eq!(got_shapes.as_slice(), shapes, "{e}");
            assert!(bytes > limit, "{e}");
            assert_eq!(*limit, isize::MAX as usize, "{e}");
            assert!(caller.file.ends_with("sizes.rs"), "{e}");
            assert_eq!(caller.line, line, "{e}");
        }
        other => panic!("expected TooLarge from `{what}`, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&format!("`{what}`")), "{msg}");
    for s in shapes {
        assert!(msg.contains(&s.to_string()), "{msg} lacks {s}");
    }
    assert!(msg.contains(&format!("sizes.rs:{line}:")), "{msg}");
}

fn s(dims: &[usize]) -> Shape {
    Shape::from(dims)
}

#[test]
fn an_input_of_2_32_by_2_32_is_too_large() {
    let g = Graph::<f32>::new();
    let (x, line) = (g.input("x", [B32, B32]), line!());
    // what follows records on a stand-in, without overflowing
    let y = x.sum();
    let shapes = [s(&[B32, B32])];
    assert_too_large(&g.check().unwrap_err(), "input", &shapes, line);
    assert_too_large(&g.compile(&[y], &[]).unwrap_err(), "input", &shapes, line);
}

#[test]
fn a_reshape_of_nothing_into_2_32_by_2_32_is_too_large() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [0]);
    let (y, line) = (x.reshape([B32, B32]), line!());
    // the matmul on it panicked in the GEMM
    let z = y.matmul(g.input("w", [B32, 0]));
    let shapes = [s(&[0]), s(&[B32, B32])];
    assert_too_large(&g.compile(&[z], &[]).unwrap_err(), "reshape", &shapes, line);
}

#[test]
fn a_broadcast_to_no_elements_of_huge_extents_is_too_large() {
    // [0, 2^32, 2^32] holds nothing, but its strides and later products pass usize:
    // it compiled, and `run` panicked sizing a buffer
    let g = Graph::<f32>::new();
    let x = g.input("x", [1]);
    let (y, line) = (x.broadcast_to([0, B32, B32]), line!());
    let shapes = [s(&[1]), s(&[0, B32, B32])];
    assert_too_large(
        &g.compile(&[y], &[]).unwrap_err(),
        "broadcast_to",
        &shapes,
        line,
    );
}

#[test]
fn a_huge_pad_or_concat_is_too_large() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [2, 3]);
    let (_, line) = (x.pad(1, usize::MAX, 1), line!());
    let shapes = [s(&[2, 3]), s(&[2, usize::MAX])];
    assert_too_large(&g.check().unwrap_err(), "pad", &shapes, line);

    // each part fits; their sum along axis 0 passes usize (17 · (2^60 - 1))
    let g = Graph::<f64>::new();
    let part = isize::MAX as usize / 8;
    let big = g.input("big", [part]);
    let (_, line) = (g.concat(&[big; 17], 0), line!());
    let mut shapes = vec![s(&[part]); 17];
    shapes.push(s(&[usize::MAX]));
    assert_too_large(&g.check().unwrap_err(), "concat", &shapes, line);

    // a sum that fits a usize but not the bytes; `stack` is `concat` of the parts with
    // a new axis, and says so
    let g = Graph::<f64>::new();
    let big = g.input("big", [part]);
    let (_, line) = (g.stack(&[big, big], 0), line!());
    let shapes = [s(&[1, part]), s(&[1, part]), s(&[2, part])];
    assert_too_large(&g.check().unwrap_err(), "concat", &shapes, line);
}

#[test]
fn a_mean_over_a_refused_input_records_nothing_more() {
    let g = Graph::<f32>::new();
    let (x, line) = (g.input("x", [0, B32, B32]), line!());
    // the divisor's count multiplied 2^32 by 2^32
    let y = x.mean_axes(&[1, 2], false);
    let shapes = [s(&[0, B32, B32])];
    assert_too_large(&g.compile(&[y], &[]).unwrap_err(), "input", &shapes, line);
    assert_eq!(
        g.check().unwrap_err(),
        g.compile(&[y], &[]).unwrap_err(),
        "one error, the input's"
    );
}

#[test]
fn a_matmul_whose_result_passes_usize_is_too_large() {
    let g = Graph::<f32>::new();
    let a = g.input("a", [B32, 0]);
    let b = g.input("b", [0, B32]);
    let (_, line) = (a.matmul(b), line!());
    let shapes = [s(&[B32, 0]), s(&[0, B32]), s(&[B32, B32])];
    assert_too_large(&g.check().unwrap_err(), "matmul", &shapes, line);
}

#[test]
fn one_hot_and_scatter_add_of_huge_counts_are_too_large() {
    let g = Graph::<f32>::new();
    let ids = g.input("ids", [4]);
    let (_, line) = (ids.one_hot(usize::MAX), line!());
    let shapes = [s(&[4]), s(&[4, usize::MAX])];
    assert_too_large(&g.check().unwrap_err(), "one_hot", &shapes, line);

    let g = Graph::<f32>::new();
    let ids = g.input("ids", [4]);
    let src = g.input("src", [4, 3]);
    let (_, line) = (ids.scatter_add(src, usize::MAX), line!());
    let shapes = [s(&[4]), s(&[4, 3]), s(&[usize::MAX, 3])];
    assert_too_large(&g.check().unwrap_err(), "scatter_add", &shapes, line);
}

#[test]
fn graph_constants_of_huge_shapes_are_too_large() {
    // 2^40 f32 zeros, 4 TiB: the allocator aborted the process
    let g = Graph::<f32>::new();
    let (_, line) = (g.zeros([1usize << 40, 1 << 24]), line!());
    let shapes = [s(&[1 << 40, 1 << 24])];
    assert_too_large(&g.check().unwrap_err(), "full", &shapes, line);
    let g = Graph::<f64>::new();
    let (_, line) = (g.ones([B32, B32]), line!());
    assert_too_large(&g.check().unwrap_err(), "full", &[s(&[B32, B32])], line);
    // a constant's shape is fixed: a run-time axis is taken at its bound
    let g = Graph::<f32>::new();
    let c = g.full(Shape::upto(4, &[2]), 1.0);
    assert_eq!((c.shape(), c.shape().run_axis()), (s(&[4, 2]), None));
}

#[test]
fn initialisers_of_huge_shapes_are_too_large() {
    let mut rng = StdRng::seed_from_u64(0);
    let huge = [B32, B32];
    // each is called on the line before its check
    let check = |r: Result<ndarray::ArrayD<f32>, Error>, what: &str, line: u32| {
        assert_too_large(&r.unwrap_err(), what, &[s(&huge)], line);
    };
    let r = init::zeros(huge);
    check(r, "init::zeros", line!() - 1);
    let r = init::ones(huge);
    check(r, "init::ones", line!() - 1);
    let r = init::constant(huge, 2.0);
    check(r, "init::constant", line!() - 1);
    let r = init::uniform(huge, -1.0, 1.0, &mut rng);
    check(r, "init::uniform", line!() - 1);
    let r = init::normal(huge, 0.0, 1.0, &mut rng);
    check(r, "init::normal", line!() - 1);
    let r = init::kaiming_uniform(huge, &mut rng);
    check(r, "init::kaiming_uniform", line!() - 1);
    let r = init::kaiming_normal(huge, &mut rng);
    check(r, "init::kaiming_normal", line!() - 1);
    let r = init::xavier_uniform(huge, &mut rng);
    check(r, "init::xavier_uniform", line!() - 1);
    let r = init::xavier_normal(huge, &mut rng);
    check(r, "init::xavier_normal", line!() - 1);
    // a shape with an empty axis holds nothing, but its other extents must fit
    let e = init::zeros::<f32>([0, B32, B32]).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    assert_eq!(init::zeros::<f32>([0, B32]).unwrap().len(), 0);
}

#[test]
fn fans_of_huge_shapes_do_not_overflow() {
    // the receptive field 2^32 · 2^32 overflowed; a fan only sets sqrt(a / fan)
    assert_eq!(init::fans([2, 3, B32, B32]), (usize::MAX, usize::MAX));
    assert_eq!(init::fans([2, 3, 4, 5]), (40, 60));
    // xavier's fan_in + fan_out overflowed too: now the shape is refused first
    let mut rng = StdRng::seed_from_u64(0);
    let e = init::xavier_uniform::<f32, _>([usize::MAX, usize::MAX], &mut rng).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
}

#[test]
fn linear_and_mlp_of_huge_sizes_record_too_large() {
    let mut rng = StdRng::seed_from_u64(0);
    let g = Graph::<f32>::new();
    // the weight [2^62, 4] passes isize::MAX bytes; the bias [4] is made as usual
    let huge = 1usize << 62;
    let layer = Linear::new(&g, "fc", huge, 4, &mut rng);
    let line = line!() - 1;
    let x = g.input("x", [1, huge]);
    let y = layer.forward(x);
    let e = g.compile(&[y], &[]).unwrap_err();
    assert_too_large(&e, "init::uniform", &[s(&[huge, 4])], line);

    let g = Graph::<f32>::new();
    let mlp = MlpBuilder::new(&[4, huge, 3]).build(&g, "m", &mut rng);
    let line = line!() - 1;
    let y = mlp.forward(g.input("x", [2, 4]));
    let e = g.compile(&[y], &[]).unwrap_err();
    assert_too_large(&e, "init::uniform", &[s(&[4, huge])], line);
}

#[test]
fn splits_and_batches_of_huge_counts_are_errors() {
    let mut rng = StdRng::seed_from_u64(0);
    let e = train_test_split(usize::MAX, 0.5, &mut rng).unwrap_err();
    let line = line!() - 1;
    assert_too_large(&e, "train_test_split", &[s(&[usize::MAX])], line);
    let e = Batches::new(usize::MAX, 32, false).unwrap_err();
    let line = line!() - 1;
    assert_too_large(&e, "Batches::new", &[s(&[usize::MAX])], line);
    // max + 1, the rows the batches need, overflowed
    let e = Batches::from_indices(vec![3, usize::MAX], 2, false).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert!(e.to_string().contains(&usize::MAX.to_string()), "{e}");
    // small ones still work
    let (train, test) = train_test_split(10, 0.2, &mut rng).unwrap();
    assert_eq!((train.len(), test.len()), (8, 2));
    assert_eq!(Batches::new(5, 2, false).unwrap().len(), 3);
}

#[test]
fn an_input_of_2_40_elements_compiles_to_an_error_not_an_abort() {
    // 2^40 f32 is 4 TiB: under the default limit (isize::MAX), so only the allocation
    // can refuse it. The allocator aborted the process; `compile` now asks fallibly. On a
    // system that grants any request (Linux `vm.overcommit_memory = 1`) the buffer would
    // then be written to, so the test runs only where a request past the memory fails.
    if std::fs::read_to_string("/proc/sys/vm/overcommit_memory").map_or(true, |m| m.trim() == "1") {
        eprintln!("skipped: this system may grant 4 TiB");
        return;
    }
    let g = Graph::<f32>::new();
    let x = g.input("x", [1usize << 40]);
    let y = x.sum();
    let line = line!() + 1;
    match g.compile(&[y], &[]) {
        Err(e @ Error::TooLarge { .. }) => {
            let Error::TooLarge {
                what,
                bytes,
                limit,
                caller,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(*what, "compile");
            assert!(*bytes >= 1 << 42 && bytes <= limit, "{e}");
            assert_eq!(caller.line, line);
            assert!(e.to_string().contains("could not allocate"), "{e}");
        }
        other => panic!("{:?}", other.map(|m| m.memory().total())),
    }
}

#[test]
fn machines_past_isize_max_bytes_are_too_large_and_budgets_stay_budgets() {
    // 2^62 f32 elements fit a usize, their 2^64 bytes do not: refused at the input now
    let g = Graph::<f32>::new();
    let (x, line) = (g.input("a", [1usize << 62]), line!());
    assert_too_large(
        &g.compile(&[x], &[]).unwrap_err(),
        "input",
        &[s(&[1 << 62])],
        line,
    );
    // within isize::MAX bytes each, but not together: `compile` refuses the plan
    let g = Graph::<f32>::new();
    let quarter = 1usize << 60;
    let y = g.input("a", [quarter]) + g.input("b", [quarter]);
    let line = line!() + 1;
    let e = g.compile(&[y], &[]).unwrap_err();
    match &e {
        Error::TooLarge {
            what,
            shapes,
            bytes,
            limit,
            caller,
        } => {
            assert_eq!(
                (*what, shapes.len(), caller.line),
                ("compile", 0, line),
                "{e}"
            );
            assert!(bytes > limit && *limit == isize::MAX as usize, "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("`compile`"), "{e}");
    // a budget given is checked first, and says what it was short by
    let r = g.compile_within(&[y], &[], 1 << 20);
    assert!(
        matches!(r, Err(Error::Budget { .. })),
        "{:?}",
        r.map(|m| m.memory())
    );
    // a small graph still compiles and runs
    let g = Graph::<f32>::new();
    let x = g.input("x", [3]);
    let y = x.sum();
    let mut m = g.compile(&[y], &[]).unwrap();
    m.feed(x, &arr1(&[1.0, 2.0, 3.0])).unwrap();
    m.run().unwrap();
    assert_eq!(m.item(y).unwrap(), 6.0);
}

#[test]
fn counts_of_huge_shapes_saturate() {
    // a summary may be made of any shapes: its total added numels and overflowed
    let big = s(&[usize::MAX / 2, 2]);
    let summary = tapegrad::nn::Summary::new([("a", &big), ("b", &big)]);
    assert_eq!(summary.total(), usize::MAX);
    assert!(summary.to_string().contains(&(usize::MAX - 1).to_string()));
    // numel of a shape no graph holds
    assert_eq!(s(&[B32, B32, B32]).numel(), usize::MAX);
    assert_eq!(s(&[B32, B32, B32, 0]).numel(), 0);
}
