//! The edges: an oversized body, unknown routes and methods, `/healthz`, `/metrics`,
//! weights of the other model, and stopping with a request in flight (in-process, and the
//! binary on SIGTERM). Waiting for "a request is in flight" polls `serve_pending_rows`, never a
//! clock.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;

use common::{metric, pixels_body, predict, request, server};
use tapegrad_serve::config::ModelKind;
use tapegrad_serve::model::PIXELS;

fn error_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"))
        .to_string()
}

#[test]
fn big_bodies_unknown_routes_and_methods() {
    let (server, _) = server(ModelKind::Mlp, |c| c.max_body = 1000);
    let addr = server.addr();
    let big = pixels_body(&[16.0; PIXELS]) + &" ".repeat(1000);
    let r = predict(addr, &big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(error_of(&r.body).contains("request body too large"));
    // just under the limit is fine
    let fits = pixels_body(&[16.0; PIXELS]);
    let fits = format!("{fits:<1000}");
    assert_eq!(predict(addr, &fits).status, 200);

    let r = request(addr, "GET", "/nowhere", b"");
    assert_eq!(r.status, 404);
    assert!(error_of(&r.body).contains("no route GET /nowhere"));
    let r = request(addr, "DELETE", "/healthz", b"");
    assert_eq!(r.status, 405);
    assert!(error_of(&r.body).contains("DELETE is not allowed on /healthz"));

    let r = request(addr, "GET", "/healthz", b"");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(
        (v["status"].as_str(), v["model"].as_str()),
        (Some("ok"), Some("mlp"))
    );

    let r = request(addr, "GET", "/metrics", b"");
    assert_eq!(r.status, 200);
    assert_eq!(metric(&r.body, "serve_requests_total{code=\"413\"}"), 1.0);
    assert_eq!(metric(&r.body, "serve_requests_total{code=\"200\"}"), 1.0);
    assert!(r
        .body
        .contains("# TYPE serve_request_duration_seconds histogram"));
    server.shutdown().expect("clean shutdown");
}

/// Polls `/metrics` until `rows` rows are waiting for an answer.
fn until_pending(addr: SocketAddr, rows: f64) {
    while metric(
        &request(addr, "GET", "/metrics", b"").body,
        "serve_pending_rows",
    ) != rows
    {
        thread::yield_now();
    }
}

#[test]
fn shutdown_answers_the_request_in_flight() {
    // A worker that would wait 10 minutes for a second row: stopping makes it run now.
    let (server, _) = server(ModelKind::Cnn, |c| {
        c.workers = 1;
        c.max_batch = 2;
        c.max_wait_us = 600_000_000;
    });
    let addr = server.addr();
    let client = thread::spawn(move || predict(addr, &pixels_body(&[5.0; PIXELS])));
    until_pending(addr, 1.0);
    server.shutdown().expect("clean shutdown");
    let r = client.join().expect("client thread");
    assert_eq!(r.status, 200, "{}", r.body);
    // and nothing listens any more
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn the_binary_stops_on_sigterm_after_answering() {
    let dir = std::env::temp_dir().join(format!("tapegrad-serve-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let weights = dir.join("mlp.safetensors");
    let bytes =
        tapegrad_serve::model::seeded_weights(ModelKind::Mlp, 5, common::NORM).expect("weights");
    std::fs::write(&weights, bytes).expect("write the weights");
    let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--model", "mlp", "--addr", "127.0.0.1:0", "--workers", "1"])
        .args([
            "--max-batch",
            "2",
            "--max-wait-us",
            "600000000",
            "--weights",
        ])
        .arg(&weights)
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the first line");
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    let client = thread::spawn(move || predict(addr, &pixels_body(&[9.0; PIXELS])));
    until_pending(addr, 1.0);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let r = client.join().expect("client thread");
    assert_eq!(r.status, 200, "{}", r.body);
    let status = child.wait().expect("serve exits");
    let mut rest = String::new();
    for l in stderr.lines().map_while(Result::ok) {
        rest.push_str(&l);
    }
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("serve: stopped"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weights_of_another_model_do_not_start() {
    let weights =
        tapegrad_serve::model::seeded_weights(ModelKind::Cnn, 1, common::NORM).expect("weights");
    let config = tapegrad_serve::config::Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    };
    let e = tapegrad_serve::start(&config, &weights, false)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("mlp."), "{e}");
}
