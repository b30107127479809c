//! Durations in the JSON results: numbers of milliseconds.

use std::time::Duration;

use serde::Serializer;

/// Serializes a duration as a number of milliseconds.
pub fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Serializes an optional duration as a number of milliseconds or `null`.
pub fn opt_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}
