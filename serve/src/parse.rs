//! Request bodies, parsed straight into rows of `f32`: `{"pixels": [64 numbers]}` or
//! `{"batch": [[64 numbers], ...]}` (1 to `max_batch` rows). No intermediate JSON tree:
//! measured under load, building `serde_json::Value`s and their allocations were the
//! largest user-space cost per request after the kernel's.
//!
//! Every mistake is an `Err` with a message a client can act on: which field or
//! element, and what was expected.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::model::PIXELS;

/// The two forms a body may take.
pub const FORMS: &str = "expected {\"pixels\": [64 numbers]} or {\"batch\": [[64 numbers], ...]}";

/// The rows of a request body, flat, and whether it was the batch form.
///
/// # Errors
/// Invalid JSON (with a hint if it holds `NaN` or `Infinity`), another shape, a row not
/// of 64 numbers, a number beyond `f32`, 0 or more than `max_batch` rows.
pub fn parse(body: &[u8], max_batch: usize) -> Result<(Vec<f32>, bool), String> {
    let mut d = serde_json::Deserializer::from_slice(body);
    let parsed = Body { max_batch }
        .deserialize(&mut d)
        .and_then(|rows| d.end().map(|()| rows));
    parsed.map_err(|e| {
        if e.is_data() {
            return e.to_string();
        }
        let text = String::from_utf8_lossy(body);
        if ["NaN", "Infinity"].iter().any(|w| text.contains(w)) {
            format!("invalid JSON ({e}): NaN and Infinity are not JSON numbers")
        } else {
            format!("invalid JSON: {e}")
        }
    })
}

struct Body {
    max_batch: usize,
}

impl<'de> DeserializeSeed<'de> for Body {
    type Value = (Vec<f32>, bool);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Body {
    type Value = (Vec<f32>, bool);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FORMS.strip_prefix("expected ").unwrap_or(FORMS))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Option<(Vec<f32>, bool)> = None;
        while let Some(key) = map.next_key::<String>()? {
            let batch = match key.as_str() {
                "pixels" => false,
                "batch" => true,
                _ => return Err(de::Error::custom(format!("unknown field {key:?}; {FORMS}"))),
            };
            if found.is_some() {
                return Err(de::Error::custom(format!(
                    "both pixels and batch given; {FORMS}"
                )));
            }
            let rows = if batch {
                map.next_value_seed(Batch {
                    max_batch: self.max_batch,
                })?
            } else {
                let mut rows = Vec::with_capacity(PIXELS);
                map.next_value_seed(Row {
                    index: None,
                    rows: &mut rows,
                })?;
                rows
            };
            found = Some((rows, batch));
        }
        found.ok_or_else(|| de::Error::custom(format!("no pixels; {FORMS}")))
    }
}

/// One image, appended to `rows`; `index` is its place in a batch.
struct Row<'a> {
    index: Option<usize>,
    rows: &'a mut Vec<f32>,
}

impl Row<'_> {
    fn what(&self) -> String {
        match self.index {
            Some(i) => format!("batch[{i}]"),
            None => "pixels".into(),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: an array of {PIXELS} numbers", self.what())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let start = self.rows.len();
        let mut count = 0;
        // A number is a `Value` without allocation; anything else is an error anyway.
        while let Some(x) = seq.next_element::<Value>()? {
            if count < PIXELS {
                let Some(x64) = x.as_f64() else {
                    let what = self.what();
                    return Err(de::Error::custom(format!(
                        "{what}[{count}]: {x} is not a number"
                    )));
                };
                let x32 = x64 as f32;
                if !x32.is_finite() {
                    let what = self.what();
                    return Err(de::Error::custom(format!(
                        "{what}[{count}]: {x} is not a finite f32"
                    )));
                }
                self.rows.push(x32);
            }
            count += 1;
        }
        if count != PIXELS {
            self.rows.truncate(start);
            let what = self.what();
            return Err(de::Error::custom(format!(
                "{what}: expected {PIXELS} numbers, got {count}"
            )));
        }
        Ok(())
    }
}

/// The batch form's rows.
struct Batch {
    max_batch: usize,
}

impl<'de> DeserializeSeed<'de> for Batch {
    type Value = Vec<f32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<f32>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Batch {
    type Value = Vec<f32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch: an array of 1 to {} rows", self.max_batch)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
        let mut rows =
            Vec::with_capacity(PIXELS * seq.size_hint().unwrap_or(1).min(self.max_batch));
        let mut count = 0;
        while count < self.max_batch {
            let row = Row {
                index: Some(count),
                rows: &mut rows,
            };
            if seq.next_element_seed(row)?.is_none() {
                break;
            }
            count += 1;
        }
        // Count what is past the bound, to say how many rows came.
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        if count == 0 || count > self.max_batch {
            return Err(de::Error::custom(format!(
                "batch: expected 1 to {} rows, got {count}",
                self.max_batch
            )));
        }
        Ok(rows)
    }
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
        let two = format!(" {{ \"batch\" : [[{}], [{}]] }} ", image("1"), image("2.5"));
        let (rows, batch) = parse(two.as_bytes(), 4).unwrap();
        assert_eq!((rows.len(), rows[PIXELS], batch), (2 * PIXELS, 2.5, true));
        assert_eq!(rows[PIXELS - 1], 1.0);
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        let short = vec!["0"; PIXELS - 1].join(",");
        let long = vec!["0"; PIXELS + 2].join(",");
        let mut nan = vec!["0"; PIXELS];
        nan[5] = "NaN";
        let mut huge = vec!["0"; PIXELS];
        huge[7] = "1e39";
        let mut text = vec!["0"; PIXELS];
        text[2] = "\"x\"";
        let five = format!("[{}]", image("0"));
        let five = [five.as_str(); 5].join(",");
        let good = format!("[{}]", image("0"));
        for (body, says) in [
            ("{\"pixels\": [1, 2".to_string(), "invalid JSON: EOF"),
            (
                format!("{{\"pixels\":[{short}]}}"),
                "pixels: expected 64 numbers, got 63",
            ),
            (
                format!("{{\"pixels\":[{long}]}}"),
                "pixels: expected 64 numbers, got 66",
            ),
            (
                format!("{{\"pixels\":[{}]}}", nan.join(",")),
                "NaN and Infinity are not JSON",
            ),
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
            (
                format!("{{\"batch\":[{good},[{short}]]}}"),
                "batch[1]: expected 64 numbers, got 63",
            ),
            (
                "{\"batch\": 3}".to_string(),
                "expected batch: an array of 1 to 4 rows",
            ),
            (
                "{\"pixels\": {}}".to_string(),
                "expected pixels: an array of 64 numbers",
            ),
            (
                format!("{{\"pixels\":{good},\"batch\":[{good}]}}"),
                "both pixels and batch",
            ),
            (
                format!("{{\"pixels\":{good}}} trailing"),
                "invalid JSON: trailing",
            ),
        ] {
            let e = parse(body.as_bytes(), 4).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
