//! Helpers for managers that track the statements sent on their
//! connections, for [`Manager::statement_in_flight`](crate::Manager::statement_in_flight)
//! and [`Manager::on_checkout`](crate::Manager::on_checkout): the bound to
//! put on a request's statements, the grace the client gives the server
//! past a request's deadline, a bounded cache of prepared statements, and
//! the counters to report.
//!
//! It is also where the adapters' shared building blocks live: what a
//! session's bound is and when it must change ([`Bound`], [`SessionBound`]),
//! the bookkeeping around a tracked statement ([`SessionTracking`],
//! [`StatementFlight`]), and the parts of an adapter's error type
//! ([`Operation`], [`ErrorParts`], [`Failure`],
//! [`adapter_error_impls!`](crate::adapter_error_impls)).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::Instant;

mod errors;
mod tracking;

pub use errors::{
    acquire_is_connection_error, acquire_is_retryable, AdapterError, ErrorKind, ErrorParts,
    Failure, Operation,
};
pub use tracking::{SessionTracking, StatementFlight};

/// How long past a request's deadline a tracked statement waits for the
/// server before the client gives up on it, unless a manager is configured
/// otherwise: 25 ms.
///
/// # Why a grace, and why this one
///
/// The server-side bound ([`statement_bound`]) stops a statement at or
/// before its request's deadline, and the server's answer (a timeout error,
/// the connection still usable) then takes one trip to arrive. A server
/// that is frozen or cut off never sends it, so the client bounds the wait
/// too, a little later, to let a live server's own answer win the race:
/// giving up on the client costs a cancel and a drain (or a closed
/// connection), the server's answer costs nothing. 25 ms covers a round
/// trip within a data centre and a busy scheduler's delay, and keeps a
/// request's worst case within 50 ms of its deadline.
pub const DEFAULT_STATEMENT_GRACE: Duration = Duration::from_millis(25);

/// The bound to put on a request's statements when it has `remaining` time:
/// rounded *down* to one of four steps per octave (1, 1.25, 1.5 and 1.75
/// times a power of two), in whole milliseconds, at least 1 ms.
///
/// # Why steps
///
/// Setting the bound on the server (`SET statement_timeout`,
/// `max_statement_time`) costs a statement, so a manager sends it only when
/// it changes. Consecutive requests with similar budgets land on the same
/// step and send nothing; since the step is never above the time left, a
/// statement never runs past its request's deadline (give or take the trip
/// to the server). The price is a bound up to 20% shorter than the time left.
///
/// ```
/// use std::time::Duration;
/// use stormpool::statements::statement_bound;
///
/// let ms = |m| Duration::from_millis(m);
/// assert_eq!(statement_bound(ms(50)), ms(48));
/// assert_eq!(statement_bound(ms(47)), ms(40));
/// assert_eq!(statement_bound(Duration::ZERO), ms(1));
/// ```
pub fn statement_bound(remaining: Duration) -> Duration {
    let ms = remaining.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
    // Keep the leading bit and the two after it.
    let dropped = (63 - ms.leading_zeros()).saturating_sub(2);
    Duration::from_millis(ms >> dropped << dropped)
}

/// The longest bound a manager puts on a session, in milliseconds: the
/// largest PostgreSQL's `statement_timeout` and MariaDB's
/// `max_statement_time` both accept (`INT_MAX`).
const MAX_BOUND_MS: u64 = i32::MAX as u64;

/// What a session's statements are bounded by: the server-side bound a
/// manager propagates from a request's deadline
/// (`statement_timeout` in PostgreSQL, `max_statement_time` in MariaDB).
///
/// ```
/// use std::time::Duration;
/// use stormpool::clock::Instant;
/// use stormpool::statements::Bound;
///
/// let now = Instant::now();
/// let deadline = now + Duration::from_millis(50);
/// assert_eq!(Bound::until(Some(deadline), now), Bound::Millis(48));
/// assert_eq!(Bound::until(None, now), Bound::Default);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The session's default (or the value its settings gave).
    Default,
    /// This many milliseconds.
    Millis(u32),
}

impl Bound {
    /// The bound for a request holding the connection until `deadline`
    /// (none: the session's default), now.
    pub fn at(deadline: Option<Instant>) -> Bound {
        Bound::until(deadline, Instant::now())
    }

    /// The bound for a request holding the connection until `deadline`
    /// (none: the session's default), at `now`: the [`statement_bound`] of
    /// the time left, within the servers' range.
    pub fn until(deadline: Option<Instant>, now: Instant) -> Bound {
        deadline.map_or(Bound::Default, |deadline| {
            let remaining = deadline.saturating_duration_since(now);
            let bound = statement_bound(remaining.min(Duration::from_millis(MAX_BOUND_MS)));
            Bound::Millis(bound.as_millis() as u32)
        })
    }
}

/// What a manager knows of the [`Bound`] a session carries, so that it
/// sends a change only when the bound differs.
///
/// # Inside a transaction
///
/// PostgreSQL undoes a `SET` when its transaction rolls back, so a bound
/// set while the session may be inside a transaction is *tentative*:
/// trusted while the session may still be in that transaction, set again
/// by the first statement after it, and forgotten when a rollback is seen.
/// A rollback to a savepoint can still leave the session with a longer
/// bound than the manager believes (within one request the bound only
/// ever shrinks), never a shorter one. MariaDB's `SET` is not
/// transactional, so there a bound set is always known.
///
/// ```
/// use stormpool::statements::{Bound, SessionBound};
///
/// let mut session = SessionBound::default();
/// assert_eq!(session.change(Bound::Millis(48), false), Some(Bound::Millis(48)));
/// session.set(Bound::Millis(48), false);
/// assert_eq!(session.change(Bound::Millis(48), false), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionBound {
    /// The bound the manager last set (or a fresh session's default).
    Known(Bound),
    /// Set inside what may be a transaction: a rollback undoes it.
    Tentative(Bound),
    /// A `SET` failed or was cut short, a reset or settings changed it, or
    /// a rollback undid it: the next statement sets its bound again.
    Unknown,
    /// The server has no such variable (MySQL): never set.
    Unsupported,
}

impl Default for SessionBound {
    /// A fresh session: its default.
    fn default() -> Self {
        SessionBound::Known(Bound::Default)
    }
}

impl SessionBound {
    /// The bound to set before the next statement, if it must change;
    /// `in_transaction` when the session may be inside a transaction.
    pub fn change(self, wanted: Bound, in_transaction: bool) -> Option<Bound> {
        match self {
            SessionBound::Known(current) if current == wanted => None,
            SessionBound::Tentative(current) if current == wanted && in_transaction => None,
            SessionBound::Unsupported => None,
            _ => Some(wanted),
        }
    }

    /// A `SET` of `bound` went through; `undone_by_rollback` when the
    /// server undoes it with a rollback (PostgreSQL, inside a transaction).
    pub fn set(&mut self, bound: Bound, undone_by_rollback: bool) {
        *self = if undone_by_rollback {
            SessionBound::Tentative(bound)
        } else {
            SessionBound::Known(bound)
        };
    }

    /// Claims the change to `wanted` before sending it, for sessions whose
    /// statements run concurrently: `true` when the bound must change, and
    /// the session is then taken to carry `wanted` (tentatively when
    /// `in_transaction`); the caller sends the `SET`, and
    /// [`forget`](SessionBound::forget)s the bound if it fails.
    pub fn claim(&mut self, wanted: Bound, in_transaction: bool) -> bool {
        let change = self.change(wanted, in_transaction);
        if let Some(bound) = change {
            self.set(bound, in_transaction);
        }
        change.is_some()
    }

    /// The session's bound is not known any more.
    pub fn forget(&mut self) {
        if *self != SessionBound::Unsupported {
            *self = SessionBound::Unknown;
        }
    }

    /// A rollback ran: a bound set inside the transaction is gone.
    pub fn rolled_back(&mut self) {
        if matches!(self, SessionBound::Tentative(_)) {
            *self = SessionBound::Unknown;
        }
    }
}

/// The innermost source of `error`: the cause worth a log line (`Connection
/// refused (os error 111)`, the server's message), which an adapter's error
/// puts after what failed in its `Display`.
///
/// ```
/// let io = std::io::Error::other("connection refused");
/// assert_eq!(stormpool::statements::root_cause(&io).to_string(), "connection refused");
/// ```
pub fn root_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause
}

/// Whether `name` can be spliced into SQL as a MySQL system variable name
/// (`SET SESSION name = ?`, where a name cannot be a parameter): ASCII
/// letters, digits and `_`, with `.` for component variables, not starting
/// with a digit or a dot.
///
/// ```
/// use stormpool::statements::is_variable_name;
///
/// assert!(is_variable_name("time_zone") && is_variable_name("innodb.lock_wait"));
/// assert!(!is_variable_name("a=1;DROP") && !is_variable_name("1x"));
/// ```
pub fn is_variable_name(name: &str) -> bool {
    let starts_well = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    starts_well
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// Whether `sql` contains one of `words` (upper-case ASCII) as a whole
/// word: ASCII case-insensitive, not inside a longer identifier (letters,
/// digits, `_`, `$`).
///
/// For managers whose driver keeps the session's transaction status to
/// itself: a statement that mentions `BEGIN` may have opened a
/// transaction. The search errs on the side of suspicion (a keyword inside
/// a string or a comment counts too), which costs the connection a check
/// when it comes back.
///
/// ```
/// use stormpool::statements::mentions_keyword;
///
/// assert!(mentions_keyword("/* x */ begin;", &["BEGIN", "START"]));
/// assert!(!mentions_keyword("SELECT start_date FROM t", &["BEGIN", "START"]));
/// ```
pub fn mentions_keyword(sql: &str, words: &[&str]) -> bool {
    let bytes = sql.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    words.iter().any(|word| {
        let word = word.as_bytes();
        bytes.windows(word.len()).enumerate().any(|(at, window)| {
            window.eq_ignore_ascii_case(word)
                && (at == 0 || !is_ident(bytes[at - 1]))
                && bytes.get(at + word.len()).is_none_or(|&b| !is_ident(b))
        })
    })
}

/// Whether `sql` is a bare `COMMIT` or `ROLLBACK` (what transaction
/// managers send to end a transaction): after it succeeds, the session is
/// outside any transaction, whatever opened one.
///
/// ```
/// use stormpool::statements::ends_transaction;
///
/// assert!(ends_transaction(" commit;") && ends_transaction("ROLLBACK"));
/// assert!(!ends_transaction("ROLLBACK TO SAVEPOINT s") && !ends_transaction("COMMIT AND CHAIN"));
/// ```
pub fn ends_transaction(sql: &str) -> bool {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    sql.eq_ignore_ascii_case("COMMIT") || sql.eq_ignore_ascii_case("ROLLBACK")
}

/// A manager's statement counters, shared by the manager and its
/// connections; [`snapshot`](StatementCounters::snapshot) reports them.
#[derive(Debug, Default)]
pub struct StatementCounters {
    stopped_by_deadline: AtomicU64,
    bound_changes: AtomicU64,
    abandoned: AtomicU64,
    timed_out: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    recycled: AtomicU64,
}

impl StatementCounters {
    /// A statement was stopped by the server at the bound propagated from
    /// its request's deadline.
    pub fn stopped_by_deadline(&self) {
        // Relaxed: independent counters, read for reporting only.
        self.stopped_by_deadline.fetch_add(1, Ordering::Relaxed);
    }

    /// The bound on a session was changed for a request.
    pub fn bound_changed(&self) {
        self.bound_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// A statement's future was dropped before it completed.
    pub fn abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// The client gave up on a statement at its request's deadline plus
    /// the grace: the server did not answer in time.
    pub fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// A cached prepared statement was found.
    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// A statement was prepared because the cache did not hold it.
    pub fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
    }

    /// A returned session was brought back to a clean state (a transaction
    /// rolled back) before serving anyone else.
    pub fn recycled(&self) {
        self.recycled.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> StatementStats {
        StatementStats {
            stopped_by_deadline: self.stopped_by_deadline.load(Ordering::Relaxed),
            bound_changes: self.bound_changes.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.cache_misses.load(Ordering::Relaxed),
            rolled_back_on_return: self.recycled.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a manager's statement counters, since it was built, over
/// all its connections.
///
/// The pool counts the rest of the story in [`Counters`](crate::Counters):
/// `cancelled_on_return` (connections that came back with an abandoned
/// statement, which was cancelled on the server), `drained` (put back in
/// service once the server was idle on them) and `closed_drain_failed`
/// (closed because that took longer than `abandon_timeout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatementStats {
    /// Statements the server stopped at the bound propagated from their
    /// request's deadline.
    pub stopped_by_deadline: u64,
    /// Bound changes sent because a request's bound differed from the one
    /// its session carried.
    pub bound_changes: u64,
    /// Statements whose future was dropped before they completed.
    pub abandoned: u64,
    /// Statements the client gave up on at their request's deadline plus
    /// the grace, the server not having answered (a frozen or unreachable
    /// server).
    pub timed_out: u64,
    /// Prepared statements found in a connection's statement cache.
    pub cache_hits: u64,
    /// Statements prepared because the cache did not hold them.
    pub cache_misses: u64,
    /// Returned sessions whose open or failed transaction was rolled back
    /// before they served anyone else.
    pub rolled_back_on_return: u64,
}

impl StatementStats {
    /// The share of cached lookups that found their statement, from 0 to
    /// 1; `None` before the first lookup.
    pub fn cache_hit_rate(&self) -> Option<f64> {
        let lookups = self.cache_hits + self.cache_misses;
        (lookups > 0).then(|| self.cache_hits as f64 / lookups as f64)
    }
}

/// A connection's cache of prepared statements, bounded to `capacity`
/// entries, evicting the least recently used.
///
/// Generic over the key (the statement's text, with its parameter types)
/// and the prepared statement handle (cheap to clone in both drivers). A miss costs a round trip to prepare,
/// so the eviction's scan over at most `capacity` entries (no second index
/// to keep in step) costs nothing next to it; a hit is a hash lookup.
#[derive(Debug)]
pub struct StatementCache<K, S> {
    entries: HashMap<K, (S, u64)>,
    capacity: usize,
    /// Bumped on every use; an entry's stamp is its last use.
    clock: u64,
}

impl<K: Hash + Eq + Clone, S: Clone> StatementCache<K, S> {
    /// An empty cache of at most `capacity` statements (0: caches nothing).
    pub fn new(capacity: usize) -> Self {
        StatementCache {
            entries: HashMap::new(),
            capacity,
            clock: 0,
        }
    }

    /// The statement cached for `key`, now the most recently used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<S>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(statement, used)| {
            *used = clock;
            statement.clone()
        })
    }

    /// Caches `statement` for `key`; returns the statement evicted to make
    /// room, if any (the least recently used).
    pub fn insert(&mut self, key: K, statement: S) -> Option<S> {
        if self.capacity == 0 {
            return None;
        }
        self.clock += 1;
        let mut evicted = None;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            evicted = oldest.and_then(|oldest| self.entries.remove(&oldest).map(|(s, _)| s));
        }
        self.entries.insert(key, (statement, self.clock));
        evicted
    }

    /// Forgets every statement (the session was reset: the server dropped
    /// them).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many statements are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no statement is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most statements the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_evicts_the_least_recently_used() {
        let mut cache = StatementCache::new(2);
        assert_eq!(cache.insert("a".to_owned(), 1), None);
        assert_eq!(cache.insert("b".to_owned(), 2), None);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.insert("c".to_owned(), 3), Some(2), "b was least used");
        assert_eq!(
            (cache.get("b"), cache.get("a"), cache.get("c")),
            (None, Some(1), Some(3))
        );
        assert_eq!(
            cache.insert("c".to_owned(), 4),
            None,
            "a replacement evicts nothing"
        );
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert!(cache.is_empty());
        let mut none = StatementCache::new(0);
        assert_eq!(none.insert("a".to_owned(), 1), None);
        assert_eq!(none.get("a"), None);
    }

    #[test]
    fn keywords_are_found_as_whole_words_in_any_case() {
        let begin = ["BEGIN", "START"];
        assert!(mentions_keyword("BEGIN", &begin));
        assert!(mentions_keyword(
            "  begin isolation level serializable",
            &begin
        ));
        assert!(mentions_keyword("/* x */START TRANSACTION", &begin));
        assert!(mentions_keyword("select 1;begin;", &begin));
        assert!(!mentions_keyword("SELECT start_date, began FROM t", &begin));
        assert!(!mentions_keyword("SELECT $begin", &begin));
        assert!(!mentions_keyword("", &begin));
        assert!(mentions_keyword("SET @@autocommit = 0", &["AUTOCOMMIT"]));
    }

    #[test]
    fn a_bound_change_is_sent_once() {
        let mut bound = SessionBound::default();
        assert_eq!(bound.change(Bound::Default, false), None);
        assert_eq!(
            bound.change(Bound::Millis(48), false),
            Some(Bound::Millis(48))
        );
        bound.set(Bound::Millis(48), false);
        assert_eq!(bound.change(Bound::Millis(48), true), None);
        bound.forget();
        assert_eq!(
            bound.change(Bound::Default, false),
            Some(Bound::Default),
            "an unknown default is set again"
        );
        let mut unsupported = SessionBound::Unsupported;
        assert_eq!(unsupported.change(Bound::Millis(8), false), None);
        unsupported.forget();
        assert_eq!(unsupported, SessionBound::Unsupported);
    }

    #[test]
    fn a_bound_change_is_claimed_once() {
        let mut bound = SessionBound::default();
        assert!(!bound.claim(Bound::Default, false), "a fresh session");
        assert!(bound.claim(Bound::Millis(48), false));
        assert!(!bound.claim(Bound::Millis(48), false));
        assert!(
            !bound.claim(Bound::Millis(48), true),
            "trusted in a transaction"
        );
        bound.forget();
        assert!(bound.claim(Bound::Millis(48), false), "unknown: set again");
    }

    #[test]
    fn a_bound_set_in_a_transaction_is_set_again_after_it() {
        let mut bound = SessionBound::default();
        bound.set(Bound::Millis(40), true);
        assert_eq!(
            bound.change(Bound::Millis(40), true),
            None,
            "same transaction"
        );
        assert_eq!(
            bound.change(Bound::Millis(40), false),
            Some(Bound::Millis(40)),
            "maybe rolled back"
        );
        bound.rolled_back();
        assert_eq!(bound, SessionBound::Unknown);
        let mut known = SessionBound::Known(Bound::Millis(40));
        known.rolled_back();
        assert_eq!(known, SessionBound::Known(Bound::Millis(40)));
    }

    #[test]
    fn the_bound_stays_in_the_servers_range() {
        let now = Instant::now();
        let at = |ms| Bound::until(Some(now + Duration::from_millis(ms)), now);
        assert_eq!(
            (at(0), at(50), at(1000)),
            (Bound::Millis(1), Bound::Millis(48), Bound::Millis(896))
        );
        let far = Bound::until(Some(now + Duration::from_secs(1 << 40)), now);
        assert_eq!(far, Bound::Millis(0x7000_0000));
        assert_eq!(Bound::until(None, now), Bound::Default);
    }

    #[test]
    fn four_steps_per_octave_rounded_down() {
        let b = |ms| statement_bound(Duration::from_millis(ms)).as_millis() as u64;
        assert_eq!(
            [b(1), b(2), b(3), b(4), b(5), b(6), b(7)],
            [1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            [b(8), b(9), b(10), b(11), b(12), b(15), b(16)],
            [8, 8, 10, 10, 12, 14, 16]
        );
        assert_eq!(b(1000), 896);
        assert_eq!(b(0), 1);
        for ms in 1..5_000 {
            let bound = b(ms);
            assert!(bound <= ms && bound * 5 >= ms * 4, "{ms} -> {bound}");
        }
    }
}
