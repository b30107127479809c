//! Idle connections, one LIFO stack per session settings.
//!
//! LIFO keeps the hot connections hot (their server-side caches warm, their
//! last use inside the probe's skip window) and lets the cold ones sink to
//! the bottom, where the idle timeout finds them.

use crate::clock::Instant;

/// What an idle store entry must tell the store about itself.
pub(crate) trait IdleEntry {
    /// The interned settings id the connection carries; 0 for a clean session.
    fn settings(&self) -> u32;
    /// When the connection was last returned.
    fn last_used(&self) -> Instant;
}

/// How well a popped connection matches the requested settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// It already carries the requested settings (or both are clean).
    Exact,
    /// It is clean and needs the settings applied.
    Clean,
    /// It carries other settings and needs a reset first.
    Other,
}

pub(crate) struct IdleStore<T> {
    clean: Vec<T>,
    /// Stacks of connections carrying settings, by settings id. Few distinct
    /// settings are expected, so a vector beats a map here.
    tagged: Vec<(u32, Vec<T>)>,
    len: usize,
}

impl<T: IdleEntry> IdleStore<T> {
    pub(crate) fn new() -> Self {
        IdleStore {
            clean: Vec::new(),
            tagged: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, entry: T) {
        self.len += 1;
        let settings = entry.settings();
        if settings == 0 {
            self.clean.push(entry);
        } else if let Some((_, stack)) = self.tagged.iter_mut().find(|(s, _)| *s == settings) {
            stack.push(entry);
        } else {
            self.tagged.push((settings, vec![entry]));
        }
    }

    /// The best idle connection for a request asking for `settings` (0: none):
    /// one carrying them, else a clean one, else the most recently used one
    /// carrying other settings.
    pub(crate) fn pop(&mut self, settings: u32) -> Option<(T, Match)> {
        if self.len == 0 {
            return None;
        }
        if settings == 0 {
            if let Some(entry) = self.clean.pop() {
                self.len -= 1;
                return Some((entry, Match::Exact));
            }
        } else {
            if let Some((_, stack)) = self.tagged.iter_mut().find(|(s, _)| *s == settings) {
                if let Some(entry) = stack.pop() {
                    self.len -= 1;
                    return Some((entry, Match::Exact));
                }
            }
            if let Some(entry) = self.clean.pop() {
                self.len -= 1;
                return Some((entry, Match::Clean));
            }
        }
        let stack = self
            .tagged
            .iter_mut()
            .filter(|(_, stack)| !stack.is_empty())
            .max_by_key(|(_, stack)| stack.last().map(|e| e.last_used()))?;
        let entry = stack.1.pop()?;
        self.len -= 1;
        Some((entry, Match::Other))
    }

    /// Removes the entries `close` selects, oldest first, keeping at least
    /// `keep` entries in the store; returns them.
    pub(crate) fn evict(&mut self, keep: usize, mut close: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut evicted = Vec::new();
        let stacks = std::iter::once(&mut self.clean).chain(self.tagged.iter_mut().map(|(_, s)| s));
        for stack in stacks {
            let mut i = 0;
            while i < stack.len() {
                if self.len - evicted.len() <= keep {
                    break;
                }
                if close(&stack[i]) {
                    evicted.push(stack.remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.len -= evicted.len();
        self.tagged.retain(|(_, s)| !s.is_empty());
        evicted
    }

    /// Removes and returns every entry.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let mut all = std::mem::take(&mut self.clean);
        for (_, stack) in self.tagged.drain(..) {
            all.extend(stack);
        }
        self.len = 0;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct E(u32, Instant, u32);
    impl IdleEntry for E {
        fn settings(&self) -> u32 {
            self.0
        }
        fn last_used(&self) -> Instant {
            self.1
        }
    }

    #[test]
    fn prefers_exact_then_clean_then_other() {
        let t = Instant::now();
        let mut s = IdleStore::new();
        s.push(E(0, t, 1));
        s.push(E(5, t, 2));
        s.push(E(6, t + Duration::from_secs(1), 3));
        assert_eq!(s.pop(5).map(|(e, m)| (e.2, m)), Some((2, Match::Exact)));
        assert_eq!(s.pop(5).map(|(e, m)| (e.2, m)), Some((1, Match::Clean)));
        assert_eq!(s.pop(5).map(|(e, m)| (e.2, m)), Some((3, Match::Other)));
        assert!(s.pop(5).is_none());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn lifo_and_eviction_keeps_the_floor() {
        let t = Instant::now();
        let mut s = IdleStore::new();
        for i in 0..5 {
            s.push(E(0, t, i));
        }
        assert_eq!(s.pop(0).map(|(e, _)| e.2), Some(4));
        let evicted = s.evict(2, |_| true);
        assert_eq!(evicted.iter().map(|e| e.2).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(s.len(), 2);
    }
}
