//! Crash recovery: `sigil serve` killed with SIGKILL while refresh tokens rotate under load, over
//! and over, on SQLite and PostgreSQL. What must hold: no refresh token ever yields two different
//! successors (0 usable twice), and every refresh token a client received still refreshes after
//! the restart (0 lost). A client whose request died with the process retries its token, which
//! within `tokens.refresh_reuse_window` returns the successor the dead process may have
//! committed. `SIGIL_TEST_KILL_CYCLES` sets the number of cycles (default 100).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::flow::{browser, code_tokens, create_user, web_client};
use crate::helpers::*;

fn cycles() -> usize {
    std::env::var("SIGIL_TEST_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// A `sigil serve` process on `app`'s database, with its master key and issuer.
fn serve(app: &TestApp, port: u16) -> Child {
    let key = std::fs::read_to_string(app.dir.path().join("master.key")).unwrap();
    let dir = app.dir.path().join("serve");
    std::fs::create_dir_all(&dir).unwrap();
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
        .args(["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("sigil serve did not become ready");
}

/// POST a refresh to `base`: Some((status, successor token)) if an answer came back.
async fn refresh_at(
    client: &reqwest::Client,
    base: &str,
    c: &TestClient,
    token: &str,
) -> Option<(u16, Option<String>)> {
    let resp = client
        .post(format!("{base}/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.ok()?;
    Some((status, body["refresh_token"].as_str().map(str::to_owned)))
}

async fn run(app: TestApp) {
    const CHAINS: usize = 6;
    create_user(&app, "kim");
    let c = web_client(
        &app,
        &["--grant", "refresh_token", "--scope", "offline_access"],
    );
    let mut chains = Vec::new();
    for _ in 0..CHAINS {
        let t = code_tokens(&app, &c, "kim", "openid%20offline_access", &browser()).await;
        chains.push(t["refresh_token"].as_str().unwrap().to_owned());
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // parent jti -> the one successor jti it may ever yield.
    let mut successor_of: HashMap<String, String> = HashMap::new();
    let (mut rotations, mut lost, mut doubled, mut cut) = (0usize, Vec::new(), 0usize, 0usize);
    let n = cycles();
    for cycle in 0..n {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut server = serve(&app, port);
        wait_ready(&client, &base).await;
        let kill_after = Duration::from_millis(40 + (cycle as u64 * 37) % 160);
        let deadline = tokio::time::Instant::now() + kill_after;
        // Each chain rotates as fast as it can until the kill.
        let mut tasks = Vec::new();
        for token in chains.clone() {
            let (client, base, c) = (client.clone(), base.clone(), c.clone());
            tasks.push(tokio::spawn(async move {
                let mut held = token;
                let mut seen = Vec::new();
                let mut failure = None;
                let mut interrupted = false;
                while tokio::time::Instant::now() < deadline {
                    match refresh_at(&client, &base, &c, &held).await {
                        Some((200, Some(next))) => {
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
        server.kill().unwrap();
        server.wait().unwrap();
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&app, port);
    wait_ready(&client, &base).await;
    for (i, held) in chains.iter().enumerate() {
        match refresh_at(&client, &base, &c, held).await {
            Some((200, Some(_))) => {}
            other => lost.push(format!("after the last kill, chain {i}: {other:?}")),
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!(
        "kill -9: {n} cycles, {rotations} rotations, {cut} requests cut by a kill and retried, {doubled} doubled, {} lost",
        lost.len()
    );
    assert_eq!(
        doubled, 0,
        "a refresh token yielded two different successors"
    );
    assert!(lost.is_empty(), "tokens lost: {lost:?}");
    assert!(rotations >= n, "the load ran: {rotations} rotations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_rotations_loses_and_doubles_nothing_on_sqlite() {
    run(spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_rotations_loses_and_doubles_nothing_on_postgres() {
    run(spawn_app(Backend::Postgres).await).await;
}
