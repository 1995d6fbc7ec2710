//! One behaviour suite for the shared state (`sigil::cache::Cache`), run on every backend: in
//! process, PostgreSQL (a fresh database per test, migrated by Sigil) and Redis (a fresh key
//! namespace per test on 127.0.0.1:6379, or `SIGIL_TEST_REDIS_URL`). A PostgreSQL or Redis that
//! is not there fails the test with how to start it; nothing is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::{Connection, RunQueryDsl};
use sigil::cache::{Bounds, Cache, CacheError, Choice, RateQuota};
use sigil::store::Store;

fn random_name() -> String {
    sigil::crypto::random_b64(9)
        .to_lowercase()
        .replace(['-', '_'], "x")
}

fn pg_base_url() -> String {
    std::env::var("SIGIL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn redis_url() -> String {
    std::env::var("SIGIL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A fresh PostgreSQL database with Sigil's schema, dropped with the guard.
struct PgDb {
    name: String,
    store: Store,
}

impl PgDb {
    fn new() -> PgDb {
        let admin_url = format!("{}/postgres", pg_base_url());
        let mut admin = diesel::PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for the cache suite and is not reachable at {admin_url} ({e}).\n\
                 Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
                 or point SIGIL_TEST_POSTGRES_URL at a server (a user allowed to CREATE DATABASE)."
            )
        });
        let name = format!("sigil_cache_{}", random_name());
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
        let url = format!("{}/{name}", pg_base_url());
        let store = Store::open(&url, 20, Duration::from_secs(2), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}"));
        store.migrate().unwrap_or_else(|e| panic!("migrate: {e}"));
        PgDb { name, store }
    }

    fn cache(&self, namespace: &str) -> Cache {
        Cache::postgres(self.store.clone(), namespace)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = diesel::PgConnection::establish(&format!("{}/postgres", pg_base_url())) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut c);
        }
    }
}

/// A Redis cache in a namespace of its own (tests run in parallel on one Redis).
async fn redis_cache(namespace: &str) -> Cache {
    let url = redis_url();
    let cache = Cache::redis(&url, namespace).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = cache.ping().await {
        panic!(
            "Redis is required for the cache suite and is not reachable at {url} ({e}).\n\
             Start it with: redis-server --daemonize yes --port 6379 --save '' --appendonly no\n\
             or point SIGIL_TEST_REDIS_URL at a server (Redis 6.2 or later)."
        );
    }
    cache
}

fn namespace() -> String {
    format!("sigil_test_{}:", random_name())
}

/// Declare a test that runs on every backend.
macro_rules! on_every_backend {
    ($name:ident, |$cache:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($cache: Arc<Cache>) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn in_process() {
                run(Arc::new(Cache::in_process(namespace(), Bounds::default()))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = PgDb::new();
                run(Arc::new(db.cache(&namespace()))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis() {
                run(Arc::new(redis_cache(&namespace()).await)).await;
            }
        }
    };
}

/// Unix seconds in the tests: far from real time, so a backend that used its own clock fails.
const NOW: i64 = 1_000;

on_every_backend!(a_marker_is_recorded_once_until_it_expires, |c| {
    assert!(c.insert_if_absent("jti:a", NOW + 60, NOW).await.unwrap());
    assert!(
        !c.insert_if_absent("jti:a", NOW + 60, NOW + 59)
            .await
            .unwrap(),
        "replay"
    );
    assert!(
        c.insert_if_absent("jti:a", NOW + 200, NOW + 60)
            .await
            .unwrap(),
        "expired by the caller's clock: recorded anew"
    );
    assert!(
        !c.insert_if_absent("jti:a", NOW + 200, NOW + 61)
            .await
            .unwrap()
    );
    assert!(
        c.insert_if_absent("jti:b", NOW + 60, NOW).await.unwrap(),
        "another key"
    );
    // Any live entry counts as present.
    c.put("jti:c", b"v".to_vec(), NOW + 60, NOW).await.unwrap();
    assert!(!c.insert_if_absent("jti:c", NOW + 60, NOW).await.unwrap());
});

on_every_backend!(a_value_is_taken_once, |c| {
    c.put("code:x", b"grant".to_vec(), NOW + 60, NOW)
        .await
        .unwrap();
    assert_eq!(
        c.get("code:x", NOW + 1).await.unwrap(),
        Some(b"grant".to_vec())
    );
    assert_eq!(
        c.get("code:x", NOW + 1).await.unwrap(),
        Some(b"grant".to_vec()),
        "get leaves it"
    );
    assert_eq!(
        c.take("code:x", NOW + 1).await.unwrap(),
        Some(b"grant".to_vec())
    );
    assert_eq!(c.take("code:x", NOW + 1).await.unwrap(), None, "single use");
    assert_eq!(c.get("code:x", NOW + 1).await.unwrap(), None);
    // Expired by the caller's clock, whatever the backend still holds.
    c.put("code:y", b"v".to_vec(), NOW + 60, NOW).await.unwrap();
    assert_eq!(c.get("code:y", NOW + 60).await.unwrap(), None);
    assert_eq!(c.take("code:y", NOW + 60).await.unwrap(), None);
    // put replaces, with the new expiry; binary values come back as they went in.
    let binary = vec![0u8, b'\n', 255, 10, 13];
    c.put("code:z", b"old".to_vec(), NOW + 10, NOW)
        .await
        .unwrap();
    c.put("code:z", binary.clone(), NOW + 100, NOW)
        .await
        .unwrap();
    assert_eq!(c.get("code:z", NOW + 50).await.unwrap(), Some(binary));
    c.put("code:e", Vec::new(), NOW + 10, NOW).await.unwrap();
    assert_eq!(
        c.get("code:e", NOW).await.unwrap(),
        Some(Vec::new()),
        "empty is a value"
    );
});

on_every_backend!(counters_count_within_their_window, |c| {
    assert_eq!(c.incr("login_fail:alice", NOW + 100, NOW).await.unwrap(), 1);
    assert_eq!(
        c.incr("login_fail:alice", NOW + 500, NOW + 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        c.incr("login_fail:alice", NOW + 500, NOW + 99)
            .await
            .unwrap(),
        3,
        "the first event's window holds"
    );
    assert_eq!(
        c.incr("login_fail:alice", NOW + 300, NOW + 100)
            .await
            .unwrap(),
        1,
        "a new window"
    );
    assert_eq!(c.incr("login_fail:bob", NOW + 100, NOW).await.unwrap(), 1);
    // Neither counters nor markers are values; take removes them all the same.
    assert_eq!(c.get("login_fail:alice", NOW + 101).await.unwrap(), None);
    assert_eq!(c.take("login_fail:alice", NOW + 101).await.unwrap(), None);
    assert_eq!(
        c.incr("login_fail:alice", NOW + 300, NOW + 101)
            .await
            .unwrap(),
        1
    );
    c.insert_if_absent("jti:m", NOW + 100, NOW).await.unwrap();
    assert_eq!(c.get("jti:m", NOW).await.unwrap(), None);
});

on_every_backend!(racing_callers_have_exactly_one_winner, |c| {
    const N: usize = 24;
    c.put("code:race", b"once".to_vec(), NOW + 60, NOW)
        .await
        .unwrap();
    let takes: Vec<_> = (0..N)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.take("code:race", NOW).await.unwrap() })
        })
        .collect();
    let inserts: Vec<_> = (0..N)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(
                async move { c.insert_if_absent("jti:race", NOW + 60, NOW).await.unwrap() },
            )
        })
        .collect();
    let counts: Vec<_> = (0..N)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.incr("login_ip:race", NOW + 60, NOW).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in takes {
        taken += usize::from(t.await.unwrap().is_some());
    }
    let mut recorded = 0;
    for t in inserts {
        recorded += usize::from(t.await.unwrap());
    }
    let mut seen = HashSet::new();
    for t in counts {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(taken, 1, "one take gets the value");
    assert_eq!(recorded, 1, "one insert records the marker");
    assert_eq!(
        seen,
        (1..=N as u64).collect::<HashSet<_>>(),
        "every count once"
    );
});

fn at(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW as u64) + Duration::from_secs_f64(secs)
}

on_every_backend!(the_rate_limit_is_the_same_gcra_everywhere, |c| {
    // 3 per 3 s: a burst of 3, then one a second.
    let q = RateQuota::new(3, Duration::from_secs(3)).unwrap();
    for (i, remaining) in [2, 1, 0].into_iter().enumerate() {
        let d = c.rate_limit("rate_token:c1", q, at(0.0)).await.unwrap();
        assert!(d.allowed, "burst request {i}");
        assert_eq!((d.limit, d.remaining), (3, remaining));
        assert_eq!(d.retry_after, Duration::ZERO);
        assert_eq!(d.reset_at, NOW + 1 + i as i64, "full again at the TAT");
    }
    let d = c.rate_limit("rate_token:c1", q, at(0.25)).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert_eq!(d.retry_after, Duration::from_millis(750));
    assert_eq!(d.retry_after_secs(), 1);
    assert_eq!(d.reset_at, NOW + 3);
    // A refusal does not count: one second after the burst, one passes again.
    let d = c.rate_limit("rate_token:c1", q, at(1.0)).await.unwrap();
    assert!(d.allowed);
    assert_eq!((d.remaining, d.reset_at), (0, NOW + 4));
    assert!(
        !c.rate_limit("rate_token:c1", q, at(1.5))
            .await
            .unwrap()
            .allowed
    );
    // Another key has its own limit.
    assert!(
        c.rate_limit("rate_token:c2", q, at(1.5))
            .await
            .unwrap()
            .allowed
    );
    // Long after, as good as new.
    let d = c.rate_limit("rate_token:c1", q, at(60.0)).await.unwrap();
    assert_eq!((d.allowed, d.remaining), (true, 2));
});

on_every_backend!(racing_requests_never_pass_the_limit, |c| {
    let q = RateQuota::per_minute(5).unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.rate_limit("rate_login:ip", q, at(0.0)).await.unwrap() })
        })
        .collect();
    let mut allowed = 0;
    let mut remaining = HashSet::new();
    for t in tasks {
        let d = t.await.unwrap();
        if d.allowed {
            allowed += 1;
            remaining.insert(d.remaining);
        }
    }
    assert_eq!(allowed, 5);
    assert_eq!(
        remaining,
        (0..5).collect::<HashSet<u32>>(),
        "each figure once"
    );
});

on_every_backend!(pruning_forgets_only_what_expired, |c| {
    for i in 0..3 {
        c.put(&format!("pending:{i}"), vec![1], NOW + 10, NOW)
            .await
            .unwrap();
    }
    c.put("pending:live", vec![1], NOW + 100, NOW)
        .await
        .unwrap();
    c.rate_limit("rate_token:p", RateQuota::per_minute(60).unwrap(), at(0.0))
        .await
        .unwrap();
    let pruned = c.prune(NOW + 10).await.unwrap();
    match c.choice() {
        // Redis expires keys itself.
        Choice::Redis => assert_eq!(pruned, 0),
        // Three entries and the rate-limit state whose TAT (NOW + 1) passed.
        _ => assert_eq!(pruned, 4),
    }
    assert_eq!(
        c.get("pending:live", NOW + 10).await.unwrap(),
        Some(vec![1])
    );
    assert!(c.ping().await.is_ok());
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_keep_deployments_apart_on_one_backend() {
    let db = PgDb::new();
    let pairs = [
        (db.cache("one:"), db.cache("two:")),
        (
            redis_cache(&namespace()).await,
            redis_cache(&namespace()).await,
        ),
    ];
    for (one, two) in pairs {
        one.put("code:x", b"1".to_vec(), NOW + 60, NOW)
            .await
            .unwrap();
        assert_eq!(
            two.get("code:x", NOW).await.unwrap(),
            None,
            "{:?}",
            two.choice()
        );
        assert!(two.insert_if_absent("code:x", NOW + 60, NOW).await.unwrap());
        assert_eq!(one.take("code:x", NOW).await.unwrap(), Some(b"1".to_vec()));
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_backend_refuses_quickly_and_never_answers_absent() {
    let redis = Cache::redis(&format!("redis://127.0.0.1:{}", closed_port()), "x:").unwrap();
    let pg_url = format!("postgres://postgres@127.0.0.1:{}/none", closed_port());
    let pg = Cache::postgres(
        Store::open(&pg_url, 2, Duration::from_secs(1), Duration::from_secs(1)).unwrap(),
        "x:",
    );
    for c in [redis, pg] {
        let started = std::time::Instant::now();
        let unavailable = |r: Result<_, CacheError>| matches!(r, Err(CacheError::Unavailable(_)));
        assert!(unavailable(c.ping().await.map(|_| ())), "{:?}", c.choice());
        assert!(unavailable(c.get("revoked_at:j", NOW).await.map(|_| ())));
        assert!(unavailable(c.take("code:x", NOW).await.map(|_| ())));
        assert!(unavailable(
            c.insert_if_absent("jti:x", NOW + 1, NOW).await.map(|_| ())
        ));
        assert!(unavailable(
            c.incr("login_ip:x", NOW + 1, NOW).await.map(|_| ())
        ));
        let q = RateQuota::per_minute(1).unwrap();
        assert!(unavailable(
            c.rate_limit("rate:x", q, at(0.0)).await.map(|_| ())
        ));
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?} took {:?}",
            c.choice(),
            started.elapsed()
        );
    }
}
