//! Import cycles between a crate's modules, found by reading its source
//! files: no compiler, no dependency, fast enough for every test run.
//!
//! ```no_run
//! // In `tests/module_cycles.rs` of a crate:
//! stormpool_testkit::module_graph::assert_no_cycles(
//!     std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
//! );
//! ```
//!
//! # The rule
//!
//! The crate's modules form a tree from `src/lib.rs`. Every directory of
//! that tree (a module with children: the crate root, `pool/`,
//! `pool/state/`, …) has its own graph, whose nodes are its children: one
//! per file, and one per sub-directory, which stands for everything in it.
//! A module *uses* another when its code names it or an item in it:
//!
//! * `use` declarations (`use crate::pool::stats::CloseCause;`,
//!   `use super::{a, b::C};`, globs, renames);
//! * paths in the code that start with `crate::`, `super::`, `self::` or
//!   with a name a `use` bound (`stats::Counters` after `use super::stats;`).
//!
//! A path is followed to the module that **defines** the item: through
//! child modules and through re-exports (`pub use`, and the private `use`
//! of an ancestor, which its descendants see), so `crate::Pool` counts as a
//! use of `pool`, and `super::Counters` as a use of `pool::stats` when
//! `pool/mod.rs` re-exports it from there.
//!
//! A use from module `a/x/…` of module `a/y/…` is an edge `x → y` in the
//! graph of `a`. Two kinds of use are structure, not edges: a module using
//! one of its ancestors (a child using its parent's `mod.rs`), and a module
//! using one of its descendants (a parent declaring, re-exporting or
//! calling into its children). A cycle is a strongly connected set of two or
//! more nodes in one graph.
//!
//! Code compiled only for tests (`#[cfg(test)]`, `#[cfg(all(test, …))]`:
//! unit-test modules, test-only files) is left out: a unit test may drive a
//! lower module through a higher one. Paths inside doc comments and
//! strings are not read, and neither are names used bare through a glob
//! import (`use super::*` then `Foo`): the `use` itself is the edge to the
//! parent, which is structure.

mod cycles;
mod tokens;
mod tree;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use tree::Tree;

/// One use of a module by another, with where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The using child, named within its parent's graph.
    pub from: String,
    /// The used child.
    pub to: String,
    /// The file that holds the use, relative to the crate's `src`.
    pub file: PathBuf,
    /// The line of the use in that file.
    pub line: usize,
    /// The path as written (`crate::pool::stats::CloseCause`).
    pub path: String,
}

/// A set of modules that use each other, directly or through each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The directory whose children these are (`crate`, `crate::pool`).
    pub parent: String,
    /// Every child in the strongly connected set, sorted.
    pub members: Vec<String>,
    /// One cycle through the set, each step with where it was read.
    pub steps: Vec<Edge>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path: Vec<&str> = self
            .steps
            .iter()
            .map(|e| e.from.as_str())
            .chain(self.steps.first().map(|e| e.from.as_str()))
            .collect();
        writeln!(
            f,
            "import cycle among the modules of `{}`: {}",
            self.parent,
            path.join(" -> ")
        )?;
        for e in &self.steps {
            writeln!(
                f,
                "    {} -> {}: {}:{}: {}",
                e.from,
                e.to,
                e.file.display(),
                e.line,
                e.path
            )?;
        }
        write!(
            f,
            "    (all modules in the cycle: {})",
            self.members.join(", ")
        )
    }
}

/// The import cycles of the crate whose sources are under `src` (read from
/// `src/lib.rs` down), one per strongly connected set, in the order of
/// their directories.
///
/// # Errors
///
/// A file of the module tree could not be read.
pub fn cycles(src: impl AsRef<Path>) -> io::Result<Vec<Cycle>> {
    let src = src.as_ref();
    cycles_with(|path| std::fs::read_to_string(src.join(path)))
}

/// Fails, naming every cycle and the uses that make it, when the crate
/// under `src` has an import cycle.
///
/// # Panics
///
/// On a cycle, or when the sources cannot be read.
pub fn assert_no_cycles(src: impl AsRef<Path>) {
    assert_no_cycles_except(src, &[]);
}

/// [`assert_no_cycles`], except for the cycles known and being removed:
/// `allowed` lists `(parent, members)`, and a cycle passes when all its
/// members are among the members of an entry for its parent. A cycle that
/// grows beyond its entry, or a new one, fails.
///
/// # Panics
///
/// On a cycle not allowed, or when the sources cannot be read.
pub fn assert_no_cycles_except(src: impl AsRef<Path>, allowed: &[(&str, &[&str])]) {
    let src = src.as_ref();
    let found = match cycles(src) {
        Ok(found) => found,
        Err(e) => panic!("cannot read the module tree under {}: {e}", src.display()),
    };
    let failures: Vec<String> = found
        .iter()
        .filter(|cycle| {
            !allowed.iter().any(|(parent, members)| {
                *parent == cycle.parent
                    && cycle.members.iter().all(|m| members.contains(&m.as_str()))
            })
        })
        .map(ToString::to_string)
        .collect();
    assert!(
        failures.is_empty(),
        "{} import cycle(s) under {}:\n{}",
        failures.len(),
        src.display(),
        failures.join("\n")
    );
}

/// [`cycles`] over sources given by `read`, which maps a path relative to
/// `src` (`lib.rs`, `pool/mod.rs`) to the file's text.
pub(crate) fn cycles_with(read: impl Fn(&Path) -> io::Result<String>) -> io::Result<Vec<Cycle>> {
    let tree = Tree::load(&read)?;
    Ok(tree.cycles())
}

#[cfg(test)]
mod tests;
