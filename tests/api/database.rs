//! A database or Redis that goes away: 503 JSON with Retry-After and a failing /readyz, never a
//! panic and never an answer that forgets (a replay, reuse or revocation check fails closed),
//! and recovery without a restart. PostgreSQL and Redis are reached through a TCP proxy the test
//! can cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::helpers::*;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

/// A loopback TCP proxy (to PostgreSQL or Redis) that can refuse and cut connections.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub(crate) async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(h);
            }
        });
        Proxy { port, up, conns }
    }

    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_gives_503_and_recovers_without_restart() {
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
    let via_proxy = format!("postgres://{user}@127.0.0.1:{}/{name}", proxy.port);
    let app = spawn_app_with(
        Backend::Postgres,
        AppOptions {
            db: Some(db),
            server_database_url: Some(via_proxy),
            env: vec![],
            shared_state: None,
        },
    )
    .await;
    // The CLI talks to the database directly (not through the proxy). Both clients exist
    // before `known` is cached: a registration makes every server drop its cached clients
    // (within the 200 ms sync of these tests), which would race with the cut below.
    let known = app.service_client();
    let unknown = app.service_client();
    let web = crate::flow::web_client(&app, &[]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.token_for(&known, None).await.status(),
        200,
        "cached from now on"
    );

    proxy.cut();
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "down");

    // A client the server has not seen needs the database: 503 in the OAuth shape.
    let resp = app.token_for(&unknown, None).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        !body.to_string().contains("5432") && !body.to_string().contains("connect"),
        "no internals: {body}"
    );
    // The browser surface answers with Sigil's error page, in the same terms.
    let p = crate::flow::pkce();
    let resp = app
        .client
        .get(crate::flow::authorize_url(&app, &web.id, &p.challenge, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("temporarily_unavailable"), "{page}");
    assert!(
        !page.contains("5432") && !page.contains("connect"),
        "no internals"
    );
    // A client already in memory keeps working; JWKS and discovery are served from memory.
    assert_eq!(app.token_for(&known, None).await.status(), 200);
    assert_eq!(app.get("/jwks.json").await.status(), 200);

    proxy.restore();
    assert!(
        app.eventually(Duration::from_secs(15), || async {
            app.get("/readyz").await.status() == 200
        })
        .await,
        "ready again without a restart"
    );
    assert_eq!(app.token_for(&unknown, None).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_gives_503_fails_closed_and_recovers_without_restart() {
    use crate::flow::{
        PASSWORD, authorize_url, browser, create_user, exchange_code, location, login, pkce,
        query_param, tokens_for_code, web_client,
    };
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, dir.path());
    let target = redis_url();
    let target = target
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(target).await;
    let via_proxy = format!("redis://127.0.0.1:{}", proxy.port);
    let app = spawn_app_with(
        Backend::Postgres,
        AppOptions {
            db: Some(db),
            server_database_url: None,
            env: redis_env(&via_proxy).await,
            shared_state: None,
        },
    )
    .await;
    create_user(&app, "rita");
    let web = web_client(&app, &[]);
    let service = app.service_client();
    // While Redis is up: a code (its single-use record is in Redis) and an access token.
    let b = browser();
    let p = pkce();
    let url = authorize_url(&app, &web.id, &p.challenge, "");
    let resp = login(&app, &b, &url, "rita", PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let code = query_param(&location(&resp), "code").expect("a code");
    let resp = app.token_for(&service, None).await;
    assert_eq!(resp.status(), 200);
    let token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let introspect = || {
        app.client
            .post(format!("{}/introspect", app.address))
            .basic_auth(&service.id, service.secret.as_deref())
            .form(&[("token", token.as_str())])
            .send()
    };
    assert_eq!(
        introspect().await.unwrap().json::<Value>().await.unwrap()["active"],
        true
    );
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.cut();
    let started = std::time::Instant::now();
    let resp = app.get("/readyz").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "/readyz answered in {:?}",
        started.elapsed()
    );
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["cache"], "down");
    assert_eq!(body["checks"]["database"], "up");

    // Redeeming the code needs its single-use record: 503 in the OAuth shape, nothing shown.
    let resp = exchange_code(&app, &web, &code, &p.verifier).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let text = body.to_string();
    assert!(
        !text.contains("redis") && !text.contains(&proxy.port.to_string()),
        "no internals: {text}"
    );
    // Revocations are in the database, not in Redis: introspection still knows, and answers.
    let resp = introspect().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], true);
    // A cached client still gets tokens: its own rate limit is counted in process.
    let resp = app.token_for(&service, None).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-ratelimit-remaining"));
    // A failed authentication must be counted where every replica sees it: refused, not
    // let through uncounted.
    let wrong = TestClient {
        id: service.id.clone(),
        secret: Some("sigil_secret_wrong".to_owned()),
    };
    let resp = app.token_for(&wrong, None).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // Keys and discovery are served from memory.
    assert_eq!(app.get("/jwks.json").await.status(), 200);
    assert_eq!(
        app.get("/.well-known/openid-configuration").await.status(),
        200
    );

    proxy.restore();
    let restored = std::time::Instant::now();
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            app.get("/readyz").await.status() == 200
        })
        .await,
        "ready again without a restart"
    );
    assert!(restored.elapsed() < Duration::from_secs(10));
    // The code was refused, not forgotten: it redeems now, once.
    tokens_for_code(&app, &web, &code, &p.verifier).await;
    assert_eq!(
        exchange_code(&app, &web, &code, &p.verifier).await.status(),
        400
    );
    assert_eq!(
        introspect().await.unwrap().json::<Value>().await.unwrap()["active"],
        true
    );
}

crate::backend_test!(a_broken_query_is_a_server_error_not_an_outage, |app| {
    use crate::flow::{browser, code_tokens, create_user, web_client};
    create_user(&app, "quinn");
    let c = web_client(&app, &["--grant", "refresh_token"]);
    let tokens = code_tokens(&app, &c, "quinn", "openid", &browser()).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    // A schema the code does not expect (a failed manual change, a bad migration): a bug,
    // not an unreachable database. It must not look like an outage (503 + Retry-After).
    raw_sql(
        &app,
        "ALTER TABLE refresh_tokens RENAME COLUMN family_id TO family_gone",
    );
    let resp = app
        .post_token(
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            Some((&c.id, c.secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    let text = body.to_string();
    assert!(
        !text.contains("family") && !text.contains("column"),
        "no SQL shown: {text}"
    );
    // /readyz still says the database answers: it does.
    assert_eq!(app.get("/readyz").await.status(), 200);
});

/// A loopback TCP proxy that can stop forwarding without closing anything: a partition, or a
/// frozen database host, as the server sees it (its connections stay open and silent).
struct Partition {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl Partition {
    async fn start(target: &'static str) -> Partition {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let f = frozen.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let f = f.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    let pump = |f: Arc<AtomicBool>| {
                        move |mut from: tokio::net::tcp::OwnedReadHalf,
                              mut to: tokio::net::tcp::OwnedWriteHalf| async move {
                            let mut buf = vec![0u8; 16 * 1024];
                            loop {
                                let n = match from.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                // Held, not dropped: the bytes arrive when the partition heals.
                                while f.load(Ordering::SeqCst) {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                                if to.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    };
                    let (up, down) = (pump(f.clone()), pump(f));
                    let a = tokio::spawn(up(ri, wo));
                    let b = tokio::spawn(down(ro, wi));
                    let _ = tokio::join!(a, b);
                });
            }
        });
        Partition { port, frozen }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_database_gives_503_within_the_deadline_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, dir.path());
    let partition = Partition::start("127.0.0.1:5432").await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let user = pg_base_url()
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let app = spawn_app_with(
        Backend::Postgres,
        AppOptions {
            db: Some(db),
            server_database_url: Some(format!(
                "postgres://{user}@127.0.0.1:{}/{name}",
                partition.port
            )),
            ..AppOptions::default()
        },
    )
    .await;
    let unknown = app.service_client();
    let other = app.service_client();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    partition.frozen.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(15), app.token_for(&unknown, None))
        .await
        .expect("a request needing the database does not hang");
    let took = started.elapsed();
    assert_eq!(resp.status(), 503, "after {took:?}");
    assert_eq!(resp.headers()["retry-after"], "5");
    assert!(
        took <= Duration::from_secs(7),
        "answered within the deadline: {took:?}"
    );
    let started = std::time::Instant::now();
    let ready = tokio::time::timeout(Duration::from_secs(10), app.get("/readyz"))
        .await
        .expect("/readyz does not hang");
    assert_eq!(ready.status(), 503);
    assert!(
        started.elapsed() <= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        app.get("/jwks.json").await.status(),
        200,
        "served from memory"
    );

    partition.frozen.store(false, Ordering::SeqCst);
    assert!(
        app.eventually(Duration::from_secs(15), || async {
            app.get("/readyz").await.status() == 200
        })
        .await,
        "ready again without a restart"
    );
    assert_eq!(app.token_for(&other, None).await.status(), 200);
}

/// A small tmpfs to hold a test's SQLite files, so the test can fill its disk. Unmounted
/// (lazily, so nothing still open keeps it) when dropped. Needs root or CAP_SYS_ADMIN, as on
/// the project's machines and CI: without it the test fails saying so, rather than skipping.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => SmallDisk { dir },
            Ok(o) => panic!(
                "this test fills a disk, and needs a small tmpfs for it: `mount -t tmpfs -o size={size} tmpfs {}` failed ({}): {}\n\
                 Run the suite as root (or with CAP_SYS_ADMIN), as CI does.",
                dir.path().display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("this test fills a disk and needs `mount` to make one: {e}"),
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Write zeros to `name` until the disk refuses more (ENOSPC); the bytes written.
    fn fill(&self, name: &str) -> u64 {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join(name)).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        written
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// SQLite on a full disk: every write fails, so `/readyz` must fail too (naming the database),
/// within 5 s, while what is served from memory (JWKS, discovery) stays up; once there is room
/// again Sigil is ready within 10 s, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_readiness_and_recovers() {
    let disk = SmallDisk::mount("16m");
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            db: Some(fresh_db(Backend::Sqlite, disk.path())),
            ..AppOptions::default()
        },
    )
    .await;
    let service = app.service_client();
    let resp = app.token_for(&service, None).await;
    assert_eq!(resp.status(), 200);
    let token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = |token: String| {
        app.client
            .post(format!("{}/revoke", app.address))
            .basic_auth(&service.id, service.secret.as_deref())
            .form(&[("token", token)])
            .send()
    };
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["checks"]["database"],
        "up"
    );

    let filled = disk.fill("filler");
    assert!(filled > 0, "the filler took the free space");
    let full = std::time::Instant::now();
    // A write (a revocation is a row) cannot commit: 503, not an answer that forgets.
    let resp = revoke(token.clone()).await.unwrap();
    assert_eq!(resp.status(), 503, "a revocation on a full disk");
    assert!(
        app.eventually(Duration::from_secs(5), || async {
            app.get("/readyz").await.status() == 503
        })
        .await,
        "/readyz fails within 5 s of the disk filling up ({:?})",
        full.elapsed()
    );
    let failed_after = full.elapsed();
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "not_writable", "{body}");
    assert_eq!(body["checks"]["cache"], "up", "{body}");
    assert_eq!(app.get("/jwks.json").await.status(), 200);
    assert_eq!(
        app.get("/.well-known/openid-configuration").await.status(),
        200
    );
    assert_eq!(app.get("/healthz").await.status(), 200);

    std::fs::remove_file(disk.path().join("filler")).unwrap();
    let freed = std::time::Instant::now();
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            app.get("/readyz").await.status() == 200
        })
        .await,
        "ready again within 10 s of the disk having room, without a restart"
    );
    eprintln!(
        "full disk: /readyz 503 {failed_after:?} after the disk filled; ready again {:?} after the filler went",
        freed.elapsed()
    );
    let resp = revoke(token).await.unwrap();
    assert_eq!(resp.status(), 200, "writes commit again");
}

crate::backend_test!(readiness_writes_at_most_once_a_second, |app| {
    const OK: &str = r#"sigil_database_write_probes_total{outcome="ok"}"#;
    const FAILED: &str = r#"sigil_database_write_probes_total{outcome="failed"}"#;
    let before = metric(&app, OK).await;
    let started = std::time::Instant::now();
    // 400 readiness checks, 8 at a time: a load balancer per worker, or a flood.
    let mut checks = Vec::new();
    for _ in 0..8 {
        let (client, url) = (app.client.clone(), format!("{}/readyz", app.address));
        checks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let resp = client.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["checks"]["database"], "up");
            }
        }));
    }
    for c in checks {
        c.await.unwrap();
    }
    let took = started.elapsed();
    let probes = metric(&app, OK).await - before;
    assert_eq!(metric(&app, FAILED).await, 0.0);
    assert!(probes >= 1.0, "the database was probed: {probes}");
    assert!(
        probes <= took.as_secs_f64().ceil() + 1.0,
        "at most one write a second: {probes} writes for 400 checks in {took:?}"
    );
    eprintln!("readiness: {probes} write probes for 400 checks in {took:?}");
});
