//! A node's attributes, read by name and type; attributes an op does not honour are
//! errors rather than silently ignored.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto, TensorProto};
use super::value::R;

/// The attributes of one node.
pub(crate) struct Attrs<'a>(pub &'a [AttributeProto]);

impl<'a> Attrs<'a> {
    /// Checks every attribute is one the converter honours (`known`).
    pub fn only(node: &'a NodeProto, known: &[&str]) -> R<Attrs<'a>> {
        for a in &node.attribute {
            if !known.contains(&a.name.as_str()) {
                return Err(format!(
                    "attribute {:?} is not supported (supported: {known:?})",
                    a.name
                ));
            }
            if !a.ref_attr_name.is_empty() {
                return Err(format!(
                    "attribute {:?} refers to a function attribute, which is not supported",
                    a.name
                ));
            }
        }
        Ok(Attrs(&node.attribute))
    }

    fn get(&self, name: &str, ty: AttributeType) -> R<Option<&'a AttributeProto>> {
        match self.0.iter().find(|a| a.name == name) {
            None => Ok(None),
            // type 0 (UNDEFINED) is what some old writers leave; trust the field then
            Some(a) if a.r#type == ty as i32 || a.r#type == 0 => Ok(Some(a)),
            Some(a) => Err(format!(
                "attribute {name:?} has type {}, expected {}",
                AttributeType::try_from(a.r#type)
                    .map(|t| t.as_str_name())
                    .unwrap_or("unknown"),
                ty.as_str_name()
            )),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> R<i64> {
        Ok(self.get(name, AttributeType::Int)?.map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> R<f32> {
        Ok(self
            .get(name, AttributeType::Float)?
            .map_or(default, |a| a.f))
    }

    pub fn ints(&self, name: &str) -> R<Option<Vec<i64>>> {
        Ok(self.get(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> R<Option<Vec<f32>>> {
        Ok(self
            .get(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> R<Option<String>> {
        match self.get(name, AttributeType::String)? {
            None => Ok(None),
            Some(a) => String::from_utf8(a.s.clone())
                .map(Some)
                .map_err(|_| format!("attribute {name:?} is not UTF-8")),
        }
    }

    pub fn tensor(&self, name: &str) -> R<Option<&'a TensorProto>> {
        Ok(self
            .get(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    /// Whether `name` is present at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a.name == name)
    }
}

/// Non-negative extents from an `ints` attribute (`kernel_shape`, `strides`, ...).
pub(crate) fn extents(name: &str, v: &[i64], min: i64) -> R<Vec<usize>> {
    v.iter()
        .map(|&x| {
            if x >= min {
                usize::try_from(x).map_err(|_| format!("{name} {x} is too large"))
            } else {
                Err(format!("{name} {v:?} must be >= {min}"))
            }
        })
        .collect()
}
