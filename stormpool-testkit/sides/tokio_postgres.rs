//! A side connection to PostgreSQL through tokio-postgres's simple protocol
//! ([`SideConnection`]), for the tests of the adapters that have
//! tokio-postgres at hand. They include this file by its path: the test kit
//! itself depends on no database driver.

use stormpool_testkit::load::chain;
use stormpool_testkit::side::{parse_integers, SideConnection};
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// `url`'s configuration, its sessions named `application_name` (how the
/// tests tell them apart on the server).
pub fn config(url: &str, application_name: &str) -> tokio_postgres::Config {
    let mut config: tokio_postgres::Config = url.parse().expect("STORMPOOL_PG_URL");
    config.application_name(application_name);
    config
}

/// A connection of the test's own, outside any pool.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("side connection");
    tokio::spawn(connection);
    client
}

/// A side connection through tokio-postgres's simple protocol.
pub struct PgSide(pub tokio_postgres::Client);

impl SideConnection for PgSide {
    async fn connect(url: &str) -> Self {
        PgSide(connect(url).await)
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<i64>, String> {
        let messages = self.0.simple_query(sql).await.map_err(|e| chain(&e))?;
        Ok(parse_integers(messages.iter().map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })))
    }
}
