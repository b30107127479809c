//! The connection configuration from the environment: `DATABASE_URL`,
//! completed by libpq's `PG*` variables.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use tokio_postgres::config::{SslMode, TargetSessionAttrs};
use tokio_postgres::{Config, NoTls};

use crate::error::{Error, Operation};
use crate::manager::PgManager;

impl PgManager<NoTls> {
    /// A manager connecting without TLS as the environment says:
    /// `DATABASE_URL`, completed by libpq's `PG*` variables (see
    /// [`config_from_env`]).
    ///
    /// ```no_run
    /// use stormpool_postgres::{PgManager, Pool};
    ///
    /// fn pool() -> Result<Pool, Box<dyn std::error::Error>> {
    ///     Ok(Pool::builder(PgManager::from_env()?).max_size(16).build()?)
    /// }
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        Ok(PgManager::new(config_from_env()?))
    }
}

/// The connection configuration the environment describes, as a service
/// deployed next to `psql` expects it: `DATABASE_URL` (a `postgres://` URL
/// or a `key=value` string, the convention of sqlx, diesel and most
/// platforms) when it is set, and libpq's variables for what it leaves out
/// (all of it when it is not set), as libpq and sqlx do.
///
/// | variable | sets | when `DATABASE_URL` |
/// |---|---|---|
/// | `PGHOST` | hosts, comma-separated; a path starting with `/` is a Unix socket's directory. Default `localhost` | names no host |
/// | `PGHOSTADDR` | numeric addresses, comma-separated | names no host |
/// | `PGPORT` | ports, comma-separated. Default 5432 | names no port |
/// | `PGUSER` | the user. Default: the login name (`USER`, `LOGNAME` or `USERNAME`) | names no user |
/// | `PGPASSWORD` | the password | has none |
/// | `PGDATABASE` | the database. Default: the server's, the user's name | names none |
/// | `PGAPPNAME` | `application_name` | sets none |
/// | `PGOPTIONS` | command-line options sent to the server (`-c search_path=app`) | sets none |
/// | `PGCONNECT_TIMEOUT` | the driver's connect timeout, in whole seconds (0: none; the pool's `connect_timeout` bounds a connect anyway) | sets none |
/// | `PGSSLMODE` | `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full` | has no `sslmode` |
/// | `PGTARGETSESSIONATTRS` | `any`, `read-write`, `read-only` | has no `target_session_attrs` |
///
/// An empty variable counts as unset. Certificates are checked by the TLS
/// connector given to [`PgManager::with_tls`] (postgres-native-tls and
/// tokio-postgres-rustls check the chain and the host name), so
/// `verify-ca` and `verify-full` ask for TLS as `require` does, and
/// `allow` is taken as `prefer`. libpq's other variables (`PGPASSFILE`,
/// `PGSERVICE`, the `PGSSL*` files) are not read.
///
/// The error names the variable at fault, never its value.
///
/// ```no_run
/// # fn tls() -> tokio_postgres::NoTls { tokio_postgres::NoTls }
/// use stormpool_postgres::{config_from_env, PgManager, Pool};
///
/// fn pool() -> Result<Pool, Box<dyn std::error::Error>> {
///     // With TLS: `tls()` is your connector (postgres-native-tls, rustls).
///     let manager = PgManager::with_tls(config_from_env()?, tls());
///     Ok(Pool::builder(manager).build()?)
/// }
/// ```
pub fn config_from_env() -> Result<Config, Error> {
    config_from(|name| std::env::var_os(name))
}

/// What went wrong with one variable: its name and what it should hold.
#[derive(Debug)]
struct VariableError {
    variable: &'static str,
    problem: &'static str,
}

impl fmt::Display for VariableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.variable, self.problem)
    }
}

impl std::error::Error for VariableError {}

fn invalid(variable: &'static str, problem: &'static str) -> Error {
    Error::io(Operation::Config)(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        VariableError { variable, problem },
    ))
}

/// `DATABASE_URL`'s own parse error, kept as the source but out of the
/// message (the driver's text may quote the string, and with it a password).
#[derive(Debug)]
struct UrlError(tokio_postgres::Error);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "DATABASE_URL is not a connection string \
             (postgres://user:password@host:port/database, or key=value pairs)",
        )
    }
}

impl std::error::Error for UrlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The environment as a lookup, for the tests to stand in for.
struct Environment<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<OsString>> Environment<F> {
    /// The variable's value; `None` when unset or empty.
    fn get(&self, variable: &'static str) -> Result<Option<String>, Error> {
        match (self.lookup)(variable) {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) => value
                .into_string()
                .map(Some)
                .map_err(|_| invalid(variable, "is not valid Unicode")),
        }
    }
}

fn config_from(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Config, Error> {
    let env = Environment { lookup };
    let url = env.get("DATABASE_URL")?;
    let mut config = match &url {
        Some(url) => url.parse::<Config>().map_err(|e| {
            Error::io(Operation::Config)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                UrlError(e),
            ))
        })?,
        None => Config::new(),
    };
    let url_sets = |option: &str| url.as_deref().is_some_and(|url| names_option(url, option));

    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        let hosts = env.get("PGHOST")?;
        for host in hosts.iter().flat_map(|hosts| hosts.split(',')) {
            config.host(host.trim());
        }
        if let Some(addrs) = env.get("PGHOSTADDR")? {
            for addr in addrs.split(',') {
                let addr: IpAddr = addr.trim().parse().map_err(|_| {
                    invalid("PGHOSTADDR", "must hold IP addresses, separated by commas")
                })?;
                config.hostaddr(addr);
            }
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            config.host("localhost");
        }
    }
    if config.get_ports().is_empty() {
        if let Some(ports) = env.get("PGPORT")? {
            for port in ports.split(',') {
                let port = port.trim().parse().map_err(|_| {
                    invalid("PGPORT", "must hold port numbers, separated by commas")
                })?;
                config.port(port);
            }
        }
    }
    if config.get_user().is_none() {
        let user = match env.get("PGUSER")? {
            Some(user) => user,
            None => login_name(&env)?.ok_or_else(|| {
                invalid(
                    "PGUSER",
                    "is not set, and neither is a login name (USER, LOGNAME, USERNAME): \
                     name the user there or in DATABASE_URL",
                )
            })?,
        };
        config.user(user);
    }
    if config.get_password().is_none() {
        if let Some(password) = env.get("PGPASSWORD")? {
            config.password(password);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(dbname) = env.get("PGDATABASE")? {
            config.dbname(dbname);
        }
    }
    if config.get_application_name().is_none() {
        if let Some(name) = env.get("PGAPPNAME")? {
            config.application_name(name);
        }
    }
    if config.get_options().is_none() {
        if let Some(options) = env.get("PGOPTIONS")? {
            config.options(options);
        }
    }
    if config.get_connect_timeout().is_none() {
        if let Some(seconds) = env.get("PGCONNECT_TIMEOUT")? {
            let seconds: i64 = seconds
                .trim()
                .parse()
                .map_err(|_| invalid("PGCONNECT_TIMEOUT", "must be a whole number of seconds"))?;
            // As libpq: zero or less waits without a limit.
            if seconds > 0 {
                config.connect_timeout(Duration::from_secs(seconds.unsigned_abs()));
            }
        }
    }
    if !url_sets("sslmode") {
        if let Some(mode) = env.get("PGSSLMODE")? {
            config.ssl_mode(match mode.trim() {
                "disable" => SslMode::Disable,
                "allow" | "prefer" => SslMode::Prefer,
                "require" | "verify-ca" | "verify-full" => SslMode::Require,
                _ => {
                    return Err(invalid(
                        "PGSSLMODE",
                        "must be disable, allow, prefer, require, verify-ca or verify-full",
                    ))
                }
            });
        }
    }
    if !url_sets("target_session_attrs") {
        if let Some(attrs) = env.get("PGTARGETSESSIONATTRS")? {
            config.target_session_attrs(match attrs.trim() {
                "any" => TargetSessionAttrs::Any,
                "read-write" => TargetSessionAttrs::ReadWrite,
                "read-only" => TargetSessionAttrs::ReadOnly,
                _ => {
                    return Err(invalid(
                        "PGTARGETSESSIONATTRS",
                        "must be any, read-write or read-only",
                    ))
                }
            });
        }
    }
    Ok(config)
}

/// The login name, libpq's default user.
fn login_name<F: Fn(&str) -> Option<OsString>>(
    env: &Environment<F>,
) -> Result<Option<String>, Error> {
    for variable in ["USER", "LOGNAME", "USERNAME"] {
        if let Some(name) = env.get(variable)? {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Whether a URL's query string, or a `key=value` string, names `option`.
fn names_option(url: &str, option: &str) -> bool {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if is_url {
        url.split_once('?').is_some_and(|(_, query)| {
            query
                .split('&')
                .any(|pair| pair.split('=').next() == Some(option))
        })
    } else {
        url.split_whitespace()
            .any(|pair| pair.split('=').next().map(str::trim) == Some(option))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::error::Error as _;

    use tokio_postgres::config::Host;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Config, Error> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        config_from(move |name| vars.get(name).cloned())
    }

    fn hosts(config: &Config) -> Vec<String> {
        config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect()
    }

    #[test]
    fn libpq_variables_alone() {
        let config = from(&[
            ("PGHOST", "db1, db2"),
            ("PGPORT", "5433,5434"),
            ("PGUSER", "app"),
            ("PGPASSWORD", "secret"),
            ("PGDATABASE", "orders"),
            ("PGAPPNAME", "billing"),
            ("PGOPTIONS", "-c search_path=app"),
            ("PGCONNECT_TIMEOUT", "3"),
            ("PGSSLMODE", "disable"),
            ("PGTARGETSESSIONATTRS", "read-write"),
        ])
        .unwrap();
        assert_eq!(hosts(&config), ["db1", "db2"]);
        assert_eq!(config.get_ports(), [5433, 5434]);
        assert_eq!(config.get_user(), Some("app"));
        assert_eq!(config.get_password(), Some(&b"secret"[..]));
        assert_eq!(config.get_dbname(), Some("orders"));
        assert_eq!(config.get_application_name(), Some("billing"));
        assert_eq!(config.get_options(), Some("-c search_path=app"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(
            config.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
    }

    #[test]
    fn defaults_localhost_and_the_login_name() {
        let config = from(&[("USER", "alice")]).unwrap();
        assert_eq!(hosts(&config), ["localhost"]);
        assert!(config.get_ports().is_empty(), "the driver's 5432");
        assert_eq!(config.get_user(), Some("alice"));
        assert_eq!(config.get_dbname(), None);
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer);

        let config = from(&[
            ("PGHOSTADDR", "127.0.0.1"),
            ("LOGNAME", "bob"),
            ("PGHOST", ""),
        ]);
        let config = config.unwrap();
        assert!(config.get_hosts().is_empty());
        assert_eq!(
            config.get_hostaddrs(),
            ["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(config.get_user(), Some("bob"));
    }

    #[cfg(unix)]
    #[test]
    fn a_path_is_a_unix_socket() {
        let config = from(&[("PGHOST", "/var/run/postgresql"), ("PGUSER", "app")]).unwrap();
        assert!(matches!(config.get_hosts(), [Host::Unix(_)]));
    }

    #[test]
    fn the_url_wins_and_the_variables_fill_in() {
        let config = from(&[
            (
                "DATABASE_URL",
                "postgres://app@db:6432/orders?sslmode=disable",
            ),
            ("PGHOST", "elsewhere"),
            ("PGPORT", "1"),
            ("PGUSER", "other"),
            ("PGDATABASE", "other"),
            ("PGSSLMODE", "require"),
            ("PGPASSWORD", "from-a-secret"),
            ("PGAPPNAME", "billing"),
        ])
        .unwrap();
        assert_eq!(hosts(&config), ["db"]);
        assert_eq!(config.get_ports(), [6432]);
        assert_eq!(config.get_user(), Some("app"));
        assert_eq!(config.get_dbname(), Some("orders"));
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(config.get_password(), Some(&b"from-a-secret"[..]));
        assert_eq!(config.get_application_name(), Some("billing"));

        let config = from(&[
            ("DATABASE_URL", "host=db user=app"),
            ("PGSSLMODE", "verify-full"),
            ("PGPORT", "6432"),
        ])
        .unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_ports(), [6432]);
    }

    #[test]
    fn errors_name_the_variable_never_the_value() {
        let cases: [&[(&str, &str)]; 6] = [
            &[("PGPORT", "54x32"), ("PGUSER", "u")],
            &[("PGHOSTADDR", "db.example"), ("PGUSER", "u")],
            &[("PGCONNECT_TIMEOUT", "soon"), ("PGUSER", "u")],
            &[("PGSSLMODE", "sometimes"), ("PGUSER", "u")],
            &[("PGTARGETSESSIONATTRS", "primary"), ("PGUSER", "u")],
            &[("DATABASE_URL", "postgres://app:hunter2@db:port/x")],
        ];
        let names = [
            "PGPORT",
            "PGHOSTADDR",
            "PGCONNECT_TIMEOUT",
            "PGSSLMODE",
            "PGTARGETSESSIONATTRS",
            "DATABASE_URL",
        ];
        for (vars, name) in cases.iter().zip(names) {
            let error = from(vars).unwrap_err();
            let text = error.to_string();
            assert_eq!(error.operation(), Operation::Config);
            assert!(text.contains(name), "{text}");
            let value = vars.iter().find(|(k, _)| *k == name).unwrap().1;
            assert!(!text.contains(value), "{text}");
            assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
        }
        let error = from(&[("DATABASE_URL", "postgres://app:hunter2@db:port/x")]).unwrap_err();
        assert!(
            error.source().is_some(),
            "the driver's error stays in the chain"
        );
    }

    #[test]
    fn no_user_anywhere_is_an_error() {
        let text = from(&[("PGHOST", "db")]).unwrap_err().to_string();
        assert!(text.contains("PGUSER"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn not_unicode_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0xff, 0xfe]);
        let error = config_from(move |name| (name == "PGUSER").then(|| bad.clone())).unwrap_err();
        assert!(
            error.to_string().contains("PGUSER is not valid Unicode"),
            "{error}"
        );
    }

    #[test]
    fn options_named_by_a_url_or_a_key_value_string() {
        assert!(names_option("postgres://h/db?sslmode=disable", "sslmode"));
        assert!(names_option(
            "postgresql://h/db?a=b&sslmode=require",
            "sslmode"
        ));
        assert!(!names_option("postgres://u:sslmode@h/db", "sslmode"));
        assert!(names_option("host=h sslmode=disable", "sslmode"));
        assert!(!names_option("host=h application_name=sslmode", "sslmode"));
    }
}
