//! [`Config`] as a configuration file spells it (feature `serde`).
//!
//! `Config` stays plain data; its `Serialize` and `Deserialize` go through
//! `ConfigRepr`, which has the same fields with durations as
//! [`HumanDuration`] and optional values as [`OrNone`]. The conversions
//! destructure every field, so a field added to `Config` and not here does
//! not compile. Nothing is validated here: [`Builder::build`](super::Builder::build)
//! does that, and names the bad field.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::{HumanDuration, OrNone};
use super::Config;
use crate::admission::{CodelConfig, DeadlineAware};

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ConfigRepr::from(self.clone()).serialize(serializer)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ConfigRepr::deserialize(deserializer).map(Config::from)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigRepr {
    name: String,
    max_size: usize,
    min_idle: usize,
    max_waiters: usize,
    acquire_timeout: HumanDuration,
    connect_timeout: HumanDuration,
    check_timeout: HumanDuration,
    check_interval: HumanDuration,
    max_concurrent_connects: usize,
    connect_backoff_min: HumanDuration,
    connect_backoff_max: HumanDuration,
    idle_timeout: OrNone<HumanDuration>,
    max_lifetime: OrNone<HumanDuration>,
    drain_timeout: HumanDuration,
    maintenance_tick: HumanDuration,
    max_shed_per_tick: usize,
    max_in_flight_per_key: OrNone<usize>,
    max_queued_per_key: OrNone<usize>,
    abandon_timeout: HumanDuration,
    propagate_deadline: bool,
    max_hold: OrNone<HumanDuration>,
    max_orphans: usize,
    leak_threshold: OrNone<HumanDuration>,
    jitter_seed: OrNone<u64>,
    // Tables last: TOML writes plain values before tables.
    deadline_aware: DeadlineAwareRepr,
    codel: OrNone<CodelRepr>,
}

/// [`CodelConfig`]: a table whose missing keys take their defaults.
#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CodelRepr {
    target: HumanDuration,
    interval: HumanDuration,
}

impl Default for CodelRepr {
    fn default() -> Self {
        CodelConfig::default().into()
    }
}

impl From<CodelConfig> for CodelRepr {
    fn from(CodelConfig { target, interval }: CodelConfig) -> Self {
        CodelRepr {
            target: HumanDuration(target),
            interval: HumanDuration(interval),
        }
    }
}

impl From<CodelRepr> for CodelConfig {
    fn from(CodelRepr { target, interval }: CodelRepr) -> Self {
        CodelConfig {
            target: target.0,
            interval: interval.0,
        }
    }
}

/// [`DeadlineAware`]: `"off"`, `"learned_hold"` or `{ min_remaining = "20ms" }`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeadlineAwareRepr {
    Off,
    MinRemaining(HumanDuration),
    LearnedHold,
}

impl From<DeadlineAware> for DeadlineAwareRepr {
    fn from(value: DeadlineAware) -> Self {
        match value {
            DeadlineAware::Off => DeadlineAwareRepr::Off,
            DeadlineAware::MinRemaining(d) => DeadlineAwareRepr::MinRemaining(HumanDuration(d)),
            DeadlineAware::LearnedHold => DeadlineAwareRepr::LearnedHold,
        }
    }
}

impl From<DeadlineAwareRepr> for DeadlineAware {
    fn from(value: DeadlineAwareRepr) -> Self {
        match value {
            DeadlineAwareRepr::Off => DeadlineAware::Off,
            DeadlineAwareRepr::MinRemaining(d) => DeadlineAware::MinRemaining(d.0),
            DeadlineAwareRepr::LearnedHold => DeadlineAware::LearnedHold,
        }
    }
}

impl Default for ConfigRepr {
    fn default() -> Self {
        Config::default().into()
    }
}

fn human(d: Option<std::time::Duration>) -> OrNone<HumanDuration> {
    OrNone(d.map(HumanDuration))
}

impl From<Config> for ConfigRepr {
    fn from(config: Config) -> Self {
        let Config {
            name,
            max_size,
            min_idle,
            max_waiters,
            acquire_timeout,
            connect_timeout,
            check_timeout,
            check_interval,
            max_concurrent_connects,
            connect_backoff_min,
            connect_backoff_max,
            idle_timeout,
            max_lifetime,
            drain_timeout,
            maintenance_tick,
            codel,
            max_shed_per_tick,
            max_in_flight_per_key,
            max_queued_per_key,
            deadline_aware,
            abandon_timeout,
            propagate_deadline,
            max_hold,
            max_orphans,
            leak_threshold,
            jitter_seed,
        } = config;
        ConfigRepr {
            name,
            max_size,
            min_idle,
            max_waiters,
            acquire_timeout: HumanDuration(acquire_timeout),
            connect_timeout: HumanDuration(connect_timeout),
            check_timeout: HumanDuration(check_timeout),
            check_interval: HumanDuration(check_interval),
            max_concurrent_connects,
            connect_backoff_min: HumanDuration(connect_backoff_min),
            connect_backoff_max: HumanDuration(connect_backoff_max),
            idle_timeout: human(idle_timeout),
            max_lifetime: human(max_lifetime),
            drain_timeout: HumanDuration(drain_timeout),
            maintenance_tick: HumanDuration(maintenance_tick),
            max_shed_per_tick,
            max_in_flight_per_key: OrNone(max_in_flight_per_key),
            max_queued_per_key: OrNone(max_queued_per_key),
            abandon_timeout: HumanDuration(abandon_timeout),
            propagate_deadline,
            max_hold: human(max_hold),
            max_orphans,
            leak_threshold: human(leak_threshold),
            jitter_seed: OrNone(jitter_seed),
            deadline_aware: deadline_aware.into(),
            codel: OrNone(codel.map(CodelRepr::from)),
        }
    }
}

impl From<ConfigRepr> for Config {
    fn from(repr: ConfigRepr) -> Self {
        let ConfigRepr {
            name,
            max_size,
            min_idle,
            max_waiters,
            acquire_timeout,
            connect_timeout,
            check_timeout,
            check_interval,
            max_concurrent_connects,
            connect_backoff_min,
            connect_backoff_max,
            idle_timeout,
            max_lifetime,
            drain_timeout,
            maintenance_tick,
            max_shed_per_tick,
            max_in_flight_per_key,
            max_queued_per_key,
            abandon_timeout,
            propagate_deadline,
            max_hold,
            max_orphans,
            leak_threshold,
            jitter_seed,
            deadline_aware,
            codel,
        } = repr;
        Config {
            name,
            max_size,
            min_idle,
            max_waiters,
            acquire_timeout: acquire_timeout.0,
            connect_timeout: connect_timeout.0,
            check_timeout: check_timeout.0,
            check_interval: check_interval.0,
            max_concurrent_connects,
            connect_backoff_min: connect_backoff_min.0,
            connect_backoff_max: connect_backoff_max.0,
            idle_timeout: idle_timeout.0.map(|d| d.0),
            max_lifetime: max_lifetime.0.map(|d| d.0),
            drain_timeout: drain_timeout.0,
            maintenance_tick: maintenance_tick.0,
            codel: codel.0.map(CodelConfig::from),
            max_shed_per_tick,
            max_in_flight_per_key: max_in_flight_per_key.0,
            max_queued_per_key: max_queued_per_key.0,
            deadline_aware: deadline_aware.into(),
            abandon_timeout: abandon_timeout.0,
            propagate_deadline,
            max_hold: max_hold.0.map(|d| d.0),
            max_orphans,
            leak_threshold: leak_threshold.0.map(|d| d.0),
            jitter_seed: jitter_seed.0,
        }
    }
}
