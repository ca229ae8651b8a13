//! The host's trace of the shared workload, to compare with the firmware's and the
//! WebAssembly module's: `cargo run --release --example trace --features std`. Without
//! `--features std`, tapegrad is built as on the devices (portable kernels, `libm`), and
//! the `loss_bits` lines match the firmware's bit for bit.

use moons::{Bits, Line, Moons, CONFIG};

fn main() -> Result<(), tapegrad::Error> {
    let mut model = Moons::new(CONFIG)?;
    for epoch in 1..=CONFIG.epochs {
        let loss = model.epoch()?;
        println!("{}", Line { epoch, loss });
        println!("{}", Bits { epoch, loss });
    }
    let (right, total) = model.accuracy()?;
    println!("accuracy {right}/{total}");
    println!("planned_bytes={}", model.machine().memory().total());
    println!("{:?}", model.machine().memory());
    if right * 100 < total * 95 {
        std::process::exit(1);
    }
    Ok(())
}
