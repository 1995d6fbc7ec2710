//! The "Examples:" block of every command's `--help`, in one table keyed by the command's path,
//! attached to the clap command tree by [`with_examples`]. A unit test (and a black-box test
//! walking `--help`) checks that no command is without one.

use clap::Command;

/// Examples per command path (`""` is `sigil` itself).
const EXAMPLES: &[(&str, &str)] = &[
    (
        "",
        "sigil serve --listen 0.0.0.0:8080 --issuer https://id.example.com\n  sigil clients create --name billing --grant client_credentials --scope invoices:read\n  sigil keys rotate --plan",
    ),
    (
        "serve",
        "sigil serve\n  sigil serve --listen 0.0.0.0:8080 --issuer https://id.example.com\n  SIGIL_DATABASE_URL=postgres://sigil@db/sigil sigil serve",
    ),
    (
        "migrate",
        "sigil migrate\n  SIGIL_DATABASE_URL=postgres://sigil@db/sigil sigil migrate --json",
    ),
    (
        "keys",
        "sigil keys list\n  sigil keys rotate --plan\n  sigil keys export --format jwks --out keys/",
    ),
    ("keys list", "sigil keys list\n  sigil keys list --json"),
    (
        "keys generate",
        "sigil keys generate --alg EdDSA\n  sigil keys generate --alg RS256 --json",
    ),
    (
        "keys rotate",
        "sigil keys rotate --plan\n  sigil keys rotate --alg ES256\n  sigil keys rotate --alg ES256 --now    # key compromise: sign with a new key at once",
    ),
    (
        "keys retire",
        "sigil keys retire 4n5L78blvCMziFGPy7TCGcr4YGlx8bv1cptv6i3bFAE\n  sigil keys retire -Xb3... --now    # compromised: drop it although tokens may be valid",
    ),
    (
        "keys export",
        "sigil keys export --format jwks --out keys/\n  sigil keys export --format pem --out keys/",
    ),
    (
        "clients",
        "sigil clients create --name billing --grant client_credentials --scope invoices:read\n  sigil clients list\n  sigil clients update sgl_... --add-redirect-uri https://app.example/cb",
    ),
    (
        "clients create",
        "sigil clients create --name billing --grant client_credentials --scope invoices:read --json\n  sigil clients create --name web --grant authorization_code --grant refresh_token \\\n      --redirect-uri https://app.example/cb --scope openid --scope profile\n  sigil clients create --name spa --public --redirect-uri https://spa.example/cb --scope openid\n  sigil clients create --name runner --scope jobs:run --jwks-file runner-jwks.json",
    ),
    (
        "clients list",
        "sigil clients list\n  sigil clients list --json",
    ),
    (
        "clients show",
        "sigil clients show sgl_9tZj6qjbn3dsALVyUEr9nw\n  sigil clients show sgl_9tZj6qjbn3dsALVyUEr9nw --json",
    ),
    (
        "clients update",
        "sigil clients update sgl_... --add-redirect-uri https://app.example/new-cb --remove-redirect-uri https://app.example/cb\n  sigil clients update sgl_... --name \"Billing v2\" --add-scope invoices:write\n  sigil clients update sgl_... --role billing --role reports\n  sigil clients update sgl_... --add-web-origin https://spa.example",
    ),
    (
        "clients delete",
        "sigil clients delete sgl_9tZj6qjbn3dsALVyUEr9nw",
    ),
    (
        "clients rotate-secret",
        "sigil clients rotate-secret sgl_...\n  sigil clients rotate-secret sgl_... --overlap 1h --json",
    ),
    (
        "users",
        "printf '%s\\n' \"$PASSWORD\" | sigil users create --username alice --email alice@example.com --password-stdin\n  sigil users list\n  sigil users disable alice",
    ),
    (
        "users create",
        "sigil users create --username alice --email alice@example.com --password-stdin    # prompts on a terminal, no echo\n  printf '%s\\n' \"$PASSWORD\" | sigil users create --username bob --role reader --password-stdin",
    ),
    ("users list", "sigil users list\n  sigil users list --json"),
    (
        "users update",
        "sigil users update alice --email alice@example.org    # the new address is unverified\n  sigil users update alice --email-verified true\n  sigil users update alice --no-email",
    ),
    (
        "users show",
        "sigil users show alice\n  sigil users show alice --json",
    ),
    (
        "users disable",
        "sigil users disable alice    # ends her sessions and refresh tokens",
    ),
    ("users enable", "sigil users enable alice"),
    (
        "users set-roles",
        "sigil users set-roles alice reader billing\n  sigil users set-roles alice    # no roles",
    ),
    ("users delete", "sigil users delete alice"),
    (
        "roles",
        "sigil roles create editor --permission job:create --permission job:read\n  sigil roles list\n  sigil roles import deploy/examples/authorization.toml",
    ),
    (
        "roles create",
        "sigil roles create readonly --permission job:read --permission user:read --description \"Read-only access\"\n  sigil roles create auditor --permission admin:audit:read --json",
    ),
    (
        "roles update",
        "sigil roles update editor --add-permission job:delete\n  sigil roles update editor --remove-permission job:create --description \"Edits jobs\"",
    ),
    ("roles list", "sigil roles list\n  sigil roles list --json"),
    (
        "roles show",
        "sigil roles show editor\n  sigil roles show sigil-admin --json",
    ),
    (
        "roles delete",
        "sigil roles delete editor    # every user and client holding it loses it",
    ),
    (
        "roles import",
        "sigil roles import deploy/examples/authorization.toml\n  sigil roles import roles.toml --json",
    ),
    (
        "apis",
        "sigil apis create --audience https://jobs.example.com --permission job:create --permission job:read\n  sigil apis list",
    ),
    (
        "apis create",
        "sigil apis create --audience https://jobs.example.com --name Jobs --permission job:create --permission job:read\n  sigil apis create --audience https://billing.example.com --permission invoice:read --json",
    ),
    (
        "apis update",
        "sigil apis update https://jobs.example.com --add-permission job:delete\n  sigil apis update https://jobs.example.com --name \"Jobs v2\" --remove-permission job:read",
    ),
    ("apis list", "sigil apis list\n  sigil apis list --json"),
    (
        "apis show",
        "sigil apis show https://jobs.example.com\n  sigil apis show https://jobs.example.com --json",
    ),
    ("apis delete", "sigil apis delete https://jobs.example.com"),
    ("users export", "sigil users export alice > alice.json"),
    (
        "users totp",
        "sigil users totp enroll alice\n  sigil users totp disable alice",
    ),
    (
        "users totp enroll",
        "sigil users totp enroll alice    # shows the secret, its otpauth:// URI and 10 recovery codes, once\n  sigil users totp enroll alice --json    # again: a new secret and new codes replace the old",
    ),
    (
        "users totp disable",
        "sigil users totp disable alice    # a lost authenticator: a password alone signs in",
    ),
    (
        "users reset-password",
        "sigil users reset-password alice --password-stdin\n  printf '%s\\n' \"$PASSWORD\" | sigil users reset-password alice --password-stdin",
    ),
    (
        "config",
        "sigil config check --config /etc/sigil/sigil.toml",
    ),
    (
        "config check",
        "sigil config check --config /etc/sigil/sigil.toml\n  SIGIL_ACCESS_TOKEN_TTL=5m sigil config check --json",
    ),
    (
        "token",
        "sigil token verify --issuer https://id.example.com --audience https://api.example.com \"$TOKEN\"",
    ),
    (
        "token verify",
        "sigil token verify --issuer https://id.example.com --audience https://api.example.com \"$TOKEN\"\n  sigil token verify --issuer https://id.example.com --audience api --jwks keys/jwks.json \"$TOKEN\"",
    ),
    (
        "audit",
        "sigil audit verify\n  sigil audit tail -n 50\n  sigil audit prune --before 400d",
    ),
    (
        "audit verify",
        "sigil audit verify\n  sigil audit verify --json",
    ),
    (
        "audit tail",
        "sigil audit tail\n  sigil audit tail -n 200 --json",
    ),
    (
        "audit prune",
        "sigil audit prune --before 400d\n  sigil audit prune --before 90d --json",
    ),
];

/// The examples of the command at `path`.
pub fn examples(path: &str) -> Option<&'static str> {
    EXAMPLES.iter().find(|(p, _)| *p == path).map(|(_, e)| *e)
}

/// Attach every command's examples as its `after_help`.
pub fn with_examples(cmd: Command) -> Command {
    attach(cmd, "")
}

fn attach(cmd: Command, path: &str) -> Command {
    let cmd = match examples(path) {
        Some(text) => cmd.after_help(format!("Examples:\n  {text}")),
        None => cmd,
    };
    let path = path.to_owned();
    cmd.mut_subcommands(move |sub| {
        let name = sub.get_name().to_owned();
        let sub_path = if path.is_empty() {
            name
        } else {
            format!("{path} {name}")
        };
        attach(sub, &sub_path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn walk(cmd: &Command, path: &str, out: &mut Vec<String>) {
        out.push(path.to_owned());
        for sub in cmd.get_subcommands() {
            let p = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, &p, out);
        }
    }

    #[test]
    fn every_command_has_examples_and_every_example_a_command() {
        let mut paths = Vec::new();
        walk(&crate::cli::Cli::command(), "", &mut paths);
        for p in &paths {
            assert!(examples(p).is_some(), "`sigil {p}` has no examples");
        }
        for (p, text) in EXAMPLES {
            assert!(
                paths.iter().any(|q| q == p),
                "examples for a command that does not exist: {p}"
            );
            let first = format!("sigil {p}");
            assert!(
                text.lines().any(|l| l.contains(first.trim_end())) || p.is_empty(),
                "the examples of `sigil {p}` show it"
            );
        }
    }
}
