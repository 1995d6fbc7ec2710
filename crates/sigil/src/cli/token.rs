//! `sigil token verify`: check a token the way a resource server would, with `sigil-verify`.

use std::path::PathBuf;

use clap::Subcommand;
use sigil_verify::Verifier;

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Verify an access token. Exit 0 and the claims as JSON on stdout when valid; exit 1 and the
    /// reason on stderr when not.
    Verify {
        /// Expected issuer (exact `iss`).
        #[arg(long)]
        issuer: String,
        /// Expected audience.
        #[arg(long)]
        audience: String,
        /// Keys from this JWKS file instead of the issuer's discovery document and JWKS.
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// The token.
        token: String,
    },
}

/// Run a `token` subcommand; returns the exit code.
pub fn run(cmd: TokenCommand) -> i32 {
    match cmd {
        TokenCommand::Verify {
            issuer,
            audience,
            jwks,
            token,
        } => {
            let builder = Verifier::builder(issuer.as_str(), audience.as_str());
            let builder = match jwks {
                Some(path) => builder.jwks_file(path),
                None => builder.remote(
                    sigil_verify::remote::RemoteOptions::new()
                        .with_discovery_url(format!(
                            "{}/.well-known/openid-configuration",
                            issuer.trim_end_matches('/')
                        ))
                        // The operator named the issuer; http is accepted only when they did.
                        .with_allow_http(issuer.starts_with("http://")),
                ),
            };
            let verifier = match builder.build() {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("cannot load keys: {e}");
                    return 1;
                }
            };
            match verifier.verify(token.trim()) {
                Ok(claims) => match serde_json::to_string_pretty(&claims) {
                    Ok(json) => {
                        println!("{json}");
                        0
                    }
                    Err(e) => {
                        eprintln!("cannot print claims: {e}");
                        1
                    }
                },
                Err(e) => {
                    eprintln!("invalid token: {e}");
                    1
                }
            }
        }
    }
}
