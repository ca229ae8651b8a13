//! What the motion examples share: the UEA "BasicMotions" data set (smartwatch
//! accelerometer and gyroscope, 6 channels x 100 steps, 4 classes, the official split of
//! 40 training and 40 test series), its loader, and the channels' standardisation by the
//! training set's statistics. See `examples/data/README.md`.

#![allow(dead_code)] // each example uses part of it

use std::error::Error;
use std::fs::File;
use std::io::Read;

use flate2::read::GzDecoder;
use tapegrad::ndarray::{Array1, Array3, Axis};

pub const TRAIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/BasicMotions_TRAIN.ts.gz"
);
pub const TEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/BasicMotions_TEST.ts.gz"
);

/// Accelerometer x, y, z and gyroscope x, y, z.
pub const CHANNELS: usize = 6;
/// Ten seconds at 10 Hz.
pub const STEPS: usize = 100;
/// The class names in the order of their ids (the files' `@classLabel` order).
pub const CLASSES: [&str; 4] = ["Standing", "Running", "Walking", "Badminton"];

/// Series `x` `[N, STEPS, CHANNELS]` (time-major within a series, as a batch-first
/// recurrent layer reads it) and class ids `y` `[N]` (as `f32`).
pub struct Motions {
    pub x: Array3<f32>,
    pub y: Array1<f32>,
}

impl Motions {
    /// The official training set.
    pub fn train() -> Result<Motions, Box<dyn Error>> {
        Self::load(TRAIN)
    }

    /// The official test set.
    pub fn test() -> Result<Motions, Box<dyn Error>> {
        Self::load(TEST)
    }

    /// Reads and checks a gzipped `.ts` file: `#`/`@` header lines, then one series per
    /// line, its channels separated by `:`, each `STEPS` comma-separated values, then the
    /// label.
    pub fn load(path: &str) -> Result<Motions, Box<dyn Error>> {
        let mut text = String::new();
        GzDecoder::new(File::open(path).map_err(|e| format!("{path}: {e}"))?)
            .read_to_string(&mut text)
            .map_err(|e| format!("{path}: {e}"))?;
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
                continue;
            }
            let bad = |what: &str| format!("{path} line {}: {what}", n + 1);
            let fields: Vec<&str> = line.split(':').collect();
            let Some((label, channels)) = fields.split_last() else {
                continue;
            };
            if channels.len() != CHANNELS {
                return Err(bad(&format!("{} channels, not {CHANNELS}", channels.len())).into());
            }
            let class = CLASSES
                .iter()
                .position(|c| c == label)
                .ok_or_else(|| bad(&format!("unknown class {label:?}")))?;
            let mut series = [[0f32; CHANNELS]; STEPS];
            for (c, channel) in channels.iter().enumerate() {
                let v: Vec<f32> = channel
                    .split(',')
                    .map(|s| s.trim().parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(&format!("channel {c}: {e}")))?;
                if v.len() != STEPS || v.iter().any(|x| !x.is_finite()) {
                    return Err(bad(&format!("channel {c}: not {STEPS} finite values")).into());
                }
                for (t, x) in v.into_iter().enumerate() {
                    series[t][c] = x;
                }
            }
            values.extend(series.iter().flatten());
            labels.push(class as f32);
        }
        let n = labels.len();
        Ok(Motions {
            x: Array3::from_shape_vec((n, STEPS, CHANNELS), values)?,
            y: Array1::from_vec(labels),
        })
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Each channel's mean and standard deviation over every series and step of `self`
    /// (the training set: the test set is scaled by them too, never by its own).
    pub fn channel_stats(&self) -> (Array1<f32>, Array1<f32>) {
        let flat = self
            .x
            .to_shape((self.len() * STEPS, CHANNELS))
            .map(|v| v.to_owned())
            .unwrap_or_else(|_| tapegrad::ndarray::Array2::zeros((0, CHANNELS)));
        let mean = flat
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(CHANNELS));
        let std = flat
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-6 { s } else { 1.0 });
        (mean, std)
    }

    /// Every channel standardised with `(mean, std)`.
    pub fn standardise(&mut self, (mean, std): &(Array1<f32>, Array1<f32>)) {
        self.x -= mean;
        self.x /= std;
    }
}

/// How many predictions equal the labels.
pub fn correct(predicted: &[usize], labels: &Array1<f32>) -> usize {
    predicted
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| p as f32 == l)
        .count()
}
