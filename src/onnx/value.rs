//! Values while importing: graph tensors, constants known at import time, and the
//! decoding of `TensorProto` data.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ndarray::{ArrayD, IxDyn};

use super::proto::{tensor_proto::DataType, TensorProto};
use crate::{Scalar, Tensor};

/// A converter's error: a reason in words; the driver adds the op and the node.
pub(crate) type R<X> = core::result::Result<X, String>;

/// In an integer constant computed from a tensor's shape (`Shape`), the extent of the
/// run-time batch axis, which is not known at import time. It survives `Gather`,
/// `Unsqueeze`, `Squeeze`, `Concat` and `Slice` and becomes the batch axis in `Reshape`;
/// arithmetic on it is an error.
pub(crate) const BATCH: i64 = i64::MIN;

/// Elements of a constant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    /// Floating point (FLOAT, DOUBLE), kept as f64 (exact for f32).
    F(Vec<f64>),
    /// Integers (INT64, INT32, BOOL...), kept as i64.
    I(Vec<i64>),
}

/// A tensor known at import time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl Const {
    pub fn ints(dims: Vec<usize>, v: Vec<i64>) -> Const {
        Const {
            dims,
            data: Data::I(v),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    /// The elements as integers (floats must be whole numbers).
    pub fn as_ints(&self) -> R<Vec<i64>> {
        match &self.data {
            Data::I(v) => Ok(v.clone()),
            Data::F(v) => v
                .iter()
                .map(|&x| {
                    if x.fract() == 0.0 && x.abs() < 9.0e15 {
                        Ok(x as i64)
                    } else {
                        Err(format!("expected integers, found {x}"))
                    }
                })
                .collect(),
        }
    }

    /// The elements as f64; a batch extent is an error.
    pub fn as_floats(&self) -> R<Vec<f64>> {
        match &self.data {
            Data::F(v) => Ok(v.clone()),
            Data::I(v) => v
                .iter()
                .map(|&x| {
                    if x == BATCH {
                        Err(String::from(
                            "a value that depends on the run-time batch size is used as data",
                        ))
                    } else {
                        Ok(x as f64)
                    }
                })
                .collect(),
        }
    }

    /// As an ndarray of `T`.
    pub fn array<T: Scalar>(&self) -> R<ArrayD<T>> {
        let v: Vec<T> = self.as_floats()?.into_iter().map(T::of).collect();
        ArrayD::from_shape_vec(IxDyn(&self.dims), v).map_err(|e| e.to_string())
    }

    /// The elements at the flat indices `idx`, with new `dims`.
    pub fn pick(&self, dims: Vec<usize>, idx: &[usize]) -> Const {
        let data = match &self.data {
            Data::F(v) => Data::F(idx.iter().map(|&i| v[i]).collect()),
            Data::I(v) => Data::I(idx.iter().map(|&i| v[i]).collect()),
        };
        Const { dims, data }
    }
}

/// A value in the importer's environment.
#[derive(Clone)]
pub(crate) enum Value<'g, T: Scalar> {
    /// A tensor of the graph (an input, a parameter, an op's result).
    T(Tensor<'g, T>),
    /// Known at import time (a `Constant`, a folded shape computation).
    C(Const),
    /// An initializer (by its name; an `Identity` may pass it on under another) not
    /// used yet: it becomes a parameter, a buffer or a constant depending on the first
    /// node that reads it.
    Init(String),
}

/// The number of elements of `dims`, or an error if it overflows.
pub(crate) fn numel(dims: &[usize]) -> R<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("the shape {dims:?} has too many elements"))
}

/// The data of a `TensorProto` (inline or `raw_data`, little-endian).
pub(crate) fn decode(t: &TensorProto) -> R<Const> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(format!(
            "tensor {:?} keeps its data in an external file, which is not supported",
            t.name
        ));
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor {:?} has extent {d}", t.name)))
        .collect::<R<Vec<usize>>>()?;
    let n = numel(&dims)?;
    let raw = &t.raw_data;
    let ty = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
    let width = match ty {
        DataType::Float | DataType::Int32 => 4,
        DataType::Double | DataType::Int64 => 8,
        DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
        _ => {
            return Err(format!(
                "tensor {:?} has data type {} ({}), not FLOAT, DOUBLE, INT64, INT32, INT8, UINT8 \
                 or BOOL",
                t.name,
                ty.as_str_name(),
                t.data_type
            ))
        }
    };
    let data = if !raw.is_empty() {
        if Some(raw.len()) != n.checked_mul(width) {
            return Err(format!(
                "tensor {:?} of shape {dims:?} has {} bytes of raw data, not {}",
                t.name,
                raw.len(),
                n.saturating_mul(width)
            ));
        }
        let w = |c: &[u8]| -> [u8; 8] {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            b
        };
        let chunks = raw.chunks_exact(width);
        match ty {
            DataType::Float => Data::F(
                chunks
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect(),
            ),
            DataType::Double => Data::F(chunks.map(|c| f64::from_le_bytes(w(c))).collect()),
            DataType::Int64 => Data::I(chunks.map(|c| i64::from_le_bytes(w(c))).collect()),
            DataType::Int32 => Data::I(
                chunks
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
            ),
            DataType::Int8 => Data::I(chunks.map(|c| c[0] as i8 as i64).collect()),
            _ => Data::I(chunks.map(|c| c[0] as i64).collect()),
        }
    } else {
        match ty {
            DataType::Float => Data::F(t.float_data.iter().map(|&x| x as f64).collect()),
            DataType::Double => Data::F(t.double_data.clone()),
            DataType::Int64 => Data::I(t.int64_data.clone()),
            _ => Data::I(t.int32_data.iter().map(|&x| x as i64).collect()),
        }
    };
    let c = Const { dims, data };
    if c.len() != n {
        return Err(format!(
            "tensor {:?} of shape {:?} holds {} elements",
            t.name,
            c.dims,
            c.len()
        ));
    }
    Ok(c)
}

/// Resolves a possibly negative `axis` of a rank-`rank` tensor.
pub(crate) fn axis(a: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let i = if a < 0 { a + r } else { a };
    if (0..r).contains(&i) {
        Ok(i as usize)
    } else {
        Err(format!("axis {a} is out of range for rank {rank}"))
    }
}
