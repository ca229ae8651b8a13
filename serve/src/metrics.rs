//! Counters and histograms, rendered in Prometheus's text format (version 0.0.4) by hand.
//! Everything is an atomic: handlers and workers record without a lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the batch-size buckets, in rows.
const BATCH_BOUNDS: [u64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/// Upper bounds of the latency buckets, in microseconds.
const LATENCY_BOUNDS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000,
];
/// The statuses `/predict` answers with, in the order of [`Metrics::requests`].
const CODES: [u16; 5] = [200, 400, 413, 500, 503];

/// A histogram of fixed buckets: per-bucket counts (the last one past every bound), the
/// sum and the count.
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: [u64; N],
    buckets: Vec<AtomicU64>,
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [u64; N]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=N).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: u64) {
        let i = self.bounds.iter().position(|&b| v <= b).unwrap_or(N);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Relaxed);
        }
        self.sum.fetch_add(v, Relaxed);
    }

    /// `name_bucket{le=..}` (cumulative), `name_sum` (divided by `scale`) and `name_count`.
    fn render(&self, out: &mut String, name: &str, help: &str, scale: f64) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut total = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Relaxed);
            match self.bounds.get(i) {
                Some(&le) => {
                    let le = le as f64 / scale;
                    let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {total}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
                }
            }
        }
        let sum = self.sum.load(Relaxed) as f64 / scale;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// What `/metrics` reports.
#[derive(Debug)]
pub struct Metrics {
    requests: [AtomicU64; CODES.len()],
    rows: AtomicU64,
    batch_rows: Histogram<{ BATCH_BOUNDS.len() }>,
    latency_us: Histogram<{ LATENCY_BOUNDS_US.len() }>,
    pending_rows: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Default::default(),
            rows: AtomicU64::new(0),
            batch_rows: Histogram::new(BATCH_BOUNDS),
            latency_us: Histogram::new(LATENCY_BOUNDS_US),
            pending_rows: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// A `/predict` request answered with `status` after `elapsed`.
    pub fn request(&self, status: u16, elapsed: Duration) {
        if let Some(i) = CODES.iter().position(|&c| c == status) {
            self.requests[i].fetch_add(1, Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.observe(us);
    }

    /// One machine run of `rows` rows.
    pub fn batch(&self, rows: usize) {
        self.batch_rows.observe(rows as u64);
        self.rows.fetch_add(rows as u64, Relaxed);
    }

    /// `rows` accepted into the queue (positive) or answered (negative).
    pub fn pending(&self, rows: i64) {
        if rows >= 0 {
            self.pending_rows.fetch_add(rows.unsigned_abs(), Relaxed);
        } else {
            self.pending_rows.fetch_sub(rows.unsigned_abs(), Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP serve_requests_total /predict requests answered, by status.\n\
             # TYPE serve_requests_total counter\n",
        );
        for (code, n) in CODES.iter().zip(&self.requests) {
            let _ = writeln!(
                out,
                "serve_requests_total{{code=\"{code}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP serve_rows_total Rows run through the model.\n\
             # TYPE serve_rows_total counter\nserve_rows_total {}",
            self.rows.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP serve_pending_rows Rows accepted and not yet answered.\n\
             # TYPE serve_pending_rows gauge\nserve_pending_rows {}",
            self.pending_rows.load(Relaxed)
        );
        self.batch_rows.render(
            &mut out,
            "serve_batch_rows",
            "Rows per machine run (the dynamic batch size).",
            1.0,
        );
        self.latency_us.render(
            &mut out,
            "serve_request_duration_seconds",
            "Time from a /predict request's arrival to its answer.",
            1e6,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let m = Metrics::default();
        for rows in [1, 3, 3, 600] {
            m.batch(rows);
        }
        m.request(200, Duration::from_micros(120));
        m.request(400, Duration::from_micros(80));
        let text = m.render();
        for line in [
            "serve_batch_rows_bucket{le=\"1\"} 1",
            "serve_batch_rows_bucket{le=\"2\"} 1",
            "serve_batch_rows_bucket{le=\"4\"} 3",
            "serve_batch_rows_bucket{le=\"512\"} 3",
            "serve_batch_rows_bucket{le=\"+Inf\"} 4",
            "serve_batch_rows_sum 607",
            "serve_batch_rows_count 4",
            "serve_rows_total 607",
            "serve_requests_total{code=\"200\"} 1",
            "serve_requests_total{code=\"400\"} 1",
            "serve_request_duration_seconds_bucket{le=\"0.0001\"} 1",
            "serve_request_duration_seconds_bucket{le=\"0.00025\"} 2",
            "serve_request_duration_seconds_count 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
