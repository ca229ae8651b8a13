//! `serve`: the /predict service. `serve --help` lists the flags; `serve/README.md` says
//! more.

use std::process::ExitCode;

use tapegrad_serve::config::{Config, USAGE};

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(Some(c)) => c,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("serve: {e}");
            return ExitCode::from(2);
        }
    };
    let weights = match std::fs::read(&config.weights) {
        Ok(w) => w,
        Err(e) => {
            eprintln!(
                "serve: cannot read the weights {}: {e}\n(train them with `cargo run \
                 --release --example digits` or `--example digits_cnn` in the repository)",
                config.weights.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let server = match tapegrad_serve::start(&config, &weights, true) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("serve: {}: {e}", config.weights.display());
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "serve: {} from {} on http://{} ({} workers, batches of up to {} rows, waiting up \
         to {} us)",
        config.model.name(),
        config.weights.display(),
        server.addr(),
        config.workers,
        config.max_batch,
        config.max_wait_us
    );
    match server.wait() {
        Ok(()) => {
            eprintln!("serve: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("serve: {e}");
            ExitCode::FAILURE
        }
    }
}
