//! `sigil keys …`.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Subcommand, ValueEnum};
use sigil_verify::Algorithm;

use super::{Globals, print};
use crate::clock::{SystemClock, rfc3339, unix_now};
use crate::keys::lifecycle::RotationPlan;
use crate::keys::{Applied, ExportFormat};
use crate::startup::open_keys_blocking;

/// Algorithms on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgArg {
    /// RSA PKCS#1 v1.5 with SHA-256.
    #[value(name = "RS256")]
    Rs256,
    /// RSA-PSS with SHA-256.
    #[value(name = "PS256")]
    Ps256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<AlgArg> for Algorithm {
    fn from(a: AlgArg) -> Algorithm {
        match a {
            AlgArg::Rs256 => Algorithm::RS256,
            AlgArg::Ps256 => Algorithm::PS256,
            AlgArg::Es256 => Algorithm::ES256,
            AlgArg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// `keys export --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// One jwks.json.
    Jwks,
    /// One <kid>.pem per key.
    Pem,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every key with its state and schedule.
    List,
    /// Add a key: it signs at once if its algorithm has no key, else it is a staged rotation.
    Generate {
        /// Algorithm.
        #[arg(long)]
        alg: AlgArg,
    },
    /// Staged rotation: publish a new key now, sign with it after the JWKS cache lifetime plus
    /// clock skew. Without --alg, every algorithm in use.
    Rotate {
        /// Only this algorithm.
        #[arg(long)]
        alg: Option<AlgArg>,
        /// Print what would be published, activated and dropped, and when; change nothing.
        #[arg(long)]
        plan: bool,
        /// Sign with the new (or already waiting) key at once (key compromise).
        #[arg(long)]
        now: bool,
    },
    /// Remove a key from the JWKS and the ring at once. A key whose tokens may still be valid
    /// needs --now.
    Retire {
        /// Key id (may start with '-': thumbprints are base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Also when tokens it signed may still be valid (key compromise).
        #[arg(long)]
        now: bool,
    },
    /// Write the published public keys (never a private key).
    Export {
        /// jwks or pem.
        #[arg(long)]
        format: FormatArg,
        /// Directory to write into.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run a `keys` subcommand.
pub fn run(g: &Globals, cmd: KeysCommand) -> anyhow::Result<()> {
    let settings = g.settings()?;
    let keys = open_keys_blocking(&settings)?;
    let now = unix_now(&SystemClock);
    match cmd {
        KeysCommand::List => {
            let list = keys.list(now)?;
            print(g, &serde_json::to_value(&list)?, || {
                let mut out = format!(
                    "{:<44} {:<6} {:<9} {:<4} {:<21} {:<21} {:<21}\n",
                    "KID", "ALG", "STATE", "JWKS", "ACTIVATES", "UNPUBLISHES", "RETIRES"
                );
                for k in &list {
                    out.push_str(&format!(
                        "{:<44} {:<6} {:<9} {:<4} {:<21} {:<21} {:<21}\n",
                        k.kid,
                        k.alg,
                        k.state.as_str(),
                        if k.published { "yes" } else { "no" },
                        k.activates_at.as_deref().unwrap_or("-"),
                        k.unpublishes_at.as_deref().unwrap_or("-"),
                        k.retires_at.as_deref().unwrap_or("-")
                    ));
                }
                out.trim_end().to_owned()
            });
        }
        KeysCommand::Generate { alg } => {
            let alg = Algorithm::from(alg);
            let mut applied = keys.ensure(&[alg], now)?;
            if applied.is_empty() {
                applied = keys.rotate(&[alg], now, false, false)?;
            }
            audit_applied(&keys, "key.generate", &applied)?;
            report(g, &applied, false);
        }
        KeysCommand::Rotate {
            alg,
            plan,
            now: immediate,
        } => {
            let algs = match alg {
                Some(a) => vec![Algorithm::from(a)],
                None => keys.algorithms_in_use(now)?,
            };
            if algs.is_empty() {
                bail!("no algorithm has a signing key; use `sigil keys generate --alg ES256`");
            }
            let applied = keys.rotate(&algs, now, immediate, plan)?;
            if !plan {
                audit_applied(&keys, "key.rotate", &applied)?;
            }
            report(g, &applied, plan);
        }
        KeysCommand::Retire { kid, now: force } => {
            let (retired, replacement) = keys.retire(&kid, now, force)?;
            super::audit(
                &keys,
                "key.retire",
                Some(retired.kid.clone()),
                serde_json::json!({
                    "now": force,
                    "replacement": replacement.as_ref().and_then(|a| a.new_kid.clone()),
                }),
            )?;
            let value = serde_json::json!({
                "retired": retired.kid,
                "retired_at": rfc3339(now),
                "replacement": replacement.as_ref().and_then(|a| a.new_kid.clone()),
            });
            print(g, &value, || {
                let mut s = format!("retired {} (removed from the JWKS now)", retired.kid);
                if let Some(r) = replacement.and_then(|a| a.new_kid) {
                    s.push_str(&format!("\nnew signing key {r} signs from now"));
                }
                s
            });
        }
        KeysCommand::Export { format, out } => {
            let format = match format {
                FormatArg::Jwks => ExportFormat::Jwks,
                FormatArg::Pem => ExportFormat::Pem,
            };
            let written = keys.export(now, format, &out)?;
            print(g, &serde_json::json!({"written": written}), || {
                format!("wrote {}", written.join(", "))
            });
        }
    }
    Ok(())
}

fn report(g: &Globals, applied: &[Applied], dry_run: bool) {
    let items: Vec<serde_json::Value> = applied
        .iter()
        .map(|a| {
            let mut v = plan_json_simple(&a.plan, a.new_kid.as_deref());
            if let Some(obj) = v.as_object_mut() {
                obj.insert("applied".into(), serde_json::Value::Bool(!dry_run));
                obj.insert("pending".into(), serde_json::Value::Bool(a.pending));
            }
            v
        })
        .collect();
    print(g, &serde_json::Value::Array(items), || {
        let mut out = String::new();
        if dry_run {
            out.push_str("plan (nothing changed):\n");
        }
        for a in applied {
            let p = &a.plan;
            if a.pending {
                out.push_str(&format!(
                    "{}: a rotation is already waiting (a further one needs --now):\n",
                    p.alg
                ));
            }
            match (p.new_key_activates_at, &a.new_kid) {
                (Some(at), Some(kid)) => out.push_str(&format!(
                    "{}: new key {kid} published now, signs from {}\n",
                    p.alg,
                    rfc3339(at).unwrap_or_default()
                )),
                (Some(at), None) => out.push_str(&format!(
                    "{}: a new key will be published now and sign from {}\n",
                    p.alg,
                    rfc3339(at).unwrap_or_default()
                )),
                (None, _) => {}
            }
            for r in &p.reschedule {
                match (r.deactivates_at, r.retires_at) {
                    (Some(d), Some(rt)) => out.push_str(&format!(
                        "{}: key {} stops signing at {}, leaves the JWKS at {} (its access and ID tokens expired) and retires at {} (its refresh tokens expired)\n",
                        p.alg,
                        r.kid,
                        rfc3339(d).unwrap_or_default(),
                        rfc3339(r.unpublishes_at.unwrap_or(rt).min(rt)).unwrap_or_default(),
                        rfc3339(rt).unwrap_or_default()
                    )),
                    _ => out.push_str(&format!(
                        "{}: waiting key {} signs from {}\n",
                        p.alg,
                        r.kid,
                        rfc3339(r.activates_at).unwrap_or_default()
                    )),
                }
            }
        }
        out.trim_end().to_owned()
    });
}

fn plan_json_simple(plan: &RotationPlan, new_kid: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "alg": plan.alg,
        "new_key": new_kid,
        "new_key_signs_at": plan.new_key_activates_at.and_then(rfc3339),
        "changes": plan.reschedule.iter().map(|r| serde_json::json!({
            "kid": r.kid,
            "signs_from": rfc3339(r.activates_at),
            "stops_signing_at": r.deactivates_at.and_then(rfc3339),
            "unpublished_at": r.unpublishes_at.or(r.retires_at).and_then(rfc3339),
            "retires_at": r.retires_at.and_then(rfc3339),
        })).collect::<Vec<_>>(),
    })
}

/// One audit event per key created.
fn audit_applied(
    keys: &crate::keys::KeyService,
    kind: &'static str,
    applied: &[crate::keys::Applied],
) -> anyhow::Result<()> {
    for a in applied {
        if let Some(kid) = &a.new_kid {
            super::audit(
                keys,
                kind,
                Some(kid.clone()),
                serde_json::to_value(&a.plan)?,
            )?;
        }
    }
    Ok(())
}
