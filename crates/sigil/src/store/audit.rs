//! `audit_events`: the append-only audit trail, hash-chained.
//!
//! Event *n* stores `hash = HMAC(audit key, [seq, at, kind, actor, subject, client_id, details,
//! prev_hash])` with `prev_hash` = event *n−1*'s hash (empty for the first). The audit key is
//! derived from the master key, so someone who can write the database but does not hold the
//! master key cannot edit, insert or remove an event without [`verify`] noticing (except
//! cutting events off the end, which only an external copy of the head hash reveals; `sigil
//! audit verify` prints it for that purpose). Appends take the `audit` lease row's lock, so
//! processes sharing one database keep one chain.
//!
//! Retention ([`prune`]) deletes a prefix of the chain and appends an `audit.anchor` event that
//! records the seq and hash of the last event deleted; [`verify`] then starts from the anchor
//! whose `through_seq` is just before the oldest event left, so the chain stays checkable and
//! removing more from its start (or editing the anchor) is still caught.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::audit_events;
use super::{DbConn, StoreError, meta};
use crate::crypto::MasterKey;

/// Lease row whose lock serialises appends.
const AUDIT_LOCK: &str = "audit";

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unix seconds.
    pub at: i64,
    /// What happened, e.g. `refresh_token.reuse`.
    pub kind: &'static str,
    /// Who did it: `cli`, `system`, `client:<id>`, `user:<id>`, `anonymous`.
    pub actor: String,
    /// What it concerns (a user id, client id, kid, ...).
    pub subject: Option<String>,
    /// The OAuth client involved.
    pub client_id: Option<String>,
    /// More facts, as a JSON object. Never a secret or a token.
    pub details: serde_json::Value,
}

/// One stored event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = audit_events)]
pub struct EventRow {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Event kind.
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// What it concerns.
    pub subject: Option<String>,
    /// The OAuth client involved.
    pub client_id: Option<String>,
    /// JSON object text.
    pub details: String,
    /// Hash of the previous event ("" for the first).
    pub prev_hash: String,
    /// This event's link.
    pub hash: String,
}

impl EventRow {
    fn link(&self, master: &MasterKey) -> String {
        // A JSON array of the fields: an unambiguous encoding (no field can run into the next).
        let input = serde_json::json!([
            self.seq,
            self.at,
            self.kind,
            self.actor,
            self.subject,
            self.client_id,
            self.details,
            self.prev_hash
        ]);
        master.audit_mac(input.to_string().as_bytes())
    }
}

/// Append `event` at the head of the chain (inside the caller's transaction when there is
/// one, so the event commits or rolls back with the change it records). Returns its `seq`.
pub fn append(conn: &mut DbConn, master: &MasterKey, event: NewEvent) -> Result<i64, StoreError> {
    meta::locked(conn, AUDIT_LOCK, |c| {
        let head: Option<(i64, String)> = audit_events::table
            .select((audit_events::seq, audit_events::hash))
            .order(audit_events::seq.desc())
            .first(c)
            .optional()?;
        let (seq, prev_hash) = match head {
            Some((s, h)) => (s + 1, h),
            None => (1, String::new()),
        };
        let mut row = EventRow {
            seq,
            at: event.at,
            kind: event.kind.to_owned(),
            actor: event.actor,
            subject: event.subject,
            client_id: event.client_id,
            details: event.details.to_string(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.link(master);
        diesel::insert_into(audit_events::table)
            .values(&row)
            .execute(c)?;
        Ok(seq)
    })
}

/// The last `n` events, oldest first.
pub fn tail(conn: &mut DbConn, n: i64) -> Result<Vec<EventRow>, StoreError> {
    let mut rows: Vec<EventRow> = audit_events::table
        .select(EventRow::as_select())
        .order(audit_events::seq.desc())
        .limit(n)
        .load(conn)?;
    rows.reverse();
    Ok(rows)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verdict {
    /// Every event links to the one before and carries the right hash.
    Intact {
        /// Events checked.
        events: i64,
        /// The newest event's hash: keep a copy elsewhere to detect truncation later.
        head_hash: String,
    },
    /// The chain is broken at `seq`.
    Broken {
        /// First event that does not check out.
        seq: i64,
        /// Why.
        reason: String,
    },
}

/// Kind of the event [`prune`] leaves.
pub const ANCHOR: &str = "audit.anchor";

/// What [`prune`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Events deleted.
    pub deleted: i64,
    /// The anchor event written (none when nothing was old enough).
    pub anchor_seq: Option<i64>,
}

/// Delete every event older than `before` (Unix seconds) — the oldest events, a prefix of the
/// chain — and append an anchor recording where the chain now starts, in one transaction under
/// the audit lock.
pub fn prune(
    conn: &mut DbConn,
    master: &MasterKey,
    before: i64,
    now: i64,
    actor: String,
) -> Result<Pruned, StoreError> {
    meta::locked(conn, AUDIT_LOCK, |c| {
        // The prefix ends at the first event not older than `before`: seq order is time order.
        let first_kept: Option<i64> = audit_events::table
            .select(audit_events::seq)
            .filter(audit_events::at.ge(before))
            .order(audit_events::seq.asc())
            .first(c)
            .optional()?;
        let last: Option<(i64, String)> = match first_kept {
            Some(k) => audit_events::table
                .select((audit_events::seq, audit_events::hash))
                .filter(audit_events::seq.lt(k))
                .order(audit_events::seq.desc())
                .first(c)
                .optional()?,
            None => audit_events::table
                .select((audit_events::seq, audit_events::hash))
                .order(audit_events::seq.desc())
                .first(c)
                .optional()?,
        };
        let Some((through_seq, through_hash)) = last else {
            return Ok(Pruned {
                deleted: 0,
                anchor_seq: None,
            });
        };
        let deleted = diesel::delete(audit_events::table.filter(audit_events::seq.le(through_seq)))
            .execute(c)?;
        let anchor_seq = append(
            c,
            master,
            NewEvent {
                at: now,
                kind: ANCHOR,
                actor,
                subject: None,
                client_id: None,
                details: serde_json::json!({
                    "deleted": deleted,
                    "before": before,
                    "through_seq": through_seq,
                    "through_hash": through_hash,
                }),
            },
        )?;
        Ok(Pruned {
            deleted: i64::try_from(deleted).unwrap_or(i64::MAX),
            anchor_seq: Some(anchor_seq),
        })
    })
}

/// Where the chain starts: seq 1 with no previous hash, or after a prune the oldest event left
/// and the hash an anchor recorded for the event before it. `Err` carries a broken verdict.
fn chain_start(conn: &mut DbConn) -> Result<Result<(i64, String), Verdict>, StoreError> {
    let oldest: Option<i64> = audit_events::table
        .select(audit_events::seq)
        .order(audit_events::seq.asc())
        .first(conn)
        .optional()?;
    let oldest = match oldest {
        None | Some(1) => return Ok(Ok((1, String::new()))),
        Some(s) => s,
    };
    let anchors: Vec<String> = audit_events::table
        .select(audit_events::details)
        .filter(audit_events::kind.eq(ANCHOR))
        .order(audit_events::seq.desc())
        .load(conn)?;
    for details in anchors {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&details) else {
            continue;
        };
        if v["through_seq"].as_i64() == Some(oldest - 1)
            && let Some(hash) = v["through_hash"].as_str()
        {
            return Ok(Ok((oldest, hash.to_owned())));
        }
    }
    Ok(Err(Verdict::Broken {
        seq: oldest - 1,
        reason: format!(
            "events 1 to {} are missing and no anchor (`sigil audit prune`) accounts for them",
            oldest - 1
        ),
    }))
}

/// Walk the whole chain in order, a page at a time, from its start (see [`prune`]).
pub fn verify(conn: &mut DbConn, master: &MasterKey) -> Result<Verdict, StoreError> {
    const PAGE: i64 = 1000;
    let (mut expected_seq, mut prev) = match chain_start(conn)? {
        Ok(start) => start,
        Err(broken) => return Ok(broken),
    };
    let first_seq = expected_seq;
    loop {
        let page: Vec<EventRow> = audit_events::table
            .select(EventRow::as_select())
            .filter(audit_events::seq.ge(expected_seq))
            .order(audit_events::seq.asc())
            .limit(PAGE)
            .load(conn)?;
        let full = page.len() as i64 == PAGE;
        for row in page {
            let broken = |reason: &str| {
                Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: reason.to_owned(),
                })
            };
            if row.seq != expected_seq {
                return Ok(Verdict::Broken {
                    seq: expected_seq,
                    reason: format!("event {expected_seq} is missing"),
                });
            }
            if row.prev_hash != prev {
                return broken("it does not link to the event before it");
            }
            let link = row.link(master);
            if !crate::crypto::ct_eq(link.as_bytes(), row.hash.as_bytes()) {
                return broken("its contents do not match its hash");
            }
            prev = row.hash;
            expected_seq += 1;
        }
        if !full {
            break;
        }
    }
    Ok(Verdict::Intact {
        events: expected_seq - first_seq,
        head_hash: prev,
    })
}
