//! The service's settings and their command line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which network the weights file holds (the graphs of `examples/digits.rs` and
/// `examples/digits_cnn.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// 64-128-10, ReLU.
    Mlp,
    /// Three 3x3 convolutions, two max-pools and a linear layer on 1x8x8 images.
    Cnn,
}

impl ModelKind {
    /// The name used on the command line and in `/healthz`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
        }
    }
}

/// Everything `serve` is told on its command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// The network.
    pub model: ModelKind,
    /// The safetensors file (parameters and the `input.mean` / `input.std` buffers).
    pub weights: PathBuf,
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Worker threads, each owning a compiled machine.
    pub workers: usize,
    /// The most rows one machine run takes (the run-time batch axis's bound); also the
    /// most rows one request may carry.
    pub max_batch: usize,
    /// How long a worker holding fewer than `max_batch` rows waits for more, in µs.
    pub max_wait_us: u64,
    /// The largest request body accepted, in bytes; larger is a 413.
    pub max_body: usize,
    /// The most rows waiting for a worker; a request beyond it is a 503.
    pub max_queue: usize,
    /// tokio's threads (HTTP and JSON); 0: one per CPU.
    pub http_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: ModelKind::Mlp,
            weights: PathBuf::from("target/digits.safetensors"),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 1,
            max_batch: 32,
            max_wait_us: 500,
            max_body: 64 * 1024,
            max_queue: 4096,
            http_threads: 0,
        }
    }
}

/// `serve --help`.
pub const USAGE: &str = "\
usage: serve [--model mlp|cnn] [--weights PATH] [--addr HOST:PORT] [--workers N]
             [--max-batch B] [--max-wait-us U] [--max-body BYTES] [--max-queue ROWS]
             [--http-threads N]

  --model        the network in the weights file: mlp (default) or cnn
  --weights      safetensors file from `cargo run --release --example digits` (or
                 digits_cnn); default target/digits.safetensors
  --addr         address to listen on; default 127.0.0.1:8080
  --workers      worker threads, one compiled machine each; default 1
  --max-batch    most rows per machine run and per request; default 32
  --max-wait-us  how long a worker with fewer rows waits for more; default 500
  --max-body     largest request body in bytes (larger: 413); default 65536
  --max-queue    most rows waiting for a worker (more: 503); default 4096
  --http-threads tokio's threads for HTTP and JSON; default 0: one per CPU
";

/// A command line `serve` cannot run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

impl Config {
    /// Reads `--flag value` pairs (program name excluded) over the defaults. `Ok(None)`
    /// for `--help`.
    ///
    /// # Errors
    /// An unknown flag, a missing or unparsable value, or a zero count.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Option<Config>, ArgError> {
        let mut c = Config::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Ok(None);
            }
            let value = args
                .next()
                .ok_or_else(|| ArgError(format!("{flag} needs a value")))?;
            let bad = |what: &str| ArgError(format!("{flag} {value:?}: {what}"));
            match flag.as_str() {
                "--model" => {
                    c.model = match value.as_str() {
                        "mlp" => ModelKind::Mlp,
                        "cnn" => ModelKind::Cnn,
                        _ => return Err(bad("expected mlp or cnn")),
                    }
                }
                "--weights" => c.weights = PathBuf::from(&value),
                "--addr" => c.addr = value.parse().map_err(|_| bad("expected HOST:PORT"))?,
                "--workers" => c.workers = count(&value).ok_or_else(|| bad("expected N >= 1"))?,
                "--max-batch" => {
                    c.max_batch = count(&value).ok_or_else(|| bad("expected B >= 1"))?
                }
                "--max-wait-us" => {
                    c.max_wait_us = value.parse().map_err(|_| bad("expected microseconds"))?
                }
                "--max-body" => c.max_body = count(&value).ok_or_else(|| bad("expected bytes"))?,
                "--http-threads" => {
                    c.http_threads = value.parse().map_err(|_| bad("expected N >= 0"))?
                }
                "--max-queue" => {
                    c.max_queue = count(&value).ok_or_else(|| bad("expected ROWS >= 1"))?
                }
                _ => return Err(ArgError(format!("unknown flag {flag}\n\n{USAGE}"))),
            }
        }
        Ok(Some(c))
    }
}

/// A positive integer.
fn count(s: &str) -> Option<usize> {
    s.parse().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_override_defaults() {
        let c = Config::from_args(args(
            "--model cnn --workers 3 --max-batch 8 --max-wait-us 0",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.model, c.workers, c.max_batch, c.max_wait_us),
            (ModelKind::Cnn, 3, 8, 0)
        );
        assert_eq!(c.max_body, Config::default().max_body);
    }

    #[test]
    fn mistakes_are_errors() {
        for (line, says) in [
            ("--model rnn", "expected mlp or cnn"),
            ("--workers 0", "expected N >= 1"),
            ("--addr nowhere", "HOST:PORT"),
            ("--max-batch", "needs a value"),
            ("--colour blue", "unknown flag"),
        ] {
            let e = Config::from_args(args(line)).unwrap_err();
            assert!(e.0.contains(says), "{line}: {e}");
        }
        assert!(Config::from_args(args("--help")).unwrap().is_none());
    }
}
