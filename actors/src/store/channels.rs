//! Channel state in `state.redb`: which platform messages were already taken in (so a
//! redelivered update is dropped), the outbox (replies on their way to a chat, kept until
//! sent and then as the delivery record), pairing requests and approvals, and each
//! account's cursor (Telegram's update offset...).
//!
//! An inbound message is marked seen in the same commit that puts it in its session's
//! inbox, and a reply enters the outbox in the same commit that ends its turn: a crash
//! between two steps never loses a message nor answers one twice.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError};

/// A write queued for the next shared durable commit ([`Store::outbox_update`]).
#[must_use = "the write happens anyway; wait for it, or say why not by dropping it"]
pub struct Queued(tokio::sync::oneshot::Receiver<Result<(), String>>);

impl Queued {
    /// Resolves once the write is on disk (or failed).
    pub async fn wait(self) -> Result<(), StoreError> {
        match self.0.await {
            Ok(r) => r.map_err(StoreError::Io),
            Err(_) => Err(StoreError::Io(
                "the write was dropped (the store is closing)".into(),
            )),
        }
    }

    /// The outcome if the commit has been made, without waiting.
    pub fn outcome(&mut self) -> Option<Result<(), StoreError>> {
        use tokio::sync::oneshot::error::TryRecvError;
        match self.0.try_recv() {
            Ok(r) => Some(r.map_err(StoreError::Io)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Closed) => Some(Err(StoreError::Io(
                "the write was dropped (the store is closing)".into(),
            ))),
        }
    }
}

/// `channel_seen`: (account key `channel:account`, platform message id) -> taken in at (ms).
pub(super) const SEEN: TableDefinition<(&str, &str), u64> = TableDefinition::new("channel_seen");
/// `outbox`: id -> a reply for a chat and what became of it (JSON).
pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// `pairing`: (account key, sender id) -> a pairing request or approval (JSON).
pub(super) const PAIRING: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("pairing");
/// `channel_state`: account key -> the adapter's cursor and such (JSON).
pub(super) const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("channel_state");

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(SEEN)?;
    tx.open_table(OUTBOX)?;
    tx.open_table(PAIRING)?;
    tx.open_table(STATE)?;
    Ok(())
}

/// Inserts outbox rows in `tx`; returns their ids.
pub(super) fn outbox_insert<T: Serialize>(
    tx: &WriteTransaction,
    rows: &[T],
) -> Result<Vec<u64>, redb::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut t = tx.open_table(OUTBOX)?;
    let mut id = t.last()?.map(|(k, _)| k.value()).unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len());
    for r in rows {
        id += 1;
        t.insert(
            id,
            serde_json::to_vec(r).expect("rows serialise").as_slice(),
        )?;
        ids.push(id);
    }
    Ok(ids)
}

/// Marks a platform message seen in `tx`; false when it already was.
pub(super) fn mark_seen(
    tx: &WriteTransaction,
    seen: (&str, &str),
    now_ms: u64,
) -> Result<bool, redb::Error> {
    let mut t = tx.open_table(SEEN)?;
    if t.get(seen)?.is_some() {
        return Ok(false);
    }
    t.insert(seen, now_ms)?;
    Ok(true)
}

/// ((account key, sender id), row) for every pairing.
pub type PairingRows<T> = Vec<((String, String), T)>;

impl Store {
    /// Whether a platform message was already taken in.
    pub fn seen(&self, account: &str, message_id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(SEEN).map_err(|e| self.err(e.into()))?;
        Ok(t.get((account, message_id))
            .map_err(|e| self.err(e.into()))?
            .is_some())
    }

    /// Forgets seen marks older than `before_ms` (platforms stop redelivering long before).
    pub fn prune_seen(&self, before_ms: u64) -> Result<usize, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        let mut n = 0;
        {
            let mut t = tx.open_table(SEEN).map_err(|e| self.err(e.into()))?;
            t.retain(|_, at| {
                let keep = at >= before_ms;
                n += usize::from(!keep);
                keep
            })
            .map_err(|e| self.err(e.into()))?;
        }
        tx.commit().map_err(|e| self.err(e.into()))?;
        Ok(n)
    }

    /// Adds a reply to the outbox (durably); returns its id.
    pub fn outbox_push<T: Serialize>(&self, row: &T) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        let ids = outbox_insert(&tx, std::slice::from_ref(row)).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e.into()))?;
        Ok(ids[0])
    }

    /// Rewrites an outbox row (its delivery state changed) in the next shared durable
    /// commit (see `sync.rs`): queued at once and written whether or not the returned
    /// [`Queued`] is waited for, so a busy account pays no commit of its own per reply
    /// (its records join the turns' commits). Readers see the new row once that commit is
    /// made, a few milliseconds later: whoever re-reads the pending rows (an account
    /// starting) first waits for [`sync`](Store::sync), which follows every write queued
    /// before it.
    pub fn outbox_update<T: Serialize>(&self, id: u64, row: &T) -> Queued {
        let bytes = serde_json::to_vec(row).expect("rows serialise");
        let path = self.path.display().to_string();
        Queued(self.syncer.write(move |tx| {
            let mut t = tx
                .open_table(OUTBOX)
                .map_err(|e| format!("store {path}: {e}"))?;
            t.insert(id, bytes.as_slice())
                .map_err(|e| format!("store {path}: {e}"))?;
            Ok(())
        }))
    }

    /// Outbox rows with ids from `from` on, oldest first (at most `limit`).
    pub fn outbox<T: DeserializeOwned>(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(OUTBOX).map_err(|e| self.err(e.into()))?;
        let mut out = Vec::new();
        for row in t.range(from..).map_err(|e| self.err(e.into()))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(|e| self.err(e.into()))?;
            out.push((k.value(), self.decode("outbox", v.value())?));
        }
        Ok(out)
    }

    /// One outbox row.
    pub fn outbox_row<T: DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(OUTBOX).map_err(|e| self.err(e.into()))?;
        let row = t.get(id).map_err(|e| self.err(e.into()))?;
        row.map(|v| self.decode("outbox", v.value())).transpose()
    }

    pub fn pairing<T: DeserializeOwned>(
        &self,
        account: &str,
        sender: &str,
    ) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(PAIRING).map_err(|e| self.err(e.into()))?;
        let row = t.get((account, sender)).map_err(|e| self.err(e.into()))?;
        row.map(|v| self.decode("pairing", v.value())).transpose()
    }

    pub fn set_pairing<T: Serialize>(
        &self,
        account: &str,
        sender: &str,
        row: Option<&T>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        {
            let mut t = tx.open_table(PAIRING).map_err(|e| self.err(e.into()))?;
            match row {
                Some(r) => {
                    t.insert(
                        (account, sender),
                        serde_json::to_vec(r).expect("rows serialise").as_slice(),
                    )
                    .map_err(|e| self.err(e.into()))?;
                }
                None => {
                    t.remove((account, sender))
                        .map_err(|e| self.err(e.into()))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e.into()))
    }

    /// Every pairing row: ((account key, sender), row).
    pub fn pairings<T: DeserializeOwned>(&self) -> Result<PairingRows<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(PAIRING).map_err(|e| self.err(e.into()))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e.into()))? {
            let (k, v) = row.map_err(|e| self.err(e.into()))?;
            let (a, s) = k.value();
            out.push((
                (a.to_owned(), s.to_owned()),
                self.decode("pairing", v.value())?,
            ));
        }
        Ok(out)
    }

    pub fn channel_state<T: DeserializeOwned>(
        &self,
        account: &str,
    ) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(STATE).map_err(|e| self.err(e.into()))?;
        let row = t.get(account).map_err(|e| self.err(e.into()))?;
        row.map(|v| self.decode("channel_state", v.value()))
            .transpose()
    }

    /// Saves an adapter's cursor. Not worth an fsync of its own: it reaches the disk with
    /// the next durable commit, and a cursor that lags only means redeliveries, which the
    /// seen marks drop.
    pub fn set_channel_state<T: Serialize>(
        &self,
        account: &str,
        row: &T,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| self.err(e.into()))?;
        {
            let mut t = tx.open_table(STATE).map_err(|e| self.err(e.into()))?;
            t.insert(
                account,
                serde_json::to_vec(row).expect("rows serialise").as_slice(),
            )
            .map_err(|e| self.err(e.into()))?;
        }
        tx.commit().map_err(|e| self.err(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_delivery_records_are_in_place_once_a_later_sync_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let ids: Vec<u64> = (0..50)
            .map(|i| store.outbox_push(&serde_json::json!({"n": i, "status": "pending"})))
            .collect::<Result<_, _>>()
            .unwrap();
        // Many records, none waited for (what a send loop does), then one sync: what an
        // account starting does before it reads the pending rows.
        let queued: Vec<Queued> = ids
            .iter()
            .map(|id| store.outbox_update(*id, &serde_json::json!({"n": id, "status": "sent"})))
            .collect();
        store.sync().wait().await.unwrap();
        let rows: Vec<(u64, serde_json::Value)> = store.outbox(0, usize::MAX).unwrap();
        assert_eq!(rows.len(), 50);
        assert!(
            rows.iter().all(|(_, r)| r["status"] == "sent"),
            "every record queued before the sync is written: {rows:?}"
        );
        for mut q in queued {
            assert!(matches!(q.outcome(), Some(Ok(()))));
        }
        // A record waited for is durable: the store reopened has it.
        store
            .outbox_update(ids[0], &serde_json::json!({"n": 0, "status": "failed"}))
            .wait()
            .await
            .unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let row: serde_json::Value = store.outbox_row(ids[0]).unwrap().unwrap();
        assert_eq!(row["status"], "failed");
    }
}
