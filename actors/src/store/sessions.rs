//! Session state in `state.redb`: one metadata row per session, the transcript (the warm
//! layer: every turn, in order), the inbox (messages accepted but not yet answered, so a
//! crash or restart never loses one) and auth-profile cool-downs.
//!
//! Rows are JSON, so the types live with their owners (the session and agent modules) and
//! a field added later reads back from an old row with its default.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError};

/// `sessions`: session key -> metadata (JSON).
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// `transcript`: (session key, seq) -> entry (JSON). Seqs start at 1 and have no gaps.
pub(super) const TRANSCRIPT: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("transcript");
/// `inbox`: (session key, seq) -> a message accepted but not yet answered (JSON).
pub(super) const INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");
/// `cooldowns`: auth profile id -> (until ms since epoch, consecutive failures).
pub(super) const COOLDOWNS: TableDefinition<&str, (u64, u32)> = TableDefinition::new("cooldowns");

/// `lifecycle`: (session key, seq) -> a lifecycle transition (JSON).
pub(super) const LIFECYCLE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("lifecycle");
/// `archive`: (session key, archived at ms, seq) -> a reset session's transcript entry
/// (JSON); seq 0 holds its metadata as it was when it closed.
pub(super) const ARCHIVE: TableDefinition<(&str, u64, u64), &[u8]> =
    TableDefinition::new("archive");

/// `sandboxes`: sandbox scope key -> its container record (JSON).
pub(super) const SANDBOXES: TableDefinition<&str, &[u8]> = TableDefinition::new("sandboxes");

pub(super) fn create_sandbox_table(tx: &WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(SANDBOXES)?;
    Ok(())
}

pub(super) fn create_lifecycle_tables(tx: &WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(LIFECYCLE)?;
    tx.open_table(ARCHIVE)?;
    Ok(())
}

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(SESSIONS)?;
    tx.open_table(TRANSCRIPT)?;
    tx.open_table(INBOX)?;
    tx.open_table(COOLDOWNS)?;
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store rows serialise")
}

impl Store {
    pub(super) fn decode<T: DeserializeOwned>(
        &self,
        table: &str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("a row of table {table} does not parse: {e}"),
        })
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        self.err(e.into())
    }

    /// A session's metadata, if it exists.
    pub fn session<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(SESSIONS).map_err(|e| self.db_err(e))?;
        let row = t.get(key).map_err(|e| self.db_err(e))?;
        row.map(|v| self.decode("sessions", v.value())).transpose()
    }

    /// Every session's metadata, by key.
    pub fn sessions<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(SESSIONS).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = row.map_err(|e| self.db_err(e))?;
            out.push((k.value().to_owned(), self.decode("sessions", v.value())?));
        }
        Ok(out)
    }

    /// Writes a session's metadata and appends transcript entries, in one durable commit.
    /// Returns the seq of the last entry (the transcript length).
    pub fn append_turn<M: Serialize, E: Serialize>(
        &self,
        key: &str,
        meta: &M,
        entries: &[E],
    ) -> Result<u64, StoreError> {
        self.complete_turn(key, &[], meta, entries)
    }

    /// The last `limit` transcript entries of a session (all with `None`), oldest first,
    /// with their seqs.
    pub fn transcript<T: DeserializeOwned>(
        &self,
        key: &str,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(TRANSCRIPT).map_err(|e| self.db_err(e))?;
        let range = t
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in range.rev() {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let (k, v) = row.map_err(|e| self.db_err(e))?;
            out.push((k.value().1, self.decode("transcript", v.value())?));
        }
        out.reverse();
        Ok(out)
    }

    /// Records an accepted message before it is acknowledged; returns its inbox seq.
    pub fn inbox_push<T: Serialize>(&self, key: &str, msg: &T) -> Result<u64, StoreError> {
        Ok(self
            .inbox_write(key, msg, true, None, None)?
            .expect("no seen mark, no duplicate"))
    }

    /// Records an accepted message without waiting for the disk; returns its inbox seq.
    /// The row is on disk only after the next durable commit: `Store::sync` (shared with
    /// other writers) is what to wait for before acknowledging the message.
    pub fn inbox_stage<T: Serialize>(&self, key: &str, msg: &T) -> Result<u64, StoreError> {
        Ok(self
            .inbox_write(key, msg, false, None, None)?
            .expect("no seen mark, no duplicate"))
    }

    /// `inbox_stage` with an audit record written in the same commit (a delegated task
    /// and its `delegation.spawn` record: one commit, not two).
    pub fn inbox_stage_audited<T: Serialize>(
        &self,
        key: &str,
        msg: &T,
        audit: &crate::audit::AuditRecord,
    ) -> Result<u64, StoreError> {
        Ok(self
            .inbox_write(key, msg, false, None, Some(audit))?
            .expect("no seen mark, no duplicate"))
    }

    /// `inbox_stage` for a message from a chat platform: `seen` (account key, platform
    /// message id) is marked in the same commit, and `None` comes back when it already
    /// was (a redelivery, dropped).
    pub fn inbox_stage_seen<T: Serialize>(
        &self,
        key: &str,
        msg: &T,
        seen: (&str, &str),
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.inbox_write(key, msg, false, Some((seen, now_ms)), None)
    }

    /// `inbox_stage_seen` for a batch (a platform's page of updates), in one commit: one
    /// write transaction instead of one per message. Each item is (session key, message,
    /// seen mark); its result is `None` when it was seen before (earlier, or earlier in
    /// the same batch).
    pub fn inbox_stage_many<T: Serialize>(
        &self,
        items: &[StageItem<'_, T>],
        now_ms: u64,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| self.db_err(e))?;
        let mut out = Vec::with_capacity(items.len());
        {
            let mut t = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
            for (key, msg, seen) in items {
                if let Some(seen) = seen
                    && !super::channels::mark_seen(&tx, *seen, now_ms).map_err(|e| self.err(e))?
                {
                    out.push(None);
                    continue;
                }
                let seq = last_seq(&t, key).map_err(|e| self.db_err(e))? + 1;
                t.insert((*key, seq), to_json(msg).as_slice())
                    .map_err(|e| self.db_err(e))?;
                out.push(Some(seq));
            }
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(out)
    }

    fn inbox_write<T: Serialize>(
        &self,
        key: &str,
        msg: &T,
        durable: bool,
        seen: Option<((&str, &str), u64)>,
        audit: Option<&crate::audit::AuditRecord>,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        if !durable {
            tx.set_durability(redb::Durability::None)
                .map_err(|e| self.db_err(e))?;
        }
        if let Some((seen, now)) = seen
            && !super::channels::mark_seen(&tx, seen, now).map_err(|e| self.err(e))?
        {
            tx.abort().map_err(|e| self.db_err(e))?;
            return Ok(None);
        }
        let seq = {
            let mut t = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
            let seq = last_seq(&t, key).map_err(|e| self.db_err(e))? + 1;
            t.insert((key, seq), to_json(msg).as_slice())
                .map_err(|e| self.db_err(e))?;
            seq
        };
        if let Some(rec) = audit {
            super::audit::audit_write(&tx, rec, super::audit::RETENTION)
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(Some(seq))
    }

    /// Messages accepted for a session and not yet answered, oldest first.
    pub fn inbox<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<(u64, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in t
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.db_err(e))?
        {
            let (k, v) = row.map_err(|e| self.db_err(e))?;
            out.push((k.value().1, self.decode("inbox", v.value())?));
        }
        Ok(out)
    }

    /// Removes answered inbox rows (a message answered without a turn).
    pub fn inbox_remove(&self, key: &str, seqs: &[u64]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let mut t = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
            for seq in seqs {
                t.remove((key, *seq)).map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Session keys with messages waiting (what a restarted gateway resumes).
    pub fn inbox_keys(&self) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
        let mut keys: Vec<String> = Vec::new();
        for row in t.iter().map_err(|e| self.db_err(e))? {
            let (k, _) = row.map_err(|e| self.db_err(e))?;
            let key = k.value().0;
            if keys.last().map(String::as_str) != Some(key) {
                keys.push(key.to_owned());
            }
        }
        Ok(keys)
    }

    /// Writes a session's metadata, appends the turn's entries and removes the answered
    /// inbox messages, in one durable commit: either the turn happened or it is still due.
    pub fn complete_turn<M: Serialize, E: Serialize>(
        &self,
        key: &str,
        inbox_seqs: &[u64],
        meta: &M,
        entries: &[E],
    ) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        let (last, _) =
            self.write_turn::<M, E, (), ()>(&tx, key, inbox_seqs, meta, entries, &[], &[])?;
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(last)
    }

    /// `complete_turn` that also records lifecycle transitions, puts replies for chats in
    /// the outbox and messages for other sessions in their inboxes (a delegation's result
    /// announced to the session that asked), in a durable commit shared with the other
    /// sessions' turns ending at the same time (`Store::write_shared`): one fsync for all
    /// of them, and the caller's tokio worker never waits for the disk. Returns the last
    /// transcript seq, the outbox ids and the `(session key, inbox seq)` of each message.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub async fn complete_turn_shared<M, E, T, O, P>(
        &self,
        key: String,
        inbox_seqs: Vec<u64>,
        meta: M,
        entries: Vec<E>,
        transitions: Vec<T>,
        outbox: Vec<O>,
        messages: Vec<(String, P)>,
    ) -> Result<(u64, Vec<u64>, Vec<(String, u64)>), StoreError>
    where
        M: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        T: Serialize + Send + 'static,
        O: Serialize + Send + 'static,
        P: Serialize + Send + 'static,
    {
        let store = self.clone();
        self.write_shared(move |tx| {
            let (last, ids) = store.write_turn(
                tx,
                &key,
                &inbox_seqs,
                &meta,
                &entries,
                &transitions,
                &outbox,
            )?;
            let mut staged = Vec::with_capacity(messages.len());
            if !messages.is_empty() {
                let mut t = tx.open_table(INBOX).map_err(|e| store.db_err(e))?;
                for (to, msg) in &messages {
                    let seq = last_seq(&t, to).map_err(|e| store.db_err(e))? + 1;
                    t.insert((to.as_str(), seq), to_json(msg).as_slice())
                        .map_err(|e| store.db_err(e))?;
                    staged.push((to.clone(), seq));
                }
            }
            Ok((last, ids, staged))
        })
        .await
    }

    /// Removes messages from `key`'s inbox and puts `messages` in other sessions' inboxes,
    /// in one durable commit (a session abandoned after crashing over and over hands its
    /// delegated messages' error results on). Returns `(session key, inbox seq)` of each.
    pub fn inbox_forward<P: Serialize>(
        &self,
        key: &str,
        remove: &[u64],
        messages: &[(String, P)],
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        let mut staged = Vec::with_capacity(messages.len());
        {
            let mut t = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
            for seq in remove {
                t.remove((key, *seq)).map_err(|e| self.db_err(e))?;
            }
            for (to, msg) in messages {
                let seq = last_seq(&t, to).map_err(|e| self.db_err(e))? + 1;
                t.insert((to.as_str(), seq), to_json(msg).as_slice())
                    .map_err(|e| self.db_err(e))?;
                staged.push((to.clone(), seq));
            }
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(staged)
    }

    /// A turn's writes: lifecycle transitions, outbox rows, transcript entries, metadata,
    /// and the answered inbox rows removed.
    #[allow(clippy::too_many_arguments)]
    fn write_turn<M: Serialize, E: Serialize, T: Serialize, O: Serialize>(
        &self,
        tx: &WriteTransaction,
        key: &str,
        inbox_seqs: &[u64],
        meta: &M,
        entries: &[E],
        transitions: &[T],
        outbox: &[O],
    ) -> Result<(u64, Vec<u64>), StoreError> {
        self.log_transitions(tx, key, transitions)?;
        let outbox_ids = super::channels::outbox_insert(tx, outbox).map_err(|e| self.err(e))?;
        let mut tr = tx.open_table(TRANSCRIPT).map_err(|e| self.db_err(e))?;
        let mut seq = last_seq(&tr, key).map_err(|e| self.db_err(e))?;
        for e in entries {
            seq += 1;
            tr.insert((key, seq), to_json(e).as_slice())
                .map_err(|e| self.db_err(e))?;
        }
        let mut s = tx.open_table(SESSIONS).map_err(|e| self.db_err(e))?;
        s.insert(key, to_json(meta).as_slice())
            .map_err(|e| self.db_err(e))?;
        let mut inbox = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
        for seq in inbox_seqs {
            inbox.remove((key, *seq)).map_err(|e| self.db_err(e))?;
        }
        Ok((seq, outbox_ids))
    }

    /// Deletes a session: metadata, transcript, inbox, lifecycle log and archives.
    pub fn delete_session(&self, key: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        let existed = {
            let mut s = tx.open_table(SESSIONS).map_err(|e| self.db_err(e))?;
            let existed = s.remove(key).map_err(|e| self.db_err(e))?.is_some();
            for def in [TRANSCRIPT, INBOX, LIFECYCLE] {
                let mut t = tx.open_table(def).map_err(|e| self.db_err(e))?;
                t.retain_in((key, 0)..=(key, u64::MAX), |_, _| false)
                    .map_err(|e| self.db_err(e))?;
            }
            let mut a = tx.open_table(ARCHIVE).map_err(|e| self.db_err(e))?;
            a.retain_in((key, 0, 0)..=(key, u64::MAX, u64::MAX), |_, _| false)
                .map_err(|e| self.db_err(e))?;
            existed
        };
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(existed)
    }

    fn log_transitions<T: Serialize>(
        &self,
        tx: &WriteTransaction,
        key: &str,
        transitions: &[T],
    ) -> Result<(), StoreError> {
        if transitions.is_empty() {
            return Ok(());
        }
        let mut t = tx.open_table(LIFECYCLE).map_err(|e| self.db_err(e))?;
        let mut seq = last_seq(&t, key).map_err(|e| self.db_err(e))?;
        for tr in transitions {
            seq += 1;
            t.insert((key, seq), to_json(tr).as_slice())
                .map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }

    /// Records lifecycle transitions and, when given, the session's metadata. Pause and
    /// resume are not worth an fsync each (`durable: false`: they reach the disk with the
    /// next durable commit; after a crash the session is recovered either way).
    pub fn record_lifecycle<M: Serialize, T: Serialize>(
        &self,
        key: &str,
        meta: Option<&M>,
        transitions: &[T],
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        if !durable {
            tx.set_durability(redb::Durability::None)
                .map_err(|e| self.db_err(e))?;
        }
        self.log_transitions(&tx, key, transitions)?;
        if let Some(meta) = meta {
            let mut s = tx.open_table(SESSIONS).map_err(|e| self.db_err(e))?;
            s.insert(key, to_json(meta).as_slice())
                .map_err(|e| self.db_err(e))?;
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// A session's lifecycle log, oldest first.
    pub fn lifecycle<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(LIFECYCLE).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in t
            .range((key, 0)..=(key, u64::MAX))
            .map_err(|e| self.db_err(e))?
        {
            out.push(self.decode("lifecycle", row.map_err(|e| self.db_err(e))?.1.value())?);
        }
        Ok(out)
    }

    /// Closes a session for a reset, in one durable commit: its transcript and its final
    /// metadata move to the archive under `archived_at`, its metadata row goes, the
    /// answered inbox rows go (messages still waiting stay for the fresh session), and the
    /// transitions are logged. Returns how many transcript entries were archived.
    pub fn archive_session<M: Serialize, T: Serialize>(
        &self,
        key: &str,
        archived_at: u64,
        meta: &M,
        inbox_seqs: &[u64],
        transitions: &[T],
    ) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        self.log_transitions(&tx, key, transitions)?;
        let moved = {
            let mut tr = tx.open_table(TRANSCRIPT).map_err(|e| self.db_err(e))?;
            let mut a = tx.open_table(ARCHIVE).map_err(|e| self.db_err(e))?;
            a.insert((key, archived_at, 0), to_json(meta).as_slice())
                .map_err(|e| self.db_err(e))?;
            let mut moved = 0;
            for row in tr
                .extract_from_if((key, 0)..=(key, u64::MAX), |_, _| true)
                .map_err(|e| self.db_err(e))?
            {
                let (k, v) = row.map_err(|e| self.db_err(e))?;
                a.insert((key, archived_at, k.value().1), v.value())
                    .map_err(|e| self.db_err(e))?;
                moved += 1;
            }
            let mut s = tx.open_table(SESSIONS).map_err(|e| self.db_err(e))?;
            s.remove(key).map_err(|e| self.db_err(e))?;
            let mut inbox = tx.open_table(INBOX).map_err(|e| self.db_err(e))?;
            for seq in inbox_seqs {
                inbox.remove((key, *seq)).map_err(|e| self.db_err(e))?;
            }
            moved
        };
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(moved)
    }

    /// A session's archives (what resets closed): (archived at, metadata then), oldest
    /// first.
    pub fn archives<M: DeserializeOwned>(&self, key: &str) -> Result<Vec<(u64, M)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(ARCHIVE).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in t
            .range((key, 0, 0)..=(key, u64::MAX, u64::MAX))
            .map_err(|e| self.db_err(e))?
        {
            let (k, v) = row.map_err(|e| self.db_err(e))?;
            let (_, at, seq) = k.value();
            if seq == 0 {
                out.push((at, self.decode("archive", v.value())?));
            }
        }
        Ok(out)
    }

    /// The entries of one archived transcript, oldest first.
    pub fn archived_transcript<T: DeserializeOwned>(
        &self,
        key: &str,
        archived_at: u64,
    ) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(ARCHIVE).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in t
            .range((key, archived_at, 1)..=(key, archived_at, u64::MAX))
            .map_err(|e| self.db_err(e))?
        {
            out.push(self.decode("archive", row.map_err(|e| self.db_err(e))?.1.value())?);
        }
        Ok(out)
    }

    /// Records (or, with `None`, forgets) a sandbox's container.
    /// `durable: false` for bookkeeping such as last use: it reaches the disk with the next
    /// durable commit, without an fsync of its own on every exec.
    pub fn set_sandbox<T: Serialize>(
        &self,
        scope: &str,
        record: Option<&T>,
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        if !durable {
            tx.set_durability(redb::Durability::None)
                .map_err(|e| self.db_err(e))?;
        }
        {
            let mut t = tx.open_table(SANDBOXES).map_err(|e| self.db_err(e))?;
            match record {
                Some(r) => {
                    t.insert(scope, to_json(r).as_slice())
                        .map_err(|e| self.db_err(e))?;
                }
                None => {
                    t.remove(scope).map_err(|e| self.db_err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Every recorded sandbox: (scope key, record).
    pub fn sandboxes<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(SANDBOXES).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = row.map_err(|e| self.db_err(e))?;
            out.push((k.value().to_owned(), self.decode("sandboxes", v.value())?));
        }
        Ok(out)
    }

    /// An auth profile's cool-down: (until ms since epoch, consecutive failures).
    pub fn cooldown(&self, profile: &str) -> Result<Option<(u64, u32)>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = tx.open_table(COOLDOWNS).map_err(|e| self.db_err(e))?;
        Ok(t.get(profile)
            .map_err(|e| self.db_err(e))?
            .map(|v| v.value()))
    }

    /// Records (or with `None`, clears) an auth profile's cool-down.
    pub fn set_cooldown(&self, profile: &str, value: Option<(u64, u32)>) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let mut t = tx.open_table(COOLDOWNS).map_err(|e| self.db_err(e))?;
            match value {
                Some(v) => {
                    t.insert(profile, v).map_err(|e| self.db_err(e))?;
                }
                None => {
                    t.remove(profile).map_err(|e| self.db_err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.db_err(e))
    }
}

/// (session key, message, seen mark: (account key, platform message id)).
pub type StageItem<'a, T> = (&'a str, &'a T, Option<(&'a str, &'a str)>);

fn last_seq<T: ReadableTable<(&'static str, u64), &'static [u8]>>(
    t: &T,
    key: &str,
) -> Result<u64, redb::StorageError> {
    Ok(t.range((key, 0)..=(key, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, _)| k.value().1)
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::store::Store;

    /// The process dies (abort, no destructor) right after the shared durable commit: the
    /// staged-and-synced message is there on reopen, one staged after it without a sync is
    /// not (which is why a message is acknowledged only after `Durable::wait`).
    #[test]
    fn a_staged_message_survives_a_crash_once_synced() {
        const CHILD: &str = "PINCER_STORE_CRASH_CHILD";
        if let Some(path) = std::env::var_os(CHILD) {
            let s = Store::open(std::path::Path::new(&path)).unwrap();
            let seq = s.inbox_stage("k", &json!({"text": "kept"})).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async { s.sync().wait().await }).unwrap();
            s.inbox_stage("k", &json!({"text": "never acknowledged"}))
                .unwrap();
            println!("staged {seq}");
            std::process::abort();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::sessions::tests::a_staged_message_survives_a_crash_once_synced",
                "--nocapture",
            ])
            .env(CHILD, &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("staged 1"), "{stdout}");
        assert!(!out.status.success(), "the child must die: {stdout}");
        let s = Store::open(&path).unwrap();
        let texts: Vec<String> = s
            .inbox::<Value>("k")
            .unwrap()
            .into_iter()
            .map(|(_, v)| v["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts, ["kept"]);
    }

    #[test]
    fn transcript_inbox_and_cooldowns_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let s = Store::open(&path).unwrap();
            let seq = s
                .inbox_push("agent:main:main", &json!({"text": "hi"}))
                .unwrap();
            assert_eq!(seq, 1);
            s.inbox_push("agent:main:other", &json!({"text": "yo"}))
                .unwrap();
            assert_eq!(
                s.inbox_keys().unwrap(),
                ["agent:main:main", "agent:main:other"]
            );
            let last = s
                .complete_turn(
                    "agent:main:main",
                    &[1],
                    &json!({"turns": 1}),
                    &[json!({"role": "user"}), json!({"role": "assistant"})],
                )
                .unwrap();
            assert_eq!(last, 2);
            s.set_cooldown("openai:0", Some((123, 2))).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.inbox_keys().unwrap(), ["agent:main:other"]);
        let t: Vec<(u64, Value)> = s.transcript("agent:main:main", None).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1], (2, json!({"role": "assistant"})));
        let last1: Vec<(u64, Value)> = s.transcript("agent:main:main", Some(1)).unwrap();
        assert_eq!(last1[0].0, 2, "the most recent entries");
        let other: Vec<(u64, Value)> = s.transcript("agent:main:mai", None).unwrap();
        assert!(other.is_empty(), "keys are exact, not prefixes");
        assert_eq!(s.cooldown("openai:0").unwrap(), Some((123, 2)));
        s.set_cooldown("openai:0", None).unwrap();
        assert_eq!(s.cooldown("openai:0").unwrap(), None);
        let meta: Option<Value> = s.session("agent:main:main").unwrap();
        assert_eq!(meta, Some(json!({"turns": 1})));
        assert!(s.delete_session("agent:main:main").unwrap());
        let t: Vec<(u64, Value)> = s.transcript("agent:main:main", None).unwrap();
        assert!(t.is_empty());
        let listed: Vec<(String, Value)> = s.sessions().unwrap();
        assert!(listed.is_empty());
    }
}
