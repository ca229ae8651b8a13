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
use crate::model::{Prediction, PIXELS};

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

const FORMS: &str = "expected {\"pixels\": [64 numbers]} or {\"batch\": [[64 numbers], ...]}";

/// The rows of a request body, flat, and whether it was the batch form.
fn parse(body: &[u8], max_batch: usize) -> Result<(Vec<f32>, bool), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(body);
        if ["NaN", "Infinity"].iter().any(|w| text.contains(w)) {
            format!("invalid JSON ({e}): NaN and Infinity are not JSON numbers")
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    let Value::Object(fields) = v else {
        return Err(FORMS.into());
    };
    if let Some(k) = fields.keys().find(|k| *k != "pixels" && *k != "batch") {
        return Err(format!("unknown field {k:?}; {FORMS}"));
    }
    match (fields.get("pixels"), fields.get("batch")) {
        (Some(p), None) => {
            let mut rows = Vec::with_capacity(PIXELS);
            row(p, "pixels", &mut rows)?;
            Ok((rows, false))
        }
        (None, Some(Value::Array(batch))) => {
            if batch.is_empty() || batch.len() > max_batch {
                return Err(format!(
                    "batch: expected 1 to {max_batch} rows, got {}",
                    batch.len()
                ));
            }
            let mut rows = Vec::with_capacity(batch.len() * PIXELS);
            for (i, r) in batch.iter().enumerate() {
                row(r, &format!("batch[{i}]"), &mut rows)?;
            }
            Ok((rows, true))
        }
        (None, Some(_)) => Err(format!("batch: not an array; {FORMS}")),
        (Some(_), Some(_)) => Err(format!("both pixels and batch given; {FORMS}")),
        (None, None) => Err(format!("no pixels; {FORMS}")),
    }
}

/// Appends the 64 values of the image `v` (called `what` in messages) to `rows`.
fn row(v: &Value, what: &str, rows: &mut Vec<f32>) -> Result<(), String> {
    let Value::Array(values) = v else {
        return Err(format!("{what}: expected an array of {PIXELS} numbers"));
    };
    if values.len() != PIXELS {
        return Err(format!(
            "{what}: expected {PIXELS} numbers, got {}",
            values.len()
        ));
    }
    for (i, x) in values.iter().enumerate() {
        let Some(x64) = x.as_f64() else {
            return Err(format!("{what}[{i}]: {x} is not a number"));
        };
        let x32 = x64 as f32;
        if !x32.is_finite() {
            return Err(format!("{what}[{i}]: {x} is not a finite f32"));
        }
        rows.push(x32);
    }
    Ok(())
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

    fn image(v: &str) -> String {
        vec![v; PIXELS].join(",")
    }

    #[test]
    fn both_forms_parse() {
        let one = format!("{{\"pixels\":[{}]}}", image("16"));
        let (rows, batch) = parse(one.as_bytes(), 4).unwrap();
        assert_eq!((rows.len(), rows[0], batch), (PIXELS, 16.0, false));
        let two = format!("{{\"batch\":[[{}],[{}]]}}", image("1"), image("2.5"));
        let (rows, batch) = parse(two.as_bytes(), 4).unwrap();
        assert_eq!((rows.len(), rows[PIXELS], batch), (2 * PIXELS, 2.5, true));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        let short = vec!["0"; PIXELS - 1].join(",");
        let mut nan = vec!["0"; PIXELS];
        nan[5] = "NaN";
        let mut huge = vec!["0"; PIXELS];
        huge[7] = "1e39";
        let mut text = vec!["0"; PIXELS];
        text[2] = "\"x\"";
        let five = format!("[{}]", image("0"));
        let five = [five.as_str(); 5].join(",");
        for (body, says) in [
            ("{\"pixels\": [1, 2".to_string(), "invalid JSON"),
            (
                format!("{{\"pixels\":[{short}]}}"),
                "expected 64 numbers, got 63",
            ),
            (format!("{{\"pixels\":[{}]}}", nan.join(",")), "NaN"),
            (
                format!("{{\"pixels\":[{}]}}", huge.join(",")),
                "pixels[7]: 1e+39 is not a finite f32",
            ),
            (
                format!("{{\"pixels\":[{}]}}", text.join(",")),
                "pixels[2]: \"x\" is not a number",
            ),
            ("[1, 2]".to_string(), "expected {\"pixels\""),
            ("{}".to_string(), "no pixels"),
            ("{\"pixel\": []}".to_string(), "unknown field \"pixel\""),
            ("{\"batch\": []}".to_string(), "expected 1 to 4 rows, got 0"),
            (
                format!("{{\"batch\":[{five}]}}"),
                "expected 1 to 4 rows, got 5",
            ),
            ("{\"batch\": 3}".to_string(), "batch: not an array"),
        ] {
            let e = parse(body.as_bytes(), 4).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }

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
