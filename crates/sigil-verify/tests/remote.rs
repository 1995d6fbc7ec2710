//! The `remote` feature against a tiny HTTP server on 127.0.0.1.
#![cfg(feature = "remote")]
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::json;
use sigil_verify::remote::RemoteOptions;
use sigil_verify::{Clock, ErrorKind, JwkSet, Verifier};

#[derive(Default)]
struct State {
    jwks: Mutex<String>,
    etag: Mutex<String>,
    max_age: AtomicU64,
    down: AtomicBool,
    delay_ms: AtomicU64,
    wrong_issuer: AtomicBool,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    not_modified: AtomicUsize,
}

struct Server {
    base: String,
    state: Arc<State>,
}

impl Server {
    fn start(set: &JwkSet) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        state.max_age.store(300, Ordering::SeqCst);
        let s = Server { base, state };
        s.publish(set);
        let state = Arc::clone(&s.state);
        let base = s.base.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&state);
                let base = base.clone();
                thread::spawn(move || handle(stream, &state, &base));
            }
        });
        s
    }

    fn publish(&self, set: &JwkSet) {
        let text = serde_json::to_string(set).unwrap();
        *self.state.etag.lock().unwrap() = format!("\"{}\"", text.len() ^ 0x5a5a);
        *self.state.jwks.lock().unwrap() = text;
    }

    fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }
}

fn handle(stream: TcpStream, state: &State, base: &str) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(v.trim().to_owned());
            }
        }
    }
    let mut stream = reader.into_inner();
    let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
    if state.down.load(Ordering::SeqCst) {
        let _ = stream.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        thread::sleep(Duration::from_millis(delay));
    }
    let (status, headers, body) = match path.as_str() {
        "/.well-known/openid-configuration" => {
            state.discovery_hits.fetch_add(1, Ordering::SeqCst);
            let issuer = if state.wrong_issuer.load(Ordering::SeqCst) {
                "https://evil.example".to_owned()
            } else {
                base.to_owned()
            };
            let doc = json!({"issuer": issuer, "jwks_uri": format!("{base}/jwks.json")});
            ("200 OK", String::new(), doc.to_string())
        }
        "/jwks.json" => {
            state.jwks_hits.fetch_add(1, Ordering::SeqCst);
            let etag = state.etag.lock().unwrap().clone();
            let cc = format!(
                "Cache-Control: max-age={}\r\nETag: {etag}\r\n",
                state.max_age.load(Ordering::SeqCst)
            );
            if if_none_match.as_deref() == Some(etag.as_str()) {
                state.not_modified.fetch_add(1, Ordering::SeqCst);
                ("304 Not Modified", cc, String::new())
            } else {
                ("200 OK", cc, state.jwks.lock().unwrap().clone())
            }
        }
        _ => ("404 Not Found", String::new(), String::new()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn opts() -> RemoteOptions {
    RemoteOptions::new()
        .with_allow_http(true)
        .with_env_proxy(false)
        .with_timeout(Duration::from_secs(5))
}

fn remote_verifier(server: &Server, o: RemoteOptions) -> Result<Verifier, sigil_verify::Error> {
    Verifier::builder(server.base.clone(), AUD)
        .remote(o)
        .build()
}

/// A token from `s` for `iss`, valid now (real clock: the remote verifier uses SystemClock).
fn token(s: &Signer, iss: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut c = claims();
    c["iss"] = json!(iss);
    c["iat"] = json!(now);
    c["exp"] = json!(now + 600);
    s.token_with(&s.header(), &c)
}

#[test]
fn discovery_then_jwks_then_verify() {
    let s = Signer::es256();
    let server = Server::start(&set(&[&s]));
    let v = remote_verifier(&server, opts()).unwrap();
    v.verify(&token(&s, &server.base)).unwrap();
    v.verify(&token(&s, &server.base)).unwrap();
    let st = v.stats();
    assert_eq!((st.jwks_fetches, st.keys, st.verified), (1, 1, 2));
    assert!(st.key_set_age.unwrap() < Duration::from_secs(5));
    assert_eq!(server.state.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(server.jwks_hits(), 1);
    assert_eq!(v.jwks(), set(&[&s]));
}

#[test]
fn refuses_plain_http_and_foreign_issuer() {
    let s = Signer::es256();
    let server = Server::start(&set(&[&s]));
    let e = remote_verifier(&server, RemoteOptions::new().with_env_proxy(false)).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::KeySource(_)), "{e}");
    server.state.wrong_issuer.store(true, Ordering::SeqCst);
    let e = remote_verifier(&server, opts()).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::KeySource(w) if w.contains("issuer")),
        "{e}"
    );
    // Static and remote sources cannot be mixed.
    let e = Verifier::builder(server.base.clone(), AUD)
        .jwks(set(&[&s]))
        .remote(opts())
        .build()
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config(_)));
}

#[test]
fn rotation_concurrent_misses_share_one_fetch() {
    let old = Signer::es256();
    let server = Server::start(&set(&[&old]));
    let v = remote_verifier(&server, opts()).unwrap();
    v.verify(&token(&old, &server.base)).unwrap();
    // The issuer rotates in a new key; the verifier has not seen it yet.
    let new = Signer::ed25519();
    server.publish(&set(&[&old, &new]));
    server.state.delay_ms.store(300, Ordering::SeqCst);
    let t = token(&new, &server.base);
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let v = v.clone();
            let t = t.clone();
            thread::spawn(move || v.verify(&t))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(
        server.jwks_hits(),
        2,
        "exactly one refetch for 16 concurrent misses"
    );
    assert_eq!(v.stats().unknown_kid_refetches, 1);
}

#[test]
fn flood_of_made_up_kids_causes_no_extra_fetch() {
    let s = Signer::es256();
    let server = Server::start(&set(&[&s]));
    let v = remote_verifier(&server, opts()).unwrap();
    let forged = |kid: &str| {
        let mut h = s.header();
        h["kid"] = json!(kid);
        s.token_with(&h, &claims())
    };
    // The first unknown kid may refetch once; within the cooldown nothing else does.
    for i in 0..200 {
        let e = v.verify(&forged(&format!("made-up-{i}"))).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::UnknownKey);
    }
    assert_eq!(server.jwks_hits(), 2);
    assert_eq!(v.stats().unknown_kid_refetches, 1);

    // Without cooldown, the negative cache still stops a repeated kid.
    let v = remote_verifier(&server, opts().with_unknown_kid_cooldown(Duration::ZERO)).unwrap();
    let before = server.jwks_hits();
    for _ in 0..50 {
        let e = v.verify(&forged("same-made-up-kid")).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::UnknownKey);
    }
    assert_eq!(server.jwks_hits(), before + 1);
}

#[test]
fn max_age_clamped_and_etag_revalidation() {
    let s = Signer::es256();
    let server = Server::start(&set(&[&s]));
    server.state.max_age.store(0, Ordering::SeqCst); // clamped up to min_ttl
    let v = remote_verifier(
        &server,
        opts()
            .with_min_ttl(Duration::from_millis(500))
            .with_max_ttl(Duration::from_secs(600)),
    )
    .unwrap();
    thread::sleep(Duration::from_millis(1300));
    // The background thread refreshed before expiry, with If-None-Match -> 304.
    assert!(server.state.not_modified.load(Ordering::SeqCst) >= 1);
    let st = v.stats();
    assert!(st.jwks_fetches >= 2, "{st:?}");
    assert!(
        st.key_set_age.unwrap() < Duration::from_millis(600),
        "{st:?}"
    );
    v.verify(&token(&s, &server.base)).unwrap();
}

#[test]
fn stale_window_then_fail_closed() {
    let s = Signer::es256();
    let server = Server::start(&set(&[&s]));
    server.state.max_age.store(1, Ordering::SeqCst);
    let v = remote_verifier(
        &server,
        opts()
            .with_min_ttl(Duration::from_secs(1))
            .with_stale_window(Duration::from_secs(1))
            .with_retry_interval(Duration::from_millis(200)),
    )
    .unwrap();
    server.state.down.store(true, Ordering::SeqCst);
    let t = token(&s, &server.base);
    v.verify(&t).unwrap();
    thread::sleep(Duration::from_millis(1400));
    // Past its lifetime, inside the stale window: still serving.
    v.verify(&t).unwrap();
    thread::sleep(Duration::from_millis(1000));
    let e = v.verify(&t).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::KeySource(_)), "{e}");
    assert!(v.stats().jwks_fetch_failures >= 2);
    assert_eq!(v.stats().unavailable, 1);
    // The issuer comes back: the background retry restores service.
    server.state.down.store(false, Ordering::SeqCst);
    thread::sleep(Duration::from_millis(600));
    v.verify(&t).unwrap();
}

/// A clock the test moves by hand (the verifier's only source of "now").
#[derive(Debug)]
struct StepClock(AtomicU64);

impl StepClock {
    fn at_unix(secs: u64) -> Arc<StepClock> {
        Arc::new(StepClock(AtomicU64::new(secs)))
    }

    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for StepClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

/// A token from `s` for `iss`, valid for a day from `NOW`.
fn token_at_now(s: &Signer, iss: &str) -> String {
    let mut c = claims();
    c["iss"] = json!(iss);
    c["iat"] = json!(NOW);
    c["exp"] = json!(NOW + 86_400);
    s.token_with(&s.header(), &c)
}

/// The stale window and the fail-closed decision follow the injected clock: no sleeping.
#[test]
fn stale_window_follows_the_clock_then_fails_closed() {
    let s = Signer::es256();
    let server = Server::start(&set(&[&s]));
    server.state.max_age.store(600, Ordering::SeqCst);
    let clock = StepClock::at_unix(NOW as u64);
    let v = Verifier::builder(server.base.clone(), AUD)
        .clock(clock.clone())
        .remote(
            opts()
                .with_stale_window(Duration::from_secs(3600))
                .with_retry_interval(Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let t = token_at_now(&s, &server.base);
    v.verify(&t).unwrap();
    server.state.down.store(true, Ordering::SeqCst);

    // Within the lifetime, then past it but inside the stale window: still serving.
    clock.advance(Duration::from_secs(599));
    v.verify(&t).unwrap();
    clock.advance(Duration::from_secs(3600));
    v.verify(&t).unwrap();
    assert_eq!(v.stats().key_set_age, Some(Duration::from_secs(4199)));

    // One second past lifetime + stale window: fail closed.
    clock.advance(Duration::from_secs(2));
    let e = v.verify(&t).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::KeySource(_)), "{e}");
    assert_eq!(v.stats().unavailable, 1);
    assert_eq!(server.jwks_hits(), 1, "no fetch was due by the real clock");
}

/// The unknown-kid cooldown is measured with the injected clock too.
#[test]
fn unknown_kid_cooldown_follows_the_clock() {
    let s = Signer::es256();
    let server = Server::start(&set(&[&s]));
    let clock = StepClock::at_unix(NOW as u64);
    let v = Verifier::builder(server.base.clone(), AUD)
        .clock(clock.clone())
        .remote(opts())
        .build()
        .unwrap();
    // An unknown kid refetches once; the issuer does not have it.
    let made_up = token_at_now(&Signer::ed25519(), &server.base);
    assert_eq!(
        v.verify(&made_up).unwrap_err().kind(),
        &ErrorKind::UnknownKey
    );
    assert_eq!(server.jwks_hits(), 2);
    // The issuer adds a key; its first token within the cooldown causes no fetch.
    let new = Signer::ed25519();
    server.publish(&set(&[&s, &new]));
    let t = token_at_now(&new, &server.base);
    clock.advance(Duration::from_secs(29));
    assert_eq!(v.verify(&t).unwrap_err().kind(), &ErrorKind::UnknownKey);
    assert_eq!(server.jwks_hits(), 2);
    // 30 s after the last refetch by the verifier's clock, the next one is allowed.
    clock.advance(Duration::from_secs(1));
    v.verify(&t).unwrap();
    assert_eq!(server.jwks_hits(), 3);
    assert_eq!(v.stats().unknown_kid_refetches, 2);
}
