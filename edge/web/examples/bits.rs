//! The loss of every epoch as f32 bits, on the host with tapegrad's portable GEMM kernel
//! (tapegrad without `std` never picks the AVX2/FMA kernels): `cargo run --release
//! --example bits`. check.sh compares this line with the one `train.mjs` prints, to show
//! whether WebAssembly computes the very same floats, not only the same 4 decimals.

use moons::{Moons, CONFIG};

fn main() -> Result<(), tapegrad::Error> {
    let mut model = Moons::new(CONFIG)?;
    let mut bits = Vec::with_capacity(CONFIG.epochs);
    for _ in 0..CONFIG.epochs {
        bits.push(format!("{:08x}", model.epoch()?.to_bits()));
    }
    println!("loss_bits={}", bits.join(","));
    Ok(())
}
