//! The connection options from the environment: `DATABASE_URL`, or the
//! variables the `mysql` client reads.

use std::ffi::OsString;

use mysql_async::{Opts, OptsBuilder};

use crate::error::Error;
use crate::manager::MySqlManager;

impl MySqlManager {
    /// A manager connecting as the environment says: `DATABASE_URL`, or
    /// the `mysql` client's variables (see [`opts_from_env`]).
    ///
    /// ```no_run
    /// use stormpool_mysql::{MySqlManager, Pool};
    ///
    /// fn pool() -> Result<Pool, Box<dyn std::error::Error>> {
    ///     Ok(Pool::builder(MySqlManager::from_env()?).max_size(16).build()?)
    /// }
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        Ok(MySqlManager::new(opts_from_env()?))
    }
}

/// The connection options the environment describes: `DATABASE_URL` (a
/// `mysql://` URL, the convention of sqlx, diesel and most platforms) when
/// it is set, else the variables the `mysql` command-line client reads.
///
/// | variable | sets | default |
/// |---|---|---|
/// | `DATABASE_URL` | everything it names (`mysql://user:password@host:port/database?parameters`) | |
/// | `MYSQL_PWD` | the password, when `DATABASE_URL` has none (it can come from a secret apart from the URL) | none |
/// | `MYSQL_HOST` | the server's host name or address, without `DATABASE_URL` | `127.0.0.1` |
/// | `MYSQL_TCP_PORT` | the server's port, without `DATABASE_URL` | 3306 |
/// | `USER`, `LOGNAME`, `USERNAME` | the user, without `DATABASE_URL` (the login name, as the client takes it) | |
///
/// Without `DATABASE_URL` no database is selected: name it in your
/// statements or with `USE` in an
/// [`on_connect`](MySqlManager::on_connect) hook. An empty variable counts
/// as unset. The error names the variable at fault, never its value.
pub fn opts_from_env() -> Result<Opts, Error> {
    opts_from(|name| std::env::var_os(name))
}

/// The variable's value; `None` when unset or empty.
fn get(
    lookup: &impl Fn(&str) -> Option<OsString>,
    variable: &str,
) -> Result<Option<String>, Error> {
    match lookup(variable) {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => value
            .into_string()
            .map(Some)
            .map_err(|_| Error::config(format!("{variable} is not valid Unicode"))),
    }
}

fn opts_from(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Opts, Error> {
    let password = get(&lookup, "MYSQL_PWD")?;
    if let Some(url) = get(&lookup, "DATABASE_URL")? {
        let opts = Opts::from_url(&url).map_err(|e| {
            let problem = Error::url(e).to_string();
            let problem = problem
                .strip_prefix("invalid MySQL connection configuration: ")
                .unwrap_or(&problem);
            Error::config(format!("DATABASE_URL: {problem}"))
        })?;
        return Ok(match password {
            Some(password) if opts.pass().is_none() => {
                OptsBuilder::from_opts(opts).pass(Some(password)).into()
            }
            _ => opts,
        });
    }
    let mut builder = OptsBuilder::default();
    if let Some(host) = get(&lookup, "MYSQL_HOST")? {
        builder = builder.ip_or_hostname(host);
    }
    if let Some(port) = get(&lookup, "MYSQL_TCP_PORT")? {
        let port = port
            .trim()
            .parse()
            .map_err(|_| Error::config("MYSQL_TCP_PORT must be a port number".to_owned()))?;
        builder = builder.tcp_port(port);
    }
    let mut user = None;
    for variable in ["USER", "LOGNAME", "USERNAME"] {
        user = get(&lookup, variable)?;
        if user.is_some() {
            break;
        }
    }
    let user = user.ok_or_else(|| {
        Error::config(
            "DATABASE_URL is not set, and no login name (USER, LOGNAME, USERNAME) \
             says which user to connect as"
                .to_owned(),
        )
    })?;
    Ok(builder.user(Some(user)).pass(password).into())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Opts, Error> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        opts_from(move |name| vars.get(name).cloned())
    }

    #[test]
    fn database_url_says_it_all() {
        let opts = from(&[
            ("DATABASE_URL", "mysql://app@db:3307/orders"),
            ("MYSQL_HOST", "elsewhere"),
            ("USER", "other"),
        ])
        .unwrap();
        assert_eq!(opts.ip_or_hostname(), "db");
        assert_eq!(opts.tcp_port(), 3307);
        assert_eq!(opts.user(), Some("app"));
        assert_eq!(opts.db_name(), Some("orders"));
        assert_eq!(opts.pass(), None);
    }

    #[test]
    fn mysql_pwd_fills_in_a_missing_password_only() {
        let opts = from(&[
            ("DATABASE_URL", "mysql://app@db/orders"),
            ("MYSQL_PWD", "from-a-secret"),
        ])
        .unwrap();
        assert_eq!(opts.pass(), Some("from-a-secret"));
        assert_eq!(opts.db_name(), Some("orders"));
        let opts = from(&[
            ("DATABASE_URL", "mysql://app:in-url@db/orders"),
            ("MYSQL_PWD", "from-a-secret"),
        ])
        .unwrap();
        assert_eq!(opts.pass(), Some("in-url"));
    }

    #[test]
    fn the_client_variables_without_a_url() {
        let opts = from(&[
            ("MYSQL_HOST", "db"),
            ("MYSQL_TCP_PORT", "3307"),
            ("MYSQL_PWD", "pw"),
            ("LOGNAME", "alice"),
        ])
        .unwrap();
        assert_eq!(opts.ip_or_hostname(), "db");
        assert_eq!(opts.tcp_port(), 3307);
        assert_eq!(opts.user(), Some("alice"));
        assert_eq!(opts.pass(), Some("pw"));
        assert_eq!(opts.db_name(), None);

        let opts = from(&[("USER", "bob"), ("DATABASE_URL", "")]).unwrap();
        assert_eq!(opts.ip_or_hostname(), "127.0.0.1");
        assert_eq!(opts.tcp_port(), 3306);
    }

    #[test]
    fn errors_name_the_variable_never_the_value() {
        let text = from(&[("MYSQL_TCP_PORT", "33o6"), ("USER", "u")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            text,
            "invalid MySQL connection configuration: MYSQL_TCP_PORT must be a port number"
        );
        let error =
            from(&[("DATABASE_URL", "mysql://app:hunter2@db/x?pool_min=lots")]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("invalid MySQL connection configuration: DATABASE_URL: "),
            "{text}"
        );
        assert!(
            !text.contains("hunter2") && !text.contains("lots"),
            "{text}"
        );
        assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
        let text = from(&[]).unwrap_err().to_string();
        assert!(text.contains("DATABASE_URL is not set"), "{text}");
    }
}
