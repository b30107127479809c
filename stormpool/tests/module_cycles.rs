//! The core's modules import each other in one direction: no import cycle
//! among the top-level modules, nor among the files of any directory
//! (`pool/`, `pool/state/`, `admission/`, …). The rule (what counts as a
//! use, why a child using its parent is not a cycle) is in the docs of
//! `stormpool_testkit::module_graph`.

use std::path::Path;

#[test]
fn core_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    stormpool_testkit::module_graph::assert_no_cycles(src);
}
