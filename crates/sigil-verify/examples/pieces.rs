#![expect(clippy::unwrap_used, reason = "scratch")]
use std::hint::black_box;
use std::time::Instant;
fn main() {
    let claims = r#"{"iss":"https://id.example.com","sub":"user-1","aud":"https://api.example.com","exp":1800000000,"iat":1700000000,"jti":"0f8c2a3e-5b0c-4d2e-9f61-3b1d7c2a9e10","client_id":"client-1","scope":"openid orders:read orders:write","roles":["admin"]}"#;
    let mut best = [f64::MAX; 3];
    for _ in 0..50 {
        let t = Instant::now();
        for _ in 0..1000 {
            black_box(sigil_verify::__parse_claims_for_bench(black_box(
                claims.as_bytes(),
            )));
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64() / 1000.0);
        let t = Instant::now();
        for _ in 0..1000 {
            black_box(serde_json::from_str::<sigil_verify::Claims>(black_box(claims)).unwrap());
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64() / 1000.0);
        let t = Instant::now();
        for _ in 0..1000 {
            black_box(serde_json::from_str::<serde::de::IgnoredAny>(black_box(claims)).unwrap());
        }
        best[2] = best[2].min(t.elapsed().as_secs_f64() / 1000.0);
    }
    println!(
        "raw parse {:.3} us, claims serde {:.3} us, ignored {:.3} us",
        best[0] * 1e6,
        best[1] * 1e6,
        best[2] * 1e6
    );
}
