//! Group commit: one committer makes the store durable for everyone waiting at the time.
//!
//! A row that must be on disk before it is acknowledged (an accepted message) is written in a
//! non-durable commit, which is quick and gives the row its place, and then
//! [`Store::sync`](super::Store::sync) asks for a durable commit. One empty durable commit
//! persists every non-durable commit before it (redb's `Durability::None` contract), so the
//! requests that arrive while a commit is being written share the next one: n concurrent
//! messages cost one fsync, not n, no caller blocks an async worker on the disk, and the
//! caller can go on (start the model call) while the disk catches up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use redb::Database;
use tokio::sync::watch;

type Outcome = Option<Result<(), String>>;

/// Resolves once the writes made before it was asked for are on disk.
#[derive(Clone, Debug)]
pub struct Durable(watch::Receiver<Outcome>);

impl Durable {
    /// Already durable (rows written by a durable commit, or read back from the store).
    pub fn done() -> Durable {
        Durable(watch::channel(Some(Ok(()))).1)
    }

    /// Waits for the durable commit; `Err` says why the writes may not be on disk.
    pub async fn wait(&self) -> Result<(), String> {
        let mut rx = self.0.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(Ok(())),
            Err(_) => Err("the store closed before the write reached the disk".into()),
        }
    }

    /// Whether the commit has finished (successfully or not).
    pub fn is_settled(&self) -> bool {
        self.0.borrow().is_some()
    }
}

/// The requests waiting for a durable commit, and whether a committer is at work.
#[derive(Default)]
struct Queue {
    waiting: Vec<watch::Sender<Outcome>>,
    busy: bool,
}

/// Group commit. A request joins the queue; if no committer is at work, one starts on
/// tokio's blocking pool (a plain thread outside a runtime). It takes the whole queue,
/// commits once, answers everyone, and goes again while requests arrived meanwhile.
/// The blocking pool (rather than a thread of its own) keeps paused-time tests honest:
/// tokio does not auto-advance the clock while a blocking task runs.
pub(super) struct Syncer {
    db: Weak<Database>,
    path: String,
    queue: Arc<Mutex<Queue>>,
    /// Durable commits made (each served every request queued when it began).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

impl Syncer {
    /// Holds the database weakly, so closing the store is not delayed (but for a commit in
    /// flight).
    pub(super) fn start(db: Weak<Database>, path: String) -> Syncer {
        Syncer {
            db,
            path,
            queue: Arc::new(Mutex::new(Queue::default())),
            commits: Arc::new(AtomicU64::new(0)),
        }
    }

    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    pub(super) fn request(&self) -> Durable {
        let (tx, rx) = watch::channel(None);
        let start = {
            let mut q = self.queue.lock().unwrap();
            q.waiting.push(tx);
            !std::mem::replace(&mut q.busy, true)
        };
        if start {
            let (db, path, queue, counter) = (
                self.db.clone(),
                self.path.clone(),
                self.queue.clone(),
                self.commits.clone(),
            );
            let work = move || committer(&db, &path, &queue, &counter);
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(work);
                }
                Err(_) => {
                    std::thread::spawn(work);
                }
            }
        }
        Durable(rx)
    }
}

/// Commits for whoever is queued, until nobody is.
fn committer(db: &Weak<Database>, path: &str, queue: &Mutex<Queue>, counter: &AtomicU64) {
    loop {
        let waiting = {
            let mut q = queue.lock().unwrap();
            if q.waiting.is_empty() {
                q.busy = false;
                return;
            }
            std::mem::take(&mut q.waiting)
        };
        let result = match db.upgrade() {
            Some(db) => {
                counter.fetch_add(1, Ordering::Relaxed);
                commit(&db).map_err(|e| format!("store {path}: {e}"))
            }
            None => Err(format!("store {path} is closed")),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "a durable commit failed");
        }
        for w in waiting {
            w.send_replace(Some(result.clone()));
        }
    }
}

/// An empty durable commit: it makes every earlier non-durable commit durable.
fn commit(db: &Database) -> Result<(), redb::Error> {
    db.begin_write()?.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_settled_durable_resolves_at_once() {
        let d = Durable::done();
        assert!(d.is_settled());
        assert_eq!(d.wait().await, Ok(()));
    }

    #[tokio::test]
    async fn requests_share_commits_and_a_closed_store_fails_them_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(Database::create(dir.path().join("x.redb")).unwrap());
        let syncer = Syncer::start(std::sync::Arc::downgrade(&db), "x.redb".into());
        assert_eq!(syncer.request().wait().await, Ok(()));
        // A burst shares commits: requests queued while one is written wait for the next.
        let burst: Vec<Durable> = (0..200).map(|_| syncer.request()).collect();
        for d in &burst {
            assert_eq!(d.wait().await, Ok(()));
        }
        let commits = syncer.commits();
        assert!(
            (2..=20).contains(&commits),
            "{commits} commits for 201 requests"
        );
        drop(db);
        let err = syncer.request().wait().await.unwrap_err();
        assert!(err.contains("is closed"), "{err}");
    }
}
