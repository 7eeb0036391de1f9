//! The evaluation audit writer: handlers hand rows to a bounded channel (awaiting when it is
//! full: back-pressure, never a drop) and one task writes them in multi-row inserts.
//!
//! A failed batch is kept and retried with backoff (a short database outage loses nothing);
//! `policy_audit_buffer_depth` shows how many rows wait. Rows that the database rejects for
//! their content (they could never be written) are written one by one and the bad ones logged,
//! so they cannot block the queue. On shutdown [`AuditWriter::shutdown`] closes the channel and
//! waits until everything queued is written.

use std::time::Duration;

use prometheus::IntGauge;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::db::policy_audit::{self, NewPolicyAudit};

/// Hands rows to the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditSender {
    tx: mpsc::Sender<NewPolicyAudit>,
    depth: IntGauge,
}

impl AuditSender {
    /// Queues one row, waiting while the queue is full. Only fails after shutdown (logged).
    pub async fn send(&self, row: NewPolicyAudit) {
        self.depth.inc();
        if let Err(e) = self.tx.send(row).await {
            self.depth.dec();
            tracing::error!(decision_id = %e.0.id, "policy audit writer is stopped; row not written");
        }
    }
}

/// The running writer task.
#[derive(Debug)]
pub struct AuditWriter {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl AuditWriter {
    /// Starts the writer: at most `capacity` queued rows, `batch_size` rows per insert.
    pub fn spawn(
        db: sqlx::PgPool,
        capacity: usize,
        batch_size: usize,
        depth: IntGauge,
    ) -> (AuditSender, AuditWriter) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(db, rx, stop_rx, batch_size.max(1), depth.clone()));
        (AuditSender { tx, depth }, AuditWriter { task, stop })
    }

    /// Stops accepting rows, writes everything queued and waits for it (at most `timeout`).
    pub async fn shutdown(self, timeout: Duration) {
        let _ = self.stop.send(true);
        match tokio::time::timeout(timeout, self.task).await {
            Ok(Ok(())) => tracing::info!("policy audit writer flushed"),
            Ok(Err(e)) => tracing::error!(error = %e, "policy audit writer failed"),
            Err(_) => tracing::error!(
                "policy audit writer did not flush within {} s",
                timeout.as_secs()
            ),
        }
    }
}

async fn run(
    db: sqlx::PgPool,
    mut rx: mpsc::Receiver<NewPolicyAudit>,
    mut stop: watch::Receiver<bool>,
    batch_size: usize,
    depth: IntGauge,
) {
    let mut batch: Vec<NewPolicyAudit> = Vec::with_capacity(batch_size);
    let mut stop_gone = false;
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut batch, batch_size) => n,
            changed = stop.changed(), if !stop_gone => {
                match changed {
                    // Shutdown: refuse new rows, then drain what is queued.
                    Ok(()) if *stop.borrow() => rx.close(),
                    Ok(()) => {}
                    Err(_) => stop_gone = true,
                }
                continue;
            }
        };
        if received == 0 {
            // Closed and empty.
            break;
        }
        write_with_retry(&db, &mut batch, &depth).await;
    }
}

/// Whether the database refused the rows themselves (retrying cannot help).
fn is_permanent(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("42"))
}

async fn write_with_retry(db: &sqlx::PgPool, batch: &mut Vec<NewPolicyAudit>, depth: &IntGauge) {
    let mut delay = Duration::from_millis(100);
    while !batch.is_empty() {
        match policy_audit::insert_batch(db, batch).await {
            Ok(()) => {
                depth.sub(i64::try_from(batch.len()).unwrap_or(i64::MAX));
                batch.clear();
            }
            Err(e) if is_permanent(&e) => {
                tracing::warn!(error = %e, rows = batch.len(), "policy audit batch refused; writing rows one by one");
                if let Err(e) = write_one_by_one(db, batch, depth).await {
                    tracing::warn!(error = %e, rows = batch.len(), "policy audit write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = batch.len(), "policy audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes rows singly, logging and skipping the ones the database refuses; stops at the first
/// transient error (the rows not yet written stay in `batch`).
async fn write_one_by_one(
    db: &sqlx::PgPool,
    batch: &mut Vec<NewPolicyAudit>,
    depth: &IntGauge,
) -> Result<(), sqlx::Error> {
    while let Some(row) = batch.first() {
        match policy_audit::insert_batch(db, std::slice::from_ref(row)).await {
            Ok(()) => {}
            Err(e) if is_permanent(&e) => {
                tracing::error!(error = %e, decision_id = %row.id, "policy audit row refused by the database; skipped");
            }
            Err(e) => return Err(e),
        }
        batch.remove(0);
        depth.dec();
    }
    Ok(())
}
