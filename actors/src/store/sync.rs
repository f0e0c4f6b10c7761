//! Group commit: one committer makes the store durable for everyone waiting at the time.
//!
//! A row that must be on disk before it is acknowledged (an accepted message) is written in a
//! non-durable commit, which is quick and gives the row its place, and then
//! [`Store::sync`](super::Store::sync) asks for a durable commit. One empty durable commit
//! persists every non-durable commit before it (redb's `Durability::None` contract), so the
//! requests that arrive while a commit is being written share the next one: n concurrent
//! messages cost one fsync, not n, no caller blocks an async worker on the disk, and the
//! caller can go on (start the model call) while the disk catches up. When a commit
//! served several writes, the committer lets the next one start no sooner than
//! [`GATHER`] after it, so that more share each commit.
//!
//! Writes that must be durable when they return (a turn's transcript) go the same way as
//! jobs ([`Syncer::write`]): the committer runs every job queued at the time in one write
//! transaction and commits it once, durably. Concurrent turns of different sessions thus
//! share one commit and one fsync instead of queueing one by one behind redb's single
//! writer, and no async worker ever waits for the disk (an inline commit blocks its tokio
//! worker for the whole fsync, stalling every other actor on that worker). If a job fails,
//! the shared transaction is dropped and each job is run again in a transaction of its own,
//! so one bad write fails only itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use redb::{Database, WriteTransaction};
use tokio::sync::{oneshot, watch};

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

/// A write for the committer's shared transaction. `write` may be called a second time,
/// in a transaction of its own, when another job in the batch failed.
trait Job: Send {
    fn write(&mut self, tx: &WriteTransaction) -> Result<(), String>;
    fn done(self: Box<Self>, result: Result<(), String>);
}

struct FnJob<R, F> {
    f: F,
    out: Option<R>,
    reply: oneshot::Sender<Result<R, String>>,
}

impl<R, F> Job for FnJob<R, F>
where
    R: Send,
    F: FnMut(&WriteTransaction) -> Result<R, String> + Send,
{
    fn write(&mut self, tx: &WriteTransaction) -> Result<(), String> {
        self.out = Some((self.f)(tx)?);
        Ok(())
    }

    fn done(self: Box<Self>, result: Result<(), String>) {
        let FnJob { out, reply, .. } = *self;
        let r = result.and_then(|()| out.ok_or_else(|| "the write did not run".into()));
        let _ = reply.send(r);
    }
}

/// The requests waiting for a durable commit, the writes waiting for one, and whether a
/// committer is at work.
#[derive(Default)]
struct Queue {
    waiting: Vec<watch::Sender<Outcome>>,
    jobs: Vec<Box<dyn Job>>,
    busy: bool,
}

/// What the committers did.
#[derive(Default)]
struct Stats {
    /// Durable commits made (each served every request queued when it began).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: AtomicU64,
    /// Committer runs started (a run lasts while it finds work), and each commit: its
    /// run, when it began and how many requests and writes it served. Tests check the
    /// gather spacing with them.
    #[cfg(test)]
    runs: AtomicU64,
    #[cfg(test)]
    starts: Mutex<Vec<(u64, std::time::Instant, usize, bool)>>,
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
    stats: Arc<Stats>,
}

impl Syncer {
    /// Holds the database weakly, so closing the store is not delayed (but for a commit in
    /// flight).
    pub(super) fn start(db: Weak<Database>, path: String) -> Syncer {
        Syncer {
            db,
            path,
            queue: Arc::new(Mutex::new(Queue::default())),
            stats: Arc::new(Stats::default()),
        }
    }

    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.stats.commits.load(Ordering::Relaxed)
    }

    pub(super) fn request(&self) -> Durable {
        let (tx, rx) = watch::channel(None);
        self.enqueue(|q| q.waiting.push(tx));
        Durable(rx)
    }

    /// Runs `f` in the next shared durable write transaction; resolves once it is
    /// committed (or failed). `f` must only write what it captured: it may run twice.
    pub(super) fn write<R, F>(&self, f: F) -> oneshot::Receiver<Result<R, String>>
    where
        R: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<R, String> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(FnJob {
            f,
            out: None,
            reply,
        });
        self.enqueue(|q| q.jobs.push(job));
        rx
    }

    fn enqueue(&self, add: impl FnOnce(&mut Queue)) {
        let start = {
            let mut q = self.queue.lock().unwrap();
            add(&mut q);
            !std::mem::replace(&mut q.busy, true)
        };
        if start {
            let (db, path, queue, stats) = (
                self.db.clone(),
                self.path.clone(),
                self.queue.clone(),
                self.stats.clone(),
            );
            let work = move || committer(&db, &path, &queue, &stats);
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(work);
                }
                Err(_) => {
                    std::thread::spawn(work);
                }
            }
        }
    }
}

/// After a commit that served more than one request or write (a sign that writes are
/// arriving faster than they are committed), the next commit starts no sooner than this
/// after it began, and whatever arrives meanwhile shares it. Under a flood of messages
/// this cut the fsyncs to about a fifth (channels bench: ~1,500/s to ~450/s) for at most
/// this much more latency. A commit that served one write is followed at once, and a
/// committer starting from idle does not wait: a message at a time, or a delegation trip
/// on a quiet gateway (a chain of single writes, each caused by the one before), is not
/// held. Only commits quicker than the window are held at all (slow disks gather anyway).
pub(super) const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// Commits for whoever is queued, until nobody is.
fn committer(db: &Weak<Database>, path: &str, queue: &Mutex<Queue>, stats: &Stats) {
    // When the last commit began, if it served several.
    let mut gather_after: Option<std::time::Instant> = None;
    #[cfg(test)]
    let run = stats.runs.fetch_add(1, Ordering::Relaxed);
    loop {
        let (waiting, mut jobs, waited) = {
            let mut q = queue.lock().unwrap();
            if q.waiting.is_empty() && q.jobs.is_empty() {
                q.busy = false;
                return;
            }
            let wait = gather_after.and_then(|t| GATHER.checked_sub(t.elapsed()));
            if let Some(wait) = wait {
                drop(q);
                std::thread::sleep(wait);
                q = queue.lock().unwrap();
            }
            (
                std::mem::take(&mut q.waiting),
                std::mem::take(&mut q.jobs),
                wait.is_some(),
            )
        };
        let started = std::time::Instant::now();
        let served = waiting.len() + jobs.len();
        gather_after = (served > 1).then_some(started);
        #[cfg(test)]
        stats
            .starts
            .lock()
            .unwrap()
            .push((run, started, served, waited));
        #[cfg(not(test))]
        let _ = waited;
        let result = match db.upgrade() {
            Some(db) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                commit(&db, path, &mut jobs)
            }
            None => Err(format!("store {path} is closed")),
        };
        match &result {
            Ok(()) => jobs.into_iter().for_each(|j| j.done(Ok(()))),
            Err(e) if jobs.len() > 1 => {
                // One job may have spoiled the shared transaction: each on its own.
                tracing::warn!(error = %e, jobs = jobs.len(), "a shared commit failed; committing its writes one by one");
                for mut j in jobs {
                    let r = match db.upgrade() {
                        Some(db) => commit(&db, path, std::slice::from_mut(&mut j)),
                        None => Err(format!("store {path} is closed")),
                    };
                    j.done(r);
                }
            }
            Err(e) => jobs.into_iter().for_each(|j| j.done(Err(e.clone()))),
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "a durable commit failed");
        }
        for w in waiting {
            w.send_replace(Some(result.clone()));
        }
    }
}

/// One durable commit of the queued jobs' writes (none: an empty commit, which makes every
/// earlier non-durable commit durable).
fn commit(db: &Database, path: &str, jobs: &mut [Box<dyn Job>]) -> Result<(), String> {
    let tx = db.begin_write().map_err(|e| format!("store {path}: {e}"))?;
    for j in jobs.iter_mut() {
        if let Err(e) = j.write(&tx) {
            let _ = tx.abort();
            return Err(e);
        }
    }
    tx.commit().map_err(|e| format!("store {path}: {e}"))
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

    const T: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn back_to_back_commits_start_a_gather_window_apart_and_an_idle_store_commits_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(Database::create(dir.path().join("x.redb")).unwrap());
        let syncer = Syncer::start(std::sync::Arc::downgrade(&db), "x.redb".into());
        // Each write takes a millisecond to make (so a commit of several outlasts the
        // gaps between arrivals), and they arrive two at a time about every millisecond
        // (tokio's timer resolution), 30 times: the committer keeps finding writes queued
        // right after a commit that served several.
        let write = |i: u64, slow: bool| {
            syncer.write(move |tx| {
                if slow {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let mut t = tx.open_table(T).map_err(|e| e.to_string())?;
                t.insert(i, i).map_err(|e| e.to_string())?;
                Ok(())
            })
        };
        let mut rxs = Vec::new();
        let mut i = 0u64;
        for _burst in 0..30 {
            for _ in 0..2 {
                rxs.push(write(i, true));
                i += 1;
            }
            tokio::time::sleep(std::time::Duration::from_micros(100)).await;
        }
        for rx in rxs {
            assert_eq!(rx.await.unwrap(), Ok(()));
        }
        let starts = syncer.stats.starts.lock().unwrap().clone();
        assert!(
            (starts.len() as u64) < i,
            "{} commits for {i} writes",
            starts.len()
        );
        // Every commit that followed one serving several writes, in the same run, began at
        // least the window after it.
        let mut gathered = 0;
        for pair in starts.windows(2) {
            let ((run_a, a, served_a, _), (run_b, b, _, _)) = (pair[0], pair[1]);
            if run_a == run_b && served_a > 1 {
                gathered += 1;
                assert!(b - a >= GATHER, "commits of one run {:?} apart", b - a);
            }
        }
        assert!(gathered > 0, "no commit followed a shared one: {starts:?}");
        // Idle again (the committer ends its run once it finds nothing queued): a lone
        // write is committed by a fresh run, which starts without a window to wait for.
        while syncer.queue.lock().unwrap().busy {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let runs = syncer.stats.runs.load(Ordering::Relaxed);
        assert_eq!(write(u64::MAX, false).await.unwrap(), Ok(()));
        let starts = syncer.stats.starts.lock().unwrap().clone();
        let last = starts.last().expect("a commit");
        assert_eq!(last.0, runs, "a new run");
        assert!(!last.3, "a commit from idle does not wait");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_share_commits_and_a_failing_write_fails_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(Database::create(dir.path().join("x.redb")).unwrap());
        let syncer = Syncer::start(std::sync::Arc::downgrade(&db), "x.redb".into());
        // 200 concurrent writes, one of which fails: the others are all committed, in
        // far fewer commits than writes.
        let rxs: Vec<_> = (0..200u64)
            .map(|i| {
                syncer.write(move |tx| {
                    let mut t = tx.open_table(T).map_err(|e| e.to_string())?;
                    t.insert(i, i * 10).map_err(|e| e.to_string())?;
                    if i == 77 {
                        return Err("write 77 refuses".to_owned());
                    }
                    Ok(i)
                })
            })
            .collect();
        for (i, rx) in rxs.into_iter().enumerate() {
            let r = rx.await.unwrap();
            if i == 77 {
                assert_eq!(r, Err("write 77 refuses".into()));
            } else {
                assert_eq!(r, Ok(i as u64));
            }
        }
        let commits = syncer.commits();
        assert!(commits < 100, "{commits} shared commits for 200 writes");
        use redb::{ReadableDatabase, ReadableTableMetadata};
        let read = db.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        assert_eq!(t.len().unwrap(), 199);
        assert!(
            t.get(77).unwrap().is_none(),
            "the failed write left nothing"
        );
        assert_eq!(t.get(78).unwrap().unwrap().value(), 780);
    }
}
