//! Unit tests of the importer's internals: reshape targets with a run-time batch axis,
//! tensor decoding, constant folding.

use alloc::vec;
use alloc::vec::Vec;

use super::convert::shape::target_shape;
use super::proto::TensorProto;
use super::value::{decode, Const, Data, BATCH};
use crate::{Dim, Shape};

#[test]
fn reshape_targets_keep_the_batch_axis_first() {
    let x = Shape::from((Dim::upto(8), 2, 3));
    let upto = |rest: &[usize]| Shape::upto(8, rest);
    // 0 copies the batch; BATCH (from `Shape`) is the batch; a lone -1 that the fixed
    // extents already fill is the batch
    assert_eq!(target_shape(&x, &[0, -1], false), Ok(upto(&[6])));
    assert_eq!(target_shape(&x, &[BATCH, -1], false), Ok(upto(&[6])));
    assert_eq!(target_shape(&x, &[BATCH, 3, 2], false), Ok(upto(&[3, 2])));
    assert_eq!(target_shape(&x, &[-1, 6], false), Ok(upto(&[6])));
    assert_eq!(target_shape(&x, &[0, 2, 3, 1], false), Ok(upto(&[2, 3, 1])));
    // merging, moving or fixing the batch is an error
    for bad in [
        &[-1, 3][..],
        &[6, BATCH],
        &[8, 6],
        &[BATCH, BATCH, 6],
        &[0, -1, -1],
    ] {
        assert!(target_shape(&x, bad, false).is_err(), "{bad:?}");
    }
    // without a run-time axis: ordinary ONNX rules; allowzero makes 0 an extent
    let f = Shape::from([4, 6]);
    assert_eq!(
        target_shape(&f, &[0, 3, -1], false),
        Ok(Shape::from([4, 3, 2]))
    );
    assert_eq!(target_shape(&f, &[-1], false), Ok(Shape::from([24])));
    assert!(target_shape(&f, &[5, -1], false).is_err());
    assert!(target_shape(&f, &[0, 24], true).is_err());
    assert!(target_shape(&f, &[0, 0, 0, 0], false).is_err()); // 0 past the input's rank
}

#[test]
fn tensors_decode_inline_and_raw() {
    let inline = TensorProto {
        dims: vec![2],
        data_type: 7, // INT64
        int64_data: vec![-3, 5],
        ..Default::default()
    };
    let raw = TensorProto {
        dims: vec![2],
        data_type: 7,
        raw_data: [-3i64, 5].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    let want = Const::ints(vec![2], vec![-3, 5]);
    assert_eq!(decode(&inline), Ok(want.clone()));
    assert_eq!(decode(&raw), Ok(want));
    let i32s = TensorProto {
        dims: vec![1, 2],
        data_type: 6, // INT32
        raw_data: [7i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    assert_eq!(decode(&i32s).map(|c| c.data), Ok(Data::I(vec![7, -1])));
    let f64s = TensorProto {
        dims: vec![],
        data_type: 11, // DOUBLE
        double_data: vec![0.1],
        ..Default::default()
    };
    assert_eq!(
        decode(&f64s).map(|c| (c.dims, c.data)),
        Ok((vec![], Data::F(vec![0.1])))
    );
    let f16 = TensorProto {
        data_type: 10, // FLOAT16
        ..Default::default()
    };
    assert!(decode(&f16).unwrap_err().contains("FLOAT16"));
    let negative = TensorProto {
        dims: vec![-1],
        data_type: 1,
        ..Default::default()
    };
    assert!(decode(&negative).is_err());
    let huge = TensorProto {
        dims: vec![i64::MAX, i64::MAX],
        data_type: 1,
        ..Default::default()
    };
    assert!(decode(&huge).unwrap_err().contains("too many elements"));
}

#[test]
fn constants_convert_with_checks() {
    let c = Const {
        dims: vec![2],
        data: Data::F(vec![2.0, 0.5]),
    };
    assert!(c.as_ints().is_err()); // 0.5 is not an integer
    let b = Const::ints(vec![2], vec![BATCH, 3]);
    assert!(b.as_floats().is_err()); // the batch size is not known at import time
    let a = Const::ints(vec![2, 1], vec![1, 2]).array::<f64>().unwrap();
    assert_eq!(a.shape(), &[2, 1]);
    let picked: Vec<i64> = match Const::ints(vec![3], vec![4, 5, 6])
        .pick(vec![2], &[2, 0])
        .data
    {
        Data::I(v) => v,
        Data::F(_) => vec![],
    };
    assert_eq!(picked, [6, 4]);
}
