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

    /// Rewrites an outbox row (its delivery state changed). Not durable by itself: a
    /// shared durable commit is asked for and not waited on (see `sync.rs`), so a busy
    /// account does not pay one fsync per reply; only a crash within that commit's few
    /// milliseconds could make a reply go out again.
    pub fn outbox_update<T: Serialize>(&self, id: u64, row: &T) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| self.err(e.into()))?;
        {
            let mut t = tx.open_table(OUTBOX).map_err(|e| self.err(e.into()))?;
            t.insert(
                id,
                serde_json::to_vec(row).expect("rows serialise").as_slice(),
            )
            .map_err(|e| self.err(e.into()))?;
        }
        tx.commit().map_err(|e| self.err(e.into()))?;
        drop(self.sync());
        Ok(())
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
