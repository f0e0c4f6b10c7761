//! Cron jobs and their run history in `state.redb`.
//!
//! Two tables: `cron_jobs` (job id -> the job and its state, JSON) and `cron_runs`
//! ((job id, run number) -> one run, JSON), at most [`RUNS_KEPT_PER_JOB`] runs per job (the
//! oldest go). The Scheduler is the only writer. Every write goes through
//! [`Store::cron_apply`], which queues it at once for the next shared durable commit (see
//! `sync.rs`): writes reach the disk in the order they were made, each call's operations
//! in one transaction, so a job row never lags behind the run row written with it.

use std::future::Future;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{Store, StoreError};
use crate::schedule::cron::{CronJob, CronOp, CronRun, RUNS_KEPT_PER_JOB};

/// `cron_jobs`: job id -> the job, its schedule and its state (JSON).
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("cron_jobs");
/// `cron_runs`: (job id, run number) -> one run of the job (JSON).
const RUNS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("cron_runs");

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(JOBS)?;
    tx.open_table(RUNS)?;
    Ok(())
}

fn json<T: serde::Serialize>(row: &T) -> Vec<u8> {
    serde_json::to_vec(row).expect("cron rows serialise")
}

fn apply(tx: &WriteTransaction, ops: &[CronOp]) -> Result<(), redb::Error> {
    let mut jobs = tx.open_table(JOBS)?;
    let mut runs = tx.open_table(RUNS)?;
    for op in ops {
        match op {
            CronOp::PutJob(job) => {
                jobs.insert(job.id.as_str(), json(job).as_slice())?;
            }
            CronOp::RemoveJob {
                id,
                runs: with_runs,
            } => {
                jobs.remove(id.as_str())?;
                if *with_runs {
                    for seq in run_keys(&runs, id, 0, u64::MAX)? {
                        runs.remove((id.as_str(), seq))?;
                    }
                }
            }
            CronOp::PutRun(run) => {
                let (job, seq) = (run.job_id.as_str(), run.seq);
                runs.insert((job, seq), json(run).as_slice())?;
                if seq >= RUNS_KEPT_PER_JOB {
                    for s in run_keys(&runs, job, 0, seq - RUNS_KEPT_PER_JOB)? {
                        runs.remove((job, s))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The run numbers of `job` from `from` to `to` (inclusive).
fn run_keys(
    runs: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    job: &str,
    from: u64,
    to: u64,
) -> Result<Vec<u64>, redb::Error> {
    let mut out = Vec::new();
    for row in runs.range((job, from)..=(job, to))? {
        out.push(row?.0.value().1);
    }
    Ok(out)
}

/// A stored row that does not parse: (key, why).
pub type DamagedRow = (String, String);

impl Store {
    /// Applies `ops` in one transaction of the next shared durable commit. The write is
    /// queued before this returns, so cron writes reach the disk in call order; the future
    /// resolves once they are durable (dropping it does not cancel the write).
    pub fn cron_apply(
        &self,
        ops: Vec<CronOp>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let rx = self
            .syncer
            .write(move |tx| apply(tx, &ops).map_err(|e| e.to_string()));
        let path = self.path.clone();
        async move {
            match rx.await {
                Ok(r) => r.map_err(StoreError::Io),
                Err(_) => Err(StoreError::Io(format!(
                    "store {}: the cron write was dropped (the store is closing)",
                    path.display()
                ))),
            }
        }
    }

    /// Every cron job, in id order, and the ids of rows that do not parse (with why), so
    /// one damaged row does not stop the others.
    pub fn cron_jobs(&self) -> Result<(Vec<CronJob>, Vec<DamagedRow>), StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(JOBS).map_err(|e| self.err(e.into()))?;
        let (mut jobs, mut bad) = (Vec::new(), Vec::new());
        for row in t.iter().map_err(|e| self.err(e.into()))? {
            let (k, v) = row.map_err(|e| self.err(e.into()))?;
            match self.decode("cron_jobs", v.value()) {
                Ok(job) => jobs.push(job),
                Err(e) => bad.push((k.value().to_owned(), e.to_string())),
            }
        }
        Ok((jobs, bad))
    }

    /// One run of a job.
    pub fn cron_run(&self, job: &str, seq: u64) -> Result<Option<CronRun>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(RUNS).map_err(|e| self.err(e.into()))?;
        let row = t.get((job, seq)).map_err(|e| self.err(e.into()))?;
        row.map(|v| self.decode("cron_runs", v.value())).transpose()
    }

    /// A job's runs, newest first: `limit` of them after skipping the `offset` newest.
    pub fn cron_runs(
        &self,
        job: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<CronRun>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e.into()))?;
        let t = tx.open_table(RUNS).map_err(|e| self.err(e.into()))?;
        let mut out = Vec::new();
        let range = t
            .range((job, 0)..=(job, u64::MAX))
            .map_err(|e| self.err(e.into()))?;
        for row in range.rev().skip(offset).take(limit) {
            let (_, v) = row.map_err(|e| self.err(e.into()))?;
            out.push(self.decode("cron_runs", v.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::cron::{RunStatus, Trigger};
    use serde_json::json;

    fn job(id: &str, name: &str) -> CronJob {
        let mut j = CronJob::create(
            &json!({"id": id, "name": name, "schedule": {"kind": "every", "everyMs": 60_000},
                "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "m"}}),
            1_000,
            "x",
        )
        .unwrap();
        j.state.last_seq = 7;
        j
    }

    fn run(job: &str, seq: u64) -> CronOp {
        CronOp::PutRun(Box::new(CronRun {
            job_id: job.into(),
            seq,
            trigger: Trigger::Schedule,
            scheduled_at_ms: seq,
            started_at_ms: seq,
            finished_at_ms: None,
            status: RunStatus::Running,
            duration_ms: None,
            summary: None,
            error: None,
            run_id: None,
            session_key: format!("agent:main:cron:{job}"),
            model: None,
        }))
    }

    fn seqs(store: &Store, job: &str, offset: usize, limit: usize) -> Vec<u64> {
        let runs = store.cron_runs(job, offset, limit).unwrap();
        runs.iter().map(|r| r.seq).collect()
    }

    #[tokio::test]
    async fn jobs_and_runs_round_trip_and_runs_are_capped_per_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let (a, b) = (job("a", "job a"), job("b", "job b"));
        store
            .cron_apply(vec![
                CronOp::PutJob(Box::new(b.clone())),
                CronOp::PutJob(Box::new(a.clone())),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.cron_jobs().unwrap(),
            (vec![a, b], vec![]),
            "in id order, as written"
        );

        let ops: Vec<CronOp> = (1..=RUNS_KEPT_PER_JOB + 5)
            .map(|s| run("a", s))
            .chain([run("b", 1)])
            .collect();
        store.cron_apply(ops).await.unwrap();
        let all = seqs(&store, "a", 0, 1000);
        assert_eq!(all.len() as u64, RUNS_KEPT_PER_JOB, "capped");
        assert_eq!(all[0], RUNS_KEPT_PER_JOB + 5, "newest first");
        assert_eq!(*all.last().unwrap(), 6, "the 5 oldest went");
        assert_eq!(
            seqs(&store, "a", 2, 2),
            [RUNS_KEPT_PER_JOB + 3, RUNS_KEPT_PER_JOB + 2]
        );
        assert_eq!(
            store.cron_run("b", 1).unwrap().unwrap().session_key,
            "agent:main:cron:b"
        );
        assert_eq!(store.cron_run("a", 1).unwrap(), None);

        // Removing a job without its runs keeps them; with them, only its own go.
        store
            .cron_apply(vec![CronOp::RemoveJob {
                id: "b".into(),
                runs: false,
            }])
            .await
            .unwrap();
        assert_eq!(store.cron_jobs().unwrap().0.len(), 1);
        assert_eq!(seqs(&store, "b", 0, 10), [1]);
        store
            .cron_apply(vec![CronOp::RemoveJob {
                id: "a".into(),
                runs: true,
            }])
            .await
            .unwrap();
        assert!(seqs(&store, "a", 0, 10).is_empty());
        assert_eq!(seqs(&store, "b", 0, 10), [1]);
    }

    #[tokio::test]
    async fn a_row_that_does_not_parse_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        store
            .cron_apply(vec![CronOp::PutJob(Box::new(job("good", "g")))])
            .await
            .unwrap();
        let tx = store.db.begin_write().unwrap();
        tx.open_table(JOBS)
            .unwrap()
            .insert("bad", b"{not json".as_slice())
            .unwrap();
        tx.commit().unwrap();
        let (jobs, bad) = store.cron_jobs().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "bad");
        assert!(
            bad[0].1.contains("cron_jobs does not parse"),
            "{}",
            bad[0].1
        );
    }

    #[tokio::test]
    async fn writes_land_in_the_order_they_were_made() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        // Queued back to back without waiting: the later row wins.
        let first = store.cron_apply(vec![CronOp::PutJob(Box::new(job("j", "first")))]);
        let second = store.cron_apply(vec![CronOp::PutJob(Box::new(job("j", "second")))]);
        second.await.unwrap();
        first.await.unwrap();
        let (jobs, _) = store.cron_jobs().unwrap();
        assert_eq!(jobs[0].spec.name.as_deref(), Some("second"));
    }
}
