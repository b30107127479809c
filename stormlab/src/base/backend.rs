//! Which database the pools run against, as the options name it: the
//! embedded simulation, or a live server at a URL.
//!
//! The simulation is the default. A live backend (`--pg-url`,
//! `--mysql-url`) runs the same scenarios against a real server, whose
//! statements keep it busy for the service time, with the database adapters
//! as pools. What each database does in a run is the `database` module's.

use super::error::LabError;
use super::kinds::{PoolKind, ScenarioKind};

/// The database the pools connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `stormpool::sim`, embedded: no server to set up. The default.
    Sim,
    /// A live PostgreSQL server (`--pg-url`); queries sleep on the server.
    Postgres(DbUrl),
    /// A live MySQL server (`--mysql-url`); queries sleep on the server.
    Mysql(DbUrl),
}

impl Backend {
    /// The backend chosen by the `--pg-url` / `--mysql-url` options.
    pub fn from_options(pg: Option<&str>, mysql: Option<&str>) -> Result<Backend, LabError> {
        match (pg, mysql) {
            (None, None) => Ok(Backend::Sim),
            (Some(_), Some(_)) => Err(LabError::Usage(
                "--pg-url and --mysql-url exclude each other: pick one database".into(),
            )),
            (Some(url), None) => DbUrl::parse(url, &["postgres", "postgresql"], 5432)
                .map(Backend::Postgres)
                .map_err(|e| LabError::Usage(format!("--pg-url: {e}"))),
            (None, Some(url)) => DbUrl::parse(url, &["mysql"], 3306)
                .map(Backend::Mysql)
                .map_err(|e| LabError::Usage(format!("--mysql-url: {e}"))),
        }
    }

    /// The backend's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sim => "simulated",
            Backend::Postgres(_) => "PostgreSQL",
            Backend::Mysql(_) => "MySQL",
        }
    }

    /// The pools `--pools all` runs on this backend, in report order.
    pub fn pools(&self) -> &'static [PoolKind] {
        match self {
            Backend::Sim => &[
                PoolKind::Stormpool,
                PoolKind::Deadpool,
                PoolKind::Bb8,
                PoolKind::Prefix,
            ],
            Backend::Postgres(_) => &[
                PoolKind::Stormpool,
                PoolKind::StormpoolNoPropagation,
                PoolKind::Deadpool,
                PoolKind::Bb8,
            ],
            Backend::Mysql(_) => &[
                PoolKind::Stormpool,
                PoolKind::StormpoolNoPropagation,
                PoolKind::MysqlAsync,
            ],
        }
    }

    /// Whether `pool` can run on this backend: on the simulation every pool
    /// but mysql_async's (the pre-fix model and the semaphore floor exist
    /// only there), on a live server its adapters and their peers.
    pub fn supports(&self, pool: PoolKind) -> bool {
        match self {
            Backend::Sim => pool != PoolKind::MysqlAsync,
            _ => self.pools().contains(&pool),
        }
    }

    /// Whether `scenario` can run on this backend: on the simulation every
    /// one, on a live server those that do not need the simulation.
    pub fn runs(&self, scenario: ScenarioKind) -> bool {
        *self == Backend::Sim || !scenario.simulated_only()
    }

    /// How `pool` is set up on this database, in one line for reports.
    pub fn describe(&self, pool: PoolKind) -> &'static str {
        let live = *self != Backend::Sim;
        match (pool, live) {
            (PoolKind::MysqlAsync, _) => {
                "mysql_async 0.37's own pool: at most `connections`, its defaults \
                 (a connection is reset when it comes back)"
            }
            (PoolKind::Stormpool, false) => {
                "stormpool: deadline, priority and key passed per request"
            }
            (PoolKind::Stormpool, true) => {
                "stormpool (adapter): deadline, priority and key passed per request; \
                 the deadline bounds the statement on the server; abandoned statements \
                 cancelled and drained"
            }
            (PoolKind::StormpoolNoPropagation, _) => {
                "stormpool as above, propagate_deadline off: the deadline bounds the \
                 wait only"
            }
            (PoolKind::Deadpool, false) => {
                "deadpool 0.12 (managed): per-call wait timeout = deadline"
            }
            (PoolKind::Deadpool, true) => {
                "deadpool-postgres 0.14: per-call wait timeout = deadline, \
                 RecyclingMethod::Fast (is_closed only, the default)"
            }
            (PoolKind::Bb8, false) => {
                "bb8 0.9: connection_timeout = deadline, test_on_check_out (probe) on"
            }
            (PoolKind::Bb8, true) => {
                "bb8-postgres 0.9: connection_timeout = deadline, test_on_check_out \
                 (empty query) on"
            }
            (PoolKind::Semaphore, _) => {
                "tokio semaphore in front of a stack of connections: the least a pool \
                 can be (no deadline, priority or fairness; waits until its client \
                 gives up)"
            }
            (PoolKind::Prefix, _) => {
                "pre-fix smartconnpool waitlist model: FIFO, hands off without a \
                 deadline check, expired requests still run their query"
            }
        }
    }
}

/// The parts of a database URL the lab needs before an adapter takes over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbUrl {
    /// The URL as given.
    pub url: String,
    /// The server's host name or address.
    pub host: String,
    /// The server's port (the database's default when the URL has none).
    pub port: u16,
}

impl DbUrl {
    /// Parses `scheme://[user[:password]@]host[:port][/database][?options]`.
    pub fn parse(url: &str, schemes: &[&str], default_port: u16) -> Result<DbUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("expected {}://user@host:port/database", schemes[0]))?;
        if !schemes.contains(&scheme) {
            return Err(format!(
                "unsupported scheme `{scheme}` (expected {})",
                schemes.join(" or ")
            ));
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_host_port(host_port, default_port)?;
        if host.is_empty() {
            return Err("the URL names no host".into());
        }
        Ok(DbUrl {
            url: url.to_string(),
            host,
            port,
        })
    }

    /// `host:port`, as a socket address string.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn split_host_port(host_port: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("unclosed `[` in an IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| format!("bad port `{p}`"))?,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_urls() {
        let url = DbUrl::parse(
            "postgres://me:pw@db.local:6543/app?sslmode=off",
            &["postgres"],
            5432,
        )
        .unwrap();
        assert_eq!((url.host.as_str(), url.port), ("db.local", 6543));
        let url = DbUrl::parse("postgres://db.local/app", &["postgres"], 5432).unwrap();
        assert_eq!(url.port, 5432);
        let url = DbUrl::parse("postgres://[::1]:5433/app", &["postgres"], 5432).unwrap();
        assert_eq!(url.address(), "[::1]:5433");
    }

    #[test]
    fn rejects_malformed_urls() {
        assert!(DbUrl::parse("db.local:5432", &["postgres"], 5432).is_err());
        assert!(DbUrl::parse("mysql://db.local", &["postgres"], 5432).is_err());
        assert!(DbUrl::parse("postgres://db.local:x/app", &["postgres"], 5432).is_err());
        assert!(DbUrl::parse("postgres:///app", &["postgres"], 5432).is_err());
    }

    #[test]
    fn live_backends_run_the_adapters_and_their_peers() {
        let pg = Backend::from_options(Some("postgres://db/app"), None).unwrap();
        assert!(pg.supports(PoolKind::StormpoolNoPropagation));
        assert!(!pg.supports(PoolKind::Prefix));
        assert!(Backend::Sim.supports(PoolKind::StormpoolNoPropagation));
        assert!(!Backend::Sim
            .pools()
            .contains(&PoolKind::StormpoolNoPropagation));
        assert!(Backend::Sim.runs(ScenarioKind::WedgedNoCancel));
        assert!(!pg.runs(ScenarioKind::WedgedNoCancel));
        assert!(pg.runs(ScenarioKind::WedgedMaxHold));
    }

    #[test]
    fn both_urls_at_once_is_a_usage_error() {
        let err = Backend::from_options(Some("postgres://a"), Some("mysql://b")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
