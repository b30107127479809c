//! The standalone Gate: capacity, idempotent release, shedding, the tower layer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stormpool::gate::Gate;
use stormpool::{AcquireError, AcquireOptions, Priority};

#[tokio::test(start_paused = true)]
async fn never_more_holders_than_capacity() {
    let gate = Gate::builder().capacity(3).build().unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let (gate, inside, peak, served) =
            (gate.clone(), inside.clone(), peak.clone(), served.clone());
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_micros(i * 300)).await;
            let permit = gate
                .enter_with(AcquireOptions::new().timeout(Duration::from_secs(10)))
                .await
                .unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            served.fetch_add(1, Ordering::SeqCst);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    assert_eq!(served.load(Ordering::SeqCst), 200);
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn release_is_idempotent() {
    let gate = Gate::builder().capacity(1).build().unwrap();
    let mut permit = gate.enter().await.unwrap();
    assert!(permit.is_held());
    permit.release();
    permit.release();
    assert!(!permit.is_held());
    let second = gate.enter().await.unwrap();
    drop(permit);
    // The second holder still holds the lock: a third must wait.
    let third = gate
        .enter_with(AcquireOptions::new().timeout(Duration::from_millis(5)))
        .await;
    assert!(matches!(third, Err(AcquireError::Timeout)));
    drop(second);
    assert_eq!(gate.status().in_use, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stuck_lock_rejects_its_queue_as_wedged() {
    let gate = Gate::builder().capacity(1).build().unwrap();
    let _stuck = gate.enter().await.unwrap();
    let mut waiters = Vec::new();
    for class in [Priority::Sheddable, Priority::Critical] {
        let gate = gate.clone();
        waiters.push(tokio::spawn(async move {
            gate.enter_with(
                AcquireOptions::new()
                    .priority(class)
                    .timeout(Duration::from_secs(1)),
            )
            .await
            .map(drop)
        }));
    }
    let sheddable = waiters.remove(0).await.unwrap();
    // Nothing has been served since the holder got stuck: the gate says
    // so, rather than calling it overload.
    assert!(
        matches!(sheddable, Err(AcquireError::Wedged { .. })),
        "{sheddable:?}"
    );
    let critical = waiters.remove(0).await.unwrap();
    assert!(
        matches!(critical, Err(AcquireError::Timeout)),
        "{critical:?}"
    );
}

#[cfg(feature = "tower")]
mod layer {
    use std::convert::Infallible;
    use std::future::{poll_fn, Future};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use stormpool::gate::{Gate, GateLayer, GateServiceError};
    use stormpool::{AcquireError, AcquireOptions};
    use tower::{Layer, Service};

    /// A service that takes 10 ms per request and counts the calls it saw.
    #[derive(Clone)]
    struct Slow {
        calls: Arc<AtomicUsize>,
    }

    impl Service<u32> for Slow {
        type Response = u32;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<u32, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: u32) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(request * 2)
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_admits_up_to_capacity_and_rejects_the_rest_early() {
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Gate::builder().capacity(1).build().unwrap();
        let layer = GateLayer::new(gate)
            .options(|_: &u32| AcquireOptions::new().timeout(Duration::from_millis(5)));
        let mut service = layer.layer(Slow {
            calls: calls.clone(),
        });
        poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
        let first = service.call(21);
        poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
        let second = service.call(1);
        let (first, second) = tokio::join!(first, second);
        assert_eq!(first.unwrap(), 42);
        assert!(matches!(
            second,
            Err(GateServiceError::Rejected(AcquireError::Timeout))
        ));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the rejected request never reached the service"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_permit_held_past_max_hold_is_revoked_and_its_place_given_on() {
    let gate = Gate::builder()
        .capacity(1)
        .max_hold(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let mut stuck = gate.enter().await.unwrap();
    let next = {
        let gate = gate.clone();
        tokio::spawn(async move {
            gate.enter_with(
                AcquireOptions::new()
                    .priority(Priority::Critical)
                    .timeout(Duration::from_secs(1)),
            )
            .await
        })
    };
    let mut second = next
        .await
        .unwrap()
        .expect("the next waiter gets the revoked place");
    assert!(stuck.is_revoked());
    assert!(!second.is_revoked());
    // A late release of the revoked permit is a no-op: the second holder
    // still has the gate to itself.
    stuck.release();
    stuck.release();
    let third = gate
        .enter_with(AcquireOptions::new().timeout(Duration::from_millis(10)))
        .await;
    assert!(
        matches!(
            third,
            Err(AcquireError::Timeout | AcquireError::Shed { .. })
        ),
        "{third:?}"
    );
    assert_eq!(gate.status().in_use, 1);
    second.release();
    assert_eq!(gate.status().in_use, 0);
    assert_eq!(gate.status().counters.revoked, 1);
}
