//! Session settings as SQL.
//!
//! Behind a transaction pooler they are `set_config(name, value, true)`
//! calls sent with each transaction instead (see
//! [`tracked`](crate::tracked)).
//!
//! Settings are applied with `set_config(name, value, false)`, the function
//! form of `SET name = value` (session scope, undone by `RESET` and
//! `DISCARD ALL`). Unlike `SET name = 'value'` it parses a list value such
//! as `search_path = 'app, public'` as the list it is, and all pairs go in
//! one round trip. Names are checked; values are quoted as string literals,
//! so neither can inject SQL.

use stormpool::Settings;

use crate::error::Error;

/// The server's bound on a statement's run time, which deadline propagation
/// sets (see the crate docs).
pub(crate) const STATEMENT_TIMEOUT: &str = "statement_timeout";

/// Whether `name` is a PostgreSQL parameter name: letters, digits and `_`,
/// with `.` for extension parameters (`myapp.tenant`), not starting with a
/// digit or a dot.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// `value` as a string literal, as libpq's `PQescapeLiteral` writes it: an
/// escape-string literal (`E'..'`) when it holds a backslash, so the result
/// means the same whatever `standard_conforming_strings` says.
pub(crate) fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// One statement setting every pair of `settings` for the session.
pub(crate) fn apply_statement(settings: &Settings) -> Result<String, Error> {
    Ok(format!("SELECT {}", calls(settings, false)?))
}

/// The `set_config` calls that put every pair of `settings` on the
/// transaction they run in (behind a transaction pooler, where the session
/// is not the connection's own).
pub(crate) fn local_calls(settings: &Settings) -> Result<String, Error> {
    calls(settings, true)
}

fn calls(settings: &Settings, local: bool) -> Result<String, Error> {
    let mut calls = Vec::with_capacity(settings.iter().len());
    for (name, value) in settings.iter() {
        if !is_valid_name(name) {
            return Err(Error::invalid_setting_name(name));
        }
        calls.push(format!(
            "set_config({}, {}, {local})",
            quote_literal(name),
            quote_literal(value)
        ));
    }
    Ok(calls.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_libpq() {
        assert_eq!(quote_literal("UTC"), "'UTC'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b"), r"E'a\\b'");
        assert_eq!(quote_literal(""), "''");
    }

    #[test]
    fn builds_one_statement_and_rejects_bad_names() {
        let settings = Settings::new([("TimeZone", "UTC"), ("search_path", "app, public")]);
        assert_eq!(
            apply_statement(&settings).unwrap(),
            "SELECT set_config('TimeZone', 'UTC', false), set_config('search_path', 'app, public', false)"
        );
        for bad in ["", "1abc", "a b", "a;drop", "x'y", ".x"] {
            let settings = Settings::new([(bad, "1")]);
            assert!(apply_statement(&settings).is_err(), "{bad:?}");
        }
        assert!(is_valid_name("myapp.tenant_id"));
        assert_eq!(
            local_calls(&Settings::new([("work_mem", "7MB")])).unwrap(),
            "set_config('work_mem', '7MB', true)"
        );
    }
}
