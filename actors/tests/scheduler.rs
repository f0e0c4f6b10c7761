//! The Scheduler under paused tokio time with a fake runner: at / every / cron jobs fire
//! on the exact millisecond they are due, across a restart nothing is lost or doubled, a
//! crash injected at a fire (through the supervision crate's fault hooks) never runs a
//! slot twice, and missed runs follow `cron.missedRunGraceSeconds`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pincer_actors::schedule::cron::{CronJob, CronRun, RunStatus, Trigger};
use pincer_actors::schedule::scheduler::{
    Clock, CronConfig, CronRunner, Fire, RunOutcome, SchedulerActor, SchedulerArgs, SchedulerMsg,
    TokioClock,
};
use pincer_actors::store::Store;
use pincer_supervision::fault::{Fault, FaultHandle, Injectable};
use pincer_supervision::{Backoff, ChildSpec, EventSink, Strategy, Supervisor, SupervisorSpec};
use ractor::{Actor, ActorRef};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// 2026-03-02 00:00:00 UTC, a Monday: the clock's start in every test.
const T0: u64 = 1_772_409_600_000;
const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;

/// One call of the fake runner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    job: String,
    /// The slot, as ms after T0.
    slot: u64,
    /// When the runner was asked, as ms after T0.
    at: u64,
    trigger: Trigger,
}

/// Records every fire; jobs named in `hold` block until released (or are dropped).
#[derive(Clone)]
struct FakeRunner {
    clock: Arc<TokioClock>,
    calls: mpsc::UnboundedSender<Call>,
    hold: Arc<Mutex<Vec<String>>>,
    release: Arc<Notify>,
    /// Runs whose future was dropped before it finished (aborted by a stopping scheduler).
    dropped: Arc<Mutex<u32>>,
}

struct DropGuard(Arc<Mutex<u32>>, bool);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.1 {
            *self.0.lock().unwrap() += 1;
        }
    }
}

impl CronRunner for FakeRunner {
    fn run(&self, fire: Fire) -> BoxFuture<'static, RunOutcome> {
        let call = Call {
            job: fire.job.id.clone(),
            slot: fire.scheduled_ms - T0,
            at: self.clock.now_ms() - T0,
            trigger: fire.trigger,
        };
        let _ = self.calls.send(call);
        let held = self.hold.lock().unwrap().contains(&fire.job.id);
        let (release, dropped) = (self.release.clone(), self.dropped.clone());
        async move {
            let mut guard = DropGuard(dropped, false);
            if held {
                release.notified().await;
            }
            guard.1 = true;
            RunOutcome::ok(format!("ran {} #{}", fire.job.id, fire.seq))
        }
        .boxed()
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<TokioClock>,
    runner: FakeRunner,
    calls: mpsc::UnboundedReceiver<Call>,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let clock = Arc::new(TokioClock::starting_at(T0));
        let (tx, calls) = mpsc::unbounded_channel();
        let runner = FakeRunner {
            clock: clock.clone(),
            calls: tx,
            hold: Arc::default(),
            release: Arc::new(Notify::new()),
            dropped: Arc::default(),
        };
        Self {
            _dir: dir,
            store,
            clock,
            runner,
            calls,
        }
    }

    fn args(&self, config: CronConfig) -> SchedulerArgs {
        SchedulerArgs {
            store: self.store.clone(),
            runner: Arc::new(self.runner.clone()),
            clock: self.clock.clone(),
            config,
            default_agent: "main".into(),
            main_key: "main".into(),
            agents: vec!["main".into(), "ops".into()],
        }
    }

    async fn start(&self, config: CronConfig) -> ActorRef<SchedulerMsg> {
        Actor::spawn(None, SchedulerActor, self.args(config))
            .await
            .unwrap()
            .0
    }

    /// Now, as ms after T0.
    fn now(&self) -> u64 {
        self.clock.now_ms() - T0
    }

    /// The next fire (time runs on to it).
    async fn next_call(&mut self) -> Call {
        tokio::time::timeout(Duration::from_secs(7 * 86_400), self.calls.recv())
            .await
            .expect("a fire within a week")
            .expect("runner alive")
    }

    /// Lets time run to `ms` after T0 and returns the fires before it. (Paused time only
    /// jumps when every task is idle, so what was due before `ms` has fully happened; a
    /// fire due at `ms` itself may still be on its way: [`Self::next_call`] waits for it.)
    async fn advance_to(&mut self, ms: u64) -> Vec<Call> {
        let now = self.now();
        assert!(ms >= now, "time only runs forward");
        tokio::time::sleep(Duration::from_millis(ms - now)).await;
        let mut out = Vec::new();
        while let Ok(c) = self.calls.try_recv() {
            assert!(c.at < ms, "{c:?} was not due before {ms}");
            out.push(c);
        }
        out
    }

    /// Waits until every cron write queued so far is on disk.
    async fn barrier(&self) {
        self.store.cron_apply(vec![]).await.unwrap();
    }

    async fn runs(&self, job: &str) -> Vec<CronRun> {
        self.barrier().await;
        let mut runs = self.store.cron_runs(job, 0, 100).unwrap();
        runs.reverse();
        runs
    }
}

fn config(grace_s: u64) -> CronConfig {
    CronConfig {
        enabled: true,
        missed_run_grace_ms: grace_s * 1000,
    }
}

async fn add(s: &ActorRef<SchedulerMsg>, params: Value) -> CronJob {
    s.call(
        |reply| SchedulerMsg::Add { params, reply },
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap()
}

fn isolated(id: &str, schedule: Value) -> Value {
    json!({"id": id, "schedule": schedule, "sessionTarget": "isolated",
        "payload": {"kind": "agentTurn", "message": format!("do {id}")}})
}

async fn jobs(s: &ActorRef<SchedulerMsg>) -> Vec<CronJob> {
    s.call(|reply| SchedulerMsg::List { reply }, None)
        .await
        .unwrap()
        .unwrap()
}

fn call(job: &str, slot: u64, at: u64, trigger: Trigger) -> Call {
    Call {
        job: job.into(),
        slot,
        at,
        trigger,
    }
}

fn sched(job: &str, slot: u64) -> Call {
    call(job, slot, slot, Trigger::Schedule)
}

fn statuses(runs: &[CronRun]) -> Vec<(u64, RunStatus)> {
    runs.iter()
        .map(|r| (r.scheduled_at_ms - T0, r.status))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn at_every_and_cron_jobs_fire_on_the_millisecond_they_are_due() {
    let mut h = Harness::new();
    let s = h.start(config(3600)).await;
    add(
        &s,
        isolated("once", json!({"kind": "at", "at": T0 + 90 * SEC + 250})),
    )
    .await;
    add(
        &s,
        isolated("tick", json!({"kind": "every", "everyMs": 4 * MIN})),
    )
    .await;
    // 05:45 in Kolkata (UTC+05:30) is 00:15 UTC.
    add(
        &s,
        isolated(
            "kolkata",
            json!({"kind": "cron", "expr": "45 5 * * *", "tz": "Asia/Kolkata"}),
        ),
    )
    .await;
    // Six fields: second 30 of every 7th minute (0, 7, 14...).
    add(
        &s,
        isolated(
            "secs",
            json!({"kind": "cron", "expr": "30 */7 * * * *", "tz": "UTC"}),
        ),
    )
    .await;

    // Each call is recorded with the clock's time when the runner was asked: equal to
    // its slot means neither early nor late, to the millisecond.
    let mut fires = Vec::new();
    for _ in 0..9 {
        fires.push(h.next_call().await);
    }
    assert_eq!(
        fires,
        [
            sched("secs", 30 * SEC),
            sched("once", 90 * SEC + 250),
            sched("tick", 4 * MIN),
            sched("secs", 7 * MIN + 30 * SEC),
            sched("tick", 8 * MIN),
            sched("tick", 12 * MIN),
            sched("secs", 14 * MIN + 30 * SEC),
            sched("kolkata", 15 * MIN),
            sched("tick", 16 * MIN),
        ]
    );
    assert_eq!(h.advance_to(16 * MIN + SEC).await, [], "nothing else");
    // The one-shot is gone after its successful run; its run stays in the history.
    let left: Vec<String> = jobs(&s).await.into_iter().map(|j| j.id).collect();
    assert_eq!(left, ["tick", "secs", "kolkata"], "soonest due first");
    let once = h.runs("once").await;
    assert_eq!(statuses(&once), [(90 * SEC + 250, RunStatus::Ok)]);
    assert_eq!(once[0].summary.as_deref(), Some("ran once #1"));
    assert_eq!(once[0].session_key, "agent:main:cron:once");
    let tick = h.runs("tick").await;
    assert_eq!(
        statuses(&tick),
        [4, 8, 12, 16].map(|m| (m * MIN, RunStatus::Ok))
    );
    assert!(tick.iter().all(|r| r.trigger == Trigger::Schedule));
    let k = jobs(&s)
        .await
        .into_iter()
        .find(|j| j.id == "kolkata")
        .unwrap();
    assert_eq!(k.state.next_run_at_ms, Some(T0 + 24 * HOUR + 15 * MIN));
    assert_eq!(k.state.last_status, Some(RunStatus::Ok));
    s.stop_and_wait(None, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restart_on_the_same_store_loses_no_slot_and_runs_none_twice() {
    let mut h = Harness::new();
    let a = h.start(config(3600)).await;
    add(
        &a,
        isolated("tick", json!({"kind": "every", "everyMs": MIN})),
    )
    .await;
    add(
        &a,
        isolated("later", json!({"kind": "at", "at": T0 + 10 * MIN})),
    )
    .await;
    assert_eq!(h.next_call().await, sched("tick", MIN));
    a.stop_and_wait(None, None).await.unwrap();

    // Back before the next slot: it fires on time, once.
    assert_eq!(h.advance_to(MIN + 30 * SEC).await, []);
    let b = h.start(config(3600)).await;
    assert_eq!(h.next_call().await, sched("tick", 2 * MIN));
    b.stop_and_wait(None, None).await.unwrap();

    // Down across two slots: one catch-up at start for the newest, then on schedule.
    assert_eq!(h.advance_to(4 * MIN + 20 * SEC).await, []);
    let c = h.start(config(3600)).await;
    assert_eq!(
        h.next_call().await,
        call("tick", 4 * MIN, 4 * MIN + 20 * SEC, Trigger::CatchUp)
    );
    assert_eq!(h.next_call().await, sched("tick", 5 * MIN));
    // The one-shot added before the first restart still fires.
    let mut fires = Vec::new();
    for _ in 0..6 {
        fires.push(h.next_call().await);
    }
    assert!(fires.contains(&sched("later", 10 * MIN)), "{fires:?}");
    assert_eq!(h.advance_to(10 * MIN + SEC).await, []);
    c.stop_and_wait(None, None).await.unwrap();

    let slots: Vec<u64> = h
        .runs("tick")
        .await
        .iter()
        .map(|r| r.scheduled_at_ms - T0)
        .collect();
    assert_eq!(
        slots,
        [1, 2, 4, 5, 6, 7, 8, 9, 10].map(|m| m * MIN),
        "each slot once; 3 min was missed and caught up by the 4 min one"
    );
}

/// A scheduler under a real supervisor, wrapped for fault injection as in the tree.
struct Supervised {
    root: ActorRef<pincer_supervision::SupervisorMsg>,
    faults: FaultHandle,
    current: Arc<Mutex<Option<ActorRef<SchedulerMsg>>>>,
}

impl Supervised {
    async fn start(h: &Harness) -> Self {
        let current: Arc<Mutex<Option<ActorRef<SchedulerMsg>>>> = Arc::default();
        let (store, runner, clock, slot) = (
            h.store.clone(),
            h.runner.clone(),
            h.clock.clone(),
            current.clone(),
        );
        let spec = ChildSpec::new("scheduler", "scheduler", move |ctx| {
            let args = SchedulerArgs {
                store: store.clone(),
                runner: Arc::new(runner.clone()),
                clock: clock.clone(),
                config: config(3600),
                default_agent: "main".into(),
                main_key: "main".into(),
                agents: Vec::new(),
            };
            let slot = slot.clone();
            async move {
                let actor = Injectable {
                    inner: SchedulerActor,
                    name: ctx.name.clone(),
                    faults: ctx.faults.clone(),
                };
                let (r, _) = Actor::spawn_linked(None, actor, args, ctx.supervisor).await?;
                *slot.lock().unwrap() = Some(r.clone());
                Ok(r.get_cell())
            }
        })
        .backoff(Backoff::default());
        let faults = FaultHandle::new();
        let (root, _) = Supervisor::spawn(
            SupervisorSpec::new("root", Strategy::OneForOne)
                .intensity(5, Duration::from_secs(10))
                .child(spec),
            faults.clone(),
            EventSink::none(),
        )
        .await
        .unwrap();
        Self {
            root,
            faults,
            current,
        }
    }

    fn scheduler(&self) -> ActorRef<SchedulerMsg> {
        self.current.lock().unwrap().clone().unwrap()
    }

    async fn stop(self) {
        let _ = self
            .root
            .call(
                |reply| pincer_supervision::SupervisorMsg::Shutdown { reply },
                Some(Duration::from_secs(10)),
            )
            .await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_the_fire_is_recorded_restarts_without_running_it_twice() {
    let mut h = Harness::new();
    let sup = Supervised::start(&h).await;
    let first = sup.scheduler();
    add(
        &first,
        isolated("tick", json!({"kind": "every", "everyMs": 30 * SEC})),
    )
    .await;
    // From now: message 1 is the timer at 30 s, message 2 starts the recorded fire.
    sup.faults.arm("scheduler", Fault::PanicAt { nth: 2 });
    // The next call is the 60 s slot: the crashed 30 s fire never reached the runner.
    assert_eq!(h.next_call().await, sched("tick", 60 * SEC));
    assert_ne!(
        sup.scheduler().get_id(),
        first.get_id(),
        "the supervisor restarted it"
    );
    assert_eq!(h.advance_to(61 * SEC).await, []);
    let runs = h.runs("tick").await;
    assert_eq!(
        statuses(&runs),
        [
            (30 * SEC, RunStatus::Interrupted),
            (60 * SEC, RunStatus::Ok)
        ]
    );
    assert!(
        runs[0].error.as_deref().unwrap().contains("not run again"),
        "{:?}",
        runs[0].error
    );
    let job = &jobs(&sup.scheduler()).await[0];
    assert_eq!(job.state.next_run_at_ms, Some(T0 + 90 * SEC));
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_while_the_runner_runs_restarts_without_running_it_twice() {
    let mut h = Harness::new();
    h.runner.hold.lock().unwrap().push("slow".into());
    let sup = Supervised::start(&h).await;
    add(
        &sup.scheduler(),
        isolated("slow", json!({"kind": "every", "everyMs": 30 * SEC})),
    )
    .await;
    assert_eq!(h.next_call().await, sched("slow", 30 * SEC));
    // The run is under way; the scheduler crashes at its next message.
    let crashed = sup.scheduler();
    sup.faults.arm("scheduler", Fault::PanicAt { nth: 1 });
    let r = crashed
        .call(
            |reply| SchedulerMsg::List { reply },
            Some(Duration::from_secs(1)),
        )
        .await;
    assert!(
        !matches!(r, Ok(ractor::rpc::CallResult::Success(_))),
        "it crashed on the call: {r:?}"
    );
    assert_eq!(h.advance_to(40 * SEC).await, []);
    assert_ne!(sup.scheduler().get_id(), crashed.get_id());
    assert_eq!(
        *h.runner.dropped.lock().unwrap(),
        1,
        "the crashed scheduler's run task was aborted"
    );
    h.runner.hold.lock().unwrap().clear();
    assert_eq!(h.next_call().await, sched("slow", 60 * SEC));
    assert_eq!(h.advance_to(61 * SEC).await, []);
    let runs = h.runs("slow").await;
    assert_eq!(
        statuses(&runs),
        [
            (30 * SEC, RunStatus::Interrupted),
            (60 * SEC, RunStatus::Ok)
        ]
    );
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn missed_runs_run_once_within_the_grace_period_and_are_skipped_past_it() {
    let mut h = Harness::new();
    let a = h.start(config(10 * 60)).await;
    add(
        &a,
        isolated(
            "daily",
            json!({"kind": "cron", "expr": "0 1 * * *", "tz": "UTC"}),
        ),
    )
    .await;
    add(
        &a,
        isolated("every20", json!({"kind": "every", "everyMs": 20 * MIN})),
    )
    .await;
    add(
        &a,
        isolated("remind", json!({"kind": "at", "at": T0 + 30 * MIN})),
    )
    .await;
    add(
        &a,
        isolated(
            "weekly",
            json!({"kind": "cron", "expr": "30 0 * * 1", "tz": "UTC"}),
        ),
    )
    .await;
    assert_eq!(h.advance_to(10 * MIN).await, []);
    a.stop_and_wait(None, None).await.unwrap();

    // Down from 10 min to 65 min. daily (1:00) and every20 (its newest slot 1:00) were
    // missed by 5 min: one catch-up each. remind (0:30) and weekly (0:30) were missed by
    // 35 min: skipped and recorded.
    assert_eq!(h.advance_to(65 * MIN).await, []);
    let b = h.start(config(10 * 60)).await;
    let mut fires = vec![h.next_call().await, h.next_call().await];
    fires.sort_by(|x, y| x.job.cmp(&y.job));
    assert_eq!(
        fires,
        [
            call("daily", 60 * MIN, 65 * MIN, Trigger::CatchUp),
            call("every20", 60 * MIN, 65 * MIN, Trigger::CatchUp),
        ]
    );
    assert_eq!(h.next_call().await, sched("every20", 80 * MIN));
    assert_eq!(h.advance_to(81 * MIN).await, []);

    let remind = h.runs("remind").await;
    assert_eq!(statuses(&remind), [(30 * MIN, RunStatus::Skipped)]);
    let why = remind[0].summary.as_deref().unwrap();
    assert!(why.contains("cron.missedRunGraceSeconds (600)"), "{why}");
    let weekly = h.runs("weekly").await;
    assert_eq!(statuses(&weekly), [(30 * MIN, RunStatus::Skipped)]);
    let all = jobs(&b).await;
    let get = |id: &str| all.iter().find(|j| j.id == id).unwrap().clone();
    assert!(!get("remind").spec.enabled, "a skipped one-shot is done");
    assert_eq!(get("remind").state.next_run_at_ms, None);
    assert_eq!(
        get("weekly").state.next_run_at_ms,
        Some(T0 + 7 * 24 * HOUR + 30 * MIN),
        "the next week's slot"
    );
    assert_eq!(
        statuses(&h.runs("every20").await),
        [(60 * MIN, RunStatus::Ok), (80 * MIN, RunStatus::Ok)],
        "20 and 40 min were not run one by one"
    );
    b.stop_and_wait(None, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn runs_never_overlap_and_manual_runs_leave_the_schedule_alone() {
    let mut h = Harness::new();
    h.runner.hold.lock().unwrap().push("busy".into());
    let s = h.start(config(3600)).await;
    add(
        &s,
        isolated("busy", json!({"kind": "every", "everyMs": 10 * SEC})),
    )
    .await;
    assert_eq!(h.next_call().await, sched("busy", 10 * SEC));
    // Still running at 20 s: that slot is skipped, not run beside it.
    assert_eq!(h.advance_to(25 * SEC).await, []);
    let run = |due_only| {
        s.call(
            move |reply| SchedulerMsg::Run {
                id: "busy".into(),
                due_only,
                reply,
            },
            None,
        )
    };
    let e = run(false).await.unwrap().unwrap().unwrap_err().to_string();
    assert!(e.contains("is already running (run #1"), "{e}");
    h.runner.hold.lock().unwrap().clear();
    h.runner.release.notify_waiters();
    assert_eq!(h.next_call().await, sched("busy", 30 * SEC));
    assert_eq!(h.advance_to(35 * SEC).await, []);
    let runs = h.runs("busy").await;
    assert_eq!(
        statuses(&runs),
        [
            (10 * SEC, RunStatus::Ok),
            (20 * SEC, RunStatus::Skipped),
            (30 * SEC, RunStatus::Ok)
        ]
    );
    assert!(runs[1].summary.as_deref().unwrap().contains("run #1"));

    // By hand at 35 s: runs now, the next slot stays at 40 s; `due` mode waits for it.
    let started = run(false).await.unwrap().unwrap().unwrap().unwrap();
    assert_eq!(
        (started.seq, started.session_key.as_str()),
        (4, "agent:main:cron:busy")
    );
    assert_eq!(
        h.next_call().await,
        call("busy", 35 * SEC, 35 * SEC, Trigger::Manual)
    );
    assert_eq!(run(true).await.unwrap().unwrap().unwrap(), None, "not due");
    assert_eq!(h.next_call().await, sched("busy", 40 * SEC));

    // Disabled: no more fires; removed: gone with its history.
    let off = s
        .call(
            |reply| SchedulerMsg::Update {
                id: "busy".into(),
                patch: json!({"enabled": false}),
                reply,
            },
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(off.state.next_run_at_ms, None);
    assert_eq!(h.advance_to(2 * MIN).await, []);
    s.call(
        |reply| SchedulerMsg::Remove {
            id: "busy".into(),
            reply,
        },
        None,
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert!(jobs(&s).await.is_empty());
    assert!(h.runs("busy").await.is_empty());
    s.stop_and_wait(None, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn adding_checks_the_agent_and_a_disabled_scheduler_fires_only_by_hand() {
    let mut h = Harness::new();
    let s = h
        .start(CronConfig {
            enabled: false,
            ..config(60)
        })
        .await;
    let e = s
        .call(
            |reply| SchedulerMsg::Add {
                params: json!({"agentId": "nobody", "schedule": {"kind": "every", "everyMs": 1000},
                    "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "m"}}),
                reply,
            },
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"nobody\" is not a configured agent (agents: main, ops)"),
        "{e}"
    );
    let job = add(
        &s,
        json!({"agentId": "ops", "schedule": {"kind": "every", "everyMs": 1000},
            "sessionTarget": "main", "payload": {"kind": "systemEvent", "text": "t"}}),
    )
    .await;
    assert_eq!(job.id.len(), 12, "a generated id");
    let dup = s
        .call(
            |reply| SchedulerMsg::Add {
                params: isolated(&job.id, json!({"kind": "every", "everyMs": 1000})),
                reply,
            },
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    assert_eq!(h.advance_to(10 * SEC).await, [], "cron.enabled is false");
    let status = s
        .call(|reply| SchedulerMsg::Status { reply }, None)
        .await
        .unwrap()
        .unwrap();
    assert!(!status.enabled && status.next_wake_at_ms.is_none());
    assert_eq!((status.jobs, status.enabled_jobs), (1, 1));
    let started = s
        .call(
            |reply| SchedulerMsg::Run {
                id: job.id.clone(),
                due_only: false,
                reply,
            },
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(started.session_key, "agent:ops:main");
    assert_eq!(
        h.next_call().await,
        call(&job.id, 10 * SEC, 10 * SEC, Trigger::Manual)
    );
    s.stop_and_wait(None, None).await.unwrap();
}
