//! The audit log in `state.redb`: delegations, cross-agent messages, approvals and
//! configuration changes.
//!
//! Rows are keyed by (time in ms, sequence number), so "since T" is a range scan and the
//! oldest rows come first for pruning; the sequence number, from a counter of its own,
//! tells apart records of the same millisecond and never repeats, even after pruning.
//!
//! Retention: the newest [`AUDIT_KEEP`] records are kept. The append that brings the
//! table to [`AUDIT_KEEP`] + [`AUDIT_PRUNE_BATCH`] rows removes the oldest ones down to
//! [`AUDIT_KEEP`] in the same transaction, so the table stays under that many rows and
//! pruning costs one batch every [`AUDIT_PRUNE_BATCH`] appends.

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use super::{Store, StoreError};
use crate::audit::{AuditFilter, AuditRecord};

/// `audit`: (ts ms, seq) -> an audit record (JSON).
pub(super) const AUDIT: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("audit");
/// `audit_meta`: `last_seq` -> the last sequence number given out.
pub(super) const AUDIT_META: TableDefinition<&str, u64> = TableDefinition::new("audit_meta");

/// Records kept: the newest this many.
pub const AUDIT_KEEP: u64 = 100_000;
/// How far past [`AUDIT_KEEP`] the table may grow before the oldest rows are removed.
pub const AUDIT_PRUNE_BATCH: u64 = 1_000;

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(AUDIT)?;
    tx.open_table(AUDIT_META)?;
    Ok(())
}

/// How many records to keep and how many extra to allow before pruning.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retention {
    keep: u64,
    batch: u64,
}

pub(super) const RETENTION: Retention = Retention {
    keep: AUDIT_KEEP,
    batch: AUDIT_PRUNE_BATCH,
};

impl Store {
    /// Appends an audit record; returns its sequence number. Quick enough to call from
    /// async code on every event: the commit is not durable by itself and a shared durable
    /// commit is asked for, not waited on (see `sync.rs`), so the record reaches the disk
    /// within milliseconds without an fsync of its own. Prunes past [`AUDIT_KEEP`].
    pub fn audit_append(&self, rec: &AuditRecord) -> Result<u64, StoreError> {
        self.audit_append_with(rec, RETENTION)
    }

    fn audit_append_with(
        &self,
        rec: &AuditRecord,
        retention: Retention,
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| self.err(e.into()))?;
        let seq = audit_write(&tx, rec, retention).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e.into()))?;
        drop(self.sync());
        Ok(seq)
    }

    /// The newest `filter.limit()` records that pass `filter`, oldest first, with their
    /// sequence numbers. `since` is a range scan; the agent and kind filters read the
    /// rows from the newest back until the limit is reached.
    pub fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = match tx.open_table(AUDIT) {
            Ok(t) => t,
            // A store from before the audit log: nothing recorded yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e.into())),
        };
        let limit = filter.limit();
        let since = filter.since_ms.unwrap_or(0);
        let mut out = Vec::new();
        for row in t.range((since, 0)..).map_err(|e| self.err(e.into()))?.rev() {
            let (k, v) = row.map_err(|e| self.err(e.into()))?;
            let rec: AuditRecord = self.decode("audit", v.value())?;
            if filter.matches(&rec) {
                out.push((k.value().1, rec));
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// How many audit records the store holds.
    pub fn audit_len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        match tx.open_table(AUDIT) {
            Ok(t) => t.len().map_err(|e| self.err(e.into())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(self.err(e.into())),
        }
    }
}

/// Appends `rec` in `tx` (with whatever else `tx` writes), pruning past `retention`.
pub(super) fn audit_write(
    tx: &redb::WriteTransaction,
    rec: &AuditRecord,
    retention: Retention,
) -> Result<u64, redb::Error> {
    let row = serde_json::to_vec(rec).expect("audit records serialise");
    let mut meta = tx.open_table(AUDIT_META)?;
    let seq = meta.get("last_seq")?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert("last_seq", seq)?;
    let mut t = tx.open_table(AUDIT)?;
    t.insert((rec.ts, seq), row.as_slice())?;
    let len = t.len()?;
    if len >= retention.keep + retention.batch {
        for _ in retention.keep..len {
            if t.pop_first()?.is_none() {
                break;
            }
        }
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("state.redb")).unwrap();
        (d, s)
    }

    fn rec(ts: u64, kind: &str, actor: &str) -> AuditRecord {
        AuditRecord {
            ts,
            ..AuditRecord::new(kind, actor, "ok")
        }
    }

    #[test]
    fn records_read_back_in_time_order_with_increasing_sequence_numbers() {
        let (_d, s) = store();
        assert!(s.audit_query(&AuditFilter::default()).unwrap().is_empty());
        let a = rec(2_000, "approval", "operator")
            .target("agent:main:main")
            .agent("main")
            .correlation("ap-1")
            .detail(json!({"tool": "exec"}));
        // Written out of time order (two writers racing): read back by time.
        let seq_a = s.audit_append(&a).unwrap();
        let seq_b = s
            .audit_append(&rec(1_000, "config.change", "config-file"))
            .unwrap();
        assert!(seq_b > seq_a);
        let all = s.audit_query(&AuditFilter::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, seq_b);
        assert_eq!(all[0].1.ts, 1_000);
        assert_eq!(all[1], (seq_a, a), "every field survives the round trip");
        assert_eq!(s.audit_len().unwrap(), 2);
    }

    #[test]
    fn since_agent_kind_and_limit_filter_the_newest_first() {
        let (_d, s) = store();
        for i in 0..10u64 {
            let kind = if i % 2 == 0 {
                "approval"
            } else {
                "config.change"
            };
            let actor = if i < 5 { "agent:main:main" } else { "operator" };
            let r = rec(1_000 + i, kind, actor);
            let r = if i == 7 { r.agent("ops") } else { r };
            s.audit_append(&r).unwrap();
        }
        let q = |f: AuditFilter| -> Vec<u64> {
            s.audit_query(&f)
                .unwrap()
                .into_iter()
                .map(|(_, r)| r.ts - 1_000)
                .collect()
        };
        assert_eq!(
            q(AuditFilter {
                since_ms: Some(1_006),
                ..Default::default()
            }),
            [6, 7, 8, 9]
        );
        assert_eq!(
            q(AuditFilter {
                kind: Some("config".into()),
                ..Default::default()
            }),
            [1, 3, 5, 7, 9]
        );
        assert_eq!(
            q(AuditFilter {
                agent: Some("main".into()),
                ..Default::default()
            }),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(
            q(AuditFilter {
                agent: Some("ops".into()),
                ..Default::default()
            }),
            [7]
        );
        assert_eq!(
            q(AuditFilter {
                limit: Some(3),
                ..Default::default()
            }),
            [7, 8, 9],
            "the newest N, oldest first"
        );
        assert_eq!(
            q(AuditFilter {
                since_ms: Some(1_002),
                kind: Some("approval".into()),
                agent: Some("main".into()),
                limit: Some(1),
            }),
            [4]
        );
    }

    #[test]
    fn retention_prunes_the_oldest_in_batches() {
        let (_d, s) = store();
        let r = Retention { keep: 10, batch: 4 };
        let mut last = 0;
        for i in 0..13u64 {
            last = s
                .audit_append_with(&rec(i, "approval", "operator"), r)
                .unwrap();
        }
        assert_eq!(
            s.audit_len().unwrap(),
            13,
            "under keep + batch: nothing pruned"
        );
        s.audit_append_with(&rec(13, "approval", "operator"), r)
            .unwrap();
        assert_eq!(s.audit_len().unwrap(), 10, "at keep + batch: back to keep");
        let kept = s.audit_query(&AuditFilter::default()).unwrap();
        assert_eq!(kept.first().unwrap().1.ts, 4, "the oldest went");
        assert_eq!(kept.last().unwrap().1.ts, 13, "the newest stayed");
        // Sequence numbers go on after pruning.
        let next = s
            .audit_append_with(&rec(14, "approval", "operator"), r)
            .unwrap();
        assert_eq!(next, last + 2);
    }

    #[tokio::test]
    async fn an_append_reaches_the_disk_with_the_next_shared_commit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.redb");
        let s = Store::open(&p).unwrap();
        s.audit_append(&rec(5, "config.change", "operator"))
            .unwrap();
        // The append asked for a shared durable commit; any later request is served by
        // that commit or a later one.
        s.sync().wait().await.unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        let all = s.audit_query(&AuditFilter::default()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.actor, "operator");
    }
}
