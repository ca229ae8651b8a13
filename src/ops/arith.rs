//! `+ - * /` (broadcasting) and unary `-` on tensor handles, with scalars on either
//! side. The ops themselves are in `binary.rs` and `unary.rs`.

use core::ops::{Add, Div, Mul, Neg, Sub};

use super::binary;
use super::unary;

use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::Shape;

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl<'g, T: Scalar> $trait<Tensor<'g, T>> for Tensor<'g, T> {
            type Output = Tensor<'g, T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<'g, T>) -> Tensor<'g, T> {
                self.binary($op, rhs)
            }
        }

        impl<'g, T: Scalar> $trait<T> for Tensor<'g, T> {
            type Output = Tensor<'g, T>;
            #[track_caller]
            fn $method(self, rhs: T) -> Tensor<'g, T> {
                self.binary($op, self.graph.full(Shape::scalar(), rhs))
            }
        }

        impl<'g> $trait<Tensor<'g, f32>> for f32 {
            type Output = Tensor<'g, f32>;
            #[track_caller]
            fn $method(self, rhs: Tensor<'g, f32>) -> Tensor<'g, f32> {
                rhs.graph.full(Shape::scalar(), self).binary($op, rhs)
            }
        }

        impl<'g> $trait<Tensor<'g, f64>> for f64 {
            type Output = Tensor<'g, f64>;
            #[track_caller]
            fn $method(self, rhs: Tensor<'g, f64>) -> Tensor<'g, f64> {
                rhs.graph.full(Shape::scalar(), self).binary($op, rhs)
            }
        }
    };
}

binary_operator!(Add, add, binary::Add);
binary_operator!(Sub, sub, binary::Sub);
binary_operator!(Mul, mul, binary::Mul);
binary_operator!(Div, div, binary::Div);

impl<'g, T: Scalar> Neg for Tensor<'g, T> {
    type Output = Tensor<'g, T>;
    #[track_caller]
    fn neg(self) -> Tensor<'g, T> {
        self.unary(unary::Neg)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use ndarray::arr1;

    #[test]
    fn scalars_on_both_sides() {
        let x = [arr1(&[1.0, 2.0]).into_dyn()];
        // 2x + 1, 1 - x, 6 / x, x / 2, -x * 3
        assert_eq!(
            eval(&x, |_, x| 2.0 * x[0] + 1.0),
            arr1(&[3.0, 5.0]).into_dyn()
        );
        assert_eq!(eval(&x, |_, x| 1.0 - x[0]), arr1(&[0.0, -1.0]).into_dyn());
        assert_eq!(eval(&x, |_, x| 6.0 / x[0]), arr1(&[6.0, 3.0]).into_dyn());
        assert_eq!(eval(&x, |_, x| x[0] / 2.0), arr1(&[0.5, 1.0]).into_dyn());
        assert_eq!(eval(&x, |_, x| -x[0] * 3.0), arr1(&[-3.0, -6.0]).into_dyn());
    }
}
