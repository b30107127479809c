//! Statements behind a transaction pooler: unnamed, so none is ever left on
//! a server session for another client to find.
//!
//! # Why not named statements
//!
//! tokio-postgres prepares a statement under a name (`s0`, `s1`, .. from a
//! counter per process), binds it in a later exchange, and closes it when
//! the handle drops. Behind a pooler in transaction mode each of those
//! exchanges may reach a different server session: the bind finds no
//! statement there (`26000`), or a statement another process left under
//! the same name (`42P05` when preparing; with the same parameter count,
//! *another client's SQL runs*), and the close goes astray, leaking the
//! statement on the first session.
//!
//! So behind a pooler every statement is sent the way
//! [`query_typed`](tokio_postgres::Client::query_typed) sends it: parse,
//! bind and execute of the *unnamed* statement in one exchange, which no
//! server session keeps past the next parse. That needs the parameter
//! types, which the connection learns once per statement text: it
//! *describes* the text inside a transaction of its own (which keeps one
//! server session for it), deallocates the statement by name before
//! `COMMIT`, and caches the description (the connection's statement cache,
//! [`ManagerConfig::statement_cache_capacity`](crate::ManagerConfig::statement_cache_capacity)).
//! The cost: two round trips the first time a connection meets a text, and
//! the server parses and plans each execution (no plan is reused).
//!
//! A [`Statement`] from [`prepare`](crate::PgConnection::prepare) or
//! [`prepare_cached`](crate::PgConnection::prepare_cached) is such a
//! description: the connection's statement methods run it by its text.
//! One prepared elsewhere (the raw client) names nothing the connection
//! knows, and is refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement, ToStatement};

use crate::error::Error;

/// What a connection's statement methods take: SQL text (`&str`,
/// `String`) or a [`Statement`] from the connection's
/// [`prepare`](crate::PgConnection::prepare) or
/// [`prepare_cached`](crate::PgConnection::prepare_cached): the types
/// tokio-postgres's [`ToStatement`] is implemented for.
///
/// Sealed. The connection tells text from a prepared statement with it,
/// to run either unnamed behind a transaction pooler.
pub trait ToPgStatement: ToStatement + sealed::Sealed {}

impl ToPgStatement for str {}
impl ToPgStatement for String {}
impl ToPgStatement for Statement {}

pub(crate) mod sealed {
    use tokio_postgres::Statement;

    /// Text or a prepared statement.
    pub enum Kind<'a> {
        /// SQL text.
        Text(&'a str),
        /// A statement prepared on the connection.
        Prepared(&'a Statement),
    }

    /// Seals [`ToPgStatement`](super::ToPgStatement).
    pub trait Sealed {
        /// Which of the two it is.
        fn kind(&self) -> Kind<'_>;
    }

    impl Sealed for str {
        fn kind(&self) -> Kind<'_> {
            Kind::Text(self)
        }
    }

    impl Sealed for String {
        fn kind(&self) -> Kind<'_> {
            Kind::Text(self)
        }
    }

    impl Sealed for Statement {
        fn kind(&self) -> Kind<'_> {
            Kind::Prepared(self)
        }
    }
}

/// A connection's prepared statements by text (and parameter types), and
/// behind a pooler the text each described statement was prepared from.
#[derive(Debug)]
pub(crate) struct Cache {
    statements: stormpool::statements::StatementCache<String, Statement>,
    /// Behind a pooler: a cached description's statement name, to its text.
    texts: HashMap<String, String>,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Cache {
            statements: stormpool::statements::StatementCache::new(capacity),
            texts: HashMap::new(),
        }
    }

    pub(crate) fn get(&mut self, key: &str) -> Option<Statement> {
        self.statements.get(key)
    }

    /// Caches `statement` for `key`; returns the one evicted, if any.
    pub(crate) fn insert(&mut self, key: String, statement: Statement) -> Option<Statement> {
        let evicted = self.statements.insert(key, statement);
        if let Some(name) = evicted.as_ref().and_then(statement_name) {
            self.texts.remove(&name);
        }
        evicted
    }

    /// Caches a description of `text`, and remembers its text by its name.
    pub(crate) fn insert_described(&mut self, key: String, text: &str, statement: Statement) {
        let Some(name) = statement_name(&statement) else {
            return;
        };
        if self.statements.capacity() == 0 {
            return;
        }
        self.texts.insert(name, text.to_owned());
        drop(self.insert(key, statement));
    }

    /// The text `statement` was described from, if this cache holds it.
    pub(crate) fn text_of(&self, statement: &Statement) -> Option<String> {
        self.texts.get(&statement_name(statement)?).cloned()
    }

    pub(crate) fn clear(&mut self) {
        self.statements.clear();
        self.texts.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.statements.len()
    }
}

/// A statement's name on the server, as its `Debug` shows it (the driver
/// has no accessor): `Statement { name: "s3", .. }`. Stops formatting once
/// the name is read.
pub(crate) fn statement_name(statement: &Statement) -> Option<String> {
    struct Upto(String);
    impl std::fmt::Write for Upto {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.push_str(s);
            match name_in(&self.0) {
                Some(_) => Err(std::fmt::Error),
                None => Ok(()),
            }
        }
    }
    let mut upto = Upto(String::new());
    let _ = write!(upto, "{statement:?}");
    name_in(&upto.0).map(str::to_owned)
}

fn name_in(debug: &str) -> Option<&str> {
    let rest = debug.split_once("name: \"")?.1;
    let (name, _) = rest.split_once('"')?;
    (!name.is_empty()).then_some(name)
}

/// `params` paired with their `types`, as the unnamed statement takes
/// them; an error when the counts differ.
pub(crate) fn typed<'p>(
    params: &'p [&'p (dyn ToSql + Sync)],
    types: &[Type],
) -> Result<Vec<(&'p (dyn ToSql + Sync), Type)>, Error> {
    check_count(types.len(), params.len())?;
    Ok(params.iter().copied().zip(types.iter().cloned()).collect())
}

/// The parameter count a statement takes against the count given.
pub(crate) fn check_count(expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::parameter_count(expected, got))
    }
}

/// The text a statement method runs behind a pooler.
pub(crate) type Text<'q> = Cow<'q, str>;

/// Prepares `query` on the server session of a transaction (its own,
/// unless `in_transaction`), reads its description, and deallocates it
/// there before the transaction ends: nothing stays on the session.
pub(crate) async fn describe(
    client: &Client,
    query: &str,
    types: &[Type],
    in_transaction: bool,
) -> Result<Statement, tokio_postgres::Error> {
    if in_transaction {
        let statement = client.prepare_typed(query, types).await?;
        deallocate(client, &statement, "").await?;
        return Ok(statement);
    }
    // A name another client left on the session (one not behind this
    // mode) fails the prepare: the next name is a fresh one.
    let mut attempts = 0;
    loop {
        let (begun, prepared) = tokio::join!(
            biased;
            client.batch_execute("BEGIN"),
            client.prepare_typed(query, types),
        );
        match (begun, prepared) {
            (Ok(()), Ok(statement)) => {
                deallocate(client, &statement, "; COMMIT").await?;
                return Ok(statement);
            }
            (Ok(()), Err(e))
                if e.code() == Some(&SqlState::DUPLICATE_PSTATEMENT) && attempts < 3 =>
            {
                attempts += 1;
                client.batch_execute("ROLLBACK").await?;
            }
            (begun, prepared) => {
                let _ = client.batch_execute("ROLLBACK").await;
                begun?;
                return prepared;
            }
        }
    }
}

/// Deallocates `statement` (and the driver's own type lookups, which it
/// prepared under names too) on the session, then runs `then`.
async fn deallocate(
    client: &Client,
    statement: &Statement,
    then: &str,
) -> Result<(), tokio_postgres::Error> {
    // Closes the type lookups' statements, queued before what follows.
    client.clear_type_cache();
    let sql = match statement_name(statement) {
        Some(name) => format!("DEALLOCATE \"{name}\"{then}"),
        // Not read: better a failed transaction than a statement left
        // behind (nothing else deallocates one).
        None => format!("DEALLOCATE \"\"{then}"),
    };
    client.batch_execute(&sql).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_name_out_of_a_debug_string() {
        assert_eq!(
            name_in("Statement { name: \"s12\", params: [Int4], columns: [] }"),
            Some("s12")
        );
        assert_eq!(name_in("Statement { name: \"s1"), None, "not closed yet");
        assert_eq!(name_in("Statement { name: \"\", .. }"), None);
        assert_eq!(name_in("Statement { params: [] }"), None);
    }
}
