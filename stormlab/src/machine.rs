//! The machine a suite ran on, as the report names it: its cores, its
//! processor, and its load average when the suite started and ended (on
//! Linux; elsewhere what the standard library tells).
//!
//! Real-time figures depend on the machine and on what else runs on it;
//! the report says both, so that a figure taken on a loaded machine reads
//! as one.

use serde::Serialize;

/// The machine of a suite.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Machine {
    /// The cores the lab may use.
    pub cores: usize,
    /// The processor's model name, where the system tells.
    pub cpu: Option<String>,
    /// The 1-minute load average when the suite started.
    pub load_start: Option<f64>,
    /// The 1-minute load average when the suite ended.
    pub load_end: Option<f64>,
}

impl Machine {
    /// The machine now, its load average read as the start.
    pub fn now() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: cpu_model(),
            load_start: load_average(),
            load_end: None,
        }
    }

    /// Reads the load average again, as the end.
    pub fn finish(&mut self) {
        self.load_end = load_average();
    }

    /// One line for reports: "2 cores (model), load average 0.4 to 0.6".
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{} core{}",
            self.cores,
            if self.cores == 1 { "" } else { "s" }
        );
        if let Some(cpu) = &self.cpu {
            out += &format!(" ({cpu})");
        }
        match (self.load_start, self.load_end) {
            (Some(a), Some(b)) => out += &format!(", load average {a:.2} to {b:.2}"),
            (Some(a), None) => out += &format!(", load average {a:.2}"),
            _ => {}
        }
        out
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The first processor's model name, from `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_cores_and_load() {
        let machine = Machine {
            cores: 2,
            cpu: Some("Example CPU".into()),
            load_start: Some(0.5),
            load_end: Some(1.25),
        };
        assert_eq!(
            machine.describe(),
            "2 cores (Example CPU), load average 0.50 to 1.25"
        );
        assert!(Machine::now().cores >= 1);
    }
}
