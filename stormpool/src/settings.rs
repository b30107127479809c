//! Session settings a connection can carry (time zone, isolation level, `SET`
//! variables), interned so the pool compares them by a number.
//!
//! Connections are expensive to reconfigure, so the pool keeps idle
//! connections per settings and prefers to hand a request a connection that
//! already carries what it asked for (after Vitess's smartconnpool). Equality
//! of two [`Settings`] is a single integer comparison: every distinct set of
//! statements is interned once per process and given an id.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};

/// The interned identity of a [`Settings`] value: equal ids, equal settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SettingsId(NonZeroU32);

impl SettingsId {
    /// The id as a plain number, stable for the life of the process.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// A set of session variables, as `(name, value)` pairs.
///
/// Cheap to clone and to compare. Names are kept sorted and unique (a later
/// pair with the same name replaces an earlier one), so the same variables
/// given in another order intern to the same value.
///
/// Interned values live for the rest of the process: create one `Settings`
/// per distinct configuration (they are meant to be few, such as "UTC" and
/// "Europe/Paris" time zones), not one per request.
///
/// ```
/// use stormpool::Settings;
///
/// let a = Settings::new([("TimeZone", "UTC"), ("search_path", "app")]);
/// let b = Settings::new([("search_path", "app"), ("TimeZone", "UTC")]);
/// assert_eq!(a, b);
/// assert_eq!(a.id(), b.id());
/// assert_eq!(a.get("TimeZone"), Some("UTC"));
/// ```
#[derive(Clone)]
pub struct Settings(Arc<Interned>);

struct Interned {
    id: SettingsId,
    pairs: Box<[(String, String)]>,
}

type Registry = HashMap<Box<[(String, String)]>, Settings>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Settings {
    /// Interns a set of `(name, value)` pairs.
    pub fn new<I, K, V>(pairs: I) -> Settings
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut list: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            match list.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => list.push((k, v)),
            }
        }
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let key = list.into_boxed_slice();
        let mut registry = match registry().lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(existing) = registry.get(&key) {
            return existing.clone();
        }
        // Ids start at 1; u32 overflow would need four billion distinct
        // settings, which the interning contract above rules out.
        let next = u32::try_from(registry.len() + 1).unwrap_or(u32::MAX);
        let id = SettingsId(NonZeroU32::new(next).unwrap_or(NonZeroU32::MIN));
        let settings = Settings(Arc::new(Interned {
            id,
            pairs: key.clone(),
        }));
        registry.insert(key, settings.clone());
        settings
    }

    /// The interned id.
    pub fn id(&self) -> SettingsId {
        self.0.id
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of one variable, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Whether there are no pairs at all.
    pub fn is_empty(&self) -> bool {
        self.0.pairs.is_empty()
    }
}

impl PartialEq for Settings {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Settings {}

impl std::hash::Hash for Settings {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let a = Settings::new([("b", "1"), ("a", "2"), ("b", "3")]);
        let b = Settings::new([("a", "2"), ("b", "3")]);
        assert_eq!(a, b);
        assert_eq!(a.get("b"), Some("3"));
        assert_eq!(a.iter().len(), 2);
        let c = Settings::new([("a", "2")]);
        assert_ne!(a, c);
        assert_ne!(a.id(), c.id());
    }
}
