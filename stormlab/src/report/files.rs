//! The report's files: the HTML page and the JSON the options ask for.

use std::path::{Path, PathBuf};

use super::{html, json, Report};
use crate::base::LabError;
use crate::config::Outputs;

impl Report {
    /// Writes the HTML and JSON files `outputs` asks for, creating their
    /// folders; returns the paths written.
    pub fn write(&self, outputs: &Outputs) -> Result<Vec<PathBuf>, LabError> {
        let mut written = Vec::new();
        if let Some(path) = &outputs.html {
            write_file(path, &html::render(self)?)?;
            written.push(path.clone());
        }
        if let Some(path) = &outputs.json {
            write_file(path, &json::render(self)?)?;
            written.push(path.clone());
        }
        Ok(written)
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), LabError> {
    let fail = |source| LabError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, contents).map_err(fail)
}
