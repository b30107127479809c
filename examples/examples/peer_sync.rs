//! Pushes three versions of a route table to six loopback peers, one of
//! them slow (a 2 s pause) and one answering `409 Conflict`, and shows what
//! each push cost.
//!
//! ```text
//! cargo run -p stormpool-examples --example peer-sync
//! ```
//!
//! Every sync returns within the per-peer deadline (600 ms) although the
//! slow peer would take 2 s; the 409 is asked once per sync and never
//! retried; the healthy peers (and the conflicting one) are reached over the
//! one connection each that the shared client keeps. The slow peer costs one
//! connection per abandoned attempt: an HTTP/1 connection with a request
//! still in flight cannot be reused.

use std::error::Error;
use std::time::Instant;

use stormpool_examples::peer_server::{Behaviour, PeerServer};
use stormpool_examples::peer_sync::{PeerSync, RouteTable, SyncConfig};
use stormpool_retry::fanout::Outcome;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let behaviours = [
        Behaviour::Healthy,
        Behaviour::Healthy,
        Behaviour::Slow(std::time::Duration::from_secs(2)),
        Behaviour::Healthy,
        Behaviour::Conflict,
        Behaviour::Healthy,
    ];
    let mut peers = Vec::new();
    for behaviour in behaviours {
        peers.push(PeerServer::start(behaviour).await?);
    }
    let addrs: Vec<_> = peers.iter().map(PeerServer::addr).collect();
    let config = SyncConfig::default();
    let sync = PeerSync::new(config)?;
    println!(
        "{} peers; per-peer deadline {:?}, attempts of {:?}, pool of {} connections per peer",
        peers.len(),
        config.per_peer_timeout,
        config.attempt_timeout,
        config.pool_max_idle_per_host
    );

    for version in 1..=3 {
        let table = RouteTable::new(version).with_route("api", addrs[0]);
        let start = Instant::now();
        let report = sync.push(&addrs, &table).await?;
        println!(
            "\nversion {version}: {} of {} peers applied it in {:?}",
            report.successes(),
            addrs.len(),
            start.elapsed()
        );
        for (peer, outcome) in peers.iter().zip(report.outcomes()) {
            let what = match outcome {
                Outcome::Ok(status) => format!("{status}"),
                Outcome::Err(error) => format!("{error}"),
                other => format!("{other:?}"),
            };
            println!("  {} {:?}: {what}", peer.addr(), peer.behaviour());
        }
    }

    println!("\nconnections accepted / requests served, per peer:");
    for peer in &peers {
        println!(
            "  {} {:?}: {} / {}",
            peer.addr(),
            peer.behaviour(),
            peer.connections(),
            peer.requests()
        );
    }
    Ok(())
}
