//! An HTTP service with pool-aware readiness, Prometheus metrics and a
//! query endpoint behind a load-shedding gate.
//!
//! ```text
//! cargo run -p stormpool-examples --example service
//! cargo run -p stormpool-examples --example service -- --database-url postgres://app@127.0.0.1/app
//! ```
//!
//! Without a database URL (`--database-url`, else `STORMPOOL_PG_URL`, else
//! `DATABASE_URL`) it serves from the simulated database. Then:
//!
//! ```text
//! curl -i localhost:3000/readyz
//! curl -i -H 'x-deadline-ms: 200' -H 'x-priority: sheddable' -H 'x-tenant: acme' localhost:3000/query
//! curl -s localhost:3000/metrics | grep '^stormpool_'
//! ```

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use stormpool::sim::{SimConfig, SimManager};
use stormpool_examples::service::{Service, ServiceConfig};
use stormpool_postgres::PgManager;

/// Serve `/healthz`, `/readyz`, `/metrics` and `/query` over a stormpool
/// pool.
#[derive(Debug, Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// A PostgreSQL URL; without it (and without `STORMPOOL_PG_URL` or
    /// `DATABASE_URL`), the simulated database.
    #[arg(long)]
    database_url: Option<String>,
    /// The most database connections.
    #[arg(long, default_value_t = 8)]
    pool_size: usize,
    /// Revoke a connection held longer than this, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    max_hold_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The pool's events (revocations, failed connects, overload) go to
    // stderr.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = ServiceConfig::default();
    config.listen = args.listen;
    config.pool_size = args.pool_size;
    config.max_hold = Duration::from_millis(args.max_hold_ms);

    let url = args
        .database_url
        .or_else(|| std::env::var("STORMPOOL_PG_URL").ok())
        .or_else(|| std::env::var("DATABASE_URL").ok());
    match url {
        Some(url) => {
            let manager = PgManager::from_url(&url)?;
            run(Service::start(manager, config).await?, "PostgreSQL").await
        }
        None => {
            let sim = SimConfig {
                service_time: Duration::from_millis(5),
                service_jitter: 0.5,
                ..SimConfig::default()
            };
            let manager = SimManager::new(sim);
            run(
                Service::start(manager, config).await?,
                "the simulated database",
            )
            .await
        }
    }
}

async fn run<M: stormpool::Manager>(
    service: Service<M>,
    database: &str,
) -> Result<(), Box<dyn Error>> {
    println!(
        "serving {database} on http://{}  (/healthz /readyz /metrics /query); Ctrl-C stops",
        service.addr()
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping: finishing the requests in flight");
    service.shutdown().await?;
    Ok(())
}
