//! Whole-word keyword search in SQL text: how a tracked statement is
//! suspected of opening a transaction without the protocol's help.
//!
//! sqlx reads the session's transaction status off the protocol (the
//! ReadyForQuery status in PostgreSQL, the OK packet's flags in MySQL) and
//! keeps it private, so the adapter looks at what it sends instead. The
//! search errs on the side of suspicion: a keyword inside a string, a
//! comment or a procedure body also counts, and costs only a rollback probe
//! when the connection comes back.

/// Whether `sql` contains one of `words` (upper-case ASCII) as a whole
/// word: ASCII case-insensitive, not inside a longer identifier (letters,
/// digits, `_`, `$`).
pub(crate) fn mentions(sql: &str, words: &[&str]) -> bool {
    let bytes = sql.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    words.iter().any(|word| {
        let word = word.as_bytes();
        bytes.windows(word.len()).enumerate().any(|(at, window)| {
            window.eq_ignore_ascii_case(word)
                && (at == 0 || !is_ident(bytes[at - 1]))
                && bytes.get(at + word.len()).is_none_or(|&b| !is_ident(b))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn finds_whole_words_in_any_case() {
        let begin = ["BEGIN", "START"];
        assert!(mentions("BEGIN", &begin));
        assert!(mentions("  begin isolation level serializable", &begin));
        assert!(mentions("/* x */START TRANSACTION", &begin));
        assert!(mentions("select 1;begin;", &begin));
        assert!(!mentions("SELECT start_date, began FROM t", &begin));
        assert!(!mentions("SELECT $begin", &begin));
        assert!(!mentions("", &begin));
        assert!(mentions("SET @@autocommit = 0", &["AUTOCOMMIT"]));
    }
}
