//! A side connection to MariaDB through mysql_async's text protocol
//! ([`SideConnection`]), for the tests of the adapters that have mysql_async
//! at hand. They include this file by its path: the test kit itself depends
//! on no database driver.

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder};
use stormpool_testkit::load::chain;
use stormpool_testkit::server::TEST_PASSWORD;
use stormpool_testkit::side::SideConnection;

/// `url`'s options, logging in as `user` with [`TEST_PASSWORD`], always
/// over TCP: by default mysql_async moves a connection to 127.0.0.1 onto
/// the server's Unix socket, which would bypass a fault proxy.
pub fn opts_as(url: &str, user: &str) -> Opts {
    let opts = Opts::from_url(url).expect("STORMPOOL_MYSQL_URL");
    OptsBuilder::from_opts(opts)
        .user(Some(user))
        .pass(Some(TEST_PASSWORD))
        .prefer_socket(false)
        .into()
}

/// A connection of the test's own, outside any pool.
pub async fn connect(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url)
        .await
        .expect("side connection")
}

/// A side connection through mysql_async's text protocol.
pub struct MariaSide(pub mysql_async::Conn);

impl SideConnection for MariaSide {
    async fn connect(url: &str) -> Self {
        MariaSide(connect(url).await)
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<i64>, String> {
        self.0.query(sql).await.map_err(|e| chain(&e))
    }

    async fn close(self) {
        let _ = self.0.disconnect().await;
    }
}
