//! `/audit/verify`: walks the hash chain from the newest anchor (spec/README.md "Executor audit").
//!
//! The database computes each link when a row becomes final (`audit_guard()`), with the same
//! SQL function (`audit_row_hash`) the verifier uses here, so the writer and the verifier cannot
//! disagree about the canonical form. A row changed behind the trigger's back (trigger
//! disabled, `session_replication_role = replica`) no longer hashes to its stored `hash`; a row
//! deleted that way leaves a gap in `chain_seq` or a `prev_hash` that names nothing.

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

/// Walks the chain.
pub async fn verify(db: &PgPool) -> Result<VerifyReport, sqlx::Error> {
    let anchor: Option<(i64, i64, String, i64)> = sqlx::query_as(
        "SELECT id, after_seq, after_hash::text, purged_rows
           FROM audit_chain_anchors ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
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
    let mut report = VerifyReport {
        valid: true,
        checked: 0,
        anchor: anchor_json,
        head_seq: None,
        first_broken: None,
    };
    let broken = |id: Option<Uuid>, seq: i64, reason: String| BrokenLink {
        id,
        chain_seq: seq,
        reason,
    };
    for link in &links {
        report.checked += 1;
        report.head_seq = Some(link.chain_seq);
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
