//! The machine-readable results: the whole [`Report`] as JSON, durations in
//! milliseconds (see [`units`](crate::base::units)).

use super::Report;
use crate::base::LabError;

/// The report as pretty-printed JSON.
pub fn render(report: &Report) -> Result<String, LabError> {
    serde_json::to_string_pretty(report).map_err(LabError::Json)
}
