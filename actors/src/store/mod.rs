//! The store: `state.redb`, with a schema version and an ordered migration path, plus the
//! lock that keeps a second gateway off the same state directory.
//!
//! Later capabilities add their tables through migrations here; a store written by a newer
//! Pincer is refused rather than misread.

mod audit;
mod channels;
mod cron;
mod heartbeat;
mod lock;
mod sessions;

pub use sessions::StageItem;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

pub use channels::Queued;
pub use lock::GatewayLock;
pub use sync::Durable;

/// `meta`: schema version and other facts about the file itself.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `gateway`: facts about the gateway's life (start and clean-stop times, ms since epoch).
const GATEWAY: TableDefinition<&str, u64> = TableDefinition::new("gateway");

/// The schema version this build writes.
pub const CURRENT_SCHEMA_VERSION: u64 = 6;

/// One step of the migration path; `open_with` runs all pending steps in one transaction.
pub struct Migration {
    pub from: u64,
    pub to: u64,
    pub description: &'static str,
    pub run: fn(&WriteTransaction) -> Result<(), redb::Error>,
}

/// Every migration, oldest first. A new file starts at 0 and walks the whole path.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        from: 0,
        to: 1,
        description: "create the meta and gateway tables",
        run: |tx| {
            tx.open_table(META)?;
            tx.open_table(GATEWAY)?;
            Ok(())
        },
    },
    Migration {
        from: 1,
        to: 2,
        description: "create the sessions, transcript, inbox and cooldowns tables",
        run: sessions::create_tables,
    },
    Migration {
        from: 2,
        to: 3,
        description: "create the session lifecycle and archive tables",
        run: sessions::create_lifecycle_tables,
    },
    Migration {
        from: 3,
        to: 4,
        description: "create the sandboxes table",
        run: sessions::create_sandbox_table,
    },
    Migration {
        from: 4,
        to: 5,
        description: "create the channel tables (seen, outbox, pairing, state)",
        run: channels::create_tables,
    },
    Migration {
        from: 5,
        to: 6,
        description: "create the scheduling, heartbeat and audit tables",
        run: |tx| {
            cron::create_tables(tx)?;
            heartbeat::create_tables(tx)?;
            audit::create_tables(tx)
        },
    },
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path} is open in another process (is another pincer gateway running on this state directory?); stop it or use --profile"
    )]
    Locked { path: PathBuf },
    #[error(
        "another pincer gateway (pid {pid}) is already running on state directory {dir}; stop it, or start this one with --profile NAME"
    )]
    AnotherGateway { pid: String, dir: PathBuf },
    #[error(
        "{path} has schema version {found} but this pincer supports up to {supported}; upgrade pincer or restore a backup of the state directory"
    )]
    NewerSchema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error(
        "{path} is damaged ({detail}); move it aside (mv {path} {path}.broken) to start with an empty store, or restore a backup"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("migration {from}->{to} ({description}) of {path} failed: {source}")]
    Migration {
        path: PathBuf,
        from: u64,
        to: u64,
        description: &'static str,
        source: Box<redb::Error>,
    },
    #[error("store {path}: {source}")]
    Db {
        path: PathBuf,
        source: Box<redb::Error>,
    },
    #[error("{0}")]
    Io(String),
}

/// A cheap-to-clone handle to the open database.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
    syncer: Arc<sync::Syncer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the store and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, MIGRATIONS, CURRENT_SCHEMA_VERSION)
    }

    /// `open` with an explicit migration path (tests use fake ones).
    pub fn open_with(
        path: &Path,
        migrations: &[Migration],
        current: u64,
    ) -> Result<Self, StoreError> {
        let db = Arc::new(Database::create(path).map_err(|e| classify(path, e))?);
        let store = Self {
            syncer: Arc::new(sync::Syncer::start(
                Arc::downgrade(&db),
                path.display().to_string(),
            )),
            db,
            path: path.to_owned(),
        };
        let found = store.schema_version()?;
        if found > current {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found,
                supported: current,
            });
        }
        // Every pending step runs in one write transaction: the file moves from `found`
        // to `current` whole or not at all (a failing step leaves the old version), and a
        // fresh store costs one commit instead of one per step.
        let mut version = found;
        if found < current {
            let tx = store.db.begin_write().map_err(|e| store.err(e.into()))?;
            for m in migrations
                .iter()
                .filter(|m| m.from >= found && m.to <= current)
            {
                if m.from != version {
                    continue;
                }
                (m.run)(&tx).map_err(|source| StoreError::Migration {
                    path: path.to_owned(),
                    from: m.from,
                    to: m.to,
                    description: m.description,
                    source: Box::new(source),
                })?;
                version = m.to;
            }
            {
                let mut meta = tx.open_table(META).map_err(|e| store.err(e.into()))?;
                meta.insert("schema_version", version)
                    .map_err(|e| store.err(e.into()))?;
            }
            if version == current {
                tx.commit().map_err(|e| store.err(e.into()))?;
                tracing::info!(path = %path.display(), from = found, to = current, "store migrated");
            }
        }
        if version != current {
            return Err(StoreError::Io(format!(
                "{}: no migration path from schema version {version} to {current} (the file stays at version {found})",
                path.display()
            )));
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every commit so far durable, shared with whoever else asks meanwhile (group
    /// commit, see `sync.rs`). Pairs with the non-durable writes such as `inbox_stage`.
    pub fn sync(&self) -> Durable {
        self.syncer.request()
    }

    /// Runs `f` in a durable write transaction shared with the other writes queued at
    /// the time (see `sync.rs`): one commit and one fsync for all of them, on the blocking
    /// pool. `f` may run twice (alone, if another write of its batch failed), so it must
    /// only write what it captured.
    pub async fn write_shared<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnMut(&redb::WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        let mut f = f;
        let rx = self
            .syncer
            .write(move |tx| f(tx).map_err(|e| e.to_string()));
        match rx.await {
            Ok(r) => r.map_err(StoreError::Io),
            Err(_) => Err(StoreError::Io(format!(
                "store {}: the write was dropped (the store is closing)",
                self.path.display()
            ))),
        }
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let table = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(self.err(e.into())),
        };
        Ok(table
            .get("schema_version")
            .map_err(|e| self.err(e.into()))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Records a start. Returns whether the previous run stopped cleanly (`None` on the
    /// first start).
    pub fn record_start(&self, now_ms: u64) -> Result<Option<bool>, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        let previous = {
            let mut t = tx.open_table(GATEWAY).map_err(|e| self.err(e.into()))?;
            let started = t
                .get("last_start_ms")
                .map_err(|e| self.err(e.into()))?
                .map(|v| v.value());
            let stopped = t
                .get("last_clean_stop_ms")
                .map_err(|e| self.err(e.into()))?
                .map(|v| v.value());
            t.insert("last_start_ms", now_ms)
                .map_err(|e| self.err(e.into()))?;
            started.map(|s| stopped.is_some_and(|st| st >= s))
        };
        tx.commit().map_err(|e| self.err(e.into()))?;
        Ok(previous)
    }

    /// Records a clean stop; the next `record_start` reports it.
    pub fn record_clean_shutdown(&self, now_ms: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e.into()))?;
        {
            let mut t = tx.open_table(GATEWAY).map_err(|e| self.err(e.into()))?;
            t.insert("last_clean_stop_ms", now_ms)
                .map_err(|e| self.err(e.into()))?;
        }
        tx.commit().map_err(|e| self.err(e.into()))
    }

    fn err(&self, source: redb::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }
}

fn classify(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            path: path.to_owned(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::Corrupt {
                path: path.to_owned(),
                detail,
            }
        }
        redb::DatabaseError::UpgradeRequired(v) => StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("written in an older redb file format {v}"),
        },
        other => {
            let text = other.to_string();
            if text.contains("orrupt") || text.contains("magic") || text.contains("invalid") {
                StoreError::Corrupt {
                    path: path.to_owned(),
                    detail: text,
                }
            } else {
                StoreError::Db {
                    path: path.to_owned(),
                    source: Box::new(other.into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_walks_the_migration_path_and_reopens_at_the_current_version() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.redb");
        let s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), CURRENT_SCHEMA_VERSION);
        assert_eq!(s.record_start(10).unwrap(), None, "first start");
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(
            s.record_start(20).unwrap(),
            Some(false),
            "no clean stop was recorded"
        );
        s.record_clean_shutdown(30).unwrap();
        assert_eq!(s.record_start(40).unwrap(), Some(true));
    }

    const EXTRA: TableDefinition<&str, u64> = TableDefinition::new("extra");

    /// This build's migrations plus a fake next one that adds the `extra` table.
    fn path_with_extra() -> Vec<Migration> {
        let mut path: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|m| Migration {
                from: m.from,
                to: m.to,
                description: m.description,
                run: m.run,
            })
            .collect();
        path.push(Migration {
            from: CURRENT_SCHEMA_VERSION,
            to: CURRENT_SCHEMA_VERSION + 1,
            description: "add extra",
            run: |tx| {
                tx.open_table(EXTRA)?.insert("added", 1)?;
                Ok(())
            },
        });
        path
    }

    #[test]
    fn a_fake_next_migration_runs_once_and_keeps_data() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.redb");
        Store::open(&p).unwrap().record_clean_shutdown(5).unwrap();
        let path = path_with_extra();
        let s = Store::open_with(&p, &path, CURRENT_SCHEMA_VERSION + 1).unwrap();
        assert_eq!(s.schema_version().unwrap(), CURRENT_SCHEMA_VERSION + 1);
        let tx = s.db.begin_read().unwrap();
        assert_eq!(
            tx.open_table(EXTRA)
                .unwrap()
                .get("added")
                .unwrap()
                .unwrap()
                .value(),
            1
        );
        assert_eq!(
            tx.open_table(GATEWAY)
                .unwrap()
                .get("last_clean_stop_ms")
                .unwrap()
                .unwrap()
                .value(),
            5
        );
        drop(tx);
        drop(s);
        // This build does not know the next version: the newer file is refused, with what
        // to do.
        let err = Store::open(&p).unwrap_err().to_string();
        let expected = format!(
            "schema version {} but this pincer supports up to {CURRENT_SCHEMA_VERSION}",
            CURRENT_SCHEMA_VERSION + 1
        );
        assert!(err.contains(&expected), "{err}");
        assert!(err.contains("upgrade pincer"), "{err}");
    }

    #[test]
    fn a_failing_step_leaves_the_file_at_its_old_version() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.redb");
        Store::open(&p).unwrap().record_clean_shutdown(5).unwrap();
        let mut path = path_with_extra();
        path.push(Migration {
            from: CURRENT_SCHEMA_VERSION + 1,
            to: CURRENT_SCHEMA_VERSION + 2,
            description: "a step that fails",
            run: |_| Err(redb::Error::Corrupted("injected".into())),
        });
        let err = Store::open_with(&p, &path, CURRENT_SCHEMA_VERSION + 2).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "migration {}->{} (a step that fails)",
                CURRENT_SCHEMA_VERSION + 1,
                CURRENT_SCHEMA_VERSION + 2
            )),
            "{msg}"
        );
        // Neither step landed: the version is the old one and the first step's table is
        // absent, so the next start walks both again.
        let s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), CURRENT_SCHEMA_VERSION);
        let tx = s.db.begin_read().unwrap();
        assert!(matches!(
            tx.open_table(EXTRA),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
    }

    #[test]
    fn a_second_open_in_the_same_process_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.redb");
        let _s = Store::open(&p).unwrap();
        let err = Store::open(&p).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    }

    #[test]
    fn a_garbage_file_is_reported_as_damaged_with_the_way_out() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.redb");
        std::fs::write(&p, vec![0x5au8; 8192]).unwrap();
        let err = Store::open(&p).unwrap_err().to_string();
        assert!(
            err.contains("damaged") || err.contains("state.redb"),
            "{err}"
        );
        assert!(err.contains("state.redb"), "{err}");
    }
}
