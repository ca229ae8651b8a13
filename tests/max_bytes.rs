//! `tapegrad::set_max_bytes`: a process-wide limit, so its test runs alone in this binary
//! (one test function: the tests of a binary run in parallel and would see each other's
//! limit).

use tapegrad::prelude::*;
use tapegrad::{init, max_bytes, set_max_bytes, Shape};

#[test]
fn the_limit_refuses_constructors_ops_and_machines_past_it() {
    assert_eq!(max_bytes(), isize::MAX as usize, "the default");
    let limit = 4096;
    set_max_bytes(limit);
    assert_eq!(max_bytes(), limit);

    // 1024 f32 fit exactly, 1025 do not
    assert_eq!(init::zeros::<f32>([1024]).unwrap().len(), 1024);
    let line = line!() + 1;
    let e = init::zeros::<f32>([1025]).unwrap_err();
    match &e {
        Error::TooLarge {
            what,
            shapes,
            bytes,
            limit: l,
            caller,
        } => {
            assert_eq!(
                (*what, shapes.as_slice()),
                ("init::zeros", &[Shape::from([1025])][..])
            );
            assert_eq!((*bytes, *l, caller.line), (4100, limit, line));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    for part in [
        "`init::zeros`",
        "[1025]",
        "4100 bytes",
        "4096",
        "max_bytes.rs:",
    ] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }

    // an input, an op's result and a constant past it are recorded, located
    let g = Graph::<f64>::new();
    let (_, line) = (g.input("x", [513]), line!());
    match g.check().unwrap_err() {
        Error::TooLarge {
            what: "input",
            bytes: 4104,
            caller,
            ..
        } => assert_eq!(caller.line, line),
        other => panic!("{other:?}"),
    }
    let g = Graph::<f64>::new();
    let x = g.input("x", [256]);
    let (_, line) = (g.concat(&[x, x, x], 0), line!());
    match g.check().unwrap_err() {
        Error::TooLarge {
            what: "concat",
            bytes: 6144,
            caller,
            ..
        } => assert_eq!(caller.line, line),
        other => panic!("{other:?}"),
    }
    let g = Graph::<f32>::new();
    let _ = g.zeros([2000]);
    assert!(matches!(
        g.check(),
        Err(Error::TooLarge { what: "full", .. })
    ));

    // [2^40] (4 TiB of f32) is refused at once, never asked of the allocator
    let g = Graph::<f32>::new();
    let x = g.input("x", [1usize << 40]);
    assert!(matches!(
        g.compile(&[x.sum()], &[]),
        Err(Error::TooLarge { what: "input", .. })
    ));

    // each tensor fits, the machine does not: `compile` refuses it before allocating
    let g = Graph::<f32>::new();
    let x = g.input("x", [600]);
    let y = (x * 2.0 + 1.0).sum();
    match g.compile(&[y], &[]) {
        Err(Error::TooLarge {
            what: "compile",
            bytes,
            limit: l,
            ..
        }) => {
            assert!(bytes > l && l == limit)
        }
        other => panic!("{:?}", other.map(|m| m.memory().total())),
    }
    // a budget within the limit is a budget; past it, the limit still holds
    assert!(matches!(
        g.compile_within(&[y], &[], 100),
        Err(Error::Budget { .. })
    ));
    assert!(matches!(
        g.compile_within(&[y], &[], usize::MAX),
        Err(Error::TooLarge {
            what: "compile",
            ..
        })
    ));

    // data: the indices are bytes too
    let e = tapegrad::data::Batches::new(1000, 10, false).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                what: "Batches::new",
                ..
            }
        ),
        "{e}"
    );

    // an optimizer's state is allocated outside the machine, at its first step
    set_max_bytes(usize::MAX);
    let g2 = Graph::<f32>::new();
    let w = g2.param("w", init::zeros([600]).unwrap());
    let grads = g2.grad(w.square().sum(), &[w]).unwrap();
    let mut m2 = g2.compile(&[], &grads).unwrap();
    m2.run().unwrap();
    set_max_bytes(limit);
    let mut adam = Adam::new(1e-3);
    let e = adam.step(&mut m2, &grads).unwrap_err();
    let line = line!() - 1;
    match &e {
        Error::TooLarge {
            what,
            shapes,
            bytes,
            caller,
            ..
        } => {
            assert_eq!(
                (*what, shapes.as_slice()),
                ("Adam::step", &[Shape::from([1200])][..])
            );
            assert_eq!((*bytes, caller.line), (4800, line), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // larger values are taken as isize::MAX; restore the default
    set_max_bytes(usize::MAX);
    assert_eq!(max_bytes(), isize::MAX as usize);
    assert!(g.compile(&[y], &[]).is_ok());
    assert!(tapegrad::data::Batches::new(1000, 10, false).is_ok());
}
