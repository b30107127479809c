//! The lab's modules import each other in one direction: its shared
//! vocabulary at the bottom, then scenarios, metrics, pools, the databases
//! behind one trait, the driver, and the suite, report and command line on
//! top. The rule is in the docs of `stormpool_testkit::module_graph`.

use std::path::Path;

#[test]
fn lab_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    stormpool_testkit::module_graph::assert_no_cycles(src);
}
