//! XOR, the smallest complete program: a 2-8-2 MLP learns the four points, then prints
//! its predictions. Exits with status 1 if any of them is wrong.
//!
//! ```text
//! cargo run --release --example xor
//! ```

use tapegrad::ndarray::{arr1, arr2};
use tapegrad::prelude::*;
use tapegrad::rand::{rngs::StdRng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(0);
    let g = Graph::<f32>::new();
    let x = g.input("x", [4, 2]);
    let y = g.input("y", [4]); // class ids, stored as f32
    let w1 = g.param("w1", init::kaiming_uniform([2, 8], &mut rng)?);
    let b1 = g.param("b1", init::zeros([8])?);
    let w2 = g.param("w2", init::kaiming_uniform([8, 2], &mut rng)?);
    let b2 = g.param("b2", init::zeros([2])?);
    let logits = (x.matmul(w1) + b1).relu().matmul(w2) + b2;
    let loss = logits.cross_entropy(y);
    let params = g.params();
    let grads = g.grad(loss, &params)?;

    let mut m = g.compile(&[loss, logits], &grads)?;
    let mut opt = Sgd::new(0.5);
    let inputs = arr2(&[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]);
    let targets = arr1(&[0.0, 1.0, 1.0, 0.0]);
    m.feed(x, &inputs)?;
    m.feed(y, &targets)?;
    for step in 1..=500 {
        m.run()?;
        opt.step(&mut m, &grads)?;
        if step % 100 == 0 {
            println!("step {step}  loss {:.4}", m.item(loss)?);
        }
    }
    m.run()?; // logits with the final parameters

    let mut wrong = 0;
    for (i, row) in m.value(logits)?.outer_iter().enumerate() {
        let predicted = if row[1] > row[0] { 1 } else { 0 };
        let expected = targets[i] as i32;
        let mark = if predicted == expected { "ok" } else { "WRONG" };
        println!(
            "{} xor {} = {predicted}  ({mark})",
            inputs[[i, 0]],
            inputs[[i, 1]]
        );
        wrong += usize::from(predicted != expected);
    }
    if wrong > 0 {
        eprintln!("error: {wrong} of 4 predictions are wrong");
        std::process::exit(1);
    }
    Ok(())
}
