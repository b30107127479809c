//! Error scenarios shared by the database adapters' tests: bad session
//! settings, a failing `on_connect` hook and refused connects each fail with
//! the typed error the adapter promises, classified through an
//! [`ErrorHarness`].

use std::sync::Arc;
use std::time::Duration;

use stormpool::{AcquireError, AcquireOptions, Manager, Pool, Settings};

use crate::load::chain;
use crate::scenarios::{acquire_error, connect_error, Harness};

/// How the adapter classifies one of its errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    /// The operation that failed, as the adapter's `Operation` prints it
    /// (`Connect`, `Apply`, `OnConnect`, ...).
    pub operation: String,
    /// The server's code for the error (SQLSTATE on PostgreSQL, the error
    /// number on MariaDB), if the server sent one.
    pub code: Option<String>,
    /// Whether the adapter carries a driver error (false: refused before
    /// any I/O).
    pub driver: bool,
    /// Whether the adapter calls it a connection error.
    pub connection_error: bool,
    /// Whether the adapter calls it worth retrying.
    pub retryable: bool,
    /// Whether the client gave up on the statement (at its deadline plus
    /// the grace), the server not having answered.
    pub timeout: bool,
}

/// The adapter's manager's error.
pub type ErrorOf<H> = <<H as Harness>::M as Manager>::Error;

/// What the error scenarios need to know about one adapter, beyond
/// [`Harness`].
pub trait ErrorHarness: Harness {
    /// Classifies one of the manager's errors.
    fn classify(e: &ErrorOf<Self>) -> Classified;
}

/// A request asking for a setting whose name would inject SQL
/// (`injected`) fails with an `Apply` error before any I/O; one asking for
/// a parameter the server does not know (`unknown`) fails with an `Apply`
/// error carrying the server's `code`, not worth retrying.
pub async fn bad_settings_fail_with_apply<H: ErrorHarness>(
    url: &str,
    injected: &str,
    unknown: &str,
    code: &str,
) {
    let pool = Pool::builder(H::manager(url, "stormpool_settings_bad"))
        .max_size(4)
        .build()
        .expect("pool config");
    let apply_error = |result: Result<_, AcquireError<ErrorOf<H>>>| match result {
        Err(AcquireError::Apply(e)) => H::classify(&e),
        Err(e) => panic!("expected Apply, got {}", acquire_error(&e)),
        Ok(_) => panic!("expected Apply, got a connection"),
    };
    let injected = Settings::new([(injected, "1")]);
    let e = apply_error(
        pool.get_with(AcquireOptions::new().settings(injected))
            .await,
    );
    assert_eq!(e.operation, "Apply", "{e:?}");
    assert!(!e.driver, "rejected before any I/O: {e:?}");
    let unknown = Settings::new([(unknown, "1")]);
    let e = apply_error(pool.get_with(AcquireOptions::new().settings(unknown)).await);
    assert_eq!(e.code.as_deref(), Some(code), "{e:?}");
    assert!(!e.retryable, "{e:?}");
}

/// An `on_connect` hook that fails (with the server's `code`) fails the
/// connect: the acquire returns a `Connect` error whose cause is
/// classified `OnConnect`, and the connection is closed. Returns the
/// acquire's error, for the adapter's own error type to wrap.
pub async fn failing_hook<H: ErrorHarness>(manager: H::M, code: &str) -> AcquireError<ErrorOf<H>> {
    let pool = Pool::builder(manager)
        .max_size(1)
        .build()
        .expect("pool config");
    let e = match pool.get().await {
        Err(e) => e,
        Ok(_) => panic!("the hook fails, yet a connection was handed out"),
    };
    let AcquireError::Connect(cause) = &e else {
        panic!("not a connect error: {}", acquire_error(&e));
    };
    let cause = H::classify(cause);
    assert_eq!(cause.operation, "OnConnect", "{cause:?}");
    assert_eq!(cause.code.as_deref(), Some(code), "{cause:?}");
    assert_eq!(pool.status().open, 0, "the connection was closed");
    e
}

/// A refused connect's message (`shown`, printed) says where (`addr`) and
/// why.
pub fn assert_refused(shown: &str, addr: &str) {
    println!("measured: {shown}");
    assert!(
        shown.starts_with(&format!("could not connect to {addr}: ")),
        "{shown}"
    );
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
}

/// A manager pointed at a port nothing listens on fails its connect within
/// 2 s with a connection error worth retrying, whose message says where
/// and why. Returns the error.
pub async fn closed_port<H: ErrorHarness>(url: &str) -> Arc<ErrorOf<H>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let refused = crate::db::with_addr(url, ([127, 0, 0, 1], port).into());
    let (e, took) = connect_error(H::manager(&refused, "stormpool_refused")).await;
    println!(
        "measured: closed port refused after {took:?}: {}",
        chain(&*e)
    );
    assert_refused(&e.to_string(), &format!("127.0.0.1:{port}"));
    let classified = H::classify(&e);
    assert!(
        classified.connection_error && classified.retryable,
        "{classified:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    e
}

/// A connect the server refuses (a wrong password, an unknown role or
/// database) fails within 2 s with a `Connect` error carrying the server's
/// `code`, not worth retrying, whose message, sources and debug form never
/// show `secret` (the password the manager was given, if any). Returns the
/// error (printed) for the adapter's own checks of the server's message.
pub async fn refused_by_the_server<H: ErrorHarness>(
    manager: H::M,
    code: &str,
    secret: Option<&str>,
) -> Arc<ErrorOf<H>> {
    let (e, took) = connect_error(manager).await;
    let shown = chain(&*e);
    println!("measured: refused after {took:?}: {shown}");
    let classified = H::classify(&e);
    assert_eq!(classified.operation, "Connect", "{classified:?}");
    assert_eq!(classified.code.as_deref(), Some(code), "{e:?}");
    assert!(!classified.retryable, "{classified:?}");
    if let Some(secret) = secret {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
    }
    assert!(took < Duration::from_secs(2), "took {took:?}");
    e
}

/// `manager` connects: a pool of it hands out a connection (the control of
/// a refusal test: the refusal was about what the test changed).
pub async fn connects<M: Manager>(manager: M) {
    let pool = Pool::builder(manager).build().expect("pool config");
    if let Err(e) = pool.get().await {
        panic!("does not connect: {}", acquire_error(&e));
    }
}
