//! Scheduling figures for docs/PERFORMANCE.md (issue 6): N cron jobs (10,000 by default)
//! whose first fires are spread evenly over a few seconds of real time, a Scheduler with a
//! no-op runner, and how late each fire reached the runner (every fire is committed to the
//! store durably before it runs, so this includes that fsync). Also: the time to load the
//! jobs at start, and the memory they take.
//!
//! `cargo bench --bench schedule -- [--jobs N] [--spread-ms MS] [--lead-ms MS]`
//! Set `PINCER_BENCH_DIR` to put the store elsewhere (default: a temp dir on /tmp).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{arg, pct, rss_kib};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pincer_actors::schedule::cron::{CronJob, CronOp};
use pincer_actors::schedule::scheduler::{
    Clock, CronConfig, CronRunner, Fire, RunOutcome, SchedulerActor, SchedulerArgs, SchedulerMsg,
    TokioClock,
};
use pincer_actors::store::Store;
use ractor::Actor;
use serde_json::json;
use tokio::sync::Notify;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Records how late each fire reached it, against the instant its slot stands for.
struct Recorder {
    /// The clock's base: unix ms `base_ms` is the instant `base`.
    base: Instant,
    base_ms: u64,
    late: Mutex<Vec<Duration>>,
    want: usize,
    done: Notify,
}

/// The no-op runner: records, answers ok.
struct NoOp(Arc<Recorder>);

impl CronRunner for NoOp {
    fn run(&self, fire: Fire) -> BoxFuture<'static, RunOutcome> {
        let r = &self.0;
        let due = r.base + Duration::from_millis(fire.scheduled_ms - r.base_ms);
        let late = Instant::now().saturating_duration_since(due);
        let n = {
            let mut v = r.late.lock().unwrap();
            v.push(late);
            v.len()
        };
        if n == r.want {
            r.done.notify_one();
        }
        async { RunOutcome::ok("") }.boxed()
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n: u64 = arg("--jobs", 10_000);
        let spread: u64 = arg("--spread-ms", 3_000);
        let lead: u64 = arg("--lead-ms", 2_000);
        let dir = match std::env::var_os("PINCER_BENCH_DIR") {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        println!("store in {}", dir.path().display());
        let store = Store::open(&dir.path().join("state.redb")).unwrap();

        let base_ms = pincer_actors::gateway::now_ms();
        let (base, clock) = (Instant::now(), Arc::new(TokioClock::starting_at(base_ms)));
        let first = base_ms + lead;
        // Every job fires once in the window (each repeats hourly, anchored at its slot).
        let jobs: Vec<CronOp> = (0..n)
            .map(|i| {
                let slot = first + i * spread / n.max(1);
                let params = json!({
                    "id": format!("job{i}"),
                    "schedule": {"kind": "every", "everyMs": 3_600_000, "anchorMs": slot},
                    "sessionTarget": "isolated",
                    "payload": {"kind": "agentTurn", "message": "bench"},
                });
                CronOp::PutJob(Box::new(CronJob::create(&params, base_ms, "x").unwrap()))
            })
            .collect();
        let t = Instant::now();
        store.cron_apply(jobs).await.unwrap();
        println!(
            "{:<44} {:>9.1} ms",
            format!("write {n} jobs (one commit)"),
            ms(t.elapsed())
        );

        let recorder = Arc::new(Recorder {
            base,
            base_ms,
            late: Mutex::new(Vec::with_capacity(n as usize)),
            want: n as usize,
            done: Notify::new(),
        });
        let rss0 = rss_kib();
        let t = Instant::now();
        let (scheduler, handle) = Actor::spawn(
            None,
            SchedulerActor,
            SchedulerArgs {
                store: store.clone(),
                runner: Arc::new(NoOp(recorder.clone())),
                clock: clock.clone(),
                config: CronConfig::default(),
                default_agent: "main".into(),
                main_key: "main".into(),
                agents: Vec::new(),
            },
        )
        .await
        .unwrap();
        let load = t.elapsed();
        let rss1 = rss_kib();
        println!(
            "{:<44} {:>9.1} ms",
            format!("scheduler start, {n} jobs loaded"),
            ms(load)
        );
        println!(
            "{:<44} {:>9} KiB  ({:.2} KiB per job)",
            "RSS growth loading them",
            rss1.saturating_sub(rss0),
            rss1.saturating_sub(rss0) as f64 / n as f64
        );
        let elapsed_at_first = clock.now_ms().saturating_sub(base_ms);
        assert!(
            elapsed_at_first < lead,
            "start-up took {elapsed_at_first} ms, past the first slot: raise --lead-ms"
        );

        let wait = Duration::from_millis(lead + spread) + Duration::from_secs(60);
        tokio::time::timeout(wait, recorder.done.notified())
            .await
            .expect("every job fired");
        let mut late = recorder.late.lock().unwrap().clone();
        late.sort();
        println!(
            "{:<44} n={:<6} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
            format!("fire lateness ({n} slots over {spread} ms)"),
            late.len(),
            ms(pct(&late, 0.5)),
            ms(pct(&late, 0.99)),
            ms(*late.last().unwrap())
        );
        let status = scheduler
            .call(
                |reply| SchedulerMsg::Status { reply },
                Some(Duration::from_secs(10)),
            )
            .await
            .unwrap()
            .unwrap();
        println!(
            "{:<44} {:>9} KiB",
            "RSS after every fire",
            rss_kib().saturating_sub(rss0)
        );
        assert_eq!(status.jobs, n as usize);
        scheduler.stop(None);
        let _ = handle.await;
        // Let the last run records reach the disk before the store goes.
        store.cron_apply(Vec::new()).await.unwrap();
    });
}
