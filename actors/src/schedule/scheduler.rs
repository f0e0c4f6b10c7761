//! The Scheduler: one supervised actor that fires cron jobs when they are due.
//!
//! ```text
//! root (one_for_one)
//! └── scheduler   permanent, backoff   the jobs, one timer for the earliest due one
//!     └── (tasks)  one per run: asks the CronRunner (the Sessions actor) and reports back
//! ```
//!
//! State: every job in memory and a `(due ms, job id)` ordered set; one timer, armed for
//! the first entry (capped at a minute, so a changed wall clock or a suspended host is
//! noticed), so 10,000 jobs cost one timer, not 10,000. Time comes from a [`Clock`]:
//! the system's in production, one driven by tokio's clock in tests (paused time).
//!
//! A fire is recorded before it runs: the run row (`running`) and the job's advanced
//! next slot are committed durably together, and only then is the runner asked. A crash or
//! restart between the two finds the row still `running`: it is marked `interrupted` and
//! never run again (at most once per slot). A slot missed while the scheduler was down
//! runs once at start if it is no older than `cron.missedRunGraceSeconds`, else it is
//! recorded as skipped (see [`start_plan`]). Runs of one job never overlap: a slot that
//! comes while the previous run is still going is recorded as skipped.
//!
//! Restart policy: permanent, with the supervisor's backoff; the store is the state.
//! Emits nothing; the run history is in the store (`cron.runs`).

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use super::cron::{
    CronError, CronJob, CronOp, CronRun, RunStatus, Schedule, StartPlan, Trigger, next_fire,
    rfc3339, start_plan,
};
pub use super::cron_runner::{
    Clock, CronRunner, Fire, RunOutcome, SessionsRunner, SystemClock, TokioClock,
};
use crate::store::Store;

/// The longest the timer sleeps before looking again (a wall clock that jumped, or a host
/// that was suspended, is noticed within this).
pub const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Default `cron.missedRunGraceSeconds`: 12 hours.
pub const DEFAULT_MISSED_RUN_GRACE_SECONDS: u64 = 12 * 3600;
/// The longest summary kept with a run.
pub const SUMMARY_CHARS: usize = 2_000;

/// `cron.*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronConfig {
    /// `cron.enabled`: fire jobs on schedule (jobs can still be managed and run by hand).
    pub enabled: bool,
    /// `cron.missedRunGraceSeconds`, in ms.
    pub missed_run_grace_ms: u64,
}

impl Default for CronConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            missed_run_grace_ms: DEFAULT_MISSED_RUN_GRACE_SECONDS * 1000,
        }
    }
}

impl CronConfig {
    /// From the whole (validated) config.
    pub fn from_config(config: &Value) -> Self {
        let d = Self::default();
        Self {
            enabled: config
                .pointer("/cron/enabled")
                .and_then(Value::as_bool)
                .unwrap_or(d.enabled),
            missed_run_grace_ms: config
                .pointer("/cron/missedRunGraceSeconds")
                .and_then(Value::as_u64)
                .map_or(d.missed_run_grace_ms, |s| s * 1000),
        }
    }
}

pub struct SchedulerActor;

/// What the Scheduler needs.
pub struct SchedulerArgs {
    pub store: Store,
    pub runner: Arc<dyn CronRunner>,
    pub clock: Arc<dyn Clock>,
    pub config: CronConfig,
    /// For session keys: the default agent and the main session's name.
    pub default_agent: String,
    pub main_key: String,
    /// Configured agent ids (`agentId` must be one); empty: not checked.
    pub agents: Vec<String>,
}

/// A task that is aborted when this is dropped (with the actor's state).
struct Task(tokio::task::AbortHandle);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fire recorded and not finished.
struct InFlight {
    fire: Fire,
    /// The runner's task, once started.
    task: Option<Task>,
}

pub struct SchedulerState {
    args: SchedulerArgs,
    jobs: HashMap<String, CronJob>,
    /// (due ms, job id) for every armed job.
    due: BTreeSet<(u64, String)>,
    /// Jobs whose armed slot was missed during downtime (their fire is a catch-up).
    catch_up: BTreeSet<String>,
    in_flight: HashMap<String, InFlight>,
    /// (when it is due, the sleeping task).
    timer: Option<(u64, Task)>,
    /// Stored jobs whose rows do not parse: not loaded, but removable.
    damaged: BTreeSet<String>,
}

/// The Scheduler's state for `cron.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronStatus {
    pub enabled: bool,
    pub jobs: usize,
    pub enabled_jobs: usize,
    pub running: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_wake_at_ms: Option<u64>,
    pub missed_run_grace_seconds: u64,
}

/// A manual run that was recorded and started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    pub job_id: String,
    pub seq: u64,
    pub session_key: String,
    pub started_at_ms: u64,
}

pub enum SchedulerMsg {
    /// Every job, soonest due first.
    List {
        reply: RpcReplyPort<Vec<CronJob>>,
    },
    Status {
        reply: RpcReplyPort<CronStatus>,
    },
    /// Adds a job from `cron.add` params; replies once it is durable.
    Add {
        params: Value,
        reply: RpcReplyPort<Result<CronJob, CronError>>,
    },
    /// Applies a `cron.update` patch; replies once it is durable.
    Update {
        id: String,
        patch: Value,
        reply: RpcReplyPort<Result<CronJob, CronError>>,
    },
    /// Deletes a job and its run history (a run under way goes on, unrecorded).
    Remove {
        id: String,
        reply: RpcReplyPort<Result<(), CronError>>,
    },
    /// Runs a job now (`due_only`: only if it is due); `None` when it was not due.
    /// Replies once the fire is recorded and handed to the runner.
    Run {
        id: String,
        due_only: bool,
        reply: RpcReplyPort<Result<Option<RunStarted>, CronError>>,
    },
    /// Timers and run reports (sent by the Scheduler's own tasks).
    Internal(Internal),
}

pub struct Internal(Inner);

enum Inner {
    /// The timer went off: fire what is due.
    Tick,
    /// A fire's record was committed (or failed to be): start its run.
    Start {
        job: String,
        seq: u64,
        recorded: Result<(), String>,
        reply: Option<RpcReplyPort<Result<Option<RunStarted>, CronError>>>,
    },
    /// A run ended.
    Finished {
        job: String,
        seq: u64,
        outcome: RunOutcome,
        ended_ms: u64,
    },
}

fn internal(i: Inner) -> SchedulerMsg {
    SchedulerMsg::Internal(Internal(i))
}

impl Actor for SchedulerActor {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = SchedulerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SchedulerMsg>,
        args: SchedulerArgs,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        let now = args.clock.now_ms();
        let (stored, damaged) = args.store.cron_jobs()?;
        for (id, e) in &damaged {
            tracing::error!(job = %id, error = %e, "cron job not loaded: its stored row does not parse (remove it with `pincer cron rm`)");
        }
        let mut state = SchedulerState {
            args,
            jobs: HashMap::new(),
            due: BTreeSet::new(),
            catch_up: BTreeSet::new(),
            in_flight: HashMap::new(),
            timer: None,
            damaged: damaged.into_iter().map(|(id, _)| id).collect(),
        };
        let mut ops = Vec::new();
        let (mut interrupted, mut caught_up, mut skipped) = (0, 0, 0);
        for mut job in stored {
            if let Some(seq) = job.state.running_seq.take() {
                interrupted += 1;
                recover_interrupted(&state.args.store, &mut job, seq, now, &mut ops);
            }
            if state.args.config.enabled {
                match start_plan(&job, now, state.args.config.missed_run_grace_ms) {
                    StartPlan::Idle => {}
                    StartPlan::Due(t) => {
                        state.due.insert((t, job.id.clone()));
                    }
                    StartPlan::CatchUp { slot } => {
                        caught_up += 1;
                        job.state.next_run_at_ms = Some(slot);
                        state.due.insert((slot, job.id.clone()));
                        state.catch_up.insert(job.id.clone());
                    }
                    StartPlan::Skip { slot, next } => {
                        skipped += 1;
                        let grace = state.args.config.missed_run_grace_ms / 1000;
                        let why = format!(
                            "missed while the scheduler was down: due at {}, more than cron.missedRunGraceSeconds ({grace}) before it came back at {}",
                            rfc3339(slot),
                            rfc3339(now)
                        );
                        let key = state.session_key(&job);
                        let run = finished_row(&mut job, Trigger::Schedule, slot, now, key, why);
                        job.state.next_run_at_ms = next;
                        if let Some(n) = next {
                            state.due.insert((n, job.id.clone()));
                        } else {
                            job.spec.enabled = false;
                        }
                        ops.push(put_run(&run));
                        ops.push(put_job(&job));
                    }
                }
            }
            state.jobs.insert(job.id.clone(), job);
        }
        if !ops.is_empty() {
            state.args.store.cron_apply(ops).await?;
        }
        info!(
            jobs = state.jobs.len(),
            armed = state.due.len(),
            interrupted,
            caught_up,
            skipped,
            enabled = state.args.config.enabled,
            "scheduler started"
        );
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        state.rearm(&myself);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SchedulerMsg>,
        msg: SchedulerMsg,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SchedulerMsg::List { reply } => {
                let _ = reply.send(state.list());
            }
            SchedulerMsg::Status { reply } => {
                let _ = reply.send(state.status());
            }
            SchedulerMsg::Add { params, reply } => {
                let _ = reply.send(state.on_add(&myself, &params).await);
            }
            SchedulerMsg::Update { id, patch, reply } => {
                let _ = reply.send(state.on_update(&myself, &id, &patch).await);
            }
            SchedulerMsg::Remove { id, reply } => {
                let _ = reply.send(state.on_remove(&myself, &id).await);
            }
            SchedulerMsg::Run {
                id,
                due_only,
                reply,
            } => state.on_run(&myself, &id, due_only, reply),
            SchedulerMsg::Internal(Internal(i)) => match i {
                Inner::Tick => state.on_tick(&myself),
                Inner::Start {
                    job,
                    seq,
                    recorded,
                    reply,
                } => state.on_start(&myself, &job, seq, recorded, reply),
                Inner::Finished {
                    job,
                    seq,
                    outcome,
                    ended_ms,
                } => state.on_finished(&job, seq, outcome, ended_ms),
            },
        }
        Ok(())
    }
}

/// Marks the run a crash or restart left `running` as interrupted (never run again); an
/// `at` job it was the fire of is done.
fn recover_interrupted(
    store: &Store,
    job: &mut CronJob,
    seq: u64,
    now: u64,
    ops: &mut Vec<CronOp>,
) {
    let why = "the scheduler stopped while this run was under way (gateway restart or scheduler crash); it is not run again";
    let run = store.cron_run(&job.id, seq).unwrap_or_else(|e| {
        warn!(job = %job.id, seq, error = %e, "cron run row unreadable");
        None
    });
    let manual = run.as_ref().is_some_and(|r| r.trigger == Trigger::Manual);
    if let Some(mut r) = run {
        r.status = RunStatus::Interrupted;
        r.finished_at_ms = Some(now);
        r.duration_ms = Some(now.saturating_sub(r.started_at_ms));
        r.error = Some(why.into());
        ops.push(put_run(&r));
    }
    warn!(job = %job.id, seq, "cron run interrupted by a restart; not run again");
    job.state.running_at_ms = None;
    job.state.last_status = Some(RunStatus::Interrupted);
    job.state.last_error = Some(why.into());
    if !manual && matches!(job.spec.schedule, Schedule::At { .. }) {
        job.spec.enabled = false;
        job.state.next_run_at_ms = None;
    }
    ops.push(put_job(job));
}

fn put_job(job: &CronJob) -> CronOp {
    CronOp::PutJob(Box::new(job.clone()))
}

fn put_run(run: &CronRun) -> CronOp {
    CronOp::PutRun(Box::new(run.clone()))
}

/// A new run row for `job` (taking its next run number).
fn new_row(
    job: &mut CronJob,
    trigger: Trigger,
    scheduled_ms: u64,
    now: u64,
    session_key: String,
) -> CronRun {
    job.state.last_seq += 1;
    CronRun {
        job_id: job.id.clone(),
        seq: job.state.last_seq,
        trigger,
        scheduled_at_ms: scheduled_ms,
        started_at_ms: now,
        finished_at_ms: None,
        status: RunStatus::Running,
        duration_ms: None,
        summary: None,
        error: None,
        run_id: None,
        session_key,
        model: None,
    }
}

/// A skipped run, finished as soon as recorded.
fn finished_row(
    job: &mut CronJob,
    trigger: Trigger,
    scheduled_ms: u64,
    now: u64,
    session_key: String,
    why: String,
) -> CronRun {
    let mut run = new_row(job, trigger, scheduled_ms, now, session_key);
    run.status = RunStatus::Skipped;
    run.finished_at_ms = Some(now);
    run.duration_ms = Some(0);
    run.summary = Some(why);
    job.state.last_status = Some(RunStatus::Skipped);
    run
}

/// Queues `ops`; a failure is logged (these writes are not waited for).
fn write_behind(store: &Store, ops: Vec<CronOp>) {
    let done = store.cron_apply(ops);
    tokio::spawn(async move {
        if let Err(e) = done.await {
            warn!(error = %e, "cron state not saved");
        }
    });
}

impl SchedulerState {
    fn now(&self) -> u64 {
        self.args.clock.now_ms()
    }

    fn session_key(&self, job: &CronJob) -> String {
        job.session_key(&self.args.default_agent, &self.args.main_key)
    }

    fn list(&self) -> Vec<CronJob> {
        let mut jobs: Vec<CronJob> = self.jobs.values().cloned().collect();
        jobs.sort_by(|a, b| {
            let key = |j: &CronJob| (j.state.next_run_at_ms.unwrap_or(u64::MAX), j.id.clone());
            key(a).cmp(&key(b))
        });
        jobs
    }

    fn status(&self) -> CronStatus {
        CronStatus {
            enabled: self.args.config.enabled,
            jobs: self.jobs.len(),
            enabled_jobs: self.jobs.values().filter(|j| j.spec.enabled).count(),
            running: self.in_flight.len(),
            next_wake_at_ms: self
                .due
                .first()
                .map(|(t, _)| *t)
                .filter(|_| self.args.config.enabled),
            missed_run_grace_seconds: self.args.config.missed_run_grace_ms / 1000,
        }
    }

    /// Arms the one timer for the earliest due job (unless it already is).
    fn rearm(&mut self, myself: &ActorRef<SchedulerMsg>) {
        if !self.args.config.enabled {
            return;
        }
        let Some(&(due, _)) = self.due.first() else {
            self.timer = None;
            return;
        };
        if self.timer.as_ref().is_some_and(|(at, _)| *at == due) {
            return;
        }
        let wait = Duration::from_millis(due.saturating_sub(self.now())).min(MAX_SLEEP);
        let task = myself.send_after(wait, || internal(Inner::Tick));
        self.timer = Some((due, Task(task.abort_handle())));
    }

    /// Replaces a job's slot in the due set.
    fn reschedule(&mut self, id: &str, old: Option<u64>, new: Option<u64>) {
        if let Some(t) = old {
            self.due.remove(&(t, id.to_owned()));
        }
        if let Some(t) = new {
            self.due.insert((t, id.to_owned()));
        }
    }

    fn check_agent(&self, job: &CronJob) -> Result<(), CronError> {
        match &job.spec.agent_id {
            Some(a) if !self.args.agents.is_empty() && !self.args.agents.contains(a) => {
                Err(CronError::Invalid(format!(
                    "agentId {a:?} is not a configured agent (agents: {}); `pincer agents list` shows them",
                    self.args.agents.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }

    async fn save(&self, job: &CronJob) -> Result<(), CronError> {
        self.args
            .store
            .cron_apply(vec![put_job(job)])
            .await
            .map_err(|e| CronError::Store(e.to_string()))
    }

    async fn on_add(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        params: &Value,
    ) -> Result<CronJob, CronError> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let job = CronJob::create(params, self.now(), &id)?;
        if self.jobs.contains_key(&job.id) {
            return Err(CronError::Exists(job.id));
        }
        self.check_agent(&job)?;
        self.save(&job).await?;
        info!(job = %job.id, next = ?job.state.next_run_at_ms, "cron job added");
        self.reschedule(&job.id, None, job.state.next_run_at_ms);
        self.jobs.insert(job.id.clone(), job.clone());
        self.rearm(myself);
        Ok(job)
    }

    async fn on_update(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        id: &str,
        patch: &Value,
    ) -> Result<CronJob, CronError> {
        let old = self
            .jobs
            .get(id)
            .ok_or_else(|| CronError::NotFound(id.to_owned()))?;
        let job = old.patched(patch, self.now())?;
        self.check_agent(&job)?;
        self.save(&job).await?;
        let before = old.state.next_run_at_ms;
        self.reschedule(id, before, job.state.next_run_at_ms);
        self.catch_up.remove(id);
        self.jobs.insert(id.to_owned(), job.clone());
        self.rearm(myself);
        Ok(job)
    }

    async fn on_remove(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        id: &str,
    ) -> Result<(), CronError> {
        if !self.jobs.contains_key(id) && !self.damaged.contains(id) {
            return Err(CronError::NotFound(id.to_owned()));
        }
        self.args
            .store
            .cron_apply(vec![CronOp::RemoveJob {
                id: id.to_owned(),
                runs: true,
            }])
            .await
            .map_err(|e| CronError::Store(e.to_string()))?;
        let next = self.jobs.get(id).and_then(|j| j.state.next_run_at_ms);
        self.reschedule(id, next, None);
        self.jobs.remove(id);
        self.damaged.remove(id);
        self.catch_up.remove(id);
        self.in_flight.remove(id);
        info!(job = %id, "cron job removed");
        self.rearm(myself);
        Ok(())
    }

    /// Records a fire of `id` (in memory, and as ops to commit); the run starts once the
    /// ops are durable.
    fn begin(&mut self, id: &str, trigger: Trigger, scheduled_ms: u64, now: u64) -> Vec<CronOp> {
        let key = self.session_key(&self.jobs[id]);
        let job = self.jobs.get_mut(id).expect("the job exists");
        let run = new_row(job, trigger, scheduled_ms, now, key.clone());
        job.state.running_seq = Some(run.seq);
        job.state.running_at_ms = Some(now);
        let fire = Fire {
            job: job.clone(),
            seq: run.seq,
            trigger,
            scheduled_ms,
            started_ms: now,
            session_key: key,
        };
        let ops = vec![put_run(&run), put_job(job)];
        self.in_flight
            .insert(id.to_owned(), InFlight { fire, task: None });
        ops
    }

    /// Commits `ops` durably, then tells the Scheduler to start `fires`.
    fn commit_then_start(
        &self,
        myself: &ActorRef<SchedulerMsg>,
        ops: Vec<CronOp>,
        fires: Vec<(String, u64)>,
        reply: Option<RpcReplyPort<Result<Option<RunStarted>, CronError>>>,
    ) {
        let durable = self.args.store.cron_apply(ops);
        let me = myself.clone();
        tokio::spawn(async move {
            let recorded = durable.await.map_err(|e| e.to_string());
            let mut reply = reply;
            for (job, seq) in fires {
                let _ = me.cast(internal(Inner::Start {
                    job,
                    seq,
                    recorded: recorded.clone(),
                    reply: reply.take(),
                }));
            }
        });
    }

    fn on_tick(&mut self, myself: &ActorRef<SchedulerMsg>) {
        self.timer = None;
        let now = self.now();
        let (mut ops, mut fires) = (Vec::new(), Vec::new());
        while let Some((due, id)) = self.due.first().cloned() {
            if due > now {
                break;
            }
            self.due.pop_first();
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            let trigger = if self.catch_up.remove(&id) {
                Trigger::CatchUp
            } else {
                Trigger::Schedule
            };
            let next = next_fire(job, now.max(due));
            job.state.next_run_at_ms = next;
            if let Some(n) = next {
                self.due.insert((n, id.clone()));
            }
            if let Some(running) = self.in_flight.get(&id) {
                let why = format!(
                    "not run: run #{} (started {}) was still going",
                    running.fire.seq,
                    rfc3339(running.fire.started_ms)
                );
                let key = self.session_key(&self.jobs[&id]);
                let job = self.jobs.get_mut(&id).expect("the job exists");
                let run = finished_row(job, trigger, due, now, key, why);
                ops.push(put_run(&run));
                ops.push(put_job(job));
                continue;
            }
            ops.extend(self.begin(&id, trigger, due, now));
            let seq = self.jobs[&id].state.last_seq;
            fires.push((id, seq));
        }
        if !ops.is_empty() {
            self.commit_then_start(myself, ops, fires, None);
        }
        self.rearm(myself);
    }

    fn on_run(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        id: &str,
        due_only: bool,
        reply: RpcReplyPort<Result<Option<RunStarted>, CronError>>,
    ) {
        let Some(job) = self.jobs.get(id) else {
            let _ = reply.send(Err(CronError::NotFound(id.to_owned())));
            return;
        };
        if let Some(f) = self.in_flight.get(id) {
            let _ = reply.send(Err(CronError::Invalid(format!(
                "cron job {id} is already running (run #{}, started {}); wait for it (`pincer cron runs {id}`)",
                f.fire.seq,
                rfc3339(f.fire.started_ms)
            ))));
            return;
        }
        let now = self.now();
        if due_only && job.state.next_run_at_ms.is_none_or(|t| t > now) {
            let _ = reply.send(Ok(None));
            return;
        }
        let ops = self.begin(id, Trigger::Manual, now, now);
        let seq = self.jobs[id].state.last_seq;
        info!(job = %id, seq, "cron job run by hand");
        self.commit_then_start(myself, ops, vec![(id.to_owned(), seq)], Some(reply));
    }

    fn on_start(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        id: &str,
        seq: u64,
        recorded: Result<(), String>,
        reply: Option<RpcReplyPort<Result<Option<RunStarted>, CronError>>>,
    ) {
        let Some(flight) = self.in_flight.get_mut(id).filter(|f| f.fire.seq == seq) else {
            if let Some(r) = reply {
                let _ = r.send(Err(CronError::NotFound(id.to_owned())));
            }
            return;
        };
        if let Err(e) = recorded {
            // Not on disk: running it could run it twice after a crash.
            warn!(job = %id, seq, error = %e, "cron fire not recorded; not run");
            if let Some(r) = reply {
                let _ = r.send(Err(CronError::Store(e.clone())));
            }
            let now = self.now();
            self.on_finished(
                id,
                seq,
                RunOutcome::error(format!(
                    "the fire could not be recorded, so it was not run: {e}"
                )),
                now,
            );
            return;
        }
        let fire = flight.fire.clone();
        if let Some(r) = reply {
            let _ = r.send(Ok(Some(RunStarted {
                job_id: id.to_owned(),
                seq,
                session_key: fire.session_key.clone(),
                started_at_ms: fire.started_ms,
            })));
        }
        let (runner, clock, me) = (
            self.args.runner.clone(),
            self.args.clock.clone(),
            myself.clone(),
        );
        let job = id.to_owned();
        let task = tokio::spawn(async move {
            let outcome = match AssertUnwindSafe(runner.run(fire)).catch_unwind().await {
                Ok(o) => o,
                Err(_) => RunOutcome::error("the cron runner panicked"),
            };
            let _ = me.cast(internal(Inner::Finished {
                job,
                seq,
                outcome,
                ended_ms: clock.now_ms(),
            }));
        });
        flight.task = Some(Task(task.abort_handle()));
    }

    fn on_finished(&mut self, id: &str, seq: u64, outcome: RunOutcome, ended_ms: u64) {
        let Some(flight) = self.in_flight.remove(id) else {
            return;
        };
        if flight.fire.seq != seq {
            self.in_flight.insert(id.to_owned(), flight);
            return;
        }
        let fire = flight.fire;
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        let duration = ended_ms.saturating_sub(fire.started_ms);
        let run = CronRun {
            job_id: id.to_owned(),
            seq,
            trigger: fire.trigger,
            scheduled_at_ms: fire.scheduled_ms,
            started_at_ms: fire.started_ms,
            finished_at_ms: Some(ended_ms),
            status: outcome.status,
            duration_ms: Some(duration),
            summary: outcome.summary.map(|s| clip(&s)),
            error: outcome.error.clone(),
            run_id: outcome.run_id,
            session_key: fire.session_key,
            model: outcome.model,
        };
        let st = &mut job.state;
        st.running_seq = None;
        st.running_at_ms = None;
        st.last_run_at_ms = Some(fire.started_ms);
        st.last_status = Some(outcome.status);
        st.last_error = outcome.error;
        st.last_duration_ms = Some(duration);
        st.consecutive_errors = match outcome.status {
            RunStatus::Error => st.consecutive_errors + 1,
            _ => 0,
        };
        let mut ops = vec![put_run(&run)];
        let one_shot =
            fire.trigger != Trigger::Manual && matches!(job.spec.schedule, Schedule::At { .. });
        if one_shot && outcome.status == RunStatus::Ok && job.spec.deletes_after_run() {
            ops.push(CronOp::RemoveJob {
                id: id.to_owned(),
                runs: false,
            });
            self.jobs.remove(id);
            info!(job = %id, "one-shot cron job done; deleted (deleteAfterRun)");
        } else {
            if one_shot {
                job.spec.enabled = false;
            }
            ops.push(put_job(job));
        }
        match outcome.status {
            RunStatus::Error => warn!(job = %id, seq, error = ?run.error, "cron run failed"),
            status => info!(job = %id, seq, ?status, duration_ms = duration, "cron run finished"),
        }
        write_behind(&self.args.store, ops);
    }
}

/// The first [`SUMMARY_CHARS`] characters.
fn clip(s: &str) -> String {
    match s.char_indices().nth(SUMMARY_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
