//! Several servers on one database (and Redis): each step of a flow sent to a different
//! replica, and the same request raced at two replicas at once. Run on PostgreSQL alone and on
//! PostgreSQL + Redis (`replica_test!`); SQLite is one server. And a rolling restart of two
//! `sigil serve` processes under load, on PostgreSQL alone, counting failed requests.

use crate::flow::{
    PASSWORD, authorize_url, browser, code_tokens, create_user, exchange_code, hidden, location,
    pkce, query_param, refresh, web_client,
};
use crate::helpers::*;
use crate::replica_test;
use crate::token::private_key_jwt::{assertion, client_with_key};
use serde_json::Value;
use std::time::Duration;

fn refresh_client(app: &TestApp) -> TestClient {
    web_client(app, &["--grant", "refresh_token"])
}

/// A code for `user` from the browser `b` (which signs in on `at` the first time, then answers
/// from its session).
async fn code(at: &TestApp, c: &TestClient, user: &str, b: &reqwest::Client) -> (String, String) {
    let p = pkce();
    let url = authorize_url(at, &c.id, &p.challenge, "");
    let resp = b.get(&url).send().await.unwrap();
    let resp = if resp.status() == 303 {
        resp
    } else {
        let html = resp.text().await.unwrap();
        b.post(format!("{}/login", at.address))
            .form(&[
                ("authz", hidden(&html, "authz")),
                ("csrf", hidden(&html, "csrf")),
                ("username", user.to_owned()),
                ("password", PASSWORD.to_owned()),
            ])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(resp.status(), 303);
    (query_param(&location(&resp), "code").unwrap(), p.verifier)
}

replica_test!(each_step_on_another_replica, |app| {
    create_user(&app, "nia");
    let c = refresh_client(&app);
    let b_server = spawn_replica(&app).await;
    // A code issued by one server is redeemed at the other (single redemption across
    // replicas is the race test below; a replay would revoke what the code issued).
    let b = browser();
    let (code1, verifier) = code(&app, &c, "nia", &b).await;
    let resp = exchange_code(&b_server, &c, &code1, &verifier).await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    // Rotation on one, reuse detected on the other.
    let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (s, next) = refresh(&app, &c, &rt0, None).await;
    assert_eq!(s, 200, "{next}");
    let rt1 = next["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&b_server, &c, &rt1, None).await.0, 200);
    assert_eq!(refresh(&b_server, &c, &rt0, None).await.0, 400, "reuse");
    assert_eq!(
        refresh(&app, &c, &rt1, None).await.0,
        400,
        "the family is revoked"
    );

    // A lockout earned on one server holds on the other.
    create_user(&app, "oto");
    let p = pkce();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    let guesser = browser();
    for i in 0..5 {
        let on = if i % 2 == 0 { &app } else { &b_server };
        let html = guesser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let status = guesser
            .post(format!("{}/login", on.address))
            .form(&[
                ("authz", hidden(&html, "authz")),
                ("csrf", hidden(&html, "csrf")),
                ("username", "oto".to_owned()),
                ("password", "not the password!".to_owned()),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let html = guesser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let locked = guesser
        .post(format!("{}/login", b_server.address))
        .form(&[
            ("authz", hidden(&html, "authz")),
            ("csrf", hidden(&html, "csrf")),
            ("username", "oto".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), 401, "locked on every replica");

    // A client assertion accepted by one server is a replay at the other.
    let (pc, key) = client_with_key(&app);
    let a = assertion(
        &key,
        &pc.id,
        &format!("{}/token", app.address),
        "jti-r1",
        60,
    );
    let form = |a: &str| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            (
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion".to_owned(), a.to_owned()),
        ]
    };
    let first = app
        .client
        .post(format!("{}/token", app.address))
        .form(&form(&a))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200, "{}", first.text().await.unwrap());
    let replay = b_server
        .client
        .post(format!("{}/token", b_server.address))
        .form(&form(&a))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "a replay at another replica");
});

// The races send 2000 token requests in well under a minute; the per-client limit
// (`rate_limits.token_per_client`, 500/1m by default) would answer 429 to both, which is not
// what the races test. The replica runs with the same settings (`options().env`).
replica_test!(
    a_refresh_token_raced_at_two_replicas_has_one_successor,
    env: [("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "100000/1m")],
    |app| {
        create_user(&app, "pax");
        let c = refresh_client(&app);
        let other = spawn_replica_with(&app, options().env).await;
        let tokens = code_tokens(&app, &c, "pax", "openid", &browser()).await;
        let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
        let trials = 1000;
        for trial in 0..trials {
            let (a, b) = tokio::join!(refresh(&app, &c, &rt, None), refresh(&other, &c, &rt, None));
            let successors: Vec<&str> = [&a, &b]
                .iter()
                .filter(|(s, _)| *s == 200)
                .map(|(_, body)| body["refresh_token"].as_str().unwrap())
                .collect();
            // The same successor (its id); the two JWTs differ in their signatures.
            let ids: Vec<Value> = successors
                .iter()
                .map(|t| jwt_payload(t)["jti"].clone())
                .collect();
            assert!(!successors.is_empty(), "trial {trial}: {a:?} {b:?}");
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "trial {trial}: two different successors: {ids:?}"
            );
            rt = successors[0].to_owned();
        }
    }
);

replica_test!(
    a_code_raced_at_two_replicas_is_redeemed_once,
    env: [("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "100000/1m")],
    |app| {
    create_user(&app, "quin");
    let c = web_client(&app, &[]);
    let other = spawn_replica_with(&app, options().env).await;
    let b = browser();
    let trials = 1000;
    for trial in 0..trials {
        let (code, verifier) = code(&app, &c, "quin", &b).await;
        let (x, y) = tokio::join!(
            exchange_code(&app, &c, &code, &verifier),
            exchange_code(&other, &c, &code, &verifier)
        );
        let ok = [x.status(), y.status()]
            .iter()
            .filter(|s| **s == 200)
            .count();
        assert_eq!(ok, 1, "trial {trial}: {} and {}", x.status(), y.status());
    }
});

/// A `sigil serve` process of the built binary on `app`'s database, with its master key and
/// issuer: one replica behind the balancer of `a_rolling_restart_under_load_drops_nothing`.
struct Replica {
    name: &'static str,
    port: u16,
    env: Vec<(String, String)>,
    log: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl Replica {
    fn new(app: &TestApp, name: &'static str, env: &[(&str, &str)]) -> Replica {
        let key = std::fs::read_to_string(app.dir.path().join("master.key")).unwrap();
        let dir = app.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut all: Vec<(String, String)> = vec![
            ("SIGIL_DATA_DIR".into(), dir.display().to_string()),
            ("SIGIL_DATABASE_URL".into(), app.db.url.clone()),
            ("SIGIL_MASTER_KEY".into(), key.trim().to_owned()),
            ("SIGIL_ISSUER".into(), app.address.clone()),
            ("SIGIL_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("SIGIL_LOG_LEVEL".into(), "info".into()),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Replica {
            name,
            port,
            env: all,
            log: dir.join("serve.log"),
            child: None,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let url = format!("{}/readyz", self.base());
        for _ in 0..400 {
            if let Ok(r) = http.get(&url).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "replica {} did not become ready: {}",
            self.name,
            self.log_text()
        );
    }

    fn term(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }

    async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "replica {} still running {limit:?} after SIGTERM",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the load saw, summed over its clients.
#[derive(Debug, Default)]
struct Tally {
    /// Requests answered 200 (token or JWKS).
    answered: u64,
    /// Answered by each replica.
    by_replica: [u64; 2],
    /// Connections refused (nothing sent), each retried at the other replica.
    refused_retried: u64,
    /// Answered requests that took more than 500 ms (refusals and retries included), and the
    /// longest.
    slow: u64,
    longest: Duration,
    /// 5xx, other unexpected statuses, resets and cut connections after the request was
    /// sent, timeouts, and requests both replicas refused: (seconds since the start, what).
    failed: Vec<(f64, String)>,
}

/// Whether `e` is a refused connection (nothing was sent, so a balancer may try elsewhere).
fn refused(e: &reqwest::Error) -> bool {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// One keep-alive client behind a small round-robin balancer over `bases`: every other
/// request a client_credentials token, else the JWKS; a refused connection is retried at the
/// other replica, as a balancer does once a replica is gone.
async fn balanced_client(
    first: usize,
    bases: [String; 2],
    c: TestClient,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    t0: std::time::Instant,
) -> Tally {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut t = Tally::default();
    let mut n = first;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let token = (n / 2) % 2 == 0;
        let pick = n % 2;
        n += 1;
        let mut served = false;
        let sent = std::time::Instant::now();
        for r in [pick, 1 - pick] {
            let req = if token {
                http.post(format!("{}/token", bases[r]))
                    .basic_auth(&c.id, c.secret.as_deref())
                    .form(&[("grant_type", "client_credentials")])
            } else {
                http.get(format!("{}/jwks.json", bases[r]))
            };
            let at = || t0.elapsed().as_secs_f64();
            match req.send().await {
                Err(e) if refused(&e) => {
                    t.refused_retried += 1;
                    continue;
                }
                Err(e) => t.failed.push((at(), format!("replica {r}: {e:?}"))),
                Ok(resp) => {
                    let status = resp.status();
                    match resp.bytes().await {
                        Ok(_) if status == 200 => {
                            t.answered += 1;
                            t.by_replica[r] += 1;
                            let took = sent.elapsed();
                            t.slow += u64::from(took > Duration::from_millis(500));
                            t.longest = t.longest.max(took);
                        }
                        Ok(body) => t.failed.push((
                            at(),
                            format!("replica {r}: {status} {}", String::from_utf8_lossy(&body)),
                        )),
                        Err(e) => t.failed.push((at(), format!("replica {r}: body: {e:?}"))),
                    }
                }
            }
            served = true;
            break;
        }
        if !served {
            t.failed
                .push((t0.elapsed().as_secs_f64(), "both replicas refused".into()));
        }
    }
    t
}

/// A rolling restart of two `sigil serve` processes on one PostgreSQL database while keep-alive
/// clients send token and JWKS requests spread over both: SIGTERM A, wait for it to exit,
/// start it again and wait until it is ready, then the same for B. Counted: requests answered,
/// requests failed (a 5xx, a reset or cut connection after the request was sent), and refused
/// connections retried at the other replica. Must be 0 failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_drops_nothing() {
    const CLIENTS: usize = 8;
    let app = spawn_app(Backend::Postgres).await;
    let c = app.service_client();
    let env = [
        ("SIGIL_HTTP_DRAIN_DELAY", "1s"),
        ("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "off"),
    ];
    let mut replicas = [Replica::new(&app, "a", &env), Replica::new(&app, "b", &env)];
    let http = reqwest::Client::new();
    for r in replicas.iter_mut() {
        r.start();
    }
    for r in &replicas {
        r.wait_ready(&http).await;
    }
    let bases = [replicas[0].base(), replicas[1].base()];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = std::time::Instant::now();
    let load: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(balanced_client(
                i,
                bases.clone(),
                c.clone(),
                stop.clone(),
                t0,
            ))
        })
        .collect();
    let mut timeline = Vec::new();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for r in replicas.iter_mut() {
        timeline.push((t0.elapsed().as_secs_f64(), format!("SIGTERM {}", r.name)));
        r.term();
        let status = r
            .wait_exit(
                Duration::from_secs(1) + sigil::startup::SHUTDOWN_GRACE + Duration::from_secs(3),
            )
            .await;
        timeline.push((
            t0.elapsed().as_secs_f64(),
            format!("{} exited ({status})", r.name),
        ));
        assert!(
            status.success(),
            "{} exit status {status}: {}",
            r.name,
            r.log_text()
        );
        r.start();
        r.wait_ready(&http).await;
        timeline.push((
            t0.elapsed().as_secs_f64(),
            format!("{} ready again", r.name),
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = Tally::default();
    for h in load {
        let t = h.await.unwrap();
        total.answered += t.answered;
        total.by_replica[0] += t.by_replica[0];
        total.by_replica[1] += t.by_replica[1];
        total.refused_retried += t.refused_retried;
        total.slow += t.slow;
        total.longest = total.longest.max(t.longest);
        total.failed.extend(t.failed);
    }
    total.failed.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!(
        "rolling restart: {} answered (A {}, B {}), {} failed, {} refused connections retried at the other replica, {} answers slower than 500 ms (longest {:?}), in {:.1} s\ntimeline: {timeline:?}",
        total.answered,
        total.by_replica[0],
        total.by_replica[1],
        total.failed.len(),
        total.refused_retried,
        total.slow,
        total.longest,
        t0.elapsed().as_secs_f64()
    );
    assert!(
        total.failed.is_empty(),
        "{} requests failed during the rolling restart (first 20): {:?}\ntimeline: {timeline:?}",
        total.failed.len(),
        &total.failed[..total.failed.len().min(20)]
    );
    assert!(
        total.by_replica.iter().all(|n| *n > 100),
        "both replicas served: {:?}",
        total.by_replica
    );
}
