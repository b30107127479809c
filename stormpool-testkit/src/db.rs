//! Finding the live test databases.
//!
//! The adapters' integration tests run against real servers named by
//! `STORMPOOL_PG_URL` and `STORMPOOL_MYSQL_URL` (`.ci/run` sets both). When a
//! variable is unset, a test is skipped with a line saying so; under
//! `CI=true` it fails instead, so a CI run never passes by testing nothing.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The variable naming the PostgreSQL test database.
pub const PG_URL_VAR: &str = "STORMPOOL_PG_URL";
/// The variable naming the MySQL/MariaDB test database.
pub const MYSQL_URL_VAR: &str = "STORMPOOL_MYSQL_URL";

/// The PostgreSQL test database's URL, or `None` (after printing
/// `skipped: STORMPOOL_PG_URL not set`) when the tests should be skipped.
///
/// # Panics
///
/// Under `CI=true`, when the variable is unset or the server does not accept
/// TCP connections.
pub fn pg_url() -> Option<String> {
    db_url(PG_URL_VAR, 5432)
}

/// The MySQL/MariaDB test database's URL, or `None` (after printing
/// `skipped: STORMPOOL_MYSQL_URL not set`) when the tests should be skipped.
///
/// # Panics
///
/// Under `CI=true`, when the variable is unset or the server does not accept
/// TCP connections.
pub fn mysql_url() -> Option<String> {
    db_url(MYSQL_URL_VAR, 3306)
}

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn db_url(var: &str, default_port: u16) -> Option<String> {
    let url = std::env::var(var).ok().filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        if in_ci() {
            panic!("{var} must be set when CI=true: .ci/run starts the server and sets it");
        }
        eprintln!("skipped: {var} not set");
        return None;
    };
    let Some(addr) = server_addr(&url, default_port) else {
        panic!("{var} does not name a host and port (host:port after `://`)");
    };
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        if in_ci() {
            panic!("{var} points at {addr}, which does not accept connections (CI=true)");
        }
        eprintln!("skipped: {var} points at {addr}, which does not accept connections");
        return None;
    }
    Some(url)
}

/// The socket address in a `scheme://[user[:password]@]host[:port][/db][?..]`
/// URL. Never returns or prints the user information.
pub fn server_addr(url: &str, default_port: u16) -> Option<SocketAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            (host, port.parse().ok()?)
        }
        _ => (host_port, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port).to_socket_addrs().ok()?.next()
}

/// `url` with its host and port replaced by `addr` (to go through a
/// [`FaultProxy`](crate::FaultProxy)), keeping user, password, database and
/// parameters.
pub fn with_addr(url: &str, addr: SocketAddr) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority.rsplit_once('@').map(|(user, _)| user);
    match user {
        Some(user) => format!("{scheme}://{user}@{addr}{tail}"),
        None => format!("{scheme}://{addr}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rewrites_addresses() {
        let addr = server_addr("postgres://u:p@127.0.0.1:5433/db?x=1", 5432).unwrap();
        assert_eq!(addr, "127.0.0.1:5433".parse().unwrap());
        let addr = server_addr("mysql://root@127.0.0.1/test", 3306).unwrap();
        assert_eq!(addr, "127.0.0.1:3306".parse().unwrap());
        let moved = with_addr(
            "postgres://u:p@127.0.0.1:5432/db?x=1",
            "127.0.0.1:9".parse().unwrap(),
        );
        assert_eq!(moved, "postgres://u:p@127.0.0.1:9/db?x=1");
        let moved = with_addr("mysql://127.0.0.1", "127.0.0.1:9".parse().unwrap());
        assert_eq!(moved, "mysql://127.0.0.1:9");
    }
}
