//! PostgreSQL, then Redis, unreachable for a minute (`SIGIL_TEST_OUTAGE_SECS`, 60 by default)
//! while four clients load the server, through the TCP proxy of `database.rs`. What needs the
//! dependency answers 503 with `Retry-After` (never a 500, never an answer that forgets: a
//! revoked token is never active, a wrong secret is never let through uncounted); what does
//! not need it keeps answering 200; `/readyz` fails within 5 s of the cut and is ready again
//! within 10 s of the repair, without a restart. Prints the figures for docs/reliability.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::database::Proxy;
use crate::helpers::*;
use serde_json::Value;

fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("SIGIL_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
}

/// The load sends a few thousand requests a minute per client: over the default per-client
/// limits, which are not what this test is about.
fn limits() -> Vec<(String, String)> {
    [
        ("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "1000000/1m"),
        ("SIGIL_RATE_LIMITS_INTROSPECT_PER_CLIENT", "1000000/1m"),
        // Wrong secrets are still counted (in shared state) but never refuse the address,
        // which would refuse the other clients of the test, all on 127.0.0.1.
        (
            "SIGIL_RATE_LIMITS_CLIENT_AUTH_FAILURES_PER_IP",
            "1000000/1m",
        ),
        ("SIGIL_RATE_LIMITS_FAILURES_PER_IP", "1000000/1m"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// One answer: when (since the load started), which request, its status, whether it had
/// `Retry-After`, and whether an introspection said `active: true`.
#[derive(Debug, Clone)]
struct Answer {
    at: Duration,
    class: &'static str,
    status: u16,
    retry_after: bool,
    active: bool,
}

type Send = Arc<
    dyn Fn() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = reqwest::Response> + std::marker::Send>,
        > + std::marker::Send
        + Sync,
>;

/// Run `classes` in a loop each (one task per class) until `stop`; every answer is recorded.
fn load(
    classes: Vec<(&'static str, Send)>,
    stop: Arc<AtomicBool>,
    t0: Instant,
) -> tokio::task::JoinHandle<Vec<Answer>> {
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for (class, send) in classes {
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let resp = send().await;
                    let status = resp.status().as_u16();
                    let retry_after = resp.headers().contains_key("retry-after");
                    let active = if class.starts_with("introspect") && status == 200 {
                        resp.json::<Value>()
                            .await
                            .map(|v| v["active"] == true)
                            .unwrap_or(false)
                    } else {
                        let _ = resp.bytes().await;
                        false
                    };
                    out.push(Answer {
                        at: t0.elapsed(),
                        class,
                        status,
                        retry_after,
                        active,
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    })
}

/// Poll `/readyz` every 100 ms from `from` until it answers `want`; how long that took.
async fn readyz_becomes(app: &TestApp, want: u16, limit: Duration) -> Option<Duration> {
    let from = Instant::now();
    while from.elapsed() < limit {
        if app.get("/readyz").await.status() == want {
            return Some(from.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Counts per (phase, class, status) and the checks every phase must pass.
fn report(name: &str, answers: &[Answer], cut: Duration, restored: Duration) -> String {
    let mut counts: BTreeMap<(&str, &str, u16), usize> = BTreeMap::new();
    for a in answers {
        let phase = if a.at < cut {
            "before"
        } else if a.at < restored {
            "outage"
        } else {
            "after"
        };
        *counts.entry((phase, a.class, a.status)).or_default() += 1;
        assert!(
            a.status != 500,
            "{name}: a 500 at {:?} on {}",
            a.at,
            a.class
        );
        if a.status == 503 {
            assert!(
                a.retry_after,
                "{name}: 503 without Retry-After on {}",
                a.class
            );
        }
        assert!(
            !(a.class == "introspect revoked" && a.active),
            "{name}: a revoked token was active at {:?}",
            a.at
        );
    }
    let mut lines = vec![format!("{name}:")];
    for ((phase, class, status), n) in &counts {
        lines.push(format!("  {phase:<6} {class:<22} {status} x {n}"));
    }
    lines.join("\n")
}

/// What one outage run came to: every answer, when the cut and the repair happened (since the
/// load started), and how long `/readyz` took to fail and to recover.
struct Run {
    answers: Vec<Answer>,
    cut: Duration,
    restored: Duration,
}

/// Load `app` with `classes`, cut `proxy` for [`outage`], restore it, let the load settle,
/// print the figures under `name`, and check `/readyz` failed within 5 s of the cut and was
/// ready within 10 s of the repair.
async fn outage_under_load(
    name: &str,
    app: &TestApp,
    proxy: &Proxy,
    classes: Vec<(&'static str, Send)>,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let running = load(classes, stop.clone(), t0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cut = t0.elapsed();
    proxy.cut();
    let unready = readyz_becomes(app, 503, Duration::from_secs(10)).await;
    tokio::time::sleep(outage().saturating_sub(t0.elapsed() - cut)).await;
    let restored = t0.elapsed();
    proxy.restore();
    let ready = readyz_becomes(app, 200, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = running.await.unwrap();
    let table = report(name, &answers, cut, restored);
    println!(
        "{table}\n  /readyz 503 after {unready:?} of the cut; 200 after {ready:?} of the repair"
    );
    let unready = unready.expect("/readyz failed during the outage");
    assert!(
        unready <= Duration::from_secs(5),
        "/readyz 503 after {unready:?}"
    );
    let ready = ready.expect("/readyz ready again after the repair");
    assert!(
        ready <= Duration::from_secs(10),
        "/readyz 200 after {ready:?}"
    );
    Run {
        answers,
        cut,
        restored,
    }
}

/// Every class answers 200 at the end of the run (after the settling time).
fn all_recovered(answers: &[Answer], classes: &[&str], since: Duration) {
    for c in classes {
        let last: Vec<&Answer> = answers
            .iter()
            .filter(|a| a.class == *c && a.at >= since)
            .collect();
        assert!(!last.is_empty(), "{c}: no answer after recovery");
        assert!(
            last.iter().all(|a| a.status == 200),
            "{c}: not recovered: {:?}",
            last.iter().map(|a| a.status).collect::<Vec<_>>()
        );
    }
}

async fn introspect(app: &TestApp, who: &TestClient, token: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/introspect", app.address))
        .basic_auth(&who.id, who.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn access_token(app: &TestApp, c: &TestClient) -> String {
    let resp = app.token_for(c, None).await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn class<F, Fut>(f: F) -> Send
where
    F: Fn() -> Fut + std::marker::Send + Sync + 'static,
    Fut: std::future::Future<Output = reqwest::Response> + std::marker::Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_for_a_minute_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, dir.path());
    let proxy = Proxy::start("127.0.0.1:5432".to_owned()).await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let user = pg_base_url()
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let app = Arc::new(
        spawn_app_with(
            Backend::Postgres,
            AppOptions {
                db: Some(db),
                server_database_url: Some(format!(
                    "postgres://{user}@127.0.0.1:{}/{name}",
                    proxy.port
                )),
                env: limits(),
                shared_state: None,
            },
        )
        .await,
    );
    let service = app.service_client();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let live = access_token(&app, &service).await;
    let revoked = access_token(&app, &service).await;
    let resp = app
        .client
        .post(format!("{}/revoke", app.address))
        .basic_auth(&service.id, service.secret.as_deref())
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (a1, s1) = (app.clone(), service.clone());
    let (a2, s2, l2) = (app.clone(), service.clone(), live.clone());
    let (a3, s3, r3) = (app.clone(), service.clone(), revoked.clone());
    let a4 = app.clone();
    let Run {
        answers,
        cut,
        restored,
    } = outage_under_load(
        "PostgreSQL unreachable",
        &app,
        &proxy,
        vec![
            (
                "token (cached client)",
                class(move || {
                    let (a, s) = (a1.clone(), s1.clone());
                    async move { a.token_for(&s, None).await }
                }),
            ),
            (
                "introspect live",
                class(move || {
                    let (a, s, t) = (a2.clone(), s2.clone(), l2.clone());
                    async move { introspect(&a, &s, &t).await }
                }),
            ),
            (
                "introspect revoked",
                class(move || {
                    let (a, s, t) = (a3.clone(), s3.clone(), r3.clone());
                    async move { introspect(&a, &s, &t).await }
                }),
            ),
            (
                "jwks",
                class(move || {
                    let a = a4.clone();
                    async move { a.get("/jwks.json").await }
                }),
            ),
        ],
    )
    .await;
    // During the outage: keys and cached clients are served from memory; introspection
    // needs the revocation list and is refused, never answered from a guess.
    for a in answers
        .iter()
        .filter(|a| a.at > cut + Duration::from_secs(6) && a.at < restored)
    {
        match a.class {
            "jwks" | "token (cached client)" => assert_eq!(a.status, 200, "{a:?}"),
            _ => assert_eq!(a.status, 503, "{a:?}"),
        }
    }
    all_recovered(
        &answers,
        &[
            "token (cached client)",
            "introspect live",
            "introspect revoked",
            "jwks",
        ],
        restored + Duration::from_secs(10),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_for_a_minute_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, dir.path());
    let target = redis_url()
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(target).await;
    let app = Arc::new(
        spawn_app_with(
            Backend::Postgres,
            AppOptions {
                db: Some(db),
                server_database_url: None,
                env: [
                    redis_env(&format!("redis://127.0.0.1:{}", proxy.port)).await,
                    limits(),
                ]
                .concat(),
                shared_state: None,
            },
        )
        .await,
    );
    let service = app.service_client();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let live = access_token(&app, &service).await;
    let wrong = TestClient {
        id: service.id.clone(),
        secret: Some("sigil_secret_wrong".to_owned()),
    };

    let (a1, s1) = (app.clone(), service.clone());
    let (a2, s2, l2) = (app.clone(), service.clone(), live.clone());
    let (a3, w3) = (app.clone(), wrong.clone());
    let a4 = app.clone();
    let Run {
        answers,
        cut,
        restored,
    } = outage_under_load(
        "Redis unreachable",
        &app,
        &proxy,
        vec![
            (
                "token (cached client)",
                class(move || {
                    let (a, s) = (a1.clone(), s1.clone());
                    async move { a.token_for(&s, None).await }
                }),
            ),
            (
                "introspect live",
                class(move || {
                    let (a, s, t) = (a2.clone(), s2.clone(), l2.clone());
                    async move { introspect(&a, &s, &t).await }
                }),
            ),
            (
                "token (wrong secret)",
                class(move || {
                    let (a, w) = (a3.clone(), w3.clone());
                    async move { a.token_for(&w, None).await }
                }),
            ),
            (
                "discovery",
                class(move || {
                    let a = a4.clone();
                    async move { a.get("/.well-known/openid-configuration").await }
                }),
            ),
        ],
    )
    .await;
    for a in answers
        .iter()
        .filter(|a| a.at > cut + Duration::from_secs(6) && a.at < restored)
    {
        match a.class {
            // A failed authentication is counted where every replica sees it, or refused.
            "token (wrong secret)" => assert_eq!(a.status, 503, "{a:?}"),
            _ => assert_eq!(a.status, 200, "{a:?}"),
        }
    }
    // Outside the outage a wrong secret is 401.
    for a in answers.iter().filter(|a| {
        a.class == "token (wrong secret)"
            && (a.at < cut || a.at > restored + Duration::from_secs(10))
    }) {
        assert_eq!(a.status, 401, "{a:?}");
    }
    all_recovered(
        &answers,
        &["token (cached client)", "introspect live", "discovery"],
        restored + Duration::from_secs(10),
    );
}
