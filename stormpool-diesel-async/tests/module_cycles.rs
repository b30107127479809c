//! The crate's modules import each other in one direction: no import cycle
//! among them. The rule is in the docs of `stormpool_testkit::module_graph`.

use std::path::Path;

#[test]
fn diesel_async_modules_have_no_import_cycle() {
    stormpool_testkit::module_graph::assert_no_cycles(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    );
}
