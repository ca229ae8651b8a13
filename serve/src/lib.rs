//! A `/predict` HTTP service for the digits models of tapegrad's examples (the MLP of
//! `examples/digits.rs`, the CNN of `examples/digits_cnn.rs`), on axum and tokio.
//!
//! Requests are parsed on tokio's threads and queued; worker threads, each owning a
//! compiled evaluation [`Machine`](tapegrad::Machine) with a run-time batch axis of up to
//! `--max-batch` rows, run queued requests together ([`batcher`]). See `serve/README.md`
//! for the API and the flags.
//!
//! ```no_run
//! use tapegrad_serve::{config::Config, start};
//! let config = Config::default();
//! let weights = std::fs::read(&config.weights)?;
//! let server = start(&config, &weights, true)?; // stops on SIGTERM or Ctrl-C
//! println!("listening on {}", server.addr());
//! server.wait()?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

#![warn(missing_docs)]

pub mod batcher;
pub mod config;
pub mod http;
pub mod metrics;
pub mod model;
pub mod parse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use batcher::Batcher;
use config::Config;
use metrics::Metrics;
use model::Model;

/// Any error starting or running the service, with its message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A running service: its address, its metrics, and the way to stop it.
pub struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// Compiles one machine per worker with the safetensors `weights`, binds `config.addr`
/// and serves on a thread of its own until [`Server::shutdown`], or, if `signals`, until
/// SIGTERM or Ctrl-C. Stopping is graceful: no new connections, requests in flight are
/// answered (the workers stop waiting for fuller batches), then the workers are joined.
///
/// # Errors
/// A queue smaller than a batch, weights that are not the model's, an address that
/// cannot be bound, threads that cannot be started.
pub fn start(config: &Config, weights: &[u8], signals: bool) -> Result<Server, Error> {
    if config.max_queue < config.max_batch {
        return Err(format!(
            "--max-queue {} is below --max-batch {}: a full batch request could never queue",
            config.max_queue, config.max_batch
        )
        .into());
    }
    let models = (0..config.workers)
        .map(|_| Model::load(config.model, config.max_batch, weights))
        .collect::<Result<Vec<_>, _>>()?;
    let listener = std::net::TcpListener::bind(config.addr)
        .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::default());
    let batcher = Arc::new(Batcher::start(
        models,
        Duration::from_micros(config.max_wait_us),
        config.max_queue,
        Arc::clone(&metrics),
    )?);
    let app = http::App {
        batcher: Arc::clone(&batcher),
        metrics: Arc::clone(&metrics),
        model: config.model,
        workers: config.workers,
    };
    let router = http::router(app, config.max_body);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.http_threads > 0 {
        runtime.worker_threads(config.http_threads);
    }
    let runtime = runtime.enable_all().build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("serve-http".into())
        .spawn(move || {
            let served = runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let drain = Arc::clone(&batcher);
                let shutdown = async move {
                    tokio::select! {
                        _ = stopped => {}
                        _ = terminated(signals) => {}
                    }
                    drain.drain();
                };
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            });
            batcher.shutdown();
            served
        })?;
    Ok(Server {
        addr,
        metrics,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Resolves on SIGTERM or Ctrl-C if `signals`, never otherwise (nor if the handlers
/// cannot be installed).
async fn terminated(signals: bool) {
    if !signals {
        return std::future::pending().await;
    }
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

impl Server {
    /// The address it listens on (the port chosen if `config.addr` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters and histograms, as `/metrics` shows them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Stops gracefully and waits until it has.
    ///
    /// # Errors
    /// An I/O error of the server, or its thread's panic.
    pub fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join()
    }

    /// Waits until it stops (on a signal, if started with `signals`).
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    pub fn wait(mut self) -> Result<(), Error> {
        self.join()
    }

    fn join(&mut self) -> Result<(), Error> {
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e.into()),
            Some(Err(_)) => Err("the server's thread panicked".into()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.join();
    }
}
