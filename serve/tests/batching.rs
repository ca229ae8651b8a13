//! Concurrent requests run as one batch. Deterministic without timing: one worker, a
//! wait far longer than the test (10 minutes), and as many rows as the batch holds, so
//! the worker runs exactly when the last row arrives.

mod common;

use std::thread;

use common::{batch_body, metric, pixels_body, predict, request, server};
use tapegrad_serve::config::ModelKind;
use tapegrad_serve::model::PIXELS;

#[test]
fn concurrent_requests_share_one_run() {
    const B: usize = 6;
    let (server, _) = server(ModelKind::Mlp, |c| {
        c.workers = 1;
        c.max_batch = B;
        c.max_wait_us = 600_000_000;
    });
    let addr = server.addr();
    let clients: Vec<_> = (0..B)
        .map(|i| {
            thread::spawn(move || {
                let row: Vec<f32> = (0..PIXELS).map(|j| ((i * 7 + j) % 17) as f32).collect();
                predict(addr, &pixels_body(&row))
            })
        })
        .collect();
    for c in clients {
        let reply = c.join().expect("client thread");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // A batch-form request of 2 rows and four single rows: again one run of 6.
    let batch = thread::spawn(move || predict(addr, &batch_body(&[4.0; 2 * PIXELS])));
    let singles: Vec<_> = (0..B - 2)
        .map(|_| thread::spawn(move || predict(addr, &pixels_body(&[8.0; PIXELS]))))
        .collect();
    for c in singles.into_iter().chain([batch]) {
        let reply = c.join().expect("client thread");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let text = request(addr, "GET", "/metrics", b"").body;
    assert_eq!(metric(&text, "serve_batch_rows_count"), 2.0, "{text}");
    assert_eq!(metric(&text, "serve_batch_rows_sum"), 2.0 * B as f64);
    // both runs in the bucket (4, 8]: none of them smaller
    assert_eq!(metric(&text, "serve_batch_rows_bucket{le=\"4\"}"), 0.0);
    assert_eq!(metric(&text, "serve_batch_rows_bucket{le=\"8\"}"), 2.0);
    assert_eq!(
        metric(&text, "serve_requests_total{code=\"200\"}"),
        2.0 * B as f64 - 1.0
    );
    assert_eq!(metric(&text, "serve_pending_rows"), 0.0);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_full_batch_form_runs_at_once() {
    // One worker waiting 10 minutes for more rows: a request that fills the batch by
    // itself is answered without that wait.
    let (server, _) = server(ModelKind::Cnn, |c| {
        c.workers = 1;
        c.max_batch = 3;
        c.max_wait_us = 600_000_000;
    });
    let reply = predict(server.addr(), &batch_body(&[1.0; 3 * PIXELS]));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    let predictions = v["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), 3);
    // the same image thrice: the same answer thrice
    assert!(predictions.iter().all(|p| p == &predictions[0]));
    server.shutdown().expect("clean shutdown");
}
