//! Sigil: a small, fast OpenID Connect identity provider. The binary (`main.rs`) only wires; all
//! of Sigil lives in this library so the CLI and the tests reuse it. See docs/ARCHITECTURE.md.

pub mod admin;
pub mod authz;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod mfa;
pub mod oauth;
pub mod passwords;
pub mod ratelimit;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
