//! `sigil audit verify | tail [-n N] | prune --before DURATION`: check, read and trim the
//! audit trail.

use clap::Subcommand;

use super::{Globals, print};
use crate::clock::rfc3339;
use crate::startup::open_keys_blocking;
use crate::store::audit::{self, Verdict};

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; exit 1 when an event was altered, inserted or removed.
    Verify,
    /// Delete events older than DURATION (e.g. 400d), leaving an anchor event so that
    /// `audit verify` still checks what is left.
    Prune {
        /// Age of the oldest event to keep: 30s, 10m, 12h, 90d.
        #[arg(long)]
        before: String,
    },
    /// The newest events, oldest first.
    Tail {
        /// How many.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        n: u32,
    },
}

/// Run an `audit` subcommand.
pub fn run(g: &Globals, cmd: AuditCommand) -> anyhow::Result<()> {
    let settings = g.settings()?;
    let keys = open_keys_blocking(&settings)?;
    match cmd {
        AuditCommand::Verify => {
            let verdict = keys
                .store
                .run_blocking(|c| audit::verify(c, &keys.master))?;
            let value = serde_json::to_value(&verdict)?;
            match verdict {
                Verdict::Intact { events, head_hash } => {
                    print(g, &value, || {
                        format!(
                            "audit trail intact: {events} events\nhead hash: {head_hash}\n(keep a copy of the head hash elsewhere: it also reveals events cut off the end)"
                        )
                    });
                    Ok(())
                }
                Verdict::Broken { seq, reason } => {
                    print(g, &value, || {
                        format!("audit trail BROKEN at event {seq}: {reason}")
                    });
                    anyhow::bail!("the audit trail does not verify (event {seq})")
                }
            }
        }
        AuditCommand::Prune { before } => {
            let age = crate::domain::parse_duration(&before).map_err(anyhow::Error::msg)?;
            let now = crate::clock::unix_now(&crate::clock::SystemClock);
            let cutoff = now.saturating_sub(crate::clock::secs(age));
            let actor = format!("cli:{}", super::login_name());
            let pruned = keys
                .store
                .run_blocking(|c| audit::prune(c, &keys.master, cutoff, now, actor))?;
            let value = serde_json::json!({
                "deleted": pruned.deleted,
                "before": rfc3339(cutoff),
                "anchor_seq": pruned.anchor_seq,
            });
            print(g, &value, || match pruned.anchor_seq {
                Some(seq) => format!(
                    "deleted {} events older than {}; anchor event {seq} records where the chain now starts",
                    pruned.deleted,
                    rfc3339(cutoff).unwrap_or_default()
                ),
                None => "no event is that old; nothing deleted".to_owned(),
            });
            Ok(())
        }
        AuditCommand::Tail { n } => {
            let rows = keys.store.run_blocking(|c| audit::tail(c, i64::from(n)))?;
            let value = serde_json::Value::Array(
                rows.iter()
                    .map(|r| {
                        serde_json::json!({
                            "seq": r.seq,
                            "at": rfc3339(r.at),
                            "kind": r.kind,
                            "actor": r.actor,
                            "subject": r.subject,
                            "client_id": r.client_id,
                            "details": serde_json::from_str::<serde_json::Value>(&r.details)
                                .unwrap_or(serde_json::Value::Null),
                            "hash": r.hash,
                        })
                    })
                    .collect(),
            );
            print(g, &value, || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{:>6} {} {:<26} {:<28} {} {}",
                            r.seq,
                            rfc3339(r.at).unwrap_or_default(),
                            r.kind,
                            r.actor,
                            r.subject.as_deref().unwrap_or("-"),
                            r.details
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}
