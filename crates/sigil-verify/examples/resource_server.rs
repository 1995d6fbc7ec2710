//! A resource server that accepts Sigil access tokens, checked offline with `sigil-verify`'s
//! actix guards (see `resource_server/routes.rs` for the routes and what each needs).
//!
//! ```text
//! cargo run -p sigil-verify --features actix --example resource_server -- \
//!     --issuer https://id.example.com --audience https://api.example.com --jwks jwks.json
//! ```
//!
//! Settings, each a flag or else an environment variable:
//!
//! * `--issuer` / `ISSUER`: the exact `iss` of the tokens (required);
//! * `--audience` / `AUDIENCE`: this API's audience, which tokens must carry in `aud`
//!   (required);
//! * `--jwks` / `JWKS_FILE`: the issuer's keys as a JWKS file (`curl $ISSUER/jwks.json`), or
//!   `--pem-dir` / `PEM_DIR`: a directory of public-key PEM files (Sigil's `keys/` export);
//!   with the `remote` feature too and neither given, the keys come from the issuer's discovery
//!   document and are refreshed in the background;
//! * `--bind` / `BIND`: the address to listen on (default `127.0.0.1:8081`).
//!
//! Then, with a token for this audience (`curl -u CLIENT:SECRET $ISSUER/token -d
//! grant_type=client_credentials -d resource=https://api.example.com`):
//!
//! ```text
//! curl -i http://127.0.0.1:8081/orders                                # 401, WWW-Authenticate: Bearer
//! curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/orders   # 200, or 403 insufficient_scope
//! ```

#[path = "resource_server/routes.rs"]
mod routes;

use std::process::ExitCode;

use actix_web::{App, HttpServer};
use sigil_verify::Verifier;

const USAGE: &str = "\
usage: resource_server --issuer URL --audience AUD (--jwks FILE | --pem-dir DIR) [--bind ADDR]
  --issuer   / ISSUER     exact `iss` of the tokens
  --audience / AUDIENCE   this API's audience (tokens must carry it in `aud`)
  --jwks     / JWKS_FILE  the issuer's keys as a JWKS file
  --pem-dir  / PEM_DIR    or a directory of public-key PEM files
                          (with the `remote` feature and neither: discovery)
  --bind     / BIND       listen address (default 127.0.0.1:8081)
routes: GET /orders (permission orders:read), POST /orders (orders:write),
  POST /jobs/{name}/run (job:run), GET /reports (scope reports:read), GET /admin (role admin)";

/// `--flag value` from the command line, else the environment variable `env`.
fn setting(args: &[String], flag: &str, env: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
        .filter(|v| !v.is_empty())
}

fn verifier(args: &[String]) -> Result<Verifier, String> {
    let issuer = setting(args, "--issuer", "ISSUER").ok_or("--issuer or ISSUER is required")?;
    let audience =
        setting(args, "--audience", "AUDIENCE").ok_or("--audience or AUDIENCE is required")?;
    let builder = Verifier::builder(issuer, audience);
    let builder = match (
        setting(args, "--jwks", "JWKS_FILE"),
        setting(args, "--pem-dir", "PEM_DIR"),
    ) {
        (Some(file), _) => builder.jwks_file(file),
        (None, Some(dir)) => builder.pem_dir(dir),
        #[cfg(feature = "remote")]
        (None, None) => builder.remote(sigil_verify::remote::RemoteOptions::default()),
        #[cfg(not(feature = "remote"))]
        (None, None) => return Err("--jwks FILE or --pem-dir DIR is required".into()),
    };
    builder.build().map_err(|e| e.to_string())
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let verifier = match verifier(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("resource_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bind = setting(&args, "--bind", "BIND").unwrap_or_else(|| "127.0.0.1:8081".into());
    let v = verifier.validation();
    println!(
        "resource_server: tokens from {} for {:?}, listening on {bind}",
        v.issuer, v.audiences
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .configure(routes::configure)
    })
    .bind(&bind);
    match server {
        Ok(server) => match server.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("resource_server: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("resource_server: cannot listen on {bind}: {e}");
            ExitCode::FAILURE
        }
    }
}
