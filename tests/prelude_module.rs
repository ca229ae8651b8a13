//! `use tapegrad::prelude::*` alone brings `nn::Module`, so every layer's `forward`
//! (and `params`) is callable, and models can be written generically over layers.

use tapegrad::nn::{
    Activation, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Flatten, Linear,
    MaxPool1d, MaxPool2d,
};
use tapegrad::prelude::*;

/// Applies `layers` in turn: compiles only if `Module` is in scope from the prelude.
fn chain<'g>(layers: &[&dyn Module<'g, f32>], x: Tensor<'g, f32>) -> Tensor<'g, f32> {
    layers.iter().fold(x, |x, l| l.forward(x))
}

#[test]
fn every_layer_forwards_with_the_prelude_alone() {
    let mut rng = <tapegrad::rand::rngs::StdRng as tapegrad::rand::SeedableRng>::seed_from_u64(0);
    let g = Graph::<f32>::new();
    let x2 = g.input("x2", (Dim::upto(4), 3, 8, 8));
    let x1 = g.input("x1", (Dim::upto(4), 3, 8));

    assert_eq!(
        MaxPool2d::new(2).forward(x2).shape(),
        Shape::from((Dim::upto(4), 3, 4, 4))
    );
    assert_eq!(
        AvgPool2d::new(2).forward(x2).shape(),
        Shape::from((Dim::upto(4), 3, 4, 4))
    );
    assert_eq!(
        MaxPool1d::new(2).forward(x1).shape(),
        Shape::from((Dim::upto(4), 3, 4))
    );
    assert_eq!(
        AvgPool1d::new(2).forward(x1).shape(),
        Shape::from((Dim::upto(4), 3, 4))
    );
    let gap2 = AdaptiveAvgPool2d::new(1).forward(x2);
    assert_eq!(gap2.shape(), Shape::from((Dim::upto(4), 3, 1, 1)));
    let gap1 = AdaptiveAvgPool1d::new(1).forward(x1);
    assert_eq!(gap1.shape(), Shape::from((Dim::upto(4), 3, 1)));
    assert_eq!(
        Flatten::new().forward(x2).shape(),
        Shape::from((Dim::upto(4), 192))
    );
    assert_eq!(Activation::Relu.forward(x1).shape(), x1.shape());

    let fc = Linear::new(&g, "fc", 3 * 4 * 4, 10, &mut rng);
    let (pool, flat, relu) = (MaxPool2d::new(2), Flatten::new(), Activation::Relu);
    let y = chain(&[&pool, &flat, &fc, &relu], x2);
    assert_eq!(y.shape(), Shape::from((Dim::upto(4), 10)));
    // the trait's `params` too: none for a pooling layer, the weight and bias for `fc`
    assert!(Module::<f32>::params(&pool).is_empty());
    assert_eq!(Module::params(&fc).len(), 2);
    g.check().unwrap();
}
