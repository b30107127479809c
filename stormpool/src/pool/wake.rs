//! Wakers collected under the pool lock and woken after it is released, so a
//! woken task never finds the lock still held by the one that woke it.

use std::task::Waker;

/// A list of wakers: the first inline (a hand-off wakes exactly one), more
/// in a vector that allocates only when a transition wakes several (closing,
/// evicting expired waiters, shedding).
#[derive(Default)]
pub(crate) struct WakeList {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl WakeList {
    pub(crate) fn new() -> Self {
        WakeList::default()
    }

    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    /// Wakes every waker in the list, leaving it empty. The check for an
    /// empty list is inlined: most transitions wake nobody.
    #[inline]
    pub(crate) fn wake_all(&mut self) {
        if let Some(waker) = self.first.take() {
            self.wake_from(waker);
        }
    }

    fn wake_from(&mut self, first: Waker) {
        first.wake();
        for waker in self.rest.drain(..) {
            waker.wake();
        }
    }
}

impl Drop for WakeList {
    #[inline]
    fn drop(&mut self) {
        // Never lose a wake-up, even on an early return.
        self.wake_all();
    }
}
