//! Dynamic batching: requests queue up; each worker, a plain OS thread owning a compiled
//! [`Model`], takes the oldest request, then keeps taking queued requests while they fit
//! in its batch (at most `max_batch` rows), waiting at most `max_wait` for more, and runs
//! them all as one batch along the machine's run-time axis. A request of several rows
//! (the batch form) is never split.
//!
//! Answers go back through a `tokio` oneshot channel, which an OS thread can send on.
//! A run that fails (or panics) answers every request of its batch with an error, and
//! the worker goes on with the next batch.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::model::{Model, Prediction, PIXELS};

/// What a request gets back: its rows' predictions, or why the model could not run.
pub type Answer = Result<Vec<Prediction>, String>;

/// Why a request was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// More rows are waiting than the queue holds.
    Full,
    /// The service is shutting down.
    Closed,
}

struct Job {
    rows: Vec<f32>,
    n: usize,
    reply: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    rows: usize,
    /// Workers gathering a batch (between their first request and their run), and the
    /// rows they hold: a request that does not complete a batch need not wake one.
    gathering: usize,
    gathered: usize,
    /// Shutting down: run what is queued without waiting for more.
    draining: bool,
    /// Shut down: take nothing new; workers exit once the queue is empty.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    max_batch: usize,
    max_wait: Duration,
    max_queue: usize,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queue and its workers.
pub struct Batcher {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Batcher {
    /// One worker thread per model; all models must take `max_batch` rows.
    pub fn start(
        models: Vec<Model>,
        max_wait: Duration,
        max_queue: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Batcher> {
        let max_batch = models.iter().map(Model::max_batch).min().unwrap_or(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            max_batch,
            max_wait,
            max_queue,
            metrics,
        });
        let mut workers = Vec::with_capacity(models.len());
        for (i, model) in models.into_iter().enumerate() {
            let mine = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("serve-worker-{i}"))
                .spawn(move || work(&mine, model));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    let b = Batcher {
                        shared,
                        workers: Mutex::new(workers),
                    };
                    b.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(Batcher {
            shared,
            workers: Mutex::new(workers),
        })
    }

    /// The most rows one request may carry.
    pub fn max_batch(&self) -> usize {
        self.shared.max_batch
    }

    /// Queues `rows` (whole rows of [`PIXELS`] values, at most [`max_batch`](Self::max_batch)
    /// of them) and returns where the answer will come.
    ///
    /// # Errors
    /// [`Refused::Full`] if the queue holds too many rows, [`Refused::Closed`] when
    /// shutting down.
    pub fn submit(&self, rows: Vec<f32>) -> Result<oneshot::Receiver<Answer>, Refused> {
        let n = rows.len() / PIXELS;
        let (reply, answer) = oneshot::channel();
        let mut q = self.shared.lock();
        if q.closed {
            return Err(Refused::Closed);
        }
        if q.rows + n > self.shared.max_queue {
            return Err(Refused::Full);
        }
        q.rows += n;
        q.jobs.push_back(Job { rows, n, reply });
        self.shared.metrics.pending(n as i64);
        // Wake a worker only if none is gathering (an idle one takes it), or if a batch
        // is full: a gathering worker takes the rest when its wait ends. One wake-up per
        // batch rather than per request: context switches cost more than the model here.
        let wake = q.gathering == 0 || q.rows + q.gathered >= self.shared.max_batch;
        drop(q);
        if wake {
            self.shared.ready.notify_all();
        }
        Ok(answer)
    }

    /// Stops waiting for more rows: what is queued runs at once (shutting down).
    pub fn drain(&self) {
        self.shared.lock().draining = true;
        self.shared.ready.notify_all();
    }

    /// Runs what is queued, then stops and joins the workers.
    pub fn shutdown(&self) {
        {
            let mut q = self.shared.lock();
            q.draining = true;
            q.closed = true;
        }
        self.shared.ready.notify_all();
        let workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        for w in workers {
            // A worker that panicked outside a run has nothing left to answer.
            let _ = w.join();
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Takes the next batch into `jobs`: blocks for a first request, then gathers more while
/// they fit, until `max_batch` rows, `max_wait`, a request that does not fit, or draining.
/// Returns the rows taken, 0 once closed with nothing queued.
fn gather(shared: &Shared, jobs: &mut Vec<Job>) -> usize {
    let mut q = shared.lock();
    while q.jobs.is_empty() {
        if q.closed {
            return 0;
        }
        q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
    let deadline = Instant::now() + shared.max_wait;
    let mut n = 0;
    q.gathering += 1;
    loop {
        while let Some(front) = q.jobs.front() {
            if n > 0 && n + front.n > shared.max_batch {
                break;
            }
            if let Some(job) = q.jobs.pop_front() {
                n += job.n;
                q.rows -= job.n;
                q.gathered += job.n;
                jobs.push(job);
            }
        }
        let blocked = !q.jobs.is_empty(); // the next request does not fit
        let now = Instant::now();
        if n >= shared.max_batch || blocked || q.draining || now >= deadline {
            break;
        }
        q = shared
            .ready
            .wait_timeout(q, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    q.gathering -= 1;
    q.gathered -= n;
    if !q.jobs.is_empty() {
        drop(q);
        shared.ready.notify_all(); // another worker may take what is left
    }
    n
}

fn work(shared: &Shared, mut model: Model) {
    let mut jobs = Vec::with_capacity(shared.max_batch);
    let mut rows = Vec::with_capacity(shared.max_batch * PIXELS);
    let mut out = Vec::with_capacity(shared.max_batch);
    loop {
        let n = gather(shared, &mut jobs);
        if n == 0 {
            return;
        }
        rows.clear();
        for job in &jobs {
            rows.extend_from_slice(&job.rows);
        }
        out.clear();
        let run = catch_unwind(AssertUnwindSafe(|| model.predict(&rows, &mut out)));
        shared.metrics.batch(n);
        let failure = match run {
            Ok(Ok(())) if out.len() == n => None,
            Ok(Ok(())) => Some(format!("the model answered {} rows of {n}", out.len())),
            Ok(Err(e)) => Some(format!("the model failed: {e}")),
            Err(_) => Some("the model panicked".to_string()),
        };
        let mut start = 0;
        for job in jobs.drain(..) {
            let answer = match &failure {
                None => Ok(out[start..start + job.n].to_vec()),
                Some(e) => Err(e.clone()),
            };
            start += job.n;
            // The client may have gone; nothing to do then.
            let _ = job.reply.send(answer);
        }
        shared.metrics.pending(-(n as i64));
    }
}
