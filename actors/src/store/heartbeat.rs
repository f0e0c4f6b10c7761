//! Heartbeat state per agent in `state.redb`: what HEARTBEAT.md looked like at the last
//! heartbeat that called the model, the tokens heartbeats spent today, the latest outcome,
//! and the system events queued for the next heartbeat (`/hooks/wake` with mode
//! `next-heartbeat`), so a restart keeps them.
//!
//! The rows are JSON of types the scheduling module owns; this file only stores them. A
//! store migrated to schema 6 before these tables existed reads as empty and gets them
//! on its first heartbeat write.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError};

/// `heartbeat`: agent id -> its heartbeat state (JSON).
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("heartbeat");
/// `heartbeat_events`: id (in queue order) -> (agent id, a queued system event as JSON).
const EVENTS: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("heartbeat_events");

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(STATE)?;
    tx.open_table(EVENTS)?;
    Ok(())
}

/// Opens a table for reading; `None` when it does not exist yet.
macro_rules! read_table {
    ($store:expr, $tx:expr, $def:expr) => {
        match $tx.open_table($def) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err($store.err(e.into())),
        }
    };
}

impl Store {
    /// One agent's heartbeat state.
    pub fn heartbeat_state<T: DeserializeOwned>(
        &self,
        agent: &str,
    ) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let Some(t) = read_table!(self, tx, STATE) else {
            return Ok(None);
        };
        let row = t.get(agent).map_err(|e| self.err(e.into()))?;
        row.map(|v| self.decode("heartbeat", v.value())).transpose()
    }

    /// Saves an agent's heartbeat state (durably: the spend and the content hash decide
    /// whether the next heartbeat may call the model).
    pub fn set_heartbeat_state<T: Serialize>(
        &self,
        agent: &str,
        row: &T,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        {
            let mut t = tx.open_table(STATE).map_err(|e| self.err(e.into()))?;
            t.insert(
                agent,
                serde_json::to_vec(row).expect("rows serialise").as_slice(),
            )
            .map_err(|e| self.err(e.into()))?;
        }
        tx.commit().map_err(|e| self.err(e.into()))
    }

    /// Queues a system event for an agent's next heartbeat (durably); returns its id.
    pub fn heartbeat_queue_event<T: Serialize>(
        &self,
        agent: &str,
        event: &T,
    ) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        let id = {
            let mut t = tx.open_table(EVENTS).map_err(|e| self.err(e.into()))?;
            let id = t
                .last()
                .map_err(|e| self.err(e.into()))?
                .map(|(k, _)| k.value())
                .unwrap_or(0)
                + 1;
            let bytes = serde_json::to_vec(event).expect("rows serialise");
            t.insert(id, (agent, bytes.as_slice()))
                .map_err(|e| self.err(e.into()))?;
            id
        };
        tx.commit().map_err(|e| self.err(e.into()))?;
        Ok(id)
    }

    /// The system events queued for an agent, oldest first, with their ids.
    pub fn heartbeat_events<T: DeserializeOwned>(
        &self,
        agent: &str,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let Some(t) = read_table!(self, tx, EVENTS) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e.into()))? {
            let (k, v) = row.map_err(|e| self.err(e.into()))?;
            let (who, bytes) = v.value();
            if who == agent {
                out.push((k.value(), self.decode("heartbeat_events", bytes)?));
            }
        }
        Ok(out)
    }

    /// Removes queued events (a heartbeat turn took them in); returns how many were there.
    pub fn heartbeat_remove_events(&self, ids: &[u64]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        let mut n = 0;
        {
            let mut t = tx.open_table(EVENTS).map_err(|e| self.err(e.into()))?;
            for id in ids {
                n += usize::from(t.remove(*id).map_err(|e| self.err(e.into()))?.is_some());
            }
        }
        tx.commit().map_err(|e| self.err(e.into()))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_queued_events_survive_a_reopen_and_are_kept_per_agent() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.redb");
        let s = Store::open(&p).unwrap();
        assert_eq!(s.heartbeat_state::<u64>("main").unwrap(), None);
        assert!(s.heartbeat_events::<String>("main").unwrap().is_empty());
        s.set_heartbeat_state("main", &7u64).unwrap();
        let a = s.heartbeat_queue_event("main", &"first").unwrap();
        s.heartbeat_queue_event("work", &"other agent").unwrap();
        let b = s.heartbeat_queue_event("main", &"second").unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.heartbeat_state::<u64>("main").unwrap(), Some(7));
        let events: Vec<(u64, String)> = s.heartbeat_events("main").unwrap();
        assert_eq!(events, [(a, "first".to_owned()), (b, "second".to_owned())]);
        assert_eq!(s.heartbeat_remove_events(&[a, b, 999]).unwrap(), 2);
        assert!(s.heartbeat_events::<String>("main").unwrap().is_empty());
        assert_eq!(s.heartbeat_events::<String>("work").unwrap().len(), 1);
    }
}
