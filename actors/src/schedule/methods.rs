//! `cron.list`, `cron.status`, `cron.add`, `cron.update`, `cron.remove`, `cron.run`,
//! `cron.runs`: the cron jobs over the gateway, with OpenClaw's parameter names (`jobId`,
//! or `id`; `patch`; `mode`), for `pincer cron ...` and OpenClaw clients.
//!
//! [`CronSetup`] puts the Scheduler in the supervision tree and registers these.
//!
//! Reading needs `operator.read`; adding, changing and removing jobs (unattended agent
//! turns) `operator.admin`; running one now `operator.write`, like `agent`.

use std::sync::Arc;
use std::time::Duration;

use pincer_supervision::ChildSpec;
use pincer_supervision::fault::Injectable;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::cron::{CronError, CronRun, RunStatus};
use super::heartbeat::SystemEvents;
use super::scheduler::{
    CronConfig, SchedulerActor, SchedulerArgs, SchedulerMsg, SessionsRunner, SystemClock,
};
use crate::channels::actor::ChannelDirectory;
use crate::gateway::{CallContext, MethodRegistry};
use crate::protocol::{ErrorShape, scopes};
use crate::session::methods::SessionsLookup;
use crate::store::Store;

/// Finds the running Scheduler (a restarted one has a new ref).
pub type SchedulerLookup = Arc<dyn Fn() -> Option<ActorRef<SchedulerMsg>> + Send + Sync>;

/// How many runs `cron.runs` returns when not told (`limit`), and the most it returns.
pub const RUNS_DEFAULT_LIMIT: usize = 50;
pub const RUNS_MAX_LIMIT: usize = 200;
/// The longest `cron.run` waits for the run to finish (`waitMs`).
pub const RUN_WAIT_MAX_MS: u64 = 600_000;

const CALL: Duration = Duration::from_secs(10);

/// The Scheduler's place in the supervision tree: its settings, its methods and its
/// child spec.
pub struct CronSetup {
    config: CronConfig,
    store: Store,
    sessions: SessionsLookup,
    channels: ChannelDirectory,
    system_events: Option<SystemEvents>,
    default_agent: String,
    main_key: String,
    agents: Vec<String>,
    tx: Arc<watch::Sender<Option<ActorRef<SchedulerMsg>>>>,
    rx: watch::Receiver<Option<ActorRef<SchedulerMsg>>>,
}

impl CronSetup {
    /// Reads `cron.*` from the whole (validated) config. Jobs run as `agent:<id>:...`
    /// sessions of `agents`, the default agent's when a job names none.
    pub fn new(
        config: &Value,
        store: Store,
        sessions: SessionsLookup,
        channels: ChannelDirectory,
        default_agent: String,
        main_key: String,
        agents: Vec<String>,
    ) -> Self {
        let (tx, rx) = watch::channel(None);
        CronSetup {
            config: CronConfig::from_config(config),
            store,
            sessions,
            channels,
            system_events: None,
            default_agent,
            main_key,
            agents,
            tx: Arc::new(tx),
            rx,
        }
    }

    /// Lets main-session events with `wakeMode: "next-heartbeat"` wait for the heartbeat.
    pub fn with_system_events(mut self, events: SystemEvents) -> Self {
        self.system_events = Some(events);
        self
    }

    /// `cron.list|status|add|update|remove|run|runs`.
    pub fn register(&self, registry: &mut MethodRegistry) {
        let rx = self.rx.clone();
        register(
            registry,
            Arc::new(move || rx.borrow().clone()),
            self.store.clone(),
        );
    }

    /// The `scheduler` child: permanent, restarted with the default backoff; a restarted
    /// one resumes from the store (see `scheduler`).
    pub fn child_spec(&self) -> ChildSpec {
        let runner = Arc::new(SessionsRunner {
            sessions: self.sessions.clone(),
            channels: self.channels.clone(),
            clock: Arc::new(SystemClock),
            system_events: self.system_events.clone(),
        });
        let (config, store, tx) = (self.config, self.store.clone(), self.tx.clone());
        let (default_agent, main_key, agents) = (
            self.default_agent.clone(),
            self.main_key.clone(),
            self.agents.clone(),
        );
        ChildSpec::new("scheduler", "scheduler", move |ctx| {
            let args = SchedulerArgs {
                store: store.clone(),
                runner: runner.clone(),
                clock: Arc::new(SystemClock),
                config,
                default_agent: default_agent.clone(),
                main_key: main_key.clone(),
                agents: agents.clone(),
            };
            let tx = tx.clone();
            async move {
                let actor = Injectable {
                    inner: SchedulerActor,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                tx.send_replace(Some(r.clone()));
                Ok(r.get_cell())
            }
        })
    }
}

pub fn register(registry: &mut MethodRegistry, scheduler: SchedulerLookup, store: Store) {
    let s = scheduler.clone();
    registry.method(
        "cron.list",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let s = s.clone();
            async move {
                let all = p["includeDisabled"].as_bool().unwrap_or(false);
                let jobs = ask(&s, |reply| SchedulerMsg::List { reply }).await?;
                let jobs: Vec<Value> = jobs
                    .into_iter()
                    .filter(|j| all || j.spec.enabled)
                    .map(|j| serde_json::to_value(j).expect("a job serialises"))
                    .collect();
                Ok(json!({"total": jobs.len(), "jobs": jobs}))
            }
        },
    );
    let (s, path) = (scheduler.clone(), store.path().display().to_string());
    registry.method(
        "cron.status",
        scopes::READ,
        move |_cc: CallContext, _p: Value| {
            let (s, path) = (s.clone(), path.clone());
            async move {
                let st = ask(&s, |reply| SchedulerMsg::Status { reply }).await?;
                let mut v = serde_json::to_value(st).expect("status serialises");
                v["storePath"] = json!(path);
                Ok(v)
            }
        },
    );
    let s = scheduler.clone();
    registry.side_effecting(
        "cron.add",
        scopes::ADMIN,
        move |_cc: CallContext, p: Value| {
            let s = s.clone();
            async move {
                let mut params = p;
                if let Some(m) = params.as_object_mut() {
                    m.remove("idempotencyKey");
                }
                let job = answer(ask(&s, |reply| SchedulerMsg::Add { params, reply }).await?)?;
                Ok(serde_json::to_value(job).expect("a job serialises"))
            }
        },
    );
    let s = scheduler.clone();
    registry.side_effecting(
        "cron.update",
        scopes::ADMIN,
        move |_cc: CallContext, p: Value| {
            let s = s.clone();
            async move {
                let id = job_id(&p, "cron.update {jobId, patch}")?;
                let patch = p.get("patch").cloned().ok_or_else(|| {
                    ErrorShape::invalid_request(
                        "cron.update needs a patch: {jobId, patch: {enabled: false, ...}}",
                    )
                })?;
                let job =
                    answer(ask(&s, |reply| SchedulerMsg::Update { id, patch, reply }).await?)?;
                Ok(serde_json::to_value(job).expect("a job serialises"))
            }
        },
    );
    let s = scheduler.clone();
    registry.side_effecting(
        "cron.remove",
        scopes::ADMIN,
        move |_cc: CallContext, p: Value| {
            let s = s.clone();
            async move {
                let id = job_id(&p, "cron.remove {jobId}")?;
                let i = id.clone();
                answer(ask(&s, |reply| SchedulerMsg::Remove { id: i, reply }).await?)?;
                Ok(json!({"ok": true, "removed": true, "jobId": id}))
            }
        },
    );
    let (s, st) = (scheduler.clone(), store.clone());
    registry.side_effecting(
        "cron.run",
        scopes::WRITE,
        move |_cc: CallContext, p: Value| {
            let (s, st) = (s.clone(), st.clone());
            async move { run(&s, &st, &p).await }
        },
    );
    let st = store;
    registry.method(
        "cron.runs",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let st = st.clone();
            async move { runs(&st, &p) }
        },
    );
}

/// Calls the Scheduler.
async fn ask<T: Send + 'static>(
    scheduler: &SchedulerLookup,
    msg: impl FnOnce(ractor::RpcReplyPort<T>) -> SchedulerMsg,
) -> Result<T, ErrorShape> {
    let unavailable = || ErrorShape::unavailable("the scheduler is restarting; retry shortly");
    let s = scheduler().ok_or_else(unavailable)?;
    match s.call(msg, Some(CALL)).await {
        Ok(CallResult::Success(v)) => Ok(v),
        _ => Err(unavailable()),
    }
}

fn answer<T>(r: Result<T, CronError>) -> Result<T, ErrorShape> {
    r.map_err(|e| match e {
        CronError::Store(_) => ErrorShape::unavailable(e.to_string()),
        _ => ErrorShape::invalid_request(e.to_string()),
    })
}

/// `jobId`, or `id` (OpenClaw accepts both).
fn job_id(p: &Value, usage: &str) -> Result<String, ErrorShape> {
    ["jobId", "id"]
        .iter()
        .find_map(|k| p[*k].as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ErrorShape::invalid_request(format!(
                "give the job's id: {usage} (`pincer cron list` shows the ids)"
            ))
        })
}

/// `cron.run {jobId, mode?: "force"|"due", waitMs?}`: runs the job now (`due`: only if it
/// is due). Answers `{ok, enqueued, ran, jobId, seq, sessionKey}` once the fire is recorded,
/// plus the finished `run` when it ended within `waitMs`.
async fn run(scheduler: &SchedulerLookup, store: &Store, p: &Value) -> Result<Value, ErrorShape> {
    let id = job_id(p, "cron.run {jobId, mode?}")?;
    let due_only = match p["mode"].as_str() {
        None | Some("force") => false,
        Some("due") => true,
        Some(other) => {
            return Err(ErrorShape::invalid_request(format!(
                "cron.run mode {other:?}: use \"force\" (run now, the default) or \"due\" (only if due)"
            )));
        }
    };
    let i = id.clone();
    let started = answer(
        ask(scheduler, |reply| SchedulerMsg::Run {
            id: i,
            due_only,
            reply,
        })
        .await?,
    )?;
    let Some(started) = started else {
        return Ok(
            json!({"ok": true, "enqueued": false, "ran": false, "reason": "not-due", "jobId": id}),
        );
    };
    let mut out = json!({
        "ok": true, "enqueued": true, "ran": true, "jobId": id, "seq": started.seq,
        "sessionKey": started.session_key, "startedAtMs": started.started_at_ms,
    });
    let wait_ms = p["waitMs"].as_u64().unwrap_or(0).min(RUN_WAIT_MAX_MS);
    if wait_ms > 0
        && let Some(r) = wait(store, &id, started.seq, Duration::from_millis(wait_ms)).await
    {
        out["run"] = entry(&r);
    }
    Ok(out)
}

/// Watches a run's row until it has finished or `timeout` passes (`None` then).
async fn wait(store: &Store, job: &str, seq: u64, timeout: Duration) -> Option<CronRun> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut every = Duration::from_millis(20);
    loop {
        if let Ok(Some(r)) = store.cron_run(job, seq)
            && r.status != RunStatus::Running
        {
            return Some(r);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(every.min(deadline - now)).await;
        every = (every * 2).min(Duration::from_millis(250));
    }
}

/// A run as `cron.runs` shows it: the stored row plus OpenClaw's names (`ts`, `runAtMs`,
/// `action`).
fn entry(r: &CronRun) -> Value {
    let mut v = serde_json::to_value(r).expect("a run serialises");
    v["ts"] = json!(r.finished_at_ms.unwrap_or(r.started_at_ms));
    v["runAtMs"] = json!(r.started_at_ms);
    v["action"] = json!(if r.status == RunStatus::Running {
        "started"
    } else {
        "finished"
    });
    v
}

/// `cron.runs {jobId, limit?, offset?}`: the job's runs, newest first.
fn runs(store: &Store, p: &Value) -> Result<Value, ErrorShape> {
    let id = job_id(p, "cron.runs {jobId, limit?, offset?}")?;
    let limit = match p.get("limit") {
        None | Some(Value::Null) => RUNS_DEFAULT_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n @ 1..) if n as usize <= RUNS_MAX_LIMIT => n as usize,
            _ => {
                return Err(ErrorShape::invalid_request(format!(
                    "cron.runs limit {v}: give 1 to {RUNS_MAX_LIMIT}"
                )));
            }
        },
    };
    let offset = p["offset"].as_u64().unwrap_or(0) as usize;
    let rows = store
        .cron_runs(&id, offset, limit)
        .map_err(|e| ErrorShape::unavailable(e.to_string()))?;
    let entries: Vec<Value> = rows.iter().map(entry).collect();
    Ok(json!({"jobId": id, "entries": entries}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::cron::Trigger;

    #[test]
    fn ids_and_entries_use_openclaw_names() {
        assert_eq!(job_id(&json!({"jobId": " a "}), "x").unwrap(), "a");
        assert_eq!(job_id(&json!({"id": "b"}), "x").unwrap(), "b");
        let e = job_id(&json!({}), "cron.remove {jobId}").unwrap_err();
        assert!(e.message.contains("cron.remove {jobId}"), "{}", e.message);
        let r = CronRun {
            job_id: "a".into(),
            seq: 3,
            trigger: Trigger::Manual,
            scheduled_at_ms: 10,
            started_at_ms: 10,
            finished_at_ms: Some(25),
            status: RunStatus::Ok,
            duration_ms: Some(15),
            summary: Some("done".into()),
            error: None,
            run_id: Some("r1".into()),
            session_key: "agent:main:cron:a".into(),
            model: None,
        };
        let v = entry(&r);
        assert_eq!(
            (
                &v["ts"],
                &v["runAtMs"],
                &v["action"],
                &v["status"],
                &v["jobId"]
            ),
            (
                &json!(25),
                &json!(10),
                &json!("finished"),
                &json!("ok"),
                &json!("a")
            )
        );
        assert_eq!(v["trigger"], "manual");
    }
}
