//! A retry budget per destination: retries may add at most a fixed fraction
//! of the requests (about 10 %), plus a small floor.
//!
//! # Why budgets and not max retries?
//!
//! "Retry up to 3 times" is harmless while a destination fails now and then,
//! and a multiplier of four on its load when it fails for real: the moment it
//! most needs room, its clients quadruple their traffic. Stack three layers
//! that each retry three times and one failing request at the bottom becomes
//! 64 attempts. A maximum number of attempts bounds the *latency* of one
//! request; it does nothing for the *load* of all of them.
//!
//! A budget bounds the load. Every request deposits `retry_ratio` of a retry
//! into its destination's bucket; every retry (or hedge) withdraws one whole
//! retry, and is not made when the bucket is empty. While a destination
//! fails on every request its clients send at most `1 + retry_ratio` attempts
//! per request (1.1 by default), and `L` stacked layers at most
//! `(1 + retry_ratio)^L` (1.33 for three), instead of `4` and `64`. While it
//! fails now and then, the bucket is full and every failure is retried.
//!
//! Deposits and withdrawals expire after `ttl`, so the budget follows the
//! recent traffic and not the whole history (a destination that served a
//! million requests yesterday does not earn a retry storm today).
//!
//! # The floor is a minimum, not an addition
//!
//! `min_retries_per_sec` lets a client that sends few requests still retry
//! some: within any `ttl` the budget allows `max(floor × ttl, retry_ratio ×
//! requests)` retries. Finagle and tower *add* the floor to the deposits
//! instead; then every layer adds its floor on top of `1 + retry_ratio`, and
//! the floors compound through stacked layers (three layers at 1 000
//! requests a second with the default floor would reach 1.37 attempts per
//! request, not 1.33). Taking the larger of the two keeps the ratio exact
//! for any destination busier than `floor / retry_ratio` requests a second
//! (100 by default), and the floor exact for any quieter one.
//!
//! This is the design of Finagle's `RetryBudget` and tower's
//! `retry::budget::TpsBudget`, with a validated configuration, tokio's clock
//! (so it runs under paused time, as the pool does), and a registry,
//! [`Budgets`], that keeps one budget per destination: one failing replica
//! must not spend the budget of the healthy ones.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stormpool::clock::Instant;

use crate::error::{ensure, ConfigError};

/// The configuration of a [`RetryBudget`]. Plain data; checked by
/// [`validate`](BudgetConfig::validate) and by [`RetryBudget::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// The retries each request earns: at most this fraction of the requests
    /// may be retried (or hedged) on top of the requests themselves.
    /// Default: 0.1. Must be in `(0, 1]`.
    pub retry_ratio: f64,
    /// The floor: retries allowed per second (averaged over `ttl`) however
    /// few requests are made, so that a quiet client can still retry. A
    /// minimum, not an addition: see the [module docs](self). Default: 10.
    /// Zero disables the floor.
    pub min_retries_per_sec: u32,
    /// How long a deposit (and a withdrawal) counts. Default: 10 s. Must be
    /// between 1 s and 60 s.
    pub ttl: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            retry_ratio: 0.1,
            min_retries_per_sec: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

impl BudgetConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ratio = self.retry_ratio;
        ensure(
            ratio.is_finite() && ratio > 0.0 && ratio <= 1.0,
            "retry_ratio",
            "in (0, 1]",
        )?;
        ensure(!self.ttl.is_zero(), "ttl", "a positive duration")?;
        ensure(
            (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&self.ttl),
            "ttl",
            "between 1 s and 60 s",
        )
    }
}

/// Counts of what a [`RetryBudget`] was asked since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetStats {
    /// Requests deposited.
    pub requests: u64,
    /// Retries (and hedges) withdrawn.
    pub retries: u64,
    /// Withdrawals refused because the budget was empty.
    pub refused: u64,
}

/// The window is cut into this many slots: a deposit expires between
/// `ttl × (SLOTS-1)/SLOTS` and `ttl` after it was made.
const SLOTS: usize = 10;
/// One retry, in the budget's integer unit, so that a ratio of 0.1 is exact.
const RETRY: i64 = 1_000_000;

/// A token bucket of retries for one destination, shared by every request
/// to it (and by hedges, which cost the same as a retry).
///
/// Call [`deposit`](RetryBudget::deposit) once per request (not per
/// attempt) and [`try_withdraw`](RetryBudget::try_withdraw) before each
/// retry or hedge; [`RetryPolicy::run`](crate::RetryPolicy::run) and the
/// tower adapter do both. See the [module docs](self) for the design.
///
/// ```
/// use stormpool_retry::{BudgetConfig, RetryBudget};
///
/// let mut config = BudgetConfig::default();
/// config.min_retries_per_sec = 0;
/// let budget = RetryBudget::new(config)?;
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// assert!(budget.try_withdraw(), "ten requests earn one retry");
/// assert!(!budget.try_withdraw());
/// # Ok::<(), stormpool_retry::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    /// The floor: `min_retries_per_sec × ttl` retries.
    reserve: i64,
    /// What one request deposits: `retry_ratio` of a retry.
    deposit: i64,
    slot_len: Duration,
    /// # Invariant
    ///
    /// `deposited` and `withdrawn` are the sums of their slots, and
    /// `withdrawn <= max(reserve, deposited)` whenever a withdrawal is made;
    /// `current_start` is at most one slot length before the last `now` seen.
    window: Mutex<Window>,
    requests: AtomicU64,
    retries: AtomicU64,
    refused: AtomicU64,
}

#[derive(Debug)]
struct Window {
    /// Deposits per slot.
    deposits: [i64; SLOTS],
    /// Withdrawals per slot.
    withdrawals: [i64; SLOTS],
    current: usize,
    current_start: Instant,
    deposited: i64,
    withdrawn: i64,
}

impl Window {
    /// Expires the slots that have fallen out of the window by `now`.
    fn advance(&mut self, now: Instant, slot_len: Duration) {
        let elapsed = now.saturating_duration_since(self.current_start);
        let slot_nanos = slot_len.as_nanos().max(1);
        let steps = elapsed.as_nanos() / slot_nanos;
        if steps == 0 {
            return;
        }
        if steps >= SLOTS as u128 {
            self.deposits = [0; SLOTS];
            self.withdrawals = [0; SLOTS];
            self.deposited = 0;
            self.withdrawn = 0;
        } else {
            for _ in 0..steps {
                self.current = (self.current + 1) % SLOTS;
                self.deposited -= std::mem::take(&mut self.deposits[self.current]);
                self.withdrawn -= std::mem::take(&mut self.withdrawals[self.current]);
            }
        }
        // The remainder is below one slot length (at most 6 s), so it fits.
        let into_slot = (elapsed.as_nanos() % slot_nanos) as u64;
        self.current_start = now - Duration::from_nanos(into_slot);
    }

    /// What may be withdrawn in the window: the deposits, but at least the
    /// floor.
    fn allowance(&self, reserve: i64) -> i64 {
        self.deposited.max(reserve)
    }
}

impl RetryBudget {
    /// A budget with `config`; it starts with the floor's retries.
    ///
    /// # Errors
    ///
    /// A field out of range, named by the error (see [`BudgetConfig`]).
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    fn with_valid_config(config: BudgetConfig) -> Self {
        let ttl_secs = config.ttl.as_secs_f64();
        let reserve = (f64::from(config.min_retries_per_sec) * ttl_secs * RETRY as f64) as i64;
        // Rounded up to one unit so that a tiny ratio still counts requests.
        let deposit = ((config.retry_ratio * RETRY as f64).round() as i64).max(1);
        RetryBudget {
            config,
            reserve,
            deposit,
            slot_len: config.ttl / SLOTS as u32,
            window: Mutex::new(Window {
                deposits: [0; SLOTS],
                withdrawals: [0; SLOTS],
                current: 0,
                current_start: Instant::now(),
                deposited: 0,
                withdrawn: 0,
            }),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The configuration this budget was made with.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Records one request: it earns `retry_ratio` of a retry, for `ttl`.
    pub fn deposit(&self) {
        let mut window = self.lock_at(Instant::now());
        let slot = window.current;
        window.deposits[slot] = window.deposits[slot].saturating_add(self.deposit);
        window.deposited = window.deposited.saturating_add(self.deposit);
        drop(window);
        // Relaxed: the counters are statistics, read without ordering.
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry (or hedge) from the budget; `false`, and nothing
    /// taken, when it is empty. Whoever gets `false` must not retry.
    #[must_use = "a retry must not be made when the budget refuses it"]
    pub fn try_withdraw(&self) -> bool {
        let mut window = self.lock_at(Instant::now());
        let granted = window.withdrawn + RETRY <= window.allowance(self.reserve);
        if granted {
            let slot = window.current;
            window.withdrawals[slot] += RETRY;
            window.withdrawn += RETRY;
        }
        drop(window);
        let counter = if granted {
            &self.retries
        } else {
            &self.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        granted
    }

    /// The whole retries the budget would grant now.
    pub fn available(&self) -> u64 {
        let window = self.lock_at(Instant::now());
        let balance = window.allowance(self.reserve) - window.withdrawn;
        u64::try_from(balance / RETRY).unwrap_or(0)
    }

    /// What the budget was asked since it was created.
    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Locks the window and expires what `now` has left behind. No user code
    /// runs under the lock, so a poisoned lock still guards a consistent
    /// window and is used as is.
    fn lock_at(&self, now: Instant) -> MutexGuard<'_, Window> {
        let mut window = match self.window.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        window.advance(now, self.slot_len);
        window
    }
}

/// One [`RetryBudget`] per destination, made on first use.
///
/// A destination is whatever key names where a request goes (a peer
/// address, a shard, a database host). The registry keeps one entry per
/// destination it has seen; [`remove`](Budgets::remove) one that is gone
/// for good.
///
/// ```
/// use stormpool_retry::{BudgetConfig, Budgets};
///
/// let budgets: Budgets<String> = Budgets::new(BudgetConfig::default())?;
/// let a = budgets.get("10.0.0.1:8080");
/// let again = budgets.get("10.0.0.1:8080");
/// assert!(std::sync::Arc::ptr_eq(&a, &again));
/// # Ok::<(), stormpool_retry::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Budgets<K> {
    config: BudgetConfig,
    budgets: Mutex<HashMap<K, Arc<RetryBudget>>>,
}

impl<K: Hash + Eq> Budgets<K> {
    /// An empty registry whose budgets use `config`.
    ///
    /// # Errors
    ///
    /// A field out of range, named by the error (see [`BudgetConfig`]).
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Budgets {
            config,
            budgets: Mutex::new(HashMap::new()),
        })
    }

    /// The budget of `destination`, made (full to its floor) on first use.
    pub fn get<Q>(&self, destination: &Q) -> Arc<RetryBudget>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut budgets = self.lock();
        if let Some(budget) = budgets.get(destination) {
            return Arc::clone(budget);
        }
        let budget = Arc::new(RetryBudget::with_valid_config(self.config));
        budgets.insert(destination.to_owned(), Arc::clone(&budget));
        budget
    }

    /// Forgets `destination`'s budget; requests in flight keep theirs.
    pub fn remove<Q>(&self, destination: &Q) -> Option<Arc<RetryBudget>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(destination)
    }

    /// How many destinations have a budget.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no destination has a budget yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<RetryBudget>>> {
        // Only `HashMap` operations run under the lock; see `lock_at`.
        match self.budgets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ratio: f64, floor: u32) -> BudgetConfig {
        BudgetConfig {
            retry_ratio: ratio,
            min_retries_per_sec: floor,
            ttl: Duration::from_secs(10),
        }
    }

    #[test]
    fn rejects_ratios_outside_zero_to_one_and_bad_ttls() {
        for ratio in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
            let error = RetryBudget::new(config(ratio, 1)).unwrap_err();
            assert_eq!(error.field(), "retry_ratio", "ratio {ratio}");
        }
        assert!(RetryBudget::new(config(1.0, 1)).is_ok());
        for ttl in [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_secs(61),
        ] {
            let mut bad = config(0.1, 1);
            bad.ttl = ttl;
            assert_eq!(RetryBudget::new(bad).unwrap_err().field(), "ttl");
            assert!(Budgets::<u32>::new(bad).is_err());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn floor_is_a_rate_refreshed_as_withdrawals_expire() {
        let budget = RetryBudget::new(config(0.1, 2)).unwrap();
        assert_eq!(budget.available(), 20);
        let granted = (0..30).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 20);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(
            !budget.try_withdraw(),
            "withdrawals count for the whole ttl"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            budget.available(),
            20,
            "expired withdrawals give the floor back"
        );
        let stats = budget.stats();
        assert_eq!((stats.retries, stats.refused), (20, 11));
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire_after_the_ttl() {
        let budget = RetryBudget::new(config(0.5, 0)).unwrap();
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!(budget.available(), 5);
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(budget.available(), 5, "still inside the window");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(budget.available(), 0, "expired");
        tokio::time::advance(Duration::from_secs(3600)).await;
        budget.deposit();
        budget.deposit();
        assert_eq!(
            budget.available(),
            1,
            "a long pause does not break the window"
        );
    }

    #[test]
    fn registry_keeps_one_budget_per_destination() {
        let budgets: Budgets<String> = Budgets::new(config(0.1, 0)).unwrap();
        let a = budgets.get("a");
        for _ in 0..10 {
            a.deposit();
        }
        assert_eq!(budgets.get("a").available(), 1);
        assert_eq!(budgets.get("b").available(), 0, "b has its own budget");
        assert_eq!(budgets.len(), 2);
        assert!(budgets.remove("a").is_some());
        assert_eq!(budgets.get("a").available(), 0);
    }
}
