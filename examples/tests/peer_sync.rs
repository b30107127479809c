//! The `peer-sync` example against eight loopback peers: six healthy, one
//! slow (it answers after 3 s), one answering `409 Conflict`.
//!
//! Real sockets do not run under tokio's paused clock, so this test uses
//! real time. Its time checks are bounds with generous slack, not
//! measurements: the sync must return within the per-peer deadline plus
//! 300 ms (2 shared cores can stall a task that long), against the 3 s the
//! slow peer would cost without a deadline. Everything else it checks is a
//! count: connections accepted by each peer's accept loop, and requests
//! each peer served.

use std::time::{Duration, Instant};

use http::StatusCode;
use stormpool_examples::peer_server::{Behaviour, PeerServer};
use stormpool_examples::peer_sync::{PeerSync, RouteTable, SetupError, SyncConfig};
use stormpool_retry::fanout::Outcome;
use stormpool_retry::{ConfigError, RetryError, Stop};

const SLACK: Duration = Duration::from_millis(300);
const SLOW: usize = 3;
const CONFLICT: usize = 6;

async fn peers() -> Vec<PeerServer> {
    let mut peers = Vec::new();
    for index in 0..8 {
        let behaviour = match index {
            SLOW => Behaviour::Slow(Duration::from_secs(3)),
            CONFLICT => Behaviour::Conflict,
            _ => Behaviour::Healthy,
        };
        peers.push(PeerServer::start(behaviour).await.unwrap());
    }
    peers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_sync_bounds_the_slow_peer_and_never_retries_the_conflict() {
    let peers = peers().await;
    let addrs: Vec<_> = peers.iter().map(PeerServer::addr).collect();
    let config = SyncConfig::default();
    let sync = PeerSync::new(config).unwrap();
    let table = RouteTable::new(1).with_route("api", addrs[0]);

    let start = Instant::now();
    let report = sync.push(&addrs, &table).await.unwrap();
    let elapsed = start.elapsed();
    println!(
        "sync of 8 peers, one slow: {elapsed:?} (per-peer deadline {:?})",
        config.per_peer_timeout
    );

    // The slow peer costs at most its deadline.
    assert!(
        elapsed <= config.per_peer_timeout + SLACK,
        "the sync took {elapsed:?}"
    );
    // It did try: two whole attempts (one, if the machine stalled past the
    // point where a second could still finish); never a third.
    assert!(elapsed >= config.attempt_timeout, "{elapsed:?}");
    match &report.outcomes()[SLOW] {
        Outcome::Err(RetryError::TimedOut { attempts, stop }) => {
            assert!((1..=2).contains(attempts), "{attempts} attempts");
            assert_eq!(*stop, Stop::Deadline);
        }
        other => panic!("slow peer: {other:?}"),
    }
    assert!(peers[SLOW].requests() <= 2);

    // The 409 is not retried.
    match &report.outcomes()[CONFLICT] {
        Outcome::Err(RetryError::Failed {
            error,
            attempts: 1,
            stop: Stop::Permanent,
        }) => assert!(error.to_string().contains("409"), "{error}"),
        other => panic!("conflicting peer: {other:?}"),
    }
    assert_eq!(peers[CONFLICT].requests(), 1);

    // Everyone else applied the table.
    for (index, peer) in peers.iter().enumerate() {
        if index != SLOW && index != CONFLICT {
            assert_eq!(report.outcomes()[index].ok(), Some(&StatusCode::OK));
            assert_eq!(peer.applied_version(), Some(1));
        }
    }
    assert_eq!(report.successes(), 6);

    // New connections per peer: at most the client's pool size.
    for peer in &peers {
        assert!(
            peer.connections() <= config.pool_max_idle_per_host,
            "{:?} peer accepted {} connections",
            peer.behaviour(),
            peer.connections()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_sync_reuses_pooled_connections_across_syncs() {
    let peers = peers().await;
    let addrs: Vec<_> = peers.iter().map(PeerServer::addr).collect();
    let config = SyncConfig::default();
    let sync = PeerSync::new(config).unwrap();
    const SYNCS: u64 = 3;
    for version in 1..=SYNCS {
        let table = RouteTable::new(version).with_route("api", addrs[0]);
        let start = Instant::now();
        let report = sync.push(&addrs, &table).await.unwrap();
        assert!(start.elapsed() <= config.per_peer_timeout + SLACK);
        assert_eq!(report.successes(), 6);
    }
    let syncs = SYNCS as usize;
    for (index, peer) in peers.iter().enumerate() {
        println!(
            "{:?}: {} connections, {} requests over {syncs} syncs",
            peer.behaviour(),
            peer.connections(),
            peer.requests()
        );
        if index == SLOW {
            // An HTTP/1 request abandoned at its timeout takes its
            // connection with it: one connection per attempt, two attempts
            // per sync, never more.
            assert!(peer.connections() <= 2 * syncs);
        } else {
            // Answered requests leave their connection in the pool; the
            // next sync reuses it.
            assert!(
                peer.connections() <= config.pool_max_idle_per_host,
                "{:?}: {} connections",
                peer.behaviour(),
                peer.connections()
            );
            assert!(peer.requests() >= syncs);
        }
    }
    assert_eq!(
        peers[CONFLICT].requests(),
        syncs,
        "the 409 is never retried"
    );
    assert_eq!(peers[0].applied_version(), Some(SYNCS));
}

#[test]
fn peer_sync_refuses_a_backoff_that_outsleeps_its_attempts() {
    let mut config = SyncConfig::default();
    config.max_attempts = 4;
    config.backoff_base = Duration::from_millis(100);
    config.backoff_cap = Duration::from_millis(200);
    // 100 + 200 + 200 ms of sleep against 250 ms attempts.
    match PeerSync::new(config) {
        Err(SetupError::Retry(ConfigError::SleepBudget {
            worst_case_sleep, ..
        })) => assert_eq!(worst_case_sleep, Duration::from_millis(500)),
        other => panic!("{other:?}"),
    }
    let mut config = SyncConfig::default();
    config.max_in_flight = 0;
    assert!(matches!(PeerSync::new(config), Err(SetupError::FanOut(_))));
}
