//! What the service's tests share: a server on a free port, a minimal HTTP/1.1 client
//! over a `TcpStream` (one connection per request), and reading `/metrics`.

#![allow(dead_code)] // each test uses part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tapegrad_serve::config::{Config, ModelKind};
use tapegrad_serve::model::{seeded_weights, PIXELS};
use tapegrad_serve::{start, Server};

/// The standardisation in the tests' weights files (pixels / 16 have mean and deviation
/// of this order).
pub const NORM: (f32, f32) = (0.3, 0.4);

/// A server of `kind` with seeded weights on 127.0.0.1 port 0, signals not handled;
/// `tune` adjusts the configuration. Also returns the weights.
pub fn server(kind: ModelKind, tune: impl FnOnce(&mut Config)) -> (Server, Vec<u8>) {
    let weights = seeded_weights(kind, 11, NORM).expect("seeded weights");
    let mut config = Config {
        model: kind,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    tune(&mut config);
    let server = start(&config, &weights, false).expect("the server starts");
    (server, weights)
}

/// A response: its status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends one request on a new connection and reads the whole answer. A client that
/// never gets one fails after a minute rather than hanging the test run.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write the head");
    // The server may answer (413) and close before reading a large body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        assert!(!raw.is_empty(), "{method} {path}: no answer: {e}");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no status in {head:?}"));
    Reply {
        status,
        body: body.to_string(),
    }
}

/// `POST /predict` with `body`.
pub fn predict(addr: SocketAddr, body: &str) -> Reply {
    request(addr, "POST", "/predict", body.as_bytes())
}

/// `{"pixels": [..]}` of one row.
pub fn pixels_body(row: &[f32]) -> String {
    format!("{{\"pixels\":{}}}", json_row(row))
}

/// `{"batch": [[..], ..]}` of whole rows.
pub fn batch_body(rows: &[f32]) -> String {
    let rows: Vec<String> = rows.chunks(PIXELS).map(json_row).collect();
    format!("{{\"batch\":[{}]}}", rows.join(","))
}

pub fn json_row(row: &[f32]) -> String {
    let v: Vec<String> = row.iter().map(|p| p.to_string()).collect();
    format!("[{}]", v.join(","))
}

/// The value of the metric line starting with `name` (labels included) in the text of
/// `/metrics`.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}
