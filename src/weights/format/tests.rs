//! The hand-written safetensors reader and writer against the reference implementation
//! (the `safetensors` crate, a dev-dependency), and on corrupt inputs.

extern crate std;

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::collections::HashMap;

use safetensors::{Dtype as RefDtype, SafeTensors, View};

use super::{read, write, write_with, Dtype, Out, DTYPES, MAX_HEADER};

/// A tensor for the reference writer.
struct RefTensor {
    dtype: RefDtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &RefTensor {
    fn dtype(&self) -> RefDtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The reference's dtype of the same name.
fn ref_dtype(d: Dtype) -> RefDtype {
    let all = [
        RefDtype::BOOL,
        RefDtype::F4,
        RefDtype::F6_E2M3,
        RefDtype::F6_E3M2,
        RefDtype::U8,
        RefDtype::I8,
        RefDtype::F8_E5M2,
        RefDtype::F8_E4M3,
        RefDtype::F8_E8M0,
        RefDtype::F8_E4M3FNUZ,
        RefDtype::F8_E5M2FNUZ,
        RefDtype::I16,
        RefDtype::U16,
        RefDtype::F16,
        RefDtype::BF16,
        RefDtype::I32,
        RefDtype::U32,
        RefDtype::F32,
        RefDtype::C64,
        RefDtype::F64,
        RefDtype::I64,
        RefDtype::U64,
    ];
    let r = all[d.0 as usize];
    assert_eq!(r.to_string(), d.name());
    r
}

fn dtype(name: &str) -> Dtype {
    Dtype::parse(name).unwrap()
}

/// A set of tensors of many dtypes and awkward names: (name, dtype, shape); the data is
/// made from the position.
fn sample() -> Vec<(String, Dtype, Vec<usize>)> {
    vec![
        ("w".into(), Dtype::F32, vec![3, 4]),
        ("b".into(), Dtype::F32, vec![4]),
        ("scale".into(), Dtype::F64, vec![]),
        ("empty".into(), Dtype::F64, vec![0, 5]),
        ("ids".into(), dtype("I64"), vec![2]),
        ("mask".into(), dtype("BOOL"), vec![3]),
        ("half".into(), dtype("BF16"), vec![2, 2]),
        ("nibbles".into(), dtype("F4"), vec![6]),
        ("six".into(), dtype("F6_E2M3"), vec![4]),
        ("layers.0.weight".into(), dtype("U8"), vec![5]),
        ("quote\"back\\slash/".into(), Dtype::F32, vec![1]),
        (
            "ctl\u{1}\u{8}\t\n\r\u{c}\u{1f}\u{7f}".into(),
            Dtype::F32,
            vec![1],
        ),
        ("ünïcödé ✓ 𝄞".into(), dtype("I8"), vec![2]),
        ("".into(), dtype("U16"), vec![1]),
    ]
}

fn bytes_of(dtype: Dtype, shape: &[usize], seed: usize) -> Vec<u8> {
    let bits: usize = shape.iter().product::<usize>() * dtype.bits();
    (0..bits / 8).map(|i| (i * 31 + seed * 7) as u8).collect()
}

fn ours(set: &[(String, Dtype, Vec<usize>)]) -> Vec<u8> {
    let outs = set
        .iter()
        .enumerate()
        .map(|(k, (n, d, s))| Out {
            name: n,
            dtype: *d,
            shape: s.clone(),
            data: bytes_of(*d, s, k),
        })
        .collect();
    write(outs).unwrap()
}

fn reference(
    set: &[(String, Dtype, Vec<usize>)],
    meta: Option<HashMap<String, String>>,
) -> Vec<u8> {
    let tensors: Vec<(String, RefTensor)> = set
        .iter()
        .enumerate()
        .map(|(k, (n, d, s))| {
            (
                n.clone(),
                RefTensor {
                    dtype: ref_dtype(*d),
                    shape: s.clone(),
                    data: bytes_of(*d, s, k),
                },
            )
        })
        .collect();
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), meta).unwrap()
}

/// What `read` finds, by name: (dtype name, shape, data).
fn contents(bytes: &[u8]) -> Vec<(String, String, Vec<usize>, Vec<u8>)> {
    let mut v: Vec<_> = read(bytes)
        .unwrap()
        .tensors
        .into_iter()
        .map(|t| (t.name, t.dtype.name().to_string(), t.shape, t.data.to_vec()))
        .collect();
    v.sort();
    v
}

/// What the reference finds, by name.
fn ref_contents(bytes: &[u8]) -> Vec<(String, String, Vec<usize>, Vec<u8>)> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let mut v: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            (
                n,
                t.dtype().to_string(),
                t.shape().to_vec(),
                t.data().to_vec(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn writes_what_the_reference_writes_byte_for_byte() {
    let set = sample();
    assert_eq!(ours(&set), reference(&set, None));
    assert_eq!(ours(&[]), reference(&[], None));
    for k in 0..set.len() {
        let one = &set[k..=k];
        assert_eq!(ours(one), reference(one, None), "{:?}", one[0].0);
    }
}

#[test]
fn reads_what_the_reference_writes_and_the_reference_reads_ours() {
    let set = sample();
    let theirs = reference(&set, None);
    assert_eq!(contents(&theirs), ref_contents(&theirs));
    let mine = ours(&set);
    assert_eq!(ref_contents(&mine), contents(&mine));
    assert_eq!(contents(&mine).len(), set.len());

    // with `__metadata__`, which the reference writes first
    let meta: HashMap<String, String> = [("format", "pt"), ("note", "a \"quoted\" ✓")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let theirs = reference(&set, Some(meta.clone()));
    assert_eq!(contents(&theirs), ref_contents(&theirs));
    let mut read_meta = read(&theirs).unwrap().metadata;
    read_meta.sort();
    let mut want: Vec<(String, String)> = meta.into_iter().collect();
    want.sort();
    assert_eq!(read_meta, want);
}

#[test]
fn every_dtype_of_the_reference_is_known() {
    for (name, bits) in DTYPES {
        let d = dtype(name);
        assert_eq!(d.bits(), bits);
        let set = vec![("t".to_string(), d, vec![8])];
        assert_eq!(ours(&set), reference(&set, None), "{name}");
        assert_eq!(contents(&ours(&set))[0].1, name);
    }
}

/// A file whose header is `json` and whose data is `data` bytes of zeros.
fn file(json: &str, data: usize) -> Vec<u8> {
    let mut v = (json.len() as u64).to_le_bytes().to_vec();
    v.extend(json.as_bytes());
    v.extend(core::iter::repeat_n(0u8, data));
    v
}

#[track_caller]
fn refused(bytes: &[u8], why: &str) {
    match read(bytes) {
        Ok(f) => panic!("accepted {:?}: {f:?}", String::from_utf8_lossy(bytes)),
        Err(e) => assert!(e.contains(why), "{why:?} not in {e:?}"),
    }
}

const T: &str = r#""dtype":"F32","shape":[2],"data_offsets""#;

#[test]
fn cut_short_at_every_byte_is_an_err() {
    let meta: HashMap<String, String> = [("k".to_string(), "v".to_string())].into();
    for good in [ours(&sample()), reference(&sample(), Some(meta))] {
        read(&good).unwrap();
        for len in 0..good.len() {
            assert!(read(&good[..len]).is_err(), "cut at {len}");
        }
        // and one byte too many
        let mut long = good.clone();
        long.push(0);
        refused(&long, "does not end where the file ends");
    }
}

#[test]
fn any_one_byte_changed_is_an_err_or_what_the_reference_reads_too() {
    // changing a byte of the header makes most files invalid; whatever we still accept,
    // the reference must accept and read the same way (we are the stricter of the two)
    let good = ours(&sample()[..6]);
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut accepted = 0;
    for at in 0..8 + n {
        for b in [b'0', b'9', b' ', b'"', b'{', b']', b',', b'\\', 0, 0xff] {
            let mut bad = good.clone();
            if bad[at] == b {
                continue;
            }
            bad[at] = b;
            if read(&bad).is_ok() {
                accepted += 1;
                assert_eq!(contents(&bad), ref_contents(&bad), "byte {at} = {b}");
            }
        }
    }
    // some changes stay valid (a digit of a shape and its offsets cannot move alone, but
    // a name's letter can)
    assert!(accepted > 0);
}

#[test]
fn lying_lengths_are_errs() {
    refused(&[], "shorter than the 8-byte header length");
    refused(&[1, 0, 0], "shorter than the 8-byte header length");
    refused(&u64::MAX.to_le_bytes(), "over 100 MB");
    refused(&((MAX_HEADER + 1) as u64).to_le_bytes(), "over 100 MB");
    refused(&(MAX_HEADER as u64).to_le_bytes(), "runs past the end");
    let mut v = 100u64.to_le_bytes().to_vec();
    v.extend(b"{}");
    refused(&v, "runs past the end");
    // a shape whose size overflows, or is far larger than the input
    refused(
        &file(
            &format!(
                r#"{{"t":{{"dtype":"F64","shape":[{m},{m}],"data_offsets":[0,8]}}}}"#,
                m = usize::MAX
            ),
            8,
        ),
        "does not take the 8 bytes",
    );
    refused(
        &file(
            r#"{"t":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#,
            8,
        ),
        "does not end where the file ends",
    );
    refused(
        &file(
            r#"{"t":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#,
            4,
        ),
        "too large",
    );
}

#[test]
fn bad_json_is_an_err() {
    let ok = format!(r#"{{"t":{{{T}:[0,8]}}}}"#);
    read(&file(&ok, 8)).unwrap();
    read(&file(&format!(" \n\t{ok}\r\n  "), 8)).unwrap();
    for (json, why) in [
        ("", "expected '{'"),
        ("[]", "expected '{'"),
        ("{", "found the end"),
        ("{not json!!}", "expected '\"'"),
        (
            r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}"#,
            "expected '\"'",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}}"#,
            "the end of the header",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#,
            "found the end",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]} "u":1}"#,
            "',' or '}'",
        ),
        (r#"{'t':{}}"#, "expected '\"'"),
        (r#"{"t" {"dtype":"F32"}}"#, "expected ':'"),
        (
            r#"{"t":{"dtype":"F32","shape":[2,],"data_offsets":[0,8]}}"#,
            "a number",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[2 2],"data_offsets":[0,8]}}"#,
            "',' or ']'",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
            "not a whole number",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#,
            "not a whole number",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}"#,
            "not a whole number",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}"#,
            "not a whole number",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#,
            "expected '['",
        ),
        (
            r#"{"t":{"dtype":F32,"shape":[2],"data_offsets":[0,8]}}"#,
            "expected '\"'",
        ),
        (r#"{"t":[]}"#, "expected '{'"),
        (
            r#"{"t":{"dtype":"F32\u","shape":[2],"data_offsets":[0,8]}}"#,
            "four hex digits",
        ),
        (
            r#"{"t\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "surrogate",
        ),
        (
            r#"{"t\udc00":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "surrogate",
        ),
        (
            r#"{"t\q":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "an escape",
        ),
        (
            "{\"t\u{1}\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
            "control",
        ),
        (
            r#"{"__metadata__":{"k":1},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "expected '\"'",
        ),
        (
            r#"{"__metadata__":{"k":"v","k":"w"},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "twice",
        ),
        (
            r#"{"__metadata__":{},"__metadata__":{},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "twice",
        ),
        (
            r#"{"__metadata__":"x","t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "expected '{'",
        ),
    ] {
        refused(&file(json, 8), why);
        assert!(
            read(&file(json, 8))
                .unwrap_err()
                .starts_with("the header is not the JSON"),
            "{json}"
        );
    }
    // not UTF-8
    let mut v = file(
        r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    v[10] = 0xff;
    refused(&v, "not UTF-8");
    // the escapes JSON has all read back
    let bytes = file(
        r#"{"a\"\\\/\b\f\n\r\t\u00e9\ud834\udd1e":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    let f = read(&bytes).unwrap();
    assert_eq!(f.tensors[0].name, "a\"\\/\u{8}\u{c}\n\r\té𝄞");
}

#[test]
fn entries_that_do_not_describe_the_data_are_errs() {
    let two =
        |a: &str, b: &str, data| file(&format!(r#"{{"a":{{{T}:{a}}},"b":{{{T}:{b}}}}}"#), data);
    read(&two("[0,8]", "[8,16]", 16)).unwrap();
    read(&two("[8,16]", "[0,8]", 16)).unwrap(); // any order in the header
    refused(&two("[0,8]", "[4,12]", 12), "overlap another tensor");
    refused(&two("[0,8]", "[0,8]", 8), "overlap another tensor");
    refused(&two("[0,8]", "[12,20]", 20), "leave a gap");
    refused(&two("[4,12]", "[12,20]", 20), "leave a gap");
    refused(&two("[0,8]", "[16,8]", 16), "end before they start");
    refused(
        &two("[0,8]", "[8,16]", 12),
        "does not end where the file ends",
    );
    refused(
        &two("[0,8]", "[8,16]", 20),
        "does not end where the file ends",
    );
    refused(&two("[0,8]", "[8,12]", 12), "does not take the 4 bytes");
    refused(&two("[0,8]", "[8]", 16), "1 data_offsets, not 2");
    refused(&two("[0,8]", "[8,16,16]", 16), "3 data_offsets, not 2");
    // duplicate names, keys, unknown or missing keys, unknown dtypes
    refused(
        &two("[0,8]", "[8,16]", 16).replace_name(b"\"b\"", b"\"a\""),
        "twice",
    );
    for (entry, why) in [
        (
            r#"{"dtype":"F33","shape":[2],"data_offsets":[0,8]}"#,
            "unknown dtype \"F33\"",
        ),
        (
            r#"{"dtype":"f32","shape":[2],"data_offsets":[0,8]}"#,
            "unknown dtype \"f32\"",
        ),
        (
            r#"{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}"#,
            "key \"dtype\" twice",
        ),
        (
            r#"{"dtype":"F32","shape":[2],"shape":[2],"data_offsets":[0,8]}"#,
            "key \"shape\" twice",
        ),
        (
            r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8],"data_offsets":[0,8]}"#,
            "twice",
        ),
        (
            r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}"#,
            "unknown key \"extra\"",
        ),
        (r#"{"shape":[2],"data_offsets":[0,8]}"#, "no dtype"),
        (r#"{"dtype":"F32","data_offsets":[0,8]}"#, "no shape"),
        (r#"{"dtype":"F32","shape":[2]}"#, "no data_offsets"),
        (
            r#"{"dtype":"F32","shape":[3],"data_offsets":[0,8]}"#,
            "does not take the 8 bytes",
        ),
        (
            r#"{"dtype":"F64","shape":[2],"data_offsets":[0,8]}"#,
            "does not take the 8 bytes",
        ),
        (
            r#"{"dtype":"F4","shape":[3],"data_offsets":[0,8]}"#,
            "does not take",
        ),
    ] {
        refused(&file(&format!(r#"{{"t":{entry}}}"#), 8), why);
    }
}

/// `replace_name` on a file's bytes: the first occurrence of `from` becomes `to` (same
/// length, so the header length stays right).
trait ReplaceName {
    fn replace_name(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceName for Vec<u8> {
    fn replace_name(mut self, from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = self.windows(from.len()).rposition(|w| w == from).unwrap();
        self[at..at + to.len()].copy_from_slice(to);
        self
    }
}

/// A file the writer writes must read back: a tensor named `__metadata__` would be read
/// as the metadata map (and refused), so the writer refuses it instead.
#[test]
fn a_tensor_named_metadata_is_refused_when_written() {
    let out = |name| Out {
        name,
        dtype: Dtype::F32,
        shape: vec![1],
        data: vec![0; 4],
    };
    let e = write(vec![out("w"), out("__metadata__")]).unwrap_err();
    assert!(e.contains("__metadata__"), "{e}");
    // and the reference reads back every other name the writer takes
    let ok = write(vec![out("__metadata"), out("__metadata__ ")]).unwrap();
    assert_eq!(contents(&ok), ref_contents(&ok));
}

/// Many distinct `__metadata__` keys are read in about linear time: a pairwise check for
/// repeated keys took quadratic time (7 million keys fit the 100 MB a header may have).
#[test]
fn many_metadata_keys_are_read_and_repeats_found() {
    let keys = 60_000;
    let mut json = String::from(r#"{"__metadata__":{"#);
    for k in 0..keys {
        json.push_str(&format!(r#"{}"{k}":"""#, if k > 0 { "," } else { "" }));
    }
    json.push_str("}}");
    let bytes = file(&json, 0);
    let f = read(&bytes).unwrap();
    assert_eq!(f.metadata.len(), keys);
    assert_eq!(
        f.metadata[keys - 1],
        (format!("{}", keys - 1), String::new())
    );
    let repeated = json.replace(r#""59999":"""#, r#""17":"x""#);
    refused(&file(&repeated, 0), "the __metadata__ key \"17\" twice");
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Seeded mutations of valid files (bytes set, inserted, removed, spans copied, the
/// header length kept consistent or not): the reader never panics, and what it accepts
/// the reference accepts and reads the same way.
#[test]
fn mutated_files_never_panic_and_agree_with_the_reference() {
    let meta: HashMap<String, String> = [("k".to_string(), "v\"\\u".to_string())].into();
    let seeds = [ours(&sample()[..7]), reference(&sample()[..5], Some(meta))];
    let tokens: [&[u8]; 16] = [
        b"0",
        b"9",
        b"-",
        b"1e3",
        b" ",
        b"\"",
        b"\\u",
        b"\\ud834",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\xff",
        b"\xc3\xa9",
    ];
    let mut rng = Rng(0x5EED);
    let (mut accepted, mut tried) = (0, 0);
    for round in 0..6_000 {
        let mut bad = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bad.len() + 1);
            match rng.below(5) {
                0 if at < bad.len() => bad[at] = rng.next() as u8,
                1 => {
                    let t = tokens[rng.below(tokens.len())];
                    bad.splice(at..at, t.iter().copied());
                }
                2 if at < bad.len() => {
                    let end = (at + 1 + rng.below(8)).min(bad.len());
                    bad.drain(at..end);
                }
                3 => {
                    let from = rng.below(bad.len());
                    let end = (from + 1 + rng.below(12)).min(bad.len());
                    let span = bad[from..end].to_vec();
                    bad.splice(at..at, span);
                }
                _ => {}
            }
        }
        // keep the header length pointing at the end of the JSON's closing brace, or not
        if rng.below(2) == 0 && bad.len() >= 8 {
            if let Some(close) = bad[8..].iter().rposition(|&b| b == b'}') {
                bad[..8].copy_from_slice(&(close as u64 + 1).to_le_bytes());
            }
        }
        tried += 1;
        if read(&bad).is_ok() {
            accepted += 1;
            assert!(
                SafeTensors::deserialize(&bad).is_ok(),
                "round {round}: accepted what the reference refuses: {:?}",
                String::from_utf8_lossy(&bad)
            );
            assert_eq!(contents(&bad), ref_contents(&bad), "round {round}");
        }
    }
    // the mutations must leave some files valid, or the comparison tests nothing
    assert!(accepted > 50, "{accepted} of {tried} accepted");
}

/// Checkpoints keep their step and settings in `__metadata__`: written first, as the
/// reference writes it (one key, so the reference's map order cannot differ).
#[test]
fn writes_metadata_as_the_reference_does() {
    let set = sample();
    let outs = set
        .iter()
        .enumerate()
        .map(|(k, (n, d, s))| Out {
            name: n,
            dtype: *d,
            shape: s.clone(),
            data: bytes_of(*d, s, k),
        })
        .collect();
    let meta = vec![("step".to_string(), "a \"quoted\" ✓\n".to_string())];
    let mine = write_with(outs, &meta).unwrap();
    let theirs = reference(&set, Some(meta.iter().cloned().collect()));
    assert_eq!(mine, theirs);
    assert_eq!(read(&mine).unwrap().meta("step"), Some("a \"quoted\" ✓\n"));
    // metadata alone, no tensors
    let theirs = reference(&[], Some(meta.iter().cloned().collect()));
    assert_eq!(write_with(Vec::new(), &meta).unwrap(), theirs);
}

#[test]
fn two_tensors_of_one_name_are_refused_when_written() {
    let out = |name| Out {
        name,
        dtype: Dtype::F32,
        shape: vec![1],
        data: vec![0; 4],
    };
    let e = write(vec![out("w"), out("w")]).unwrap_err();
    assert!(e.contains("two tensors are named \"w\""), "{e}");
}
