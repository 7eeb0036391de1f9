//! `/audit/verify`: checks the retention anchors, then walks the hash chain from the newest.
//!
//! The database computes each link when a row becomes final (`audit_guard()`), with the same
//! SQL function (`audit_row_hash`) the verifier uses here, so the writer and the verifier cannot
//! disagree about the canonical form. A row changed behind the trigger's back (trigger
//! disabled, `session_replication_role = replica`) no longer hashes to its stored `hash`; a row
//! deleted that way leaves a gap in `chain_seq` or a `prev_hash` that names nothing.
//!
//! Anchors are checked too: each moves past the one before and counts exactly the rows between
//! them, the rows they cover are gone, and the newest names the hash the next row links to. A
//! forged anchor therefore cannot hide a gap. What the database alone cannot show, the newest
//! rows removed together with their trace, is shown by the head this report returns
//! (`headSeq`, `headHash`), which also leaves with every Loki line and as
//! `executor_audit_chain_head_seq`: a head that goes backwards was truncated.

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokenLink {
    /// The row's id (`null` for a missing row).
    #[schema(required = true)]
    pub id: Option<Uuid>,
    /// Where the chain breaks.
    pub chain_seq: i64,
    /// What is wrong.
    pub reason: String,
}

/// The retention anchor a walk starts from: the purged prefix of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainAnchor {
    /// The anchor row's id.
    pub id: i64,
    /// The last purged `chain_seq`.
    pub after_seq: i64,
    /// The hash of that row (lowercase hex).
    pub after_hash: String,
    /// How many rows the purge removed.
    pub purged_rows: i64,
}

/// The verification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Whether every link holds.
    pub valid: bool,
    /// Rows checked.
    pub checked: i64,
    /// The anchor the walk started from (`null` = the genesis).
    #[schema(required = true)]
    pub anchor: Option<ChainAnchor>,
    /// The newest `chain_seq` checked (`null` when no row was checked).
    #[schema(required = true)]
    pub head_seq: Option<i64>,
    /// The hash of that row: compare it with the head seen outside the database.
    #[schema(required = true)]
    pub head_hash: Option<String>,
    /// The first broken link, if any.
    #[schema(required = true)]
    pub first_broken: Option<BrokenLink>,
}

#[derive(sqlx::FromRow)]
struct Link {
    id: Uuid,
    chain_seq: i64,
    prev_hash: Option<String>,
    hash: Option<String>,
    recomputed: Option<String>,
}

/// Checks the anchors, oldest first: each moves past the previous one and counts the rows
/// between them. The first problem, if any.
fn check_anchors(anchors: &[(i64, i64, String, i64)]) -> Option<BrokenLink> {
    let mut prev = 0;
    for (id, after_seq, _, purged) in anchors {
        if *after_seq <= prev {
            return Some(BrokenLink {
                id: None,
                chain_seq: *after_seq,
                reason: format!("anchor {id} does not move past the previous anchor ({prev})"),
            });
        }
        if after_seq - prev != *purged {
            return Some(BrokenLink {
                id: None,
                chain_seq: *after_seq,
                reason: format!(
                    "anchor {id} says {purged} rows were purged, but it covers {}",
                    after_seq - prev
                ),
            });
        }
        prev = *after_seq;
    }
    None
}

/// Walks the chain.
pub async fn verify(db: &PgPool) -> Result<VerifyReport, sqlx::Error> {
    let anchors: Vec<(i64, i64, String, i64)> = sqlx::query_as(
        "SELECT id, after_seq, after_hash::text, purged_rows
           FROM audit_chain_anchors ORDER BY id",
    )
    .fetch_all(db)
    .await?;
    let anchor = anchors.last().cloned();
    let (mut expected_seq, mut expected_prev) = match &anchor {
        Some((_, seq, hash, _)) => (seq + 1, hash.clone()),
        None => (1, GENESIS.to_owned()),
    };
    let anchor_json = anchor.as_ref().map(|(id, seq, hash, purged)| ChainAnchor {
        id: *id,
        after_seq: *seq,
        after_hash: hash.clone(),
        purged_rows: *purged,
    });
    let mut report = VerifyReport {
        valid: true,
        checked: 0,
        anchor: anchor_json,
        head_seq: None,
        head_hash: None,
        first_broken: None,
    };
    let head: Option<(i64, Option<String>)> = sqlx::query_as(
        "SELECT chain_seq, hash::text FROM action_audit_logs
          WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    if let Some((seq, hash)) = head {
        report.head_seq = Some(seq);
        report.head_hash = hash;
    }
    if let Some(problem) = check_anchors(&anchors) {
        report.valid = false;
        report.first_broken = Some(problem);
        return Ok(report);
    }
    if let Some((id, after_seq, _, _)) = &anchor {
        let left: Option<(Uuid, i64)> = sqlx::query_as(
            "SELECT id, chain_seq FROM action_audit_logs
              WHERE chain_seq <= $1 ORDER BY chain_seq LIMIT 1",
        )
        .bind(after_seq)
        .fetch_optional(db)
        .await?;
        if let Some((row, seq)) = left {
            report.valid = false;
            report.first_broken = Some(BrokenLink {
                id: Some(row),
                chain_seq: seq,
                reason: format!("anchor {id} covers this row, but it was not purged"),
            });
            return Ok(report);
        }
    }
    let start = expected_seq;
    let links: Vec<Link> = sqlx::query_as(
        "SELECT id, chain_seq, prev_hash::text AS prev_hash, hash::text AS hash,
                audit_row_hash(prev_hash, r)::text AS recomputed
           FROM action_audit_logs r
          WHERE chain_seq >= $1
          ORDER BY chain_seq",
    )
    .bind(start)
    .fetch_all(db)
    .await?;
    let broken = |id: Option<Uuid>, seq: i64, reason: String| BrokenLink {
        id,
        chain_seq: seq,
        reason,
    };
    for link in &links {
        report.checked += 1;
        let problem = if link.chain_seq != expected_seq {
            Some(broken(
                None,
                expected_seq,
                format!("row with chain_seq {expected_seq} is missing"),
            ))
        } else if link.prev_hash.as_deref() != Some(expected_prev.as_str()) {
            Some(broken(
                Some(link.id),
                link.chain_seq,
                "prev_hash does not match the previous row's hash".into(),
            ))
        } else if link.hash.is_none() || link.hash != link.recomputed {
            Some(broken(
                Some(link.id),
                link.chain_seq,
                "hash does not match the row's content".into(),
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            report.valid = false;
            report.first_broken = Some(p);
            return Ok(report);
        }
        expected_seq += 1;
        expected_prev = link.hash.clone().unwrap_or_default();
    }
    // A final row outside the chain was made final behind the trigger's back.
    let unchained: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, status FROM action_audit_logs
          WHERE chain_seq IS NULL AND status IN ('completed', 'failed', 'rejected')
          ORDER BY created_at LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    if let Some((id, status)) = unchained {
        report.valid = false;
        report.first_broken = Some(broken(
            Some(id),
            expected_seq,
            format!("final row ({status}) is not linked into the chain"),
        ));
    }
    Ok(report)
}
