//! A PgBouncer of the tests' own, in transaction pooling mode, in front of
//! the local PostgreSQL.
//!
//! `STORMPOOL_PGBOUNCER_URL` says where it listens (`.ci/run` sets it to a
//! loopback port); [`shared`] starts it there on first use, with its own
//! configuration, auth file, pid file and log in a temporary directory,
//! and stops it when the last test of the binary holding it lets go, so
//! it never outlives the tests. A run killed half-way leaves its pid file
//! behind, and the next start stops that instance first.
//!
//! The pooler forwards to the server named by `STORMPOOL_PG_URL`, with
//! `pool_mode = transaction` and `default_pool_size = 4`: a client session
//! is served by whichever server session is free at each transaction, as
//! in production setups of many replicas in front of one database.
//!
//! Every function blocks for at most a few seconds (starting, stopping).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::db::{in_ci, server_addr, PG_URL_VAR};
use crate::server::{run, Restart};

/// The variable naming where the tests' PgBouncer listens.
pub const PGBOUNCER_URL_VAR: &str = "STORMPOOL_PGBOUNCER_URL";

/// Server sessions per database and user: small, so that client sessions
/// share them the way a busy production pooler makes them.
pub const POOL_SIZE: usize = 4;

/// The pooler's URL, or `None` (after printing why) when the tests through
/// it should be skipped: the variable is unset, the PostgreSQL test
/// database is not there, or no `pgbouncer` is installed.
///
/// # Panics
///
/// Under `CI=true`, in each of those cases.
pub fn url() -> Option<String> {
    let url = std::env::var(PGBOUNCER_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        return skip(&format!(
            "{PGBOUNCER_URL_VAR} not set (.ci/run sets it and installs pgbouncer)"
        ));
    };
    crate::db::pg_url()?;
    if binary().is_none() {
        return skip("no pgbouncer installed (apt-get install pgbouncer)");
    }
    Some(url)
}

fn skip(why: &str) -> Option<String> {
    if in_ci() {
        panic!("CI=true, and the PgBouncer tests cannot run: {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// Where the `pgbouncer` program is: on `PATH` or in `/usr/sbin`, where
/// Debian's package puts it.
fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| candidate.is_file())
}

/// The instance the tests of this binary share, started on first use;
/// `None` when [`url`] says to skip. It stops when the last `Arc` drops.
///
/// # Panics
///
/// When it cannot be started (under `CI=true` also whenever [`url`] panics).
pub fn shared() -> Option<Arc<PgBouncer>> {
    static SHARED: Mutex<Weak<PgBouncer>> = Mutex::new(Weak::new());
    let url = url()?;
    let backend = std::env::var(PG_URL_VAR).ok()?;
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(running) = slot.upgrade() {
        return Some(running);
    }
    let started = PgBouncer::start(&url, &backend)
        .unwrap_or_else(|e| panic!("could not start the tests' pgbouncer: {e}"));
    let started = Arc::new(started);
    *slot = Arc::downgrade(&started);
    Some(started)
}

/// A running PgBouncer of the tests' own; stopped when dropped.
#[derive(Debug)]
pub struct PgBouncer {
    url: String,
    addr: SocketAddr,
    dir: PathBuf,
    config: PathBuf,
    process: Mutex<Option<Child>>,
}

impl PgBouncer {
    /// Starts a PgBouncer listening where `url` says, forwarding to the
    /// server of `backend` (both `postgres://` URLs), and waits until it
    /// accepts connections.
    pub fn start(url: &str, backend: &str) -> io::Result<PgBouncer> {
        let addr = server_addr(url, 6432)
            .ok_or_else(|| io::Error::other(format!("{PGBOUNCER_URL_VAR}: no host and port")))?;
        let server = server_addr(backend, 5432)
            .ok_or_else(|| io::Error::other(format!("{PG_URL_VAR}: no host and port")))?;
        let user = url_user(url).unwrap_or("postgres");
        let dir = std::env::temp_dir().join(format!("stormpool-pgbouncer-{}", addr.port()));
        std::fs::create_dir_all(&dir)?;
        stop_stale(&dir);
        let config = dir.join("pgbouncer.ini");
        std::fs::write(&config, config_text(&dir, addr, server))?;
        std::fs::write(dir.join("userlist.txt"), format!("\"{user}\" \"\"\n"))?;
        // Run as root, PgBouncer switches to `postgres`, which must be able
        // to write its pid file and log.
        if running_as_root() {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(&dir))?;
        }
        let bouncer = PgBouncer {
            url: url.to_owned(),
            addr,
            dir,
            config,
            process: Mutex::new(None),
        };
        bouncer.launch()?;
        Ok(bouncer)
    }

    /// The URL clients connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding its configuration, pid file and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of the running process, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Child::id)
    }

    /// The last `lines` lines of its log, for a failing test's message.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether it accepts TCP connections now.
    pub fn is_ready(&self) -> bool {
        TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
    }

    /// Stops it (SIGTERM: an immediate shutdown that closes every client
    /// and server session) and waits until the process is gone.
    pub fn stop(&self) -> io::Result<()> {
        let Some(mut child) = self.lock().take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= until {
                child.kill()?;
                child.wait()?;
                return Ok(());
            }
            sleep(Duration::from_millis(5));
        }
    }

    /// Stops and starts it again, measuring when it was down and when it
    /// accepted connections again.
    pub fn restart(&self) -> io::Result<Restart> {
        let requested = Instant::now();
        self.stop()?;
        let down = Instant::now();
        self.launch()?;
        Ok(Restart {
            requested,
            down,
            up: Instant::now(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the program in the foreground (a child of this process, so it
    /// can be waited for) and polls until it accepts connections.
    fn launch(&self) -> io::Result<()> {
        let program = binary().ok_or_else(|| io::Error::other("no pgbouncer installed"))?;
        let mut slot = self.lock();
        if slot.is_some() {
            return Ok(());
        }
        let mut child = Command::new(program)
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                drop(slot);
                return Err(io::Error::other(format!(
                    "pgbouncer exited ({status}): {}",
                    self.log_tail(5)
                )));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                *slot = Some(child);
                return Ok(());
            }
            if Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                drop(slot);
                return Err(io::Error::other(format!(
                    "pgbouncer not accepting connections on {} after 10 s: {}",
                    self.addr,
                    self.log_tail(5)
                )));
            }
            sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("could not stop the tests' pgbouncer: {e}");
        }
    }
}

fn config_text(dir: &Path, listen: SocketAddr, server: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        "[databases]\n\
         * = host={host} port={port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = {listen_host}\n\
         listen_port = {listen_port}\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {dir}/userlist.txt\n\
         pool_mode = transaction\n\
         default_pool_size = {POOL_SIZE}\n\
         max_client_conn = 2000\n\
         ignore_startup_parameters = extra_float_digits\n\
         pidfile = {dir}/pgbouncer.pid\n\
         logfile = {dir}/pgbouncer.log\n\
         {user}",
        host = server.ip(),
        port = server.port(),
        listen_host = listen.ip(),
        listen_port = listen.port(),
        // PgBouncer refuses to run as root: it switches to `postgres`.
        user = if running_as_root() {
            "user = postgres\n"
        } else {
            ""
        },
    )
}

/// The user of a `scheme://user[:password]@host` URL.
fn url_user(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let user_info = authority.rsplit_once('@')?.0;
    Some(user_info.split(':').next().unwrap_or(user_info)).filter(|u| !u.is_empty())
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Stops an instance an earlier, killed run left behind in `dir`.
fn stop_stale(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("pgbouncer.pid")) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains("pgbouncer") {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < until {
            sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_transaction_mode_config() {
        let text = config_text(
            Path::new("/tmp/x"),
            "127.0.0.1:6439".parse().unwrap(),
            "127.0.0.1:5432".parse().unwrap(),
        );
        assert!(text.contains("* = host=127.0.0.1 port=5432\n"));
        assert!(text.contains("listen_port = 6439\n"));
        assert!(text.contains("pool_mode = transaction\n"));
        assert!(text.contains("pidfile = /tmp/x/pgbouncer.pid\n"));
        assert_eq!(
            url_user("postgres://root@127.0.0.1:6439/test"),
            Some("root")
        );
        assert_eq!(url_user("postgres://app:pw@h/db"), Some("app"));
        assert_eq!(url_user("postgres://h/db"), None);
    }
}
