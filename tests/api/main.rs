//! Black-box tests of Sigil through HTTP and the `sigil` binary, on three configurations: SQLite,
//! PostgreSQL alone, and PostgreSQL with Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flow;
mod helpers;

mod admin;
mod admin_api;
mod audit;
mod cli;
mod database;
mod discovery;
mod hardening;
mod keys;
mod kill9;
mod login;
mod logout;
mod mfa;
mod outage;
mod pages;
mod proxies;
mod rate_limits;
mod remote_cli;
mod replicas;
mod revocations;
mod roles;
mod token;
mod tokens;
mod users;
