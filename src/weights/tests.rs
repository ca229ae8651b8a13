use std::fs;
use std::path::{Path, PathBuf};

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use safetensors::SafeTensors;

use super::{to_le_bytes, WeightMap};
use crate::error::Error;
use crate::graph::Graph;
use crate::init;
use crate::machine::Machine;
use crate::scalar::Scalar;

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tapegrad-weights-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `(x.matmul(w) + b) * s` with `w` `[rows, cols]`, `b` `[cols]` (if `bias`) and a
/// scalar `s`, every parameter zero.
fn machine<T: Scalar>(rows: usize, cols: usize, bias: bool) -> Machine<T> {
    let g = Graph::<T>::new();
    let x = g.input("x", [1, rows]);
    let w = g.param("w", init::zeros([rows, cols]).unwrap());
    let mut y = x.matmul(w);
    if bias {
        y = y + g.param("b", init::zeros([cols]).unwrap());
    }
    let y = y * g.param("s", init::zeros([]).unwrap());
    g.compile(&[y], &[]).unwrap()
}

/// Gives every parameter distinct values, some of them awkward to store.
fn fill<T: Scalar>(m: &mut Machine<T>, seed: f64) {
    let params: Vec<(String, Vec<usize>)> = m
        .params()
        .map(|(n, s)| (n.into(), s.dims().to_vec()))
        .collect();
    let special = [-0.0, f64::INFINITY, f64::NAN, 1e-40, -3.25e30];
    for (k, (name, dims)) in params.iter().enumerate() {
        let mut v = ndarray::ArrayD::<T>::zeros(ndarray::IxDyn(dims));
        for (i, x) in v.iter_mut().enumerate() {
            let f = special
                .get(i)
                .copied()
                .unwrap_or(((seed + k as f64) * 1.7 + i as f64 * 0.31).sin());
            *x = T::of(f);
        }
        m.set_param(m.handle_of(name).unwrap(), &v).unwrap();
    }
}

/// Every parameter's name and bytes.
fn snapshot<T: Scalar>(m: &Machine<T>) -> Vec<(String, Vec<u8>)> {
    m.params()
        .map(|(n, _)| {
            let v = m.value(m.handle_of(n).unwrap()).unwrap();
            (n.into(), to_le_bytes(v.iter().copied().collect()))
        })
        .collect()
}

fn round_trip<T: Scalar>(dir: &TempDir) {
    let mut a = machine::<T>(3, 4, true);
    fill(&mut a, 1.0);
    let path = dir.join("a.safetensors");
    a.save(&path).unwrap();

    let mut b = machine::<T>(3, 4, true);
    assert_ne!(snapshot(&a), snapshot(&b));
    b.load(&path).unwrap();
    assert_eq!(snapshot(&a), snapshot(&b));

    let mut c = machine::<T>(3, 4, true);
    let bytes = a.save_to_bytes().unwrap();
    assert_eq!(bytes, fs::read(&path).unwrap());
    c.load_from_bytes(&bytes).unwrap();
    assert_eq!(snapshot(&a), snapshot(&c));

    // what other readers see: the parameter's name, shape and dtype, row-major
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort_unstable();
    assert_eq!(names, ["b", "s", "w"]);
    let w = file.tensor("w").unwrap();
    assert_eq!(w.shape(), [3, 4]);
    assert_eq!(w.dtype().to_string(), super::dtype_of::<T>().name());
    assert_eq!(file.tensor("s").unwrap().shape(), [0usize; 0]);
}

#[test]
fn round_trip_is_bit_identical() {
    let dir = TempDir::new("round-trip");
    round_trip::<f32>(&dir);
    round_trip::<f64>(&dir);
    assert_eq!(dir.names(), ["a.safetensors"]);
}

/// Loads `bytes` into a filled machine, expects an `Err`, and checks that no parameter
/// changed.
#[track_caller]
fn load_fails<T: Scalar>(m: &mut Machine<T>, bytes: &[u8], map: &WeightMap) -> Error {
    let before = snapshot(m);
    let e = m.load_from_bytes_with(bytes, map).unwrap_err();
    assert_eq!(snapshot(m), before, "a failed load changed parameters: {e}");
    e
}

fn weights_error(e: &Error) -> (&str, &str, &str) {
    match e {
        Error::Weights {
            name,
            expected,
            found,
            caller,
        } => {
            assert!(caller.file.ends_with("tests.rs"), "{caller}");
            (name, expected, found)
        }
        e => panic!("not Error::Weights: {e:?}"),
    }
}

#[test]
fn mismatches_name_tensor_expected_and_found() {
    let mut m = machine::<f32>(3, 4, true);
    fill(&mut m, 2.0);
    let map = WeightMap::new();

    let mut no_bias = machine::<f32>(3, 4, false);
    fill(&mut no_bias, 3.0);
    let e = load_fails(&mut m, &no_bias.save_to_bytes().unwrap(), &map);
    assert_eq!(
        weights_error(&e),
        ("b", "f32 [4]", "no tensor of that name")
    );
    let msg = e.to_string();
    assert!(msg.starts_with("weights tensor \"b\" loaded at src/weights/tests.rs:"));
    assert!(msg.ends_with("expected f32 [4], found no tensor of that name; nothing was loaded"));

    let e = load_fails(
        &mut m,
        &machine::<f32>(4, 3, true).save_to_bytes().unwrap(),
        &map,
    );
    assert_eq!(weights_error(&e), ("w", "f32 [3, 4]", "f32 [4, 3]"));

    let e = load_fails(
        &mut m,
        &machine::<f64>(3, 4, true).save_to_bytes().unwrap(),
        &map,
    );
    assert_eq!(
        weights_error(&e),
        (
            "w",
            "f32 [3, 4]",
            "f64 [3, 4] (`WeightMap::convert_dtype(true)` converts it)"
        )
    );

    // a file with more than the machine: refused unless asked
    let e = load_fails(&mut no_bias, &m.save_to_bytes().unwrap(), &map);
    let (name, expected, found) = weights_error(&e);
    assert_eq!((name, found), ("b", "f32 [4]"));
    assert!(expected.contains("allow_extra(true)"), "{expected}");
    no_bias
        .load_from_bytes_with(&m.save_to_bytes().unwrap(), &map.clone().allow_extra(true))
        .unwrap();
    assert_eq!(snapshot(&no_bias)[0], snapshot(&m)[0]);
}

fn format_error(e: &Error) -> (&str, &str) {
    match e {
        Error::WeightsFormat { origin, reason, .. } => (origin, reason),
        e => panic!("not Error::WeightsFormat: {e:?}"),
    }
}

#[test]
fn corrupt_or_cut_short_is_an_err() {
    let mut m = machine::<f64>(3, 4, true);
    fill(&mut m, 4.0);
    let good = m.save_to_bytes().unwrap();
    let map = WeightMap::new();
    // every cut: an Err, never a panic, and nothing changed
    for len in 0..good.len() {
        let e = load_fails(&mut m, &good[..len], &map);
        format_error(&e);
    }
    let cut = good.len() - 1;
    let e = load_fails(&mut m, &good[..cut], &map);
    let want = format!("{cut} bytes: the tensors' data does not end where the file ends");
    assert_eq!(format_error(&e), ("<bytes>", want.as_str()), "{e}");
    let e = load_fails(&mut m, &good[..100], &map);
    let reason = format_error(&e).1;
    assert!(reason.starts_with("100 bytes: the header length in the first 8 bytes runs past"));

    let e = load_fails(&mut m, b"not a safetensors file at all", &map);
    assert_eq!(
        format_error(&e).1,
        "29 bytes: the header length in the first 8 bytes is over 100 MB"
    );
    let mut garbage = 12u64.to_le_bytes().to_vec();
    garbage.extend(b"{not json!!}");
    let e = load_fails(&mut m, &garbage, &map);
    assert!(format_error(&e)
        .1
        .starts_with("20 bytes: the header is not the JSON"));
    assert!(e.to_string().contains("not a valid safetensors file"));

    // the same from disk, with the path in the error
    let dir = TempDir::new("corrupt");
    let path = dir.join("empty.safetensors");
    fs::write(&path, b"").unwrap();
    let before = snapshot(&m);
    let e = m.load(&path).unwrap_err();
    assert_eq!(snapshot(&m), before);
    let (origin, reason) = format_error(&e);
    assert_eq!(Path::new(origin), path);
    assert_eq!(reason, "0 bytes: shorter than the 8-byte header length");
}

#[test]
fn save_replaces_atomically_and_io_errors_are_errs() {
    let dir = TempDir::new("atomic");
    let path = dir.join("m.safetensors");
    let mut a = machine::<f32>(2, 2, true);
    fill(&mut a, 5.0);
    a.save(&path).unwrap();
    let mut b = machine::<f32>(2, 2, true);
    fill(&mut b, 6.0);
    b.save(&path).unwrap();
    let mut c = machine::<f32>(2, 2, true);
    c.load(&path).unwrap();
    assert_eq!(snapshot(&c), snapshot(&b));
    assert_eq!(dir.names(), ["m.safetensors"], "a temporary file was left");

    // a save that cannot be renamed into place (a directory is in the way) changes
    // nothing and cleans up after itself
    fs::create_dir(dir.join("d")).unwrap();
    let e = a.save(dir.join("d")).unwrap_err();
    assert!(
        matches!(&e, Error::Io { path, .. } if path.ends_with("d")),
        "{e:?}"
    );
    assert_eq!(dir.names(), ["d", "m.safetensors"]);

    let missing = dir.join("no/such/dir/m.safetensors");
    let e = a.save(&missing).unwrap_err();
    match &e {
        Error::Io { path, caller, .. } => {
            assert_eq!(Path::new(path), missing);
            assert!(caller.file.ends_with("tests.rs"));
        }
        e => panic!("{e:?}"),
    }
    assert!(e.to_string().starts_with("I/O error on "), "{e}");
    let e = c.load(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(snapshot(&c), snapshot(&b));
}

#[test]
fn torch_layout_transposes_weights() {
    let mut m = machine::<f32>(3, 4, true);
    fill(&mut m, 7.0);
    let map = WeightMap::new().torch_linear("fc", "w", "b");
    let bytes = m.save_to_bytes_with(&map).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort_unstable();
    assert_eq!(names, ["fc.bias", "fc.weight", "s"]);
    let w = file.tensor("fc.weight").unwrap();
    assert_eq!(w.shape(), [4, 3]);
    // element [j, i] of the file is w[i, j]
    let wm = m.value(m.handle_of("w").unwrap()).unwrap();
    let at = |j: usize, i: usize| {
        f32::from_le_bytes(w.data()[(j * 3 + i) * 4..][..4].try_into().unwrap())
    };
    assert_eq!(at(3, 1).to_bits(), wm[[1, 3]].to_bits());
    assert_eq!(at(2, 0).to_bits(), wm[[0, 2]].to_bits());

    let mut fresh = machine::<f32>(3, 4, true);
    fresh.load_from_bytes_with(&bytes, &map).unwrap();
    assert_eq!(snapshot(&fresh), snapshot(&m));
    // the identity map finds none of PyTorch's names
    let e = load_fails(&mut fresh, &bytes, &WeightMap::new());
    assert_eq!(
        weights_error(&e),
        ("w", "f32 [3, 4]", "no tensor of that name")
    );
    let e = load_fails(
        &mut fresh,
        &bytes,
        &WeightMap::new().transposed("w", "fc.weight"),
    );
    assert_eq!(
        weights_error(&e),
        ("b", "f32 [4]", "no tensor of that name")
    );

    // two parameters saved under one name
    let e = m
        .save_to_bytes_with(&WeightMap::new().rename("b", "s"))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Mismatch {
                what: "weight map",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn torch_preset_transposes_matrices_named_weight() {
    let g = Graph::<f64>::new();
    let x = g.input("x", [1, 2]);
    let w = g.param("fc.weight", init::zeros([2, 3]).unwrap());
    let b = g.param("fc.bias", init::zeros([3]).unwrap());
    let e = g.param("emb.weight", init::zeros([3, 2]).unwrap());
    let y = (x.matmul(w) + b).matmul(e);
    let mut m = g.compile(&[y], &[]).unwrap();
    fill(&mut m, 8.0);
    let map = WeightMap::torch().rename("emb.weight", "emb.weight");
    let bytes = m.save_to_bytes_with(&map).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(file.tensor("fc.weight").unwrap().shape(), [3, 2]);
    assert_eq!(file.tensor("fc.bias").unwrap().shape(), [3]);
    assert_eq!(file.tensor("emb.weight").unwrap().shape(), [3, 2]);
    let mut fresh = g.compile(&[y], &[]).unwrap();
    fresh.load_from_bytes_with(&bytes, &map).unwrap();
    assert_eq!(snapshot(&fresh), snapshot(&m));
    // without the map, the transposed matrix is a shape error
    let e = load_fails(&mut fresh, &bytes, &WeightMap::new());
    assert_eq!(weights_error(&e), ("fc.weight", "f64 [2, 3]", "f64 [3, 2]"));
}
