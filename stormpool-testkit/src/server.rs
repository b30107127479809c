//! Stopping, restarting and freezing the local test servers, with drop guards
//! that always leave them running.
//!
//! These act on the machine's own PostgreSQL cluster (`pg_ctlcluster`) and
//! MariaDB server (`mysqladmin shutdown`, `start-stop-daemon`), so they need
//! the privileges of the account that runs those (root on the test machines).
//! Every function blocks: call it from `tokio::task::spawn_blocking` inside a
//! test that keeps a load running meanwhile.

use std::io;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A local database server the adapters' tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// The PostgreSQL cluster `<version>/main` on 127.0.0.1:5432.
    Postgres,
    /// The MariaDB server on 127.0.0.1:3306.
    MariaDb,
}

/// When a restart took the server down and when it accepted connections
/// again.
#[derive(Clone, Copy, Debug)]
pub struct Restart {
    /// When the restart was requested.
    pub requested: Instant,
    /// When the server had stopped.
    pub down: Instant,
    /// The first instant the server was seen accepting connections again
    /// (polled every 5 ms).
    pub up: Instant,
}

const MARIADBD: &str = "/usr/sbin/mariadbd";

pub(crate) fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The PostgreSQL major version of the local cluster (`ls /etc/postgresql`).
pub fn pg_version() -> io::Result<String> {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| io::Error::other("no cluster under /etc/postgresql"))
}

fn pg_ctlcluster(action: &str) -> io::Result<()> {
    let version = pg_version()?;
    let mut cmd = Command::new("pg_ctlcluster");
    cmd.args(["--skip-systemctl-redirect", &version, "main", action]);
    if action == "stop" {
        cmd.args(["--mode", "fast"]);
    }
    run(&mut cmd)
}

impl Server {
    /// Whether the server accepts connections now (`pg_isready`,
    /// `mysqladmin ping`).
    pub fn is_ready(self) -> bool {
        let mut cmd = match self {
            Server::Postgres => {
                let mut cmd = Command::new("pg_isready");
                cmd.args(["-q", "-h", "127.0.0.1", "-p", "5432", "-t", "1"]);
                cmd
            }
            Server::MariaDb => {
                let mut cmd = Command::new("mysqladmin");
                cmd.args([
                    "--connect-timeout=1",
                    "-h",
                    "127.0.0.1",
                    "-u",
                    "root",
                    "ping",
                ]);
                cmd
            }
        };
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        run(&mut cmd).is_ok()
    }

    /// Polls [`is_ready`](Server::is_ready) every 5 ms; the instant it
    /// first succeeded, or `None` after `timeout`.
    pub fn wait_ready(self, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        loop {
            if self.is_ready() {
                return Some(Instant::now());
            }
            if Instant::now() >= until {
                return None;
            }
            sleep(Duration::from_millis(5));
        }
    }

    /// Starts the server unless it runs, and waits (up to 30 s) until it
    /// accepts connections.
    pub fn ensure_running(self) -> io::Result<()> {
        if self.is_ready() {
            return Ok(());
        }
        self.start()?;
        self.wait_ready(Duration::from_secs(30))
            .map(|_| ())
            .ok_or_else(|| io::Error::other(format!("{self:?} did not come up in 30 s")))
    }

    /// Starts the server (returns before it is ready for MariaDB).
    pub fn start(self) -> io::Result<()> {
        // A frozen server cannot be started or stopped: thaw it first.
        if let Some(pid) = self.main_pid() {
            let _ = signal(pid, "CONT");
        }
        match self {
            Server::Postgres => {
                pg_ctlcluster("start").or_else(|e| if self.is_ready() { Ok(()) } else { Err(e) })
            }
            Server::MariaDb => run(Command::new("start-stop-daemon").args([
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                MARIADBD,
            ])),
        }
    }

    /// Stops the server and waits until its process is gone.
    pub fn stop(self) -> io::Result<()> {
        match self {
            Server::Postgres => pg_ctlcluster("stop"),
            Server::MariaDb => {
                run(Command::new("mysqladmin").args([
                    "-h",
                    "127.0.0.1",
                    "-u",
                    "root",
                    "shutdown",
                ]))?;
                let until = Instant::now() + Duration::from_secs(30);
                while self.main_pid().is_some() {
                    if Instant::now() >= until {
                        return Err(io::Error::other(
                            "mariadbd still running 30 s after shutdown",
                        ));
                    }
                    sleep(Duration::from_millis(10));
                }
                Ok(())
            }
        }
    }

    /// Stops and starts the server, and measures when it was down and when
    /// it accepted connections again (waits up to 30 s).
    pub fn restart(self) -> io::Result<Restart> {
        let requested = Instant::now();
        self.stop()?;
        let down = Instant::now();
        // `pg_ctlcluster start` returns a while after the server is ready
        // (it polls), so readiness is polled from here meanwhile and the
        // starter is left to finish on its own thread.
        let starter = std::thread::spawn(move || self.start());
        let up = self.wait_ready(Duration::from_secs(30));
        let Some(up) = up else {
            let started = starter
                .join()
                .map_err(|_| io::Error::other("start panicked"))?;
            started?;
            return Err(io::Error::other(format!(
                "{self:?} not ready 30 s after start"
            )));
        };
        Ok(Restart {
            requested,
            down,
            up,
        })
    }

    /// The pid of the server's main process (the postmaster, `mariadbd`).
    pub fn main_pid(self) -> Option<u32> {
        match self {
            Server::Postgres => {
                let version = pg_version().ok()?;
                let path = format!("/var/lib/postgresql/{version}/main/postmaster.pid");
                let text = std::fs::read_to_string(path).ok()?;
                text.lines().next()?.trim().parse().ok()
            }
            Server::MariaDb => {
                let out = Command::new("pidof").arg(MARIADBD).output().ok()?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let text = if text.trim().is_empty() {
                    let out = Command::new("pidof").arg("mariadbd").output().ok()?;
                    String::from_utf8_lossy(&out.stdout).into_owned()
                } else {
                    text
                };
                text.split_whitespace().next()?.parse().ok()
            }
        }
    }

    /// A guard that makes sure, when dropped (also by a failing test's
    /// unwinding), that the server is thawed, running and ready.
    #[must_use = "the guard restores the server when dropped"]
    pub fn guard(self) -> ServerGuard {
        ServerGuard { server: self }
    }
}

/// Restores a [`Server`] when dropped: see [`Server::guard`].
#[derive(Debug)]
pub struct ServerGuard {
    server: Server,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Err(e) = self.server.ensure_running() {
            eprintln!("could not restore {:?}: {e}", self.server);
        }
    }
}

fn signal(pid: u32, name: &str) -> io::Result<()> {
    run(Command::new("kill").args([&format!("-{name}"), &pid.to_string()]))
}

/// Freezes a process with SIGSTOP until the returned guard is dropped
/// (SIGCONT), as a hung server or a stalled backend would look.
pub fn freeze(pid: u32) -> io::Result<Frozen> {
    signal(pid, "STOP")?;
    Ok(Frozen { pid })
}

/// A process stopped by [`freeze`]; thawed when dropped.
#[derive(Debug)]
#[must_use = "the process is thawed when the guard is dropped"]
pub struct Frozen {
    pid: u32,
}

impl Frozen {
    /// The frozen process.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = signal(self.pid, "CONT") {
            eprintln!("could not thaw process {}: {e}", self.pid);
        }
    }
}

/// Runs SQL on the local MariaDB as root through the `mysql` client (for
/// test setup such as creating users); returns its tab-separated output.
pub fn mariadb_sql(sql: &str) -> io::Result<String> {
    let out = Command::new("mysql")
        .args(["-h", "127.0.0.1", "-u", "root", "-N", "-B", "-e", sql])
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "mysql failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The password of the MariaDB users the tests create
/// ([`ensure_mariadb_user`]).
pub const TEST_PASSWORD: &str = "stormpool-test-Pw-4711";

/// Creates (once) a MariaDB user `name` with [`TEST_PASSWORD`] and every
/// right on the test database: the tests tell their sessions apart by user.
///
/// # Panics
///
/// When the `mysql` client cannot create it.
pub fn ensure_mariadb_user(name: &str) {
    let sql = format!(
        "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{TEST_PASSWORD}'; \
         GRANT ALL ON test.* TO '{name}'@'%';"
    );
    mariadb_sql(&sql).expect("creating a test user");
}
