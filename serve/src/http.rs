//! The routes: `POST /predict`, `GET /healthz`, `GET /metrics`. Every error is JSON
//! `{"error": "..."}` with its status: 400 (the request's mistake, said in the message),
//! 413 (a body over `--max-body`), 404, 405, 500 (the model failed), 503 (queue full or
//! shutting down).
//!
//! Request bodies: `{"pixels": [64 numbers]}` answered `{"class": 3, "probs": [10]}`, or
//! `{"batch": [[64 numbers], ...]}` (1 to `--max-batch` rows) answered
//! `{"predictions": [{"class": .., "probs": [..]}, ...]}`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::batcher::{Batcher, Refused};
use crate::config::ModelKind;
use crate::metrics::Metrics;
use crate::model::Prediction;
use crate::parse::parse;

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    /// The queue in front of the workers.
    pub batcher: Arc<Batcher>,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// The network served, for `/healthz`.
    pub model: ModelKind,
    /// Worker threads, for `/healthz`.
    pub workers: usize,
}

/// The service's routes over `app`, bodies limited to `max_body` bytes.
pub fn router(app: App, max_body: usize) -> Router {
    Router::new()
        .route("/predict", post(predict))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = format!("{{\"error\":{}}}", Value::String(message.into()));
    json(status, body)
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn predict(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let start = Instant::now();
    let response = answer(&app, body).await;
    app.metrics
        .request(response.status().as_u16(), start.elapsed());
    response
}

async fn answer(app: &App, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(e.status(), "request body too large (see --max-body)")
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let (rows, batch) = match parse(&body, app.batcher.max_batch()) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let answer = match app.batcher.submit(rows) {
        Ok(a) => a,
        Err(Refused::Full) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many rows waiting; retry later",
            )
        }
        Err(Refused::Closed) => return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    };
    match answer.await {
        Ok(Ok(predictions)) => json(StatusCode::OK, render(&predictions, batch)),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the worker stopped before answering",
        ),
    }
}

/// The answer's JSON: one prediction, or the batch form's list.
fn render(predictions: &[Prediction], batch: bool) -> String {
    let mut out = String::with_capacity(32 + predictions.len() * 160);
    if batch {
        out.push_str("{\"predictions\":[");
    }
    for (i, p) in predictions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"class\":{},\"probs\":[", p.class);
        for (j, q) in p.probs.iter().enumerate() {
            let sep = if j > 0 { "," } else { "" };
            // Display writes finite floats as JSON numbers; a non-finite one is null.
            if q.is_finite() {
                let _ = write!(out, "{sep}{q}");
            } else {
                let _ = write!(out, "{sep}null");
            }
        }
        out.push_str("]}");
    }
    if batch {
        out.push_str("]}");
    }
    out
}

async fn healthz(State(app): State<App>) -> Response {
    json(
        StatusCode::OK,
        format!(
            "{{\"status\":\"ok\",\"model\":\"{}\",\"workers\":{},\"max_batch\":{}}}",
            app.model.name(),
            app.workers,
            app.batcher.max_batch()
        ),
    )
}

async fn metrics(State(app): State<App>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

const ROUTES: &str = "the routes are POST /predict, GET /healthz, GET /metrics";

async fn not_found(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("no route {method} {}; {ROUTES}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("{method} is not allowed on {}; {ROUTES}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_json() {
        let p = Prediction {
            class: 2,
            probs: [0.0, 0.25, 0.75, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, f32::NAN],
        };
        let one = render(std::slice::from_ref(&p), false);
        let v: Value = serde_json::from_str(&one).unwrap();
        assert_eq!(v["class"], 2);
        assert_eq!(v["probs"][2], 0.75);
        assert!(v["probs"][9].is_null());
        let two: Value = serde_json::from_str(&render(&[p.clone(), p], true)).unwrap();
        assert_eq!(two["predictions"].as_array().map(Vec::len), Some(2));
    }
}
