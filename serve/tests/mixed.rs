//! 1,000 requests, good and bad mixed, from 8 client threads at once, against an MLP
//! service of 2 workers batching up to 8 rows; every answer is checked: its status, the
//! class against a machine built here as `examples/digits_common` builds it (pixels
//! standardised outside the graph, as `digits_predict` does), the probabilities (sum 1,
//! largest at the class), and each error's message.

mod common;

use std::collections::HashMap;
use std::thread;

use common::{batch_body, json_row, metric, pixels_body, request, server, NORM};
use serde_json::Value;
use tapegrad::nn::MlpBuilder;
use tapegrad::prelude::*;
use tapegrad::rand::rngs::StdRng;
use tapegrad::rand::{Rng, SeedableRng};
use tapegrad::weights::WeightMap;
use tapegrad_serve::config::ModelKind;
use tapegrad_serve::model::{CLASSES, PIXELS};

const REQUESTS: usize = 1000;
const THREADS: usize = 8;
const MAX_BATCH: usize = 8;
const MAX_BODY: usize = 8 * 1024;

/// One request and what its answer must be.
struct Case {
    method: &'static str,
    path: &'static str,
    body: String,
    /// The rows of a good request (empty for a bad one).
    rows: Vec<f32>,
    batch: bool,
    status: u16,
    /// A bad request's error message contains this.
    says: &'static str,
}

fn good(rows: Vec<f32>, batch: bool) -> Case {
    let body = if batch {
        batch_body(&rows)
    } else {
        pixels_body(&rows)
    };
    Case {
        method: "POST",
        path: "/predict",
        body,
        rows,
        batch,
        status: 200,
        says: "",
    }
}

fn bad(
    method: &'static str,
    path: &'static str,
    body: String,
    status: u16,
    says: &'static str,
) -> Case {
    Case {
        method,
        path,
        body,
        rows: Vec::new(),
        batch: false,
        status,
        says,
    }
}

fn image(rng: &mut StdRng) -> Vec<f32> {
    (0..PIXELS)
        .map(|_| rng.random_range(0..=16) as f32)
        .collect()
}

fn case(rng: &mut StdRng) -> Case {
    let row = image(rng);
    let mut text: Vec<String> = row.iter().map(|p| p.to_string()).collect();
    let at = rng.random_range(0..PIXELS);
    match rng.random_range(0..21) {
        0..=7 => good(row, false),
        8..=10 => {
            let n = rng.random_range(1..=MAX_BATCH);
            let rows = (0..n).flat_map(|_| image(rng)).collect();
            good(rows, true)
        }
        11 => {
            let cut = rng.random_range(1..30);
            let body = pixels_body(&row);
            bad(
                "POST",
                "/predict",
                body[..body.len() - cut].into(),
                400,
                "invalid JSON",
            )
        }
        12 => {
            let (n, says) = if rng.random() {
                (PIXELS - 1, "expected 64 numbers, got 63")
            } else {
                (PIXELS + 1, "expected 64 numbers, got 65")
            };
            let mut long = row.clone();
            long.push(1.0);
            let body = format!("{{\"pixels\":{}}}", json_row(&long[..n]));
            bad("POST", "/predict", body, 400, says)
        }
        13 => {
            text[at] = "NaN".into();
            let body = format!("{{\"pixels\":[{}]}}", text.join(","));
            bad(
                "POST",
                "/predict",
                body,
                400,
                "NaN and Infinity are not JSON numbers",
            )
        }
        14 => {
            text[at] = "1e39".into(); // finite in JSON, beyond f32's range
            let body = format!("{{\"pixels\":[{}]}}", text.join(","));
            bad("POST", "/predict", body, 400, "is not a finite f32")
        }
        15 => {
            text[at] = "\"7\"".into();
            let body = format!("{{\"pixels\":[{}]}}", text.join(","));
            bad("POST", "/predict", body, 400, "is not a number")
        }
        16 => {
            // a good image padded with JSON whitespace past the limit
            let body = pixels_body(&row) + &" ".repeat(MAX_BODY);
            bad("POST", "/predict", body, 413, "request body too large")
        }
        17 => {
            let rows: Vec<f32> = (0..MAX_BATCH + 1).flat_map(|_| image(rng)).collect();
            bad(
                "POST",
                "/predict",
                batch_body(&rows),
                400,
                "expected 1 to 8 rows, got 9",
            )
        }
        18 => {
            let body = format!("{{\"image\":{}}}", json_row(&row));
            bad("POST", "/predict", body, 400, "unknown field \"image\"")
        }
        19 => bad(
            "GET",
            "/predict",
            String::new(),
            405,
            "GET is not allowed on /predict",
        ),
        _ => bad(
            "POST",
            "/predictions",
            pixels_body(&row),
            404,
            "no route POST /predictions",
        ),
    }
}

/// The class of each row by a machine of the example's graph: pixels / 16 standardised
/// in Rust, the MLP of `examples/digits_common` (64-128-10, dropout numbering), the
/// service's weights loaded, its standardisation buffers skipped.
fn reference(weights: &[u8], rows: &[f32]) -> Vec<usize> {
    let g = Graph::<f32>::new();
    let mut rng = StdRng::seed_from_u64(0);
    let mlp = MlpBuilder::new(&[PIXELS, 128, CLASSES])
        .dropout(0.2)
        .build(&g, "mlp", &mut rng);
    let x = g.input("x", [1, PIXELS]);
    let logits = mlp.forward(x);
    let mut m = g.compile(&[logits], &[]).expect("compile");
    m.set_training(false);
    m.load_from_bytes_with(weights, &WeightMap::new().allow_extra(true))
        .expect("the service's weights");
    let (mean, std) = NORM;
    rows.chunks(PIXELS)
        .map(|row| {
            let x_row: Vec<f32> = row.iter().map(|&p| (p / 16.0 - mean) / std).collect();
            m.feed_slice(x, &x_row).expect("feed");
            m.run().expect("run");
            let l = m.value(logits).expect("logits");
            let l = l.as_slice().expect("contiguous");
            (0..CLASSES)
                .reduce(|best, j| if l[j] > l[best] { j } else { best })
                .unwrap_or(0)
        })
        .collect()
}

fn check(c: &Case, status: u16, body: &str, want: &[usize]) {
    assert_eq!(
        status, c.status,
        "{} {} {}: {body}",
        c.method, c.path, c.body
    );
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    if c.status != 200 {
        let message = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {body}"));
        assert!(message.contains(c.says), "{}: {message}", c.says);
        return;
    }
    let answers: Vec<&Value> = if c.batch {
        v["predictions"]
            .as_array()
            .expect("predictions")
            .iter()
            .collect()
    } else {
        vec![&v]
    };
    assert_eq!(answers.len(), want.len(), "{body}");
    for (a, &class) in answers.iter().zip(want) {
        assert_eq!(a["class"].as_u64(), Some(class as u64), "{body}");
        let probs: Vec<f64> = a["probs"]
            .as_array()
            .expect("probs")
            .iter()
            .map(|p| p.as_f64().expect("a number"))
            .collect();
        assert_eq!(probs.len(), CLASSES);
        let sum: f64 = probs.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-5,
            "probabilities sum to {sum}: {body}"
        );
        assert!(
            probs.iter().all(|&p| (0.0..=probs[class]).contains(&p)),
            "{body}"
        );
    }
}

#[test]
fn a_thousand_mixed_requests_each_answered_right() {
    let (server, weights) = server(ModelKind::Mlp, |c| {
        c.workers = 2;
        c.max_batch = MAX_BATCH;
        c.max_wait_us = 200;
        c.max_body = MAX_BODY;
    });
    let addr = server.addr();
    let mut rng = StdRng::seed_from_u64(2026);
    let cases: Vec<Case> = (0..REQUESTS).map(|_| case(&mut rng)).collect();
    let all_rows: Vec<f32> = cases.iter().flat_map(|c| c.rows.iter().copied()).collect();
    let classes = reference(&weights, &all_rows);
    let mut want = Vec::with_capacity(REQUESTS);
    let mut at = 0;
    for c in &cases {
        let n = c.rows.len() / PIXELS;
        want.push(classes[at..at + n].to_vec());
        at += n;
    }
    // Each of the big bodies really is over the limit, the small ones under.
    for c in &cases {
        assert_eq!(c.body.len() > MAX_BODY, c.status == 413, "{}", c.body.len());
    }

    let cases = std::sync::Arc::new(cases);
    let answers: Vec<(usize, u16, String)> = (0..THREADS)
        .map(|t| {
            let cases = std::sync::Arc::clone(&cases);
            thread::spawn(move || {
                (t..REQUESTS)
                    .step_by(THREADS)
                    .map(|i| {
                        let c = &cases[i];
                        let r = request(addr, c.method, c.path, c.body.as_bytes());
                        (i, r.status, r.body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    assert_eq!(answers.len(), REQUESTS);
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for (i, status, body) in &answers {
        check(&cases[*i], *status, body, &want[*i]);
        *by_status.entry(*status).or_default() += 1;
    }
    // every kind of answer was exercised
    for status in [200, 400, 404, 405, 413] {
        assert!(
            by_status.get(&status).copied().unwrap_or(0) > 10,
            "{by_status:?}"
        );
    }
    let text = request(addr, "GET", "/metrics", b"").body;
    for code in [200u16, 400, 413] {
        let name = format!("serve_requests_total{{code=\"{code}\"}}");
        assert_eq!(metric(&text, &name), by_status[&code] as f64, "{name}");
    }
    assert_eq!(metric(&text, "serve_rows_total"), classes.len() as f64);
    assert_eq!(metric(&text, "serve_pending_rows"), 0.0);
    server.shutdown().expect("clean shutdown");
}
