//! Session variables as one prepared `SET SESSION` statement.
//!
//! Values travel as statement parameters, never spliced into SQL, so no
//! quoting rule (and no `NO_BACKSLASH_ESCAPES` mode) can be got wrong. A
//! value that reads as an integer is sent as one, since MySQL refuses a
//! string for a numeric variable (`wait_timeout = '60'`); every other value
//! is sent as a string (`ON`, `READ-COMMITTED`, `+00:00`).

use mysql_async::Value;
use stormpool::statements::is_variable_name;
use stormpool::Settings;

use crate::error::Error;

pub(crate) fn parameter(value: &str) -> Value {
    match value.parse::<i64>() {
        Ok(n) => Value::Int(n),
        Err(_) => Value::Bytes(value.as_bytes().to_vec()),
    }
}

/// The statement and its parameters setting every pair of `settings`;
/// `None` for no settings.
pub(crate) fn apply_statement(settings: &Settings) -> Result<Option<(String, Vec<Value>)>, Error> {
    if settings.is_empty() {
        return Ok(None);
    }
    let mut assignments = Vec::with_capacity(settings.iter().len());
    let mut params = Vec::with_capacity(settings.iter().len());
    for (name, value) in settings.iter() {
        if !is_variable_name(name) {
            return Err(Error::invalid_setting_name(name));
        }
        assignments.push(format!("SESSION {name} = ?"));
        params.push(parameter(value));
    }
    Ok(Some((format!("SET {}", assignments.join(", ")), params)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_one_statement_with_parameters() {
        let settings = Settings::new([("time_zone", "+00:00"), ("wait_timeout", "60")]);
        let (sql, params) = apply_statement(&settings).unwrap().unwrap();
        assert_eq!(sql, "SET SESSION time_zone = ?, SESSION wait_timeout = ?");
        assert_eq!(
            params,
            vec![Value::Bytes(b"+00:00".to_vec()), Value::Int(60)]
        );
    }

    #[test]
    fn rejects_names_that_are_not_identifiers() {
        for bad in ["", "1x", "a b", "a=1;DROP", "`x`", ".x", "a-b"] {
            let settings = Settings::new([(bad, "1")]);
            assert!(apply_statement(&settings).is_err(), "{bad:?}");
        }
    }
}
