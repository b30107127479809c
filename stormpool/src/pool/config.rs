//! The pool's configuration: plain data, validated by [`Builder::build`].

use std::time::Duration;

use crate::admission::{CodelConfig, DeadlineAware};
use crate::error::ConfigError;
use crate::manager::Manager;
use crate::pool::Pool;

#[cfg(feature = "serde")]
mod repr;
#[cfg(feature = "serde")]
mod units;

/// Everything a [`Pool`] can be configured with. Plain data: start from
/// [`Config::default`] and assign the fields to change, or use [`Builder`].
///
/// Every field documents its default and unit. Nothing waits forever by
/// default: acquires, connects, probes and the drain on close are all bounded.
///
/// # In a configuration file (feature `serde`)
///
/// With the `serde` feature, `Config` is `Serialize` and `Deserialize`, for
/// any self-describing format (TOML, JSON, YAML). The keys are the field
/// names; a missing key keeps its default, an unknown key is an error (a
/// typo never passes silently). Nothing is checked while reading: hand the
/// value to [`Builder::config`], and [`Builder::build`] validates it and
/// names the bad field.
///
/// | field's type | written as |
/// |---|---|
/// | duration | a string of whole numbers with units: `"500ms"`, `"5s"`, `"10min"`, `"1h30min"` (`h`, `min` or `m`, `s`, `ms`, `us`, `ns`); or an integer, read as milliseconds. A string without a unit is refused. Written back in the largest exact unit. |
/// | optional (`Option`) | the value, or `"none"` (or the format's null) |
/// | `codel` | a table `{ target = "5ms", interval = "100ms" }` (a missing key keeps its default), or `"none"` to turn admission control off |
/// | `deadline_aware` | `"off"`, `"learned_hold"`, or `{ min_remaining = "20ms" }` |
///
/// ```
/// use stormpool::sim::{SimConfig, SimManager};
/// use stormpool::{Config, Pool};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config: Config = toml::from_str(
///     r#"
///     name = "api"
///     max_size = 16
///     acquire_timeout = "1s"
///     idle_timeout = "none"
///     max_hold = "30s"
///     deadline_aware = { min_remaining = "20ms" }
///     codel = { target = "10ms" }
///     "#,
/// )?;
/// assert_eq!(config.acquire_timeout, std::time::Duration::from_secs(1));
/// assert_eq!(config.max_lifetime, Config::default().max_lifetime);
///
/// let pool = Pool::builder(SimManager::new(SimConfig::default()))
///     .config(config)
///     .build()?;
/// # drop(pool);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The pool's name, the `pool` label of its metrics and the `pool` field
    /// of its events. Default: `"default"`.
    pub name: String,
    /// The most connections the pool opens at once (idle, in use, being
    /// handed over or being opened). Default: 10. Must be at least 1.
    pub max_size: usize,
    /// The pool opens connections in the background until this many are
    /// idle or being opened. Default: 0. At most `max_size`.
    pub min_idle: usize,
    /// The most requests that may wait for a connection at once; one more is
    /// rejected at once with [`AcquireError::TooManyWaiters`](crate::AcquireError::TooManyWaiters).
    /// Default: 1024. Must be at least 1.
    pub max_waiters: usize,
    /// How long [`Pool::get`] waits for a connection when the request sets no
    /// deadline of its own. Default: 5 s.
    pub acquire_timeout: Duration,
    /// The longest a single connect may take before it counts as failed.
    /// Default: 5 s.
    pub connect_timeout: Duration,
    /// The longest the checkout probe ([`Manager::check`]) may take before
    /// the connection is considered dead. Default: 2 s.
    pub check_timeout: Duration,
    /// A connection used within this window is not probed again at checkout
    /// (HikariCP's bypass window). `Duration::ZERO` probes on every checkout.
    /// Default: 50 ms.
    ///
    /// A server that freezes (a stopped process, a partition) keeps its
    /// sockets open, so only a round trip finds it; a connection used within
    /// the window is handed out unprobed, and a request on a frozen one fails
    /// at its deadline (the adapters bound their statements on the client
    /// too). The short default probes every connection that sat idle for a
    /// while, which costs a round trip only when the pool is quiet: under
    /// load connections go from one request to the next well within it.
    pub check_interval: Duration,
    /// At most this many connects run at once. Default: 4. Must be at least 1.
    pub max_concurrent_connects: usize,
    /// The first delay after a failed connect; doubles with each consecutive
    /// failure up to `connect_backoff_max`, with full jitter. Default: 50 ms.
    pub connect_backoff_min: Duration,
    /// The cap of the connect backoff. Default: 2 s.
    pub connect_backoff_max: Duration,
    /// Idle connections beyond `min_idle` unused for this long are closed.
    /// `None` keeps them. Default: 10 min.
    pub idle_timeout: Option<Duration>,
    /// Connections are closed (when idle, or when returned) after this age,
    /// shortened by a random amount of up to an eighth so that connections
    /// opened together do not all expire together. `None`: no limit.
    /// Default: 30 min.
    pub max_lifetime: Option<Duration>,
    /// How long [`Pool::close`] waits for connections in use to come back.
    /// Default: 10 s.
    pub drain_timeout: Duration,
    /// How often the maintenance task runs while requests are waiting (it
    /// expires waiters, retries connects and drives the overload detector);
    /// when nobody waits it sleeps longer. Default: 10 ms.
    pub maintenance_tick: Duration,
    /// The overload detector's target and interval. `None` turns admission
    /// control off: plain FIFO within a class and no shedding.
    /// Default: `Some` with target 5 ms, interval 100 ms.
    pub codel: Option<CodelConfig>,
    /// The most waiters shed in one maintenance tick (more may be shed by
    /// hand-offs, a few at a time). Default: 256. Must be at least 1.
    pub max_shed_per_tick: usize,
    /// The most connections one fairness key may hold at once; its further
    /// requests wait in a list of their own (a valve) and do not count as
    /// queueing delay. `None`: no cap. Default: `None`.
    pub max_in_flight_per_key: Option<usize>,
    /// The most requests of one fairness key that may wait at once; one
    /// more is rejected with
    /// [`AcquireError::KeyQueueFull`](crate::AcquireError::KeyQueueFull).
    /// `None`: no cap. Default: `None`.
    pub max_queued_per_key: Option<usize>,
    /// Whether to skip waiters with too little time left. Default: off.
    pub deadline_aware: DeadlineAware,
    /// How long a connection returned with a statement still running
    /// ([`Manager::statement_in_flight`]) may take to drain (cancel, then a
    /// probe that answers once the server is idle on it) before it is closed
    /// and replaced. Default: 1 s.
    pub abandon_timeout: Duration,
    /// Whether a request's own deadline ([`AcquireOptions::deadline`](crate::AcquireOptions::deadline))
    /// is passed to the manager at checkout ([`Manager::on_checkout`]), to
    /// bound its statements on the server. A timeout given with
    /// `AcquireOptions::timeout`, or the pool's `acquire_timeout`, bounds
    /// the wait for a connection only and is never propagated. Default: true.
    pub propagate_deadline: bool,
    /// The lease watchdog: a connection held for longer is revoked (its
    /// statement cancelled on the server, its slot freed for a replacement,
    /// the connection closed when its holder lets go). `None`: no limit.
    /// Default: `None`.
    pub max_hold: Option<Duration>,
    /// The most revoked connections whose holders have not let go yet, or
    /// whose close is not done yet (orphans); beyond it, stuck leases are
    /// not revoked, only reported. Default: 4.
    ///
    /// It bounds what the server sees: the pool never holds more than
    /// `max_size + max_orphans` sessions on it (connections being closed
    /// count until [`Manager::close`](crate::Manager::close) has returned;
    /// an adapter's side sessions for cancels, if it opens any, come on
    /// top: stormpool-mysql's are bounded by its `max_concurrent_cancels`).
    /// The default trades capacity for that bound: when cancels do not reach
    /// the server (a hung network, a server that ignores them), revoking
    /// frees at most four slots, and the rest stay stuck until their
    /// statements end.
    pub max_orphans: usize,
    /// Connections held for longer are reported once, with the place they
    /// were acquired (a `tracing` warning with the `tracing` feature; always
    /// counted). `None`: no report. Default: `None`.
    pub leak_threshold: Option<Duration>,
    /// The seed of the pool's jitter (lifetimes, connect backoff), for
    /// reproducible tests. `None`: seeded differently for every pool.
    /// Default: `None`.
    pub jitter_seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "default".to_owned(),
            max_size: 10,
            min_idle: 0,
            max_waiters: 1024,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            check_timeout: Duration::from_secs(2),
            check_interval: Duration::from_millis(50),
            max_concurrent_connects: 4,
            connect_backoff_min: Duration::from_millis(50),
            connect_backoff_max: Duration::from_secs(2),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            drain_timeout: Duration::from_secs(10),
            maintenance_tick: Duration::from_millis(10),
            codel: Some(CodelConfig::default()),
            max_shed_per_tick: 256,
            max_in_flight_per_key: None,
            max_queued_per_key: None,
            deadline_aware: DeadlineAware::Off,
            abandon_timeout: Duration::from_secs(1),
            propagate_deadline: true,
            max_hold: None,
            max_orphans: 4,
            leak_threshold: None,
            jitter_seed: None,
        }
    }
}

/// The longest duration a field accepts: long enough to mean "never",
/// short enough that adding it to an instant cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Config {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("max_size", self.max_size),
            ("max_waiters", self.max_waiters),
            ("max_concurrent_connects", self.max_concurrent_connects),
            ("max_shed_per_tick", self.max_shed_per_tick),
            (
                "max_in_flight_per_key",
                self.max_in_flight_per_key.unwrap_or(1),
            ),
            ("max_queued_per_key", self.max_queued_per_key.unwrap_or(1)),
        ];
        for (field, value) in counts {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.min_idle > self.max_size {
            return Err(ConfigError::MinIdleAboveMaxSize {
                min_idle: self.min_idle,
                max_size: self.max_size,
            });
        }
        let durations = [
            ("acquire_timeout", Some(self.acquire_timeout)),
            ("connect_timeout", Some(self.connect_timeout)),
            ("check_timeout", Some(self.check_timeout)),
            ("connect_backoff_min", Some(self.connect_backoff_min)),
            ("connect_backoff_max", Some(self.connect_backoff_max)),
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("drain_timeout", Some(self.drain_timeout)),
            ("maintenance_tick", Some(self.maintenance_tick)),
            ("codel.target", self.codel.map(|c| c.target)),
            ("codel.interval", self.codel.map(|c| c.interval)),
            ("abandon_timeout", Some(self.abandon_timeout)),
            ("max_hold", self.max_hold),
            ("leak_threshold", self.leak_threshold),
            (
                "deadline_aware",
                match self.deadline_aware {
                    DeadlineAware::MinRemaining(d) => Some(d),
                    _ => None,
                },
            ),
        ];
        for (field, value) in durations {
            if value == Some(Duration::ZERO) {
                return Err(ConfigError::ZeroDuration { field });
            }
            if value.is_some_and(|d| d > MAX_DURATION) {
                return Err(ConfigError::OutOfRange {
                    field,
                    expected: "at most 100 years",
                });
            }
        }
        // The skip window may be "forever" (never probe), but must stay
        // addable to an instant.
        if self.check_interval > MAX_DURATION {
            return Err(ConfigError::OutOfRange {
                field: "check_interval",
                expected: "at most 100 years",
            });
        }
        if self.connect_backoff_max < self.connect_backoff_min {
            return Err(ConfigError::OutOfRange {
                field: "connect_backoff_max",
                expected: "at least `connect_backoff_min`",
            });
        }
        if self.max_waiters > u32::MAX as usize / 2 {
            return Err(ConfigError::OutOfRange {
                field: "max_waiters",
                expected: "below 2^31",
            });
        }
        Ok(())
    }
}

/// Builds a [`Pool`]: `Pool::builder(manager).max_size(16).build()?`.
///
/// Each setter documents its default; [`build`](Builder::build) validates the
/// whole configuration and names the first bad field.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<M> {
    manager: M,
    config: Config,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Builder {
            manager,
            config: Config::default(),
        }
    }

    /// Names the pool in its metrics and events. Defaults to `"default"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    setter!(
        /// The most connections open at once. Defaults to 10.
        max_size: usize
    );
    setter!(
        /// Connections kept idle or opening in the background. Defaults to 0.
        min_idle: usize
    );
    setter!(
        /// The most requests waiting at once. Defaults to 1024.
        max_waiters: usize
    );
    setter!(
        /// The wait of a request without its own deadline. Defaults to 5 s.
        acquire_timeout: Duration
    );
    setter!(
        /// The bound of one connect. Defaults to 5 s.
        connect_timeout: Duration
    );
    setter!(
        /// The bound of the checkout probe. Defaults to 2 s.
        check_timeout: Duration
    );
    setter!(
        /// The window after a use in which no probe is made. Defaults to 50 ms.
        check_interval: Duration
    );
    setter!(
        /// The most connects running at once. Defaults to 4.
        max_concurrent_connects: usize
    );
    setter!(
        /// The first backoff after a failed connect. Defaults to 50 ms.
        connect_backoff_min: Duration
    );
    setter!(
        /// The cap of the connect backoff. Defaults to 2 s.
        connect_backoff_max: Duration
    );
    setter!(
        /// Closes idle connections unused this long (`None`: never). Defaults to 10 min.
        idle_timeout: Option<Duration>
    );
    setter!(
        /// Closes connections after this age, jittered (`None`: never). Defaults to 30 min.
        max_lifetime: Option<Duration>
    );
    setter!(
        /// How long `close` waits for connections in use. Defaults to 10 s.
        drain_timeout: Duration
    );
    setter!(
        /// The maintenance period while requests wait. Defaults to 10 ms.
        maintenance_tick: Duration
    );
    setter!(
        /// The overload detector (`None`: no admission control). Defaults to
        /// target 5 ms, interval 100 ms.
        codel: Option<CodelConfig>
    );
    setter!(
        /// The most waiters shed per maintenance tick. Defaults to 256.
        max_shed_per_tick: usize
    );
    setter!(
        /// The most connections one fairness key may hold. Defaults to no cap.
        max_in_flight_per_key: Option<usize>
    );
    setter!(
        /// The most waiting requests of one fairness key. Defaults to no cap.
        max_queued_per_key: Option<usize>
    );
    setter!(
        /// Skip waiters with too little time left. Defaults to off.
        deadline_aware: DeadlineAware
    );
    setter!(
        /// The bound on draining an abandoned statement. Defaults to 1 s.
        abandon_timeout: Duration
    );
    setter!(
        /// Passes request deadlines to the manager. Defaults to true.
        propagate_deadline: bool
    );
    setter!(
        /// Revokes connections held longer (`None`: no limit). Defaults to `None`.
        max_hold: Option<Duration>
    );
    setter!(
        /// The most revoked connections not yet let go. Defaults to 4.
        max_orphans: usize
    );
    setter!(
        /// Reports connections held longer (`None`: never). Defaults to `None`.
        leak_threshold: Option<Duration>
    );
    setter!(
        /// Seeds the pool's jitter, for reproducible tests. Defaults to a
        /// different seed for every pool.
        jitter_seed: Option<u64>
    );

    /// Validates the configuration and creates the pool.
    ///
    /// No connection is opened here and no task is spawned until the first
    /// request (or the first tick towards `min_idle`, which starts with it),
    /// so a pool may be built outside a tokio runtime.
    pub fn build(self) -> Result<Pool<M>, ConfigError> {
        self.config.validate()?;
        Ok(Pool::from_parts(self.manager, self.config))
    }
}
