//! The rule on small planted trees, each shown to find or pass what it should.

use std::collections::HashMap;

use super::*;

fn cycles_of(files: &[(&str, &str)]) -> Vec<Cycle> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), text.to_string()))
        .collect();
    cycles_with(|path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    })
    .unwrap()
}

/// Each cycle as `parent: member, member`.
fn described(cycles: &[Cycle]) -> Vec<String> {
    cycles
        .iter()
        .map(|c| format!("{}: {}", c.parent, c.members.join(", ")))
        .collect()
}

#[test]
fn a_planted_cycle_between_two_files_is_found_with_its_uses() {
    let found = cycles_of(&[
        ("lib.rs", "mod pool;\nmod stats;"),
        ("pool.rs", "use crate::stats::Counters;\npub struct Pool;"),
        (
            "stats.rs",
            "pub struct Counters;\n\nfn f(_: &crate::pool::Pool) {}",
        ),
    ]);
    assert_eq!(described(&found), ["crate: pool, stats"]);
    let text = found[0].to_string();
    assert!(
        text.contains("pool -> stats: pool.rs:1: crate::stats::Counters"),
        "{text}"
    );
    assert!(
        text.contains("stats -> pool: stats.rs:3: crate::pool::Pool"),
        "{text}"
    );
}

#[test]
fn parent_and_child_using_each_other_is_structure() {
    let found = cycles_of(&[
        ("lib.rs", "mod pool;\npub use pool::Pool;"),
        (
            "pool/mod.rs",
            "mod shared;\npub struct Pool(shared::Shared);\npub struct Config;",
        ),
        (
            "pool/shared.rs",
            "use super::Config;\nuse crate::Pool;\npub struct Shared;",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn re_exports_lead_to_the_defining_sibling() {
    // `waitlist` names `super::Status`, which `pool/mod.rs` re-exports
    // from `stats`, and `stats` names the waitlist through `crate::`.
    let found = cycles_of(&[
        ("lib.rs", "pub mod pool;"),
        (
            "pool/mod.rs",
            "mod stats;\nmod waitlist;\npub use stats::Status;\npub(crate) use waitlist::Waitlist;",
        ),
        (
            "pool/stats.rs",
            "pub struct Status;\nfn f(w: &crate::pool::Waitlist) {}",
        ),
        (
            "pool/waitlist.rs",
            "pub struct Waitlist;\nfn g() -> super::Status { todo!() }",
        ),
    ]);
    assert_eq!(described(&found), ["crate::pool: stats, waitlist"]);
}

#[test]
fn a_use_of_a_nested_file_counts_for_its_directory() {
    // `pool/state/ledger.rs` using `admission` and `admission/codel.rs`
    // using the pool: a cycle between the top-level `pool` and
    // `admission`.
    let found = cycles_of(&[
        ("lib.rs", "mod admission;\nmod pool;"),
        ("pool/mod.rs", "mod state;"),
        ("pool/state/mod.rs", "mod ledger;"),
        (
            "pool/state/ledger.rs",
            "use crate::admission::{self, Codel};",
        ),
        ("admission/mod.rs", "mod codel;\npub use codel::Codel;"),
        (
            "admission/codel.rs",
            "pub struct Codel;\nfn f() { let _ = crate::pool::state::X; }",
        ),
    ]);
    assert_eq!(described(&found), ["crate: admission, pool"]);
}

#[test]
fn names_bound_by_use_and_groups_are_followed() {
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod b;"),
        ("a.rs", "use super::b;\nfn f() { b::g(); }\npub fn h() {}"),
        (
            "b.rs",
            "use crate::{a::{self as other}, a as _};\npub fn g() { other::h(); }",
        ),
    ]);
    assert_eq!(described(&found), ["crate: a, b"]);
}

#[test]
fn test_code_comments_and_strings_are_left_out() {
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod b;"),
        (
            "a.rs",
            "use crate::b::B;\npub struct A;\n\n#[cfg(test)]\nmod tests;",
        ),
        (
            "b.rs",
            r##"pub struct B;
/// See [`crate::a::A`].
// crate::a::A
/* crate::a::A /* nested */ crate::a::A */
const S: &str = "crate::a::A";
const R: &str = r#"crate::a::A"#;
fn f<'a>(_: &'a str) -> char { '"' }
#[cfg(test)]
mod tests {
use crate::a::A;
}
#[cfg(all(test, loom))]
fn model() { let _ = crate::a::A; }
"##,
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_cycle_through_three_modules_is_reported_once_with_a_path() {
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;"),
        ("a.rs", "use crate::b::X;"),
        ("b.rs", "pub struct X; use crate::c::Y;"),
        ("c.rs", "pub struct Y; use crate::a as _; use crate::d::Z;"),
        ("d.rs", "pub struct Z;"),
    ]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].members, ["a", "b", "c"]);
    let path: Vec<_> = found[0].steps.iter().map(|e| e.from.as_str()).collect();
    assert_eq!(path, ["a", "b", "c"]);
}

#[test]
fn allowed_cycles_pass_and_others_fail() {
    let dir = std::env::temp_dir().join(format!("module-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::b::B; pub struct A;").unwrap();
    std::fs::write(dir.join("b.rs"), "use crate::a::A; pub struct B;").unwrap();
    assert_no_cycles_except(&dir, &[("crate", &["a", "b", "c"])]);
    let strict = std::panic::catch_unwind(|| assert_no_cycles(&dir));
    let narrower = std::panic::catch_unwind(|| assert_no_cycles_except(&dir, &[("crate", &["a"])]));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(strict.is_err() && narrower.is_err());
}

#[test]
fn raw_identifiers_and_top_level_use_groups_are_read() {
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod r#type;"),
        ("a.rs", "use {crate::r#type::T};\npub struct A;"),
        (
            "type.rs",
            "pub struct T;\nfn f() -> crate::a::A { todo!() }",
        ),
    ]);
    assert_eq!(described(&found), ["crate: a, type"]);
}
