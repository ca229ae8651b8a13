//! Weight bytes: arbitrary bytes into `Machine::load_from_bytes` (and with a `WeightMap`)
//! for small machines in f32 and f64, and `save_to_bytes` → mutate → load round trips.
//! Every call may return `Err`; none may panic or abort, and a load that fails leaves the
//! parameters as they were (the reader is all or nothing).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapegrad::ndarray::{arr1, arr2};
use tapegrad::prelude::*;
use tapegrad::weights::WeightMap;
use tapegrad::Scalar;

fn machine<T: Scalar>(g: &Graph<T>) -> Machine<T> {
    let x = g.input("x", (Dim::upto(4), 3));
    let w = g.param("w", arr2(&[[T::one(); 2]; 3]));
    let b = g.param("b", arr1(&[T::zero(); 2]));
    let s = g.param("s", tapegrad::ndarray::arr0(T::one()));
    let e = g.param("e", tapegrad::ndarray::Array2::<T>::zeros((0, 3)));
    let y = (x.matmul(w) + b).sum() * s + e.sum();
    match g.compile(&[y], &[]) {
        Ok(m) => m,
        Err(err) => panic!("the fixed machine compiles: {err}"),
    }
}

fn params<T: Scalar>(m: &Machine<T>) -> Vec<Vec<T>> {
    ["w", "b", "s", "e"]
        .iter()
        .map(|n| match m.handle_of(n).and_then(|h| m.value(h)) {
            Ok(v) => v.iter().copied().collect(),
            Err(err) => panic!("parameter {n} is readable: {err}"),
        })
        .collect()
}

fn same<T: Scalar>(a: &[Vec<T>], b: &[Vec<T>]) -> bool {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .all(|(x, y)| x.to_bits_u64() == y.to_bits_u64())
}

trait Bits {
    fn to_bits_u64(&self) -> u64;
}
impl<T: Scalar> Bits for T {
    fn to_bits_u64(&self) -> u64 {
        // bit patterns through f64: NaN payloads compare by bits, not by value
        self.to_f64().map_or(0, f64::to_bits)
    }
}

fn one<T: Scalar>(data: &[u8]) {
    let g = Graph::<T>::new();
    let mut m = machine(&g);
    let before = params(&m);
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    match mode % 4 {
        // raw bytes
        0 => {
            if m.load_from_bytes(rest).is_err() {
                assert!(
                    same(&before, &params(&m)),
                    "a failed load changed the machine"
                );
            }
        }
        // raw bytes through a map (renames, transposes, extras)
        1 => {
            let map = WeightMap::new()
                .rename("w", "0.weight")
                .transposed("w", "0.weight")
                .allow_extra(rest.first().is_some_and(|b| b & 1 == 1));
            if m.load_from_bytes_with(rest, &map).is_err() {
                assert!(
                    same(&before, &params(&m)),
                    "a failed load changed the machine"
                );
            }
            let _ = m.save_to_bytes_with(&map);
        }
        // saved bytes, mutated at the positions and values the input gives
        _ => {
            let mut bytes = match m.save_to_bytes() {
                Ok(b) => b,
                Err(err) => panic!("a small machine saves: {err}"),
            };
            if mode % 4 == 3 {
                // truncated or extended by the input
                let cut = rest.first().map_or(0, |&c| c as usize);
                bytes.truncate(bytes.len().saturating_sub(cut));
                bytes.extend_from_slice(rest.get(1..).unwrap_or(&[]));
            } else {
                for pair in rest.chunks_exact(3) {
                    let at = u16::from_le_bytes([pair[0], pair[1]]) as usize;
                    let len = bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(at % len) {
                        *b = pair[2];
                    }
                }
            }
            let other = Graph::<T>::new();
            let mut fresh = machine(&other);
            let untouched = params(&fresh);
            match fresh.load_from_bytes(&bytes) {
                Ok(()) => {
                    // what loaded saves again to bytes that load to the same values
                    let again = match fresh.save_to_bytes() {
                        Ok(b) => b,
                        Err(err) => panic!("a loaded machine saves: {err}"),
                    };
                    let loaded = params(&fresh);
                    if let Err(err) = m.load_from_bytes(&again) {
                        panic!("saved bytes load back: {err}");
                    }
                    assert!(same(&loaded, &params(&m)), "a round trip changed values");
                }
                Err(_) => assert!(
                    same(&untouched, &params(&fresh)),
                    "a failed load changed the machine"
                ),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    tapegrad::set_max_bytes(64 << 20); // as the other targets (common.rs, `limit_memory`)
    match data.first() {
        Some(b) if b & 0x80 != 0 => one::<f64>(&data[1..]),
        _ => one::<f32>(data.get(1..).unwrap_or(&[])),
    }
});
