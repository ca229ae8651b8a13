//! Handwritten digits, the other half: build the model of `examples/digits.rs`, load the
//! weights it saved, recompute the test accuracy on the same seeded split and draw a few
//! test images as 8x8 ASCII art with their true and predicted labels.
//!
//! ```text
//! cargo run --release --example digits            # trains, saves the weights
//! cargo run --release --example digits_predict [weights.safetensors]
//! ```
//!
//! Exits with status 1 if the weights file is missing, if the standardisation saved in it
//! is not the training rows', or if the accuracy is not the one the training run recorded
//! beside the weights.

#[path = "digits_common/mod.rs"]
mod common;

use std::process::exit;
use std::time::Instant;

use common::{correct, Digits, Model, Sets};
use tapegrad::ndarray::ArrayView1;
use tapegrad::prelude::*;

/// Intensity ramp, from 0 (paper) to 16 (ink).
const RAMP: &[u8] = b" .:-=+*#%@";
/// Test images drawn, side by side.
const SHOWN: usize = 6;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let path = common::weights_path();
    if !path.is_file() {
        eprintln!(
            "error: no weights at {}; run `cargo run --release --example digits` first",
            path.display()
        );
        exit(1);
    }

    let data = Digits::load()?;
    let (train, test) = data.split()?;
    let Sets {
        x_test,
        y_test,
        mean,
        std,
        ..
    } = data.sets(&train, &test);

    // The same graph as training, compiled without gradients.
    let g = Graph::<f32>::new();
    let model = Model::build(&g);
    let mut m = g.compile(&[model.logits], &[])?;
    m.load(&path)?;
    println!("weights loaded from {}", path.display());
    // The standardisation saved beside the weights (what serve/ applies to raw pixels)
    // must be the one recomputed here from the training rows.
    if m.value(model.mean)? != mean.view().into_dyn()
        || m.value(model.std)? != std.view().into_dyn()
    {
        eprintln!(
            "error: the standardisation saved in {} ({} and {}) is not the training rows'",
            path.display(),
            common::MEAN,
            common::STD
        );
        exit(1);
    }

    let predicted = model.predict(&mut m, &x_test, &y_test)?;
    let right = correct(&predicted, &y_test);
    println!(
        "test accuracy {:.1}% ({right}/{})",
        100.0 * right as f64 / test.len() as f64,
        test.len()
    );

    // The first test images, then the first ones it gets wrong.
    let wrong = (0..test.len()).filter(|&i| predicted[i] as f32 != y_test[i]);
    let mut shown: Vec<usize> = (0..SHOWN.min(test.len())).collect();
    let first_wrong: Vec<usize> = wrong.filter(|&i| i >= SHOWN).take(SHOWN).collect();
    shown.extend(first_wrong);
    for row in shown.chunks(SHOWN) {
        println!();
        let images: Vec<_> = row.iter().map(|&i| data.x.row(test[i])).collect();
        let labels: Vec<String> = row
            .iter()
            .map(|&i| {
                let mark = if predicted[i] as f32 == y_test[i] {
                    ' '
                } else {
                    'x'
                };
                format!("true {} pred {}{mark}", y_test[i], predicted[i])
            })
            .collect();
        draw(&images, &labels);
    }
    println!("\n(x: wrong prediction)");
    println!("wall time {:.2?}", start.elapsed());

    let recorded_path = common::accuracy_path(&path);
    let Ok(recorded) = std::fs::read_to_string(&recorded_path) else {
        eprintln!(
            "error: no recorded accuracy at {}; run `cargo run --release --example digits` \
             to train and save both",
            recorded_path.display()
        );
        exit(1);
    };
    let now = format!("{right}/{}", test.len());
    if recorded.trim() != now {
        eprintln!(
            "error: test accuracy {now} differs from the {:?} the training run recorded in {}",
            recorded.trim(),
            recorded_path.display()
        );
        exit(1);
    }
    println!("same test accuracy as the training run ({now})");
    Ok(())
}

/// Draws 8x8 images (pixels in [0, 1]) side by side, two characters per pixel so they
/// look square, each with its caption below.
fn draw(images: &[ArrayView1<'_, f32>], captions: &[String]) {
    const WIDTH: usize = 18;
    for r in 0..8 {
        let mut line = String::new();
        for img in images {
            for c in 0..8 {
                let level = (img[r * 8 + c] * (RAMP.len() - 1) as f32).round() as usize;
                let ch = RAMP[level.min(RAMP.len() - 1)] as char;
                line.push(ch);
                line.push(ch);
            }
            line.push_str("  ");
        }
        println!("{}", line.trim_end());
    }
    let caption: String = captions.iter().map(|c| format!("{c:<WIDTH$}")).collect();
    println!("{}", caption.trim_end());
}
