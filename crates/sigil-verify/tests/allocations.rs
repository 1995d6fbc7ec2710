//! "A cache hit for a known kid allocates nothing beyond the claims it returns": count the
//! allocations of one verification and compare with what cloning the returned claims costs.
//! (A test binary of its own, since it installs a counting global allocator; single test so
//! no other thread allocates meanwhile.)
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use common::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[test]
fn verification_allocates_only_the_returned_claims() {
    for s in Signer::all() {
        let other = Signer::ed25519();
        let v = verifier(&[&s, &other]);
        let token = s.token();
        // Warm up (thread-locals, lazy statics).
        drop(v.verify(&token).unwrap());

        let region = Region::new(GLOBAL);
        let claims = v.verify(&token).unwrap();
        let verify_allocs = region.change().allocations;

        // The signature check alone (ring allocates for RSA arithmetic; P-256 and Ed25519 do
        // not), through the same key type the verifier uses.
        let key = sigil_verify::VerifyingKey::from_jwk(&s.jwk).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = sigil_verify::base64url::decode(sig).unwrap();
        let region = Region::new(GLOBAL);
        key.verify(s.alg, input.as_bytes(), &sig).unwrap();
        let crypto_allocs = region.change().allocations;

        let region = Region::new(GLOBAL);
        let copy = claims.clone();
        let clone_allocs = region.change().allocations;
        drop(copy);
        // `extra` holds one member ("permissions": ["orders:read"]): the map node, the key,
        // the array and the string are part of the claims in both counts.
        assert!(
            verify_allocs <= clone_allocs + crypto_allocs,
            "{}: verify made {verify_allocs} allocations; the claims need {clone_allocs}, \
             the signature check {crypto_allocs}",
            s.alg
        );
    }
}
