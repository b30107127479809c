//! The `service` example on loopback, called over real HTTP: its probes,
//! its metrics, and its readiness through a wedge of the pool (deadlocked
//! queries hold every connection) and the recovery after it.
//!
//! Real sockets do not run under tokio's paused clock, so these tests use
//! real time. Every wait is a bounded poll (a condition checked every
//! 20 ms, failing the test after a generous bound), never a sleep standing
//! in for synchronisation, and no assertion compares two durations beyond
//! "returned within its bound".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stormpool::sim::{SimConfig, SimManager};
use stormpool::Manager;
use stormpool_examples::service::{
    QueryBackend, Service, ServiceConfig, DEADLINE_HEADER, PRIORITY_HEADER, TENANT_HEADER,
};
use stormpool_postgres::PgManager;

/// The bound of one HTTP exchange: far beyond any deadline a test sends.
const EXCHANGE_BOUND: Duration = Duration::from_secs(10);
/// The bound of a wait for a condition that needs a tick or two of the
/// pool's maintenance (about 1 s apart when the pool is idle).
const CONDITION_BOUND: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// The series the service must export for its pool: one of each kind, from
/// the table in `stormpool/src/pool/observe.rs`.
const SERIES: [&str; 8] = [
    "stormpool_acquires_total",
    "stormpool_connects_total",
    "stormpool_connections",
    "stormpool_waiting",
    "stormpool_max_size",
    "stormpool_ready",
    "stormpool_hold_seconds",
    "stormpool_connect_seconds",
];

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// A plain HTTP/1 client for one service.
#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: String,
}

impl Http {
    fn new<M: Manager>(service: &Service<M>) -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{}", service.addr()),
        }
    }

    /// `GET path` with `headers`; panics past [`EXCHANGE_BOUND`].
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).unwrap();
        let exchange = async {
            let response = self.client.request(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        };
        tokio::time::timeout(EXCHANGE_BOUND, exchange)
            .await
            .unwrap_or_else(|_| panic!("GET {path} took longer than {EXCHANGE_BOUND:?}"))
    }

    /// Polls `GET path` until `done` accepts the reply; panics past
    /// [`CONDITION_BOUND`], showing the last reply.
    async fn poll(&self, path: &str, what: &str, done: impl Fn(&Reply) -> bool) -> Reply {
        let start = Instant::now();
        loop {
            let reply = self.get(path, &[]).await;
            if done(&reply) {
                return reply;
            }
            assert!(
                start.elapsed() < CONDITION_BOUND,
                "{what}: not within {CONDITION_BOUND:?}; last reply {reply:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `/readyz` until it answers `status`, and prints how long
    /// after `since` that was.
    async fn readiness(&self, status: StatusCode, what: &str, since: Instant) -> Reply {
        let reply = self
            .poll("/readyz", what, |reply| reply.status == status)
            .await;
        println!(
            "{what}: /readyz {} after {:?}: {}",
            status.as_u16(),
            since.elapsed(),
            reply.body
        );
        reply
    }
}

/// Checks that a request the service could not serve in time was refused
/// (503 with a `Retry-After` of at least 1 s) or timed out (504).
fn assert_turned_away(reply: &Reply) {
    match reply.status {
        StatusCode::SERVICE_UNAVAILABLE => {
            let after = reply.headers.get(RETRY_AFTER).expect("Retry-After");
            assert!(after.to_str().unwrap().parse::<u64>().unwrap() >= 1);
        }
        StatusCode::GATEWAY_TIMEOUT => {}
        other => panic!("expected 503 or 504, got {other}: {reply:?}"),
    }
}

/// The value of the series `name` with exactly the labels `labels`, from
/// Prometheus text.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&key))
        .and_then(|value| value.trim().parse().ok())
}

/// Whether the Prometheus text has a sample of `name` (a histogram's
/// `_bucket`, `_sum` and `_count` count) for the pool `pool`.
fn has_series(text: &str, name: &str, pool: &str) -> bool {
    let label = format!("pool=\"{pool}\"");
    text.lines().any(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(['{', '_']) && rest.contains(&label))
    })
}

fn config(pool: &str) -> ServiceConfig {
    let mut config = ServiceConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.pool_name = pool.to_owned();
    config.pool_size = 2;
    config.max_hold = Duration::from_millis(300);
    config.max_deadline = Duration::from_secs(10);
    config
}

async fn start<M: QueryBackend>(manager: M, config: ServiceConfig) -> (Service<M>, Http) {
    let service = Service::start(manager, config).await.unwrap();
    let http = Http::new(&service);
    (service, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_wedged_pool_and_its_recovery() {
    const POOL: &str = "wedge";
    let manager = SimManager::new(SimConfig::default());
    let db = Arc::clone(manager.db());
    let (service, http) = start(manager, config(POOL)).await;
    let test_start = Instant::now();

    // Liveness, readiness, one query.
    let live = http.get("/healthz", &[]).await;
    assert_eq!((live.status, live.body.as_str()), (StatusCode::OK, "ok"));
    let ready = http.get("/readyz", &[]).await;
    assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
    let served = http
        .get(
            "/query",
            &[(TENANT_HEADER, "acme"), (PRIORITY_HEADER, "critical")],
        )
        .await;
    assert_eq!(served.status, StatusCode::OK, "{served:?}");
    assert!(
        served.body.contains(r#""priority":"critical""#),
        "{served:?}"
    );
    assert!(served.body.contains(&format!(r#""pool":"{POOL}""#)));

    // The documented series, labelled with the pool's name. Counters and
    // gauges are published by the pool's maintenance task: the query shows
    // in them at its next tick.
    let pool_label = format!("pool=\"{POOL}\"");
    let acquired = |text: &str| {
        ["direct", "waited"]
            .iter()
            .filter_map(|outcome| {
                let labels = format!("{pool_label},outcome=\"{outcome}\"");
                sample(text, "stormpool_acquires_total", &labels)
            })
            .sum::<f64>()
    };
    let metrics = http
        .poll("/metrics", "the pool's series, with the query", |reply| {
            SERIES
                .iter()
                .all(|name| has_series(&reply.body, name, POOL))
                && acquired(&reply.body) >= 1.0
        })
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
    let content_type = metrics.headers.get(CONTENT_TYPE).unwrap();
    assert!(content_type.to_str().unwrap().starts_with("text/plain"));
    assert_eq!(
        sample(&metrics.body, "stormpool_ready", &pool_label),
        Some(1.0)
    );
    assert!(metrics
        .body
        .contains("# TYPE stormpool_hold_seconds histogram"));
    println!("probes, query and metrics: {:?}", test_start.elapsed());

    // The wedge: every query hangs until cancelled, and critical requests
    // (never shed) keep arriving, as edits behind deadlocked queries do.
    db.set_hang(true);
    let wedge_start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, stop) = (http.clone(), Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let headers = [(PRIORITY_HEADER, "critical"), (DEADLINE_HEADER, "5000")];
                statuses.push(http.get("/query", &headers).await.status);
            }
            statuses
        }));
    }
    let unready = http
        .readiness(StatusCode::SERVICE_UNAVAILABLE, "wedged", wedge_start)
        .await;
    assert!(unready.body.starts_with("unhealthy"), "{unready:?}");

    // A sheddable request during the wedge is turned away or times out at
    // its deadline; it does not hang.
    let asked = Instant::now();
    let shed = http
        .get(
            "/query",
            &[(PRIORITY_HEADER, "sheddable"), (DEADLINE_HEADER, "300")],
        )
        .await;
    let took = asked.elapsed();
    println!(
        "sheddable query while wedged: {} in {took:?}: {}",
        shed.status, shed.body
    );
    assert_turned_away(&shed);
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Recovery: the database answers again; max_hold revokes the stuck
    // queries and the pool serves the waiting ones.
    stop.store(true, Ordering::SeqCst);
    db.set_hang(false);
    http.readiness(StatusCode::OK, "recovered", Instant::now())
        .await;
    let mut statuses = Vec::new();
    for worker in load {
        let worker = tokio::time::timeout(EXCHANGE_BOUND, worker).await;
        statuses.extend(worker.expect("load worker bounded").unwrap());
    }
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    println!(
        "wedge load: {} requests: {} ok, {} timed out or revoked (504), {} refused (503)",
        statuses.len(),
        count(StatusCode::OK),
        count(StatusCode::GATEWAY_TIMEOUT),
        count(StatusCode::SERVICE_UNAVAILABLE)
    );
    // A revoked query answers 504, never a database error (502).
    assert!(count(StatusCode::GATEWAY_TIMEOUT) >= 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::OK,
            StatusCode::GATEWAY_TIMEOUT,
            StatusCode::SERVICE_UNAVAILABLE
        ]
        .contains(s)),
        "{statuses:?}"
    );
    let served = http.get("/query", &[]).await;
    assert_eq!(served.status, StatusCode::OK, "{served:?}");

    // The incident is in the metrics.
    http.poll("/metrics", "revocations counted", |reply| {
        sample(&reply.body, "stormpool_revoked_total", &pool_label) >= Some(1.0)
            && sample(&reply.body, "stormpool_ready", &pool_label) == Some(1.0)
    })
    .await;

    tokio::time::timeout(EXCHANGE_BOUND, service.shutdown())
        .await
        .expect("shutdown bounded")
        .unwrap();
    println!("whole test: {:?}", test_start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_turns_requests_away_before_the_pool() {
    let manager = SimManager::new(SimConfig::default());
    let db = Arc::clone(manager.db());
    let mut config = config("gated");
    config.gate_capacity = Some(1);
    config.max_hold = Duration::from_secs(5);
    let (service, http) = start(manager, config).await;

    // One request holds the gate's only permit: its query hangs until the
    // server stops it at the request's deadline.
    db.set_hang(true);
    let holder = {
        let http = http.clone();
        tokio::spawn(async move {
            let headers = [(PRIORITY_HEADER, "critical"), (DEADLINE_HEADER, "1500")];
            http.get("/query", &headers).await
        })
    };
    let started = http
        .poll("/metrics", "the holder in the pool", |_| {
            service.pool().status().in_use == 1
        })
        .await;
    assert_eq!(started.status, StatusCode::OK);

    // The next one waits at the gate, never reaching the pool, and is shed
    // there or times out there.
    let asked = Instant::now();
    let turned = http.get("/query", &[(DEADLINE_HEADER, "1000")]).await;
    println!(
        "at the gate: {} in {:?}: {}",
        turned.status,
        asked.elapsed(),
        turned.body
    );
    assert!(turned.body.starts_with("gate:"), "{turned:?}");
    assert_turned_away(&turned);
    let counters = service.pool().status().counters;
    assert_eq!(counters.acquired_direct + counters.acquired_waited, 1);

    let held = tokio::time::timeout(EXCHANGE_BOUND, holder)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.status, StatusCode::GATEWAY_TIMEOUT, "{held:?}");
    assert!(held.body.contains("deadline"), "{held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_are_refused_before_the_pool() {
    let (service, http) = start(SimManager::new(SimConfig::default()), config("headers")).await;
    for (name, value) in [
        (PRIORITY_HEADER, "urgent"),
        (DEADLINE_HEADER, "soon"),
        (DEADLINE_HEADER, "-1"),
    ] {
        let reply = http.get("/query", &[(name, value)]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}: {value}");
        assert!(reply.body.contains(name), "{reply:?}");
    }
    let counters = service.pool().status().counters;
    assert_eq!(counters.acquired_direct + counters.acquired_waited, 0);
    assert_eq!(counters.timed_out + counters.shed, 0);
    // A deadline already passed is answered at once, never served late.
    let late = http.get("/query", &[(DEADLINE_HEADER, "0")]).await;
    assert_eq!(late.status, StatusCode::GATEWAY_TIMEOUT, "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_not_ready_and_answers_502() {
    // Port 1 on loopback: nothing listens, connects are refused at once.
    let manager = PgManager::from_url("postgres://root@127.0.0.1:1/test").unwrap();
    let (_service, http) = start(manager, config("unreachable")).await;

    // min_idle keeps connecting in the background: readiness knows before
    // any request does.
    let unready = http
        .poll("/readyz", "503 without a database", |reply| {
            reply.status == StatusCode::SERVICE_UNAVAILABLE
        })
        .await;
    assert!(unready.body.contains("database unreachable"), "{unready:?}");
    let live = http.get("/healthz", &[]).await;
    assert_eq!(live.status, StatusCode::OK, "liveness never reads the pool");
    let failed = http.get("/query", &[]).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{failed:?}");
    assert!(!failed.body.contains("127.0.0.1"), "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queries_and_readiness() {
    let Some(url) = stormpool_testkit::db::pg_url() else {
        return;
    };
    let manager = PgManager::from_url(&url).unwrap();
    let (service, http) = start(manager, config("postgres")).await;
    let served = http.get("/query", &[(DEADLINE_HEADER, "2000")]).await;
    assert_eq!(served.status, StatusCode::OK, "{served:?}");
    assert!(served.body.contains("SELECT 1 returned 1"), "{served:?}");
    let ready = http.get("/readyz", &[]).await;
    assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
    http.poll("/metrics", "the PostgreSQL pool's series", |reply| {
        has_series(&reply.body, "stormpool_hold_seconds", "postgres")
            && has_series(&reply.body, "stormpool_ready", "postgres")
    })
    .await;
    tokio::time::timeout(EXCHANGE_BOUND, service.shutdown())
        .await
        .expect("shutdown bounded")
        .unwrap();
}
