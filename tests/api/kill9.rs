//! Crash recovery: `sigil serve`, and `sigil keys rotate --now`, killed with SIGKILL under load,
//! over and over, on SQLite and PostgreSQL. Three runs of `SIGIL_TEST_KILL_CYCLES` cycles each
//! (default 100); in every cycle a new `sigil serve` starts on the same database, takes load for
//! 40–350 ms and is killed. Every start must become ready: one that does not is a failed restart
//! (0 allowed).
//!
//! * Refresh rotations: no refresh token ever yields two different successors (0 usable twice),
//!   and every refresh token a client received still refreshes after the restart (0 lost). A
//!   client whose request died with the process retries its token, which within
//!   `tokens.refresh_reuse_window` returns the successor the dead process may have committed.
//! * Code redemption: signed-in browsers get codes from `/authorize` (their session answers at
//!   once) and redeem them. No code is redeemed twice; a redemption cut by the kill is retried
//!   on the next process, which either redeems it (the dead one had not taken it) or refuses it
//!   with `invalid_grant`, and then whatever the dead process issued for it (a refresh family,
//!   and the access token naming it) is revoked: no client ever received it. Every access token
//!   received is active at `/introspect` after the restart and every refresh token refreshes
//!   (a 5xx or unanswered check is repeated up to five times, as a client would, and counted).
//! * Key rotation: `sigil keys rotate --now` runs in every cycle against the same database while
//!   the server signs access tokens; the server is killed while a rotation runs (even cycles) or
//!   the CLI is killed part-way (odd cycles). No token still valid names a `kid` missing from
//!   the JWKS, served while running or after the restart, and the JWKS holds only the keys of
//!   the last `access_token_ttl + clock_skew` (bounded: its largest size is reported).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::flow::{
    CALLBACK, PASSWORD, authorize_url, code_tokens, create_user, location, login, pkce,
    query_param, urlencode, web_client,
};
use crate::helpers::*;

fn cycles() -> usize {
    std::env::var("SIGIL_TEST_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A running `sigil serve` and its base URL.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A `sigil serve` process on `app`'s database, with its master key and issuer, `env` on top,
/// its standard error in `serve/serve.log`.
fn serve(app: &TestApp, port: u16, env: &[(&str, &str)]) -> Child {
    let key = std::fs::read_to_string(app.dir.path().join("master.key")).unwrap();
    let dir = app.dir.path().join("serve");
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(app.dir.path().join("serve.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sigil"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIGIL_DATA_DIR", &dir)
        .env("SIGIL_DATABASE_URL", &app.db.url)
        .env("SIGIL_MASTER_KEY", key.trim())
        .env("SIGIL_ISSUER", &app.address)
        .env("SIGIL_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIGIL_HTTP_DRAIN_DELAY", "0s")
        .env("SIGIL_LOG_LEVEL", "warn")
        .envs(env.iter().copied())
        .args(["serve"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Whether `child` answers `/readyz` with 200 within 10 s (false as soon as it exits). The
/// answer must come from a server with `issuer`: another test's server can take the port
/// between the probe and the bind, and would otherwise pass for this one until `child` exits.
async fn ready(client: &reqwest::Client, base: &str, issuer: &str, child: &mut Child) -> bool {
    for _ in 0..400 {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            let ours = match client
                .get(format!("{base}/.well-known/openid-configuration"))
                .send()
                .await
            {
                Ok(d) => d.json::<Value>().await.is_ok_and(|v| v["issuer"] == issuer),
                Err(_) => false,
            };
            // Not ours: this child cannot bind and exits (Address already in use).
            if ours {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Start `sigil serve` and wait until it is ready. A start that does not become ready is a
/// failed restart, recorded in `failed` with the end of its log, and tried again; a port taken
/// by another test between the probe and the bind is tried again without counting.
async fn start(
    app: &TestApp,
    client: &reqwest::Client,
    env: &[(&str, &str)],
    failed: &mut Vec<String>,
) -> Serve {
    for _ in 0..5 {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = serve(app, port, env);
        if ready(client, &base, &app.address, &mut child).await {
            return Serve { child, base };
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(app.dir.path().join("serve.log")).unwrap_or_default();
        if !log.contains("Address already in use") {
            let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            failed.push(format!("port {port}: {tail}"));
        }
    }
    panic!("sigil serve did not become ready five times: {failed:?}");
}

/// POST a refresh to `base`: Some((status, body)) if a whole answer came back.
async fn refresh_at(
    client: &reqwest::Client,
    base: &str,
    c: &TestClient,
    token: &str,
) -> Option<(u16, Value)> {
    let resp = client
        .post(format!("{base}/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.ok()?))
}

async fn run_rotations(app: TestApp) {
    const CHAINS: usize = 6;
    create_user(&app, "kim");
    let c = web_client(
        &app,
        &["--grant", "refresh_token", "--scope", "offline_access"],
    );
    let mut chains = Vec::new();
    for _ in 0..CHAINS {
        let t = code_tokens(
            &app,
            &c,
            "kim",
            "openid%20offline_access",
            &crate::flow::browser(),
        )
        .await;
        chains.push(t["refresh_token"].as_str().unwrap().to_owned());
    }
    app.stop_server().await;
    let client = http();
    // parent jti -> the one successor jti it may ever yield.
    let mut successor_of: HashMap<String, String> = HashMap::new();
    let (mut rotations, mut lost, mut doubled, mut cut) = (0usize, Vec::new(), 0usize, 0usize);
    let mut failed = Vec::new();
    let n = cycles();
    for cycle in 0..n {
        let server = start(&app, &client, &[], &mut failed).await;
        let kill_after = Duration::from_millis(40 + (cycle as u64 * 37) % 160);
        let deadline = tokio::time::Instant::now() + kill_after;
        // Each chain rotates as fast as it can until the kill.
        let mut tasks = Vec::new();
        for token in chains.clone() {
            let (client, base, c) = (client.clone(), server.base.clone(), c.clone());
            tasks.push(tokio::spawn(async move {
                let mut held = token;
                let mut seen = Vec::new();
                let mut failure = None;
                let mut interrupted = false;
                while tokio::time::Instant::now() < deadline {
                    match refresh_at(&client, &base, &c, &held).await {
                        Some((200, body)) if body["refresh_token"].is_string() => {
                            let next = body["refresh_token"].as_str().unwrap().to_owned();
                            seen.push((held.clone(), next.clone()));
                            held = next;
                        }
                        Some((status, _)) => {
                            failure = Some(status);
                            break;
                        }
                        // The process died under the request: retry the same token next time.
                        None => {
                            interrupted = true;
                            break;
                        }
                    }
                }
                (held, seen, failure, interrupted)
            }));
        }
        tokio::time::sleep(kill_after).await;
        server.kill();
        for (i, t) in tasks.into_iter().enumerate() {
            let (held, seen, failure, interrupted) = t.await.unwrap();
            cut += usize::from(interrupted);
            if let Some(status) = failure {
                lost.push(format!("cycle {cycle}, chain {i}: {status}"));
            }
            for (parent, child) in seen {
                rotations += 1;
                let (p, ch) = (
                    jwt_payload(&parent)["jti"].as_str().unwrap().to_owned(),
                    jwt_payload(&child)["jti"].as_str().unwrap().to_owned(),
                );
                match successor_of.get(&p) {
                    Some(known) if *known != ch => doubled += 1,
                    Some(_) => {}
                    None => {
                        successor_of.insert(p, ch);
                    }
                }
            }
            chains[i] = held;
        }
    }
    // After the last kill, every token the clients hold still refreshes.
    let server = start(&app, &client, &[], &mut failed).await;
    for (i, held) in chains.iter().enumerate() {
        match refresh_at(&client, &server.base, &c, held).await {
            Some((200, body)) if body["refresh_token"].is_string() => {}
            other => lost.push(format!("after the last kill, chain {i}: {other:?}")),
        }
    }
    server.kill();
    eprintln!(
        "kill -9 during refresh rotations: {n} cycles, {rotations} rotations, {cut} requests cut by a kill and retried, {doubled} doubled, {} lost, {} failed restarts",
        lost.len(),
        failed.len()
    );
    assert_eq!(
        doubled, 0,
        "a refresh token yielded two different successors"
    );
    assert!(lost.is_empty(), "tokens lost: {lost:?}");
    assert!(failed.is_empty(), "failed restarts: {failed:?}");
    assert!(rotations >= n, "the load ran: {rotations} rotations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_rotations_loses_and_doubles_nothing_on_sqlite() {
    run_rotations(spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_rotations_loses_and_doubles_nothing_on_postgres() {
    run_rotations(spawn_app(Backend::Postgres).await).await;
}

/// A code a browser received, with its PKCE verifier.
#[derive(Debug, Clone)]
struct Code {
    code: String,
    verifier: String,
}

/// What a client received from one redemption.
#[derive(Debug, Clone)]
struct Received {
    access: String,
    refresh: String,
}

/// The refresh family a redemption started: the hash of its first refresh token's id.
fn family_of(refresh: &str) -> String {
    sigil::crypto::hash_id(jwt_payload(refresh)["jti"].as_str().unwrap())
}

/// What one browser did in one cycle.
#[derive(Default)]
struct Redemptions {
    got: Vec<(Code, Received)>,
    /// The redemption the kill cut, to retry on the next process.
    cut: Option<Code>,
    /// An `/authorize` answer the kill cut (its code, if any, never reached the browser).
    cut_authorize: bool,
    /// 5xx answers (the process stops there for this cycle; a redemption is retried).
    unavailable: usize,
    failures: Vec<String>,
}

/// POST the code to `/token` at `base`: Some((status, body)) if a whole answer came back.
async fn redeem_at(
    client: &reqwest::Client,
    base: &str,
    c: &TestClient,
    code: &Code,
) -> Option<(u16, Value)> {
    let resp = client
        .post(format!("{base}/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", code.verifier.as_str()),
        ])
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.ok()?))
}

fn received(body: &Value) -> Option<Received> {
    Some(Received {
        access: body["access_token"].as_str()?.to_owned(),
        refresh: body["refresh_token"].as_str()?.to_owned(),
    })
}

/// Signed-in browser `b` gets codes from `/authorize` at `base` and redeems them until
/// `deadline` or until the kill cuts a request.
async fn redeem_until(
    b: reqwest::Client,
    client: reqwest::Client,
    base: String,
    c: TestClient,
    deadline: tokio::time::Instant,
) -> Redemptions {
    let mut out = Redemptions::default();
    while tokio::time::Instant::now() < deadline {
        let p = pkce();
        let url = format!(
            "{base}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile%20email&state=st-1&nonce=n-1&code_challenge={}&code_challenge_method=S256",
            c.id,
            urlencode(CALLBACK),
            p.challenge
        );
        let Ok(resp) = b.get(&url).send().await else {
            out.cut_authorize = true;
            break;
        };
        if resp.status().is_server_error() {
            out.unavailable += 1;
            break;
        }
        let Some(code) = (resp.status() == 303)
            .then(|| query_param(&location(&resp), "code"))
            .flatten()
        else {
            out.failures
                .push(format!("/authorize answered {}", resp.status()));
            break;
        };
        let code = Code {
            code,
            verifier: p.verifier,
        };
        match redeem_at(&client, &base, &c, &code).await {
            Some((200, body)) => match received(&body) {
                Some(r) => out.got.push((code, r)),
                None => {
                    out.failures.push(format!("a 200 without tokens: {body}"));
                    break;
                }
            },
            Some((status, _)) if status >= 500 => {
                out.unavailable += 1;
                out.cut = Some(code);
                break;
            }
            Some((status, body)) => {
                out.failures
                    .push(format!("a fresh code refused: {status} {body}"));
                break;
            }
            None => {
                out.cut = Some(code);
                break;
            }
        }
    }
    out
}

/// Send `request` until a whole answer other than 5xx comes back (five tries, 200 ms apart),
/// as a client does when the server is unavailable; `unavailable` counts the tries that were not.
async fn answered<F, Fut>(unavailable: &mut usize, mut request: F) -> Option<(u16, Value)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<(u16, Value)>>,
{
    for _ in 0..5 {
        match request().await {
            Some((status, body)) if status < 500 => return Some((status, body)),
            _ => {
                *unavailable += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    None
}

/// Whether tokens a client received still work at `base`: the access token is active at
/// `/introspect` and the refresh token refreshes. Ok(answers retried for being unavailable).
async fn still_works(
    client: reqwest::Client,
    base: String,
    c: TestClient,
    r: Received,
) -> Result<usize, String> {
    let mut unavailable = 0;
    let introspect = || async {
        let resp = client
            .post(format!("{base}/introspect"))
            .basic_auth(&c.id, c.secret.as_deref())
            .form(&[("token", r.access.as_str())])
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json::<Value>().await.ok()?))
    };
    match answered(&mut unavailable, introspect).await {
        Some((200, body)) if body["active"] == true => {}
        other => return Err(format!("access token: {other:?}")),
    }
    match answered(&mut unavailable, || {
        refresh_at(&client, &base, &c, &r.refresh)
    })
    .await
    {
        Some((200, body)) if body["refresh_token"].is_string() => Ok(unavailable),
        other => Err(format!("refresh token: {other:?}")),
    }
}

/// Families of `client_id` in `refresh_tokens` (first rows only) matching `extra`, counted with
/// an UPDATE that changes nothing (the helper returns affected rows).
fn families(app: &TestApp, client_id: &str, extra: &str) -> usize {
    raw_sql(
        app,
        &format!(
            "UPDATE refresh_tokens SET revoked = revoked WHERE client_id = '{client_id}' AND id_hash = family_id {extra}"
        ),
    )
}

async fn run_codes(app: TestApp) {
    const BROWSERS: usize = 4;
    let env = [
        ("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "off"),
        ("SIGIL_RATE_LIMITS_INTROSPECT_PER_CLIENT", "off"),
    ];
    create_user(&app, "kim");
    let c = web_client(&app, &["--grant", "refresh_token"]);
    // One sign-in per browser (one bcrypt each); its session then answers `/authorize` at once,
    // on every process (sessions are in the database; cookies do not depend on the port).
    let mut browsers = Vec::new();
    for _ in 0..BROWSERS {
        let b = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = authorize_url(&app, &c.id, &pkce().challenge, "");
        assert_eq!(login(&app, &b, &url, "kim", PASSWORD).await.status(), 303);
        browsers.push(b);
    }
    app.stop_server().await;
    let client = http();
    let n = cycles();
    let mut failed = Vec::new();
    let mut lost = Vec::new();
    let mut pending: Vec<Option<Code>> = vec![None; BROWSERS];
    let mut to_check: Vec<Received> = Vec::new();
    // Every family a client received, and how many times each code was redeemed.
    let mut held: HashSet<String> = HashSet::new();
    let mut redeemed: HashMap<String, usize> = HashMap::new();
    let (mut redemptions, mut checked, mut cut, mut cut_authorize) = (0usize, 0usize, 0, 0);
    let (mut retried_ok, mut refused, mut unavailable) = (0usize, 0usize, 0usize);
    let mut take = |code: &Code, r: Received, to_check: &mut Vec<Received>| {
        redemptions += 1;
        *redeemed.entry(code.code.clone()).or_default() += 1;
        held.insert(family_of(&r.refresh));
        to_check.push(r);
    };
    for cycle in 0..=n {
        let server = start(&app, &client, &env, &mut failed).await;
        // A redemption the kill cut is retried: redeemed now, or refused as already used.
        for slot in pending.iter_mut() {
            let Some(code) = slot.take() else { continue };
            let retry = || redeem_at(&client, &server.base, &c, &code);
            match answered(&mut unavailable, retry).await {
                Some((200, body)) if received(&body).is_some() => {
                    retried_ok += 1;
                    take(&code, received(&body).unwrap(), &mut to_check);
                }
                Some((400, body)) if body["error"] == "invalid_grant" => refused += 1,
                other => lost.push(format!("cycle {cycle}: a cut code retried: {other:?}")),
            }
        }
        // Every token received before the kill (or on a retry just now) still works.
        let checking = std::mem::take(&mut to_check);
        let mut checks = tokio::task::JoinSet::new();
        for r in checking {
            checks.spawn(still_works(
                client.clone(),
                server.base.clone(),
                c.clone(),
                r,
            ));
            if checks.len() >= 4 {
                match checks.join_next().await.unwrap().unwrap() {
                    Ok(retried) => unavailable += retried,
                    Err(e) => lost.push(format!("cycle {cycle}: {e}")),
                }
            }
            checked += 1;
        }
        while let Some(done) = checks.join_next().await {
            match done.unwrap() {
                Ok(retried) => unavailable += retried,
                Err(e) => lost.push(format!("cycle {cycle}: {e}")),
            }
        }
        if cycle == n {
            server.kill();
            break;
        }
        let kill_after = Duration::from_millis(40 + (cycle as u64 * 37) % 160);
        let deadline = tokio::time::Instant::now() + kill_after;
        let tasks: Vec<_> = browsers
            .iter()
            .map(|b| {
                tokio::spawn(redeem_until(
                    b.clone(),
                    client.clone(),
                    server.base.clone(),
                    c.clone(),
                    deadline,
                ))
            })
            .collect();
        tokio::time::sleep(kill_after).await;
        server.kill();
        for (i, t) in tasks.into_iter().enumerate() {
            let out = t.await.unwrap();
            for (code, r) in out.got {
                take(&code, r, &mut to_check);
            }
            cut += usize::from(out.cut.is_some());
            cut_authorize += usize::from(out.cut_authorize);
            unavailable += out.unavailable;
            pending[i] = out.cut;
            lost.extend(
                out.failures
                    .into_iter()
                    .map(|f| format!("cycle {cycle}, browser {i}: {f}")),
            );
        }
    }
    let twice = redeemed.values().filter(|n| **n > 1).count();
    // What the dead processes issued that no client received: the redemptions cut after the code
    // was taken. Each must be revoked, and there can be no more of them than refused retries.
    let held_list: Vec<String> = held.iter().map(|f| format!("'{f}'")).collect();
    let unheld = format!("AND family_id NOT IN ({})", held_list.join(","));
    let orphans = families(&app, &c.id, &unheld);
    let live_orphans = families(&app, &c.id, &format!("{unheld} AND NOT revoked"));
    let doubles = twice + orphans.saturating_sub(refused);
    eprintln!(
        "kill -9 during code redemption: {n} cycles, {redemptions} codes redeemed, {cut} redemptions cut by a kill (or answered 5xx) and retried ({retried_ok} redeemed on retry, {refused} refused as used; {orphans} of those had issued tokens no client received, {live_orphans} still live), {cut_authorize} /authorize answers cut, {unavailable} 5xx or unanswered requests retried, {checked} token pairs checked after a restart, {doubles} redeemed twice, {} lost, {} failed restarts",
        lost.len(),
        failed.len()
    );
    assert_eq!(doubles, 0, "codes redeemed twice");
    assert!(lost.is_empty(), "tokens lost: {lost:?}");
    assert_eq!(
        live_orphans, 0,
        "tokens issued for a code whose retry was refused are still live"
    );
    assert!(failed.is_empty(), "failed restarts: {failed:?}");
    assert!(redemptions >= n, "the load ran: {redemptions} redemptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_code_redemption_redeems_once_and_loses_nothing_on_sqlite() {
    run_codes(spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_code_redemption_redeems_once_and_loses_nothing_on_postgres() {
    run_codes(spawn_app(Backend::Postgres).await).await;
}

/// Short lifetimes, so keys leave the JWKS (and the ring) within the run; the same for the
/// server and the CLI, whose settings decide a superseded key's schedule.
const KEY_ENV: [(&str, &str); 5] = [
    ("SIGIL_TOKENS_ACCESS_TOKEN_TTL", "10s"),
    ("SIGIL_KEYS_CLOCK_SKEW", "5s"),
    ("SIGIL_TOKENS_REFRESH_TOKEN_IDLE", "20s"),
    ("SIGIL_TOKENS_REFRESH_TOKEN_ABSOLUTE", "20s"),
    ("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "off"),
];
/// How long a superseded key stays published (access-token TTL + clock skew), plus the sync
/// job's period and some, after which a running server has re-rendered its JWKS without it.
const PUBLISHED_FOR: Duration = Duration::from_secs(10 + 5 + 3);

/// `sigil keys rotate --now` on `app`'s data dir and database.
fn rotate_cli(app: &TestApp) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sigil"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIGIL_DATA_DIR", app.dir.path())
        .env("SIGIL_DATABASE_URL", &app.db.url)
        .env("SIGIL_LOG_LEVEL", "warn")
        .envs(KEY_ENV.iter().copied())
        .args(["keys", "rotate", "--now"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// One CLI run: when it started and ended, whether the test killed it, and an error if it
/// failed on its own.
struct CliRun {
    started: Instant,
    ended: Instant,
    killed: bool,
    error: Option<String>,
}

fn finish_cli(mut child: Child, started: Instant, killed: bool) -> CliRun {
    let out = child.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    CliRun {
        started,
        ended: Instant::now(),
        killed,
        error: (!killed && !out.success()).then(|| format!("{out}: {stderr}")),
    }
}

/// The served JWKS: its kids and its size in bytes, or None if no whole answer came back.
async fn jwks_at(client: &reqwest::Client, base: &str) -> Option<(HashSet<String>, usize)> {
    let body = client
        .get(format!("{base}/jwks.json"))
        .send()
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    let doc: Value = serde_json::from_slice(&body).ok()?;
    let kids = doc["keys"]
        .as_array()?
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect();
    Some((kids, body.len()))
}

/// A JWKS as seen at an instant: how many keys, how many bytes.
struct Sighting {
    at: Instant,
    keys: usize,
    bytes: usize,
}

/// What one signing client did in one cycle.
#[derive(Default)]
struct Signing {
    /// (kid, exp) of every access token received.
    tokens: Vec<(String, i64)>,
    missing: Vec<String>,
    sightings: Vec<Sighting>,
    checked: usize,
    cut: bool,
    failures: Vec<String>,
}

/// Client `c` asks for access tokens at `base` until `deadline` or the kill; after every fourth
/// it fetches the JWKS, which must hold the kid of every token received since the last look.
async fn sign_until(
    client: reqwest::Client,
    base: String,
    c: TestClient,
    deadline: tokio::time::Instant,
) -> Signing {
    let mut out = Signing::default();
    let mut unchecked: Vec<(String, i64)> = Vec::new();
    while tokio::time::Instant::now() < deadline {
        let resp = client
            .post(format!("{base}/token"))
            .basic_auth(&c.id, c.secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        let Ok(resp) = resp else {
            out.cut = true;
            break;
        };
        let status = resp.status().as_u16();
        let Ok(body) = resp.json::<Value>().await else {
            out.cut = true;
            break;
        };
        let Some(token) = body["access_token"].as_str().filter(|_| status == 200) else {
            out.failures.push(format!("/token: {status} {body}"));
            break;
        };
        let kid = jwt_header(token)["kid"].as_str().unwrap().to_owned();
        let exp = jwt_payload(token)["exp"].as_i64().unwrap();
        out.tokens.push((kid.clone(), exp));
        unchecked.push((kid, exp));
        if unchecked.len() >= 4 {
            let Some((kids, bytes)) = jwks_at(&client, &base).await else {
                out.cut = true;
                break;
            };
            out.sightings.push(Sighting {
                at: Instant::now(),
                keys: kids.len(),
                bytes,
            });
            for (kid, exp) in unchecked.drain(..) {
                out.checked += 1;
                if !kids.contains(&kid) && exp > unix_now_real() {
                    out.missing
                        .push(format!("{kid} (valid until {exp}) missing while running"));
                }
            }
        }
    }
    out
}

async fn run_keys(app: TestApp) {
    let es = app.create_client(&[
        "--grant",
        "client_credentials",
        "--scope",
        "invoices:read",
        "--access-token-alg",
        "ES256",
    ]);
    let rs = app.create_client(&[
        "--grant",
        "client_credentials",
        "--scope",
        "invoices:read",
        "--access-token-alg",
        "RS256",
    ]);
    app.stop_server().await;
    let client = http();
    let n = cycles();
    let began = Instant::now();
    let mut failed = Vec::new();
    let mut lost = Vec::new();
    let mut missing = Vec::new();
    // The latest expiry of a token each kid signed.
    let mut valid_until: HashMap<String, i64> = HashMap::new();
    let mut sightings: Vec<Sighting> = Vec::new();
    let mut runs: Vec<CliRun> = Vec::new();
    let mut running: Option<tokio::task::JoinHandle<CliRun>> = None;
    let (mut signed, mut checked, mut cut) = (0usize, 0usize, 0usize);
    for cycle in 0..=n {
        let server = start(&app, &client, &KEY_ENV, &mut failed).await;
        // A rotation the last kill interrupted has finished (or died) by now.
        if let Some(run) = running.take() {
            runs.push(run.await.unwrap());
        }
        // After the restart: every kid of a token still valid is published.
        let (kids, bytes) = jwks_at(&client, &server.base).await.unwrap();
        sightings.push(Sighting {
            at: Instant::now(),
            keys: kids.len(),
            bytes,
        });
        let now = unix_now_real();
        for (kid, exp) in &valid_until {
            if *exp > now && !kids.contains(kid) {
                missing.push(format!(
                    "{kid} (valid until {exp}) missing after restart {cycle}"
                ));
            }
        }
        if cycle == n {
            server.kill();
            break;
        }
        let kill_after = Duration::from_millis(150 + (cycle as u64 * 37) % 200);
        let deadline = tokio::time::Instant::now() + kill_after;
        let tasks: Vec<_> = [&es, &rs, &es, &rs]
            .iter()
            .map(|c| {
                tokio::spawn(sign_until(
                    client.clone(),
                    server.base.clone(),
                    (*c).clone(),
                    deadline,
                ))
            })
            .collect();
        if cycle % 2 == 0 {
            // The server dies while a rotation runs: start one shortly before the kill and let
            // it finish on its own (across the restart).
            let lead = Duration::from_millis(20 + (cycle as u64 * 29) % 120);
            tokio::time::sleep(kill_after.saturating_sub(lead)).await;
            let (child, started) = (rotate_cli(&app), Instant::now());
            running = Some(tokio::task::spawn_blocking(move || {
                finish_cli(child, started, false)
            }));
            tokio::time::sleep(lead).await;
        } else {
            // The CLI dies part-way through a rotation, while the server signs.
            let after = Duration::from_millis(10 + (cycle as u64 * 53) % 300);
            let (mut child, started) = (rotate_cli(&app), Instant::now());
            tokio::time::sleep(after.min(kill_after)).await;
            let exited = child.try_wait().unwrap().is_some();
            if !exited {
                child.kill().unwrap();
            }
            runs.push(finish_cli(child, started, !exited));
            tokio::time::sleep(kill_after.saturating_sub(after)).await;
        }
        server.kill();
        for (i, t) in tasks.into_iter().enumerate() {
            let out = t.await.unwrap();
            signed += out.tokens.len();
            checked += out.checked;
            cut += usize::from(out.cut);
            for (kid, exp) in out.tokens {
                let e = valid_until.entry(kid).or_default();
                *e = (*e).max(exp);
            }
            missing.extend(out.missing);
            sightings.extend(out.sightings);
            lost.extend(
                out.failures
                    .into_iter()
                    .map(|f| format!("cycle {cycle}, client {i}: {f}")),
            );
        }
    }
    if let Some(run) = running.take() {
        runs.push(run.await.unwrap());
    }
    // Bounded: a JWKS seen at t holds the two algorithms' current keys and those superseded by
    // rotations that may have committed within PUBLISHED_FOR before t.
    let over: Vec<String> = sightings
        .iter()
        .filter_map(|s| {
            let rotations = runs
                .iter()
                .filter(|r| r.started < s.at && r.ended + PUBLISHED_FOR > s.at)
                .count();
            let bound = 2 * (1 + rotations);
            (s.keys > bound).then(|| format!("{} keys, bound {bound}", s.keys))
        })
        .collect();
    let max_keys = sightings.iter().map(|s| s.keys).max().unwrap_or(0);
    let max_bytes = sightings.iter().map(|s| s.bytes).max().unwrap_or(0);
    let killed = runs.iter().filter(|r| r.killed).count();
    let cli_failed: Vec<&String> = runs.iter().filter_map(|r| r.error.as_ref()).collect();
    // Two keys at the start, two more per committed rotation.
    let stored = raw_sql(&app, "UPDATE signing_keys SET kid = kid");
    let committed = (stored - 2) / 2;
    let mut alone: Vec<u128> = runs
        .iter()
        .filter(|r| !r.killed)
        .map(|r| (r.ended - r.started).as_millis())
        .collect();
    alone.sort_unstable();
    eprintln!(
        "kill -9 during key rotation and signing: {n} cycles, {} `keys rotate --now` runs ({killed} killed part-way, {} of those before committing; {} failed on their own; {} ms median when not killed), {committed} rotations committed, {signed} tokens signed, {cut} requests cut by a kill, {checked} tokens checked against the JWKS while running and every valid kid after each restart, {} kids missing, JWKS at most {max_keys} keys ({max_bytes} bytes) of {stored} created, {} failed restarts",
        runs.len(),
        runs.len().saturating_sub(committed),
        cli_failed.len(),
        alone.get(alone.len() / 2).copied().unwrap_or(0),
        missing.len(),
        failed.len()
    );
    assert!(
        missing.is_empty(),
        "kids missing from the JWKS: {missing:?}"
    );
    assert!(over.is_empty(), "the JWKS outgrew its bound: {over:?}");
    assert!(lost.is_empty(), "requests refused: {lost:?}");
    assert!(cli_failed.is_empty(), "rotations failed: {cli_failed:?}");
    assert_eq!(
        (stored - 2) % 2,
        0,
        "a rotation half applied: {stored} keys"
    );
    assert!(failed.is_empty(), "failed restarts: {failed:?}");
    assert!(signed >= n, "the load ran: {signed} tokens");
    if began.elapsed() > 3 * PUBLISHED_FOR {
        assert!(
            stored > max_keys,
            "keys left the JWKS: {stored} created, at most {max_keys} published"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_key_rotation_and_signing_publishes_every_kid_on_sqlite() {
    run_keys(spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_key_rotation_and_signing_publishes_every_kid_on_postgres() {
    run_keys(spawn_app(Backend::Postgres).await).await;
}
