//! The supervisor under paused tokio time: strategies, restart kinds, backoff, intensity,
//! shutdown order and timeouts, dynamic children, fault injection.

use std::time::Duration;

use pincer_supervision::fault::Fault;
use pincer_supervision::testkit::{ProbeLog, ProbeMsg, TestTree, probe};
use pincer_supervision::{
    Backoff, ChildSpec, ExitReason, Restart, Strategy, SupervisionEvent, Supervisor, SupervisorMsg,
    SupervisorSpec,
};
use ractor::ActorStatus;
use tokio::time::Instant;

fn three(strategy: Strategy, log: &ProbeLog) -> SupervisorSpec {
    SupervisorSpec::new("root", strategy)
        .child(probe("a", log))
        .child(probe("b", log))
        .child(probe("c", log))
}

fn restarted(e: &SupervisionEvent) -> bool {
    matches!(e, SupervisionEvent::ChildRestarted { .. })
}

async fn settle(tree: &mut TestTree) -> Vec<SupervisionEvent> {
    // Let every queued message run; with paused time this does not wait for real.
    tokio::time::sleep(Duration::from_millis(1)).await;
    tree.drain()
}

#[tokio::test(start_paused = true)]
async fn children_start_in_order_and_stop_in_reverse() {
    let log = ProbeLog::default();
    let tree = TestTree::start(three(Strategy::OneForOne, &log), log.clone()).await;
    assert_eq!(log.lines(), ["start:a", "start:b", "start:c"]);
    tree.finish().await;
    assert_eq!(log.lines()[3..], ["stop:c", "stop:b", "stop:a"]);
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_failed_child() {
    let log = ProbeLog::default();
    let mut tree = TestTree::start(three(Strategy::OneForOne, &log), log.clone()).await;
    tree.probe("b").await.cast(ProbeMsg::Panic).unwrap();
    let e = tree.expect("restart", restarted).await;
    assert!(matches!(e, SupervisionEvent::ChildRestarted { ref child, .. } if child == "b"));
    assert_eq!(
        (log.starts("a"), log.starts("b"), log.starts("c")),
        (1, 2, 1)
    );
    assert_eq!(
        tree.probe("a").await.get_status(),
        ActorStatus::Running,
        "siblings untouched"
    );
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn one_for_all_restarts_every_child() {
    let log = ProbeLog::default();
    let mut tree = TestTree::start(three(Strategy::OneForAll, &log), log.clone()).await;
    log.clear();
    tree.probe("b").await.cast(ProbeMsg::Fail).unwrap();
    tree.expect("restart", restarted).await;
    settle(&mut tree).await;
    // c and a are stopped (reverse order), then all start in order.
    assert_eq!(
        log.lines(),
        ["stop:c", "stop:a", "start:a", "start:b", "start:c"]
    );
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let log = ProbeLog::default();
    let mut tree = TestTree::start(three(Strategy::RestForOne, &log), log.clone()).await;
    log.clear();
    tree.probe("b").await.cast(ProbeMsg::Panic).unwrap();
    tree.expect("restart", restarted).await;
    settle(&mut tree).await;
    assert_eq!(
        log.lines(),
        ["stop:c", "start:b", "start:c"],
        "a, started before b, is left alone"
    );
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn restart_kinds_decide_on_normal_and_abnormal_exits() {
    let log = ProbeLog::default();
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .child(probe("perm", &log))
        .child(probe("trans", &log).restart(Restart::Transient))
        .child(probe("temp", &log).restart(Restart::Temporary));
    let mut tree = TestTree::start(spec, log.clone()).await;

    tree.probe("perm").await.cast(ProbeMsg::Stop).unwrap();
    tree.expect("perm restarted", restarted).await;
    assert_eq!(
        log.starts("perm"),
        2,
        "permanent restarts even after a normal stop"
    );

    tree.probe("trans").await.cast(ProbeMsg::Panic).unwrap();
    tree.expect("trans restarted", restarted).await;
    tree.probe("trans").await.cast(ProbeMsg::Stop).unwrap();
    tree.expect("trans exit", |e| matches!(e, SupervisionEvent::ChildExited { reason: ExitReason::Normal, child, .. } if child == "trans"))
        .await;
    settle(&mut tree).await;
    assert_eq!(
        log.starts("trans"),
        2,
        "transient: restarted after a panic, not after a normal stop"
    );

    tree.probe("temp").await.cast(ProbeMsg::Panic).unwrap();
    tree.expect(
        "temp exit",
        |e| matches!(e, SupervisionEvent::ChildExited { child, .. } if child == "temp"),
    )
    .await;
    settle(&mut tree).await;
    assert_eq!(log.starts("temp"), 1, "temporary: never restarted");
    let names: Vec<String> = tree.children().await.into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["perm"],
        "ended transient and temporary children are forgotten"
    );
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_restarts_exactly_and_doubles() {
    let log = ProbeLog::default();
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
        multiplier: 2.0,
        jitter: 0.0,
        reset_after: Duration::from_secs(60),
    };
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(probe("a", &log).backoff(backoff));
    let mut tree = TestTree::start(spec, log.clone()).await;

    for (attempt, delay_ms) in [(1u32, 100u64), (2, 200), (3, 400)] {
        tree.probe("a").await.cast(ProbeMsg::Panic).unwrap();
        let e = tree
            .expect("scheduled", |e| {
                matches!(e, SupervisionEvent::RestartScheduled { .. })
            })
            .await;
        assert_eq!(
            e,
            SupervisionEvent::RestartScheduled {
                supervisor: "root".into(),
                child: "a".into(),
                kind: "probe",
                attempt,
                delay: Duration::from_millis(delay_ms)
            }
        );
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_millis(delay_ms - 1)).await;
        assert_eq!(
            log.starts("a") as u32,
            attempt,
            "not restarted 1 ms before the delay"
        );
        let e = tree.expect("restart", restarted).await;
        assert!(restarted(&e));
        assert_eq!(
            t0.elapsed(),
            Duration::from_millis(delay_ms),
            "restarted exactly at the delay"
        );
        assert_eq!(log.starts("a") as u32, attempt + 1);
    }
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_a_stable_period_and_jitter_stays_in_bounds() {
    let log = ProbeLog::default();
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
        multiplier: 2.0,
        jitter: 0.5,
        reset_after: Duration::from_secs(5),
    };
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(probe("a", &log).backoff(backoff));
    let mut tree = TestTree::start(spec, log.clone()).await;
    let delay_of = |e: SupervisionEvent| match e {
        SupervisionEvent::RestartScheduled { delay, .. } => delay,
        other => panic!("{other:?}"),
    };
    tree.probe("a").await.cast(ProbeMsg::Panic).unwrap();
    let d1 = delay_of(
        tree.expect("scheduled", |e| {
            matches!(e, SupervisionEvent::RestartScheduled { .. })
        })
        .await,
    );
    assert!(
        d1 >= Duration::from_millis(100) && d1 <= Duration::from_millis(150),
        "{d1:?}"
    );
    tree.expect("restart", restarted).await;
    tree.probe("a").await.cast(ProbeMsg::Panic).unwrap();
    let d2 = delay_of(
        tree.expect("scheduled", |e| {
            matches!(e, SupervisionEvent::RestartScheduled { .. })
        })
        .await,
    );
    assert!(
        d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(300),
        "{d2:?}"
    );
    tree.expect("restart", restarted).await;
    // Up for the stable period: the next failure starts from the initial delay again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    tree.probe("a").await.cast(ProbeMsg::Panic).unwrap();
    let d3 = delay_of(
        tree.expect("scheduled", |e| {
            matches!(e, SupervisionEvent::RestartScheduled { .. })
        })
        .await,
    );
    assert!(
        d3 <= Duration::from_millis(150),
        "reset after 5 s up: {d3:?}"
    );
    tree.expect("restart", restarted).await;
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn intensity_exceeded_stops_the_children_and_escalates_to_the_parent() {
    let log = ProbeLog::default();
    let inner = SupervisorSpec::new("inner", Strategy::OneForOne)
        .intensity(2, Duration::from_secs(10))
        .child(probe("x", &log))
        .child(probe("y", &log));
    let outer = SupervisorSpec::new("outer", Strategy::OneForOne)
        .intensity(0, Duration::from_secs(10))
        .child(probe("sibling", &log))
        .child(Supervisor::child(inner, "supervisor").restart(Restart::Transient));
    let mut tree = TestTree::start(outer, log.clone()).await;
    let x = |r: ractor::ActorRef<SupervisorMsg>| async move {
        let kids = r
            .call(|reply| SupervisorMsg::WhichChildren { reply }, None)
            .await
            .unwrap()
            .unwrap();
        ractor::ActorRef::<ProbeMsg>::from(
            kids.into_iter()
                .find(|k| k.name == "x")
                .unwrap()
                .cell
                .unwrap(),
        )
    };
    // Two restarts inside the window are fine...
    for _ in 0..2 {
        let inner_ref = ractor::ActorRef::<SupervisorMsg>::from(tree_child(&tree, "inner").await);
        x(inner_ref).await.cast(ProbeMsg::Panic).unwrap();
        tree.expect(
            "x restarted",
            |e| matches!(e, SupervisionEvent::ChildRestarted { child, .. } if child == "x"),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // ...the third, 2 s after the first, is one too many.
    let inner_ref = ractor::ActorRef::<SupervisorMsg>::from(tree_child(&tree, "inner").await);
    x(inner_ref).await.cast(ProbeMsg::Panic).unwrap();
    tree.expect("inner gives up", |e| matches!(e, SupervisionEvent::IntensityExceeded { supervisor } if supervisor == "inner")).await;
    let e = tree
        .expect(
            "outer sees inner fail",
            |e| matches!(e, SupervisionEvent::ChildExited { child, .. } if child == "inner"),
        )
        .await;
    assert!(
        matches!(e, SupervisionEvent::ChildExited { reason: ExitReason::Failed(ref m), .. } if m.contains("more than 2 restarts")),
        "{e:?}"
    );
    // The outer's intensity is 0, so it escalates too, stopping its other child.
    tree.expect("outer gives up", |e| matches!(e, SupervisionEvent::IntensityExceeded { supervisor } if supervisor == "outer")).await;
    settle(&mut tree).await;
    assert!(
        log.running().is_empty(),
        "every child stopped: {:?}",
        log.running()
    );
    let lines = log.lines();
    let tail: Vec<&str> = lines.iter().rev().take(3).map(String::as_str).collect();
    assert!(tail.contains(&"stop:sibling"), "{lines:?}");
    tree.finish().await;
}

async fn tree_child(tree: &TestTree, name: &str) -> ractor::ActorCell {
    tree.children()
        .await
        .into_iter()
        .find(|c| c.name == name)
        .and_then(|c| c.cell)
        .expect("child running")
}

#[tokio::test(start_paused = true)]
async fn a_restart_after_the_window_passed_is_fine() {
    let log = ProbeLog::default();
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(1, Duration::from_secs(10))
        .child(probe("a", &log));
    let mut tree = TestTree::start(spec, log.clone()).await;
    tree.probe("a").await.cast(ProbeMsg::Panic).unwrap();
    tree.expect("restart", restarted).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    tree.probe("a").await.cast(ProbeMsg::Panic).unwrap();
    tree.expect("restart", restarted).await;
    assert_eq!(log.starts("a"), 3);
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ignores_stop_is_killed_exactly_at_its_shutdown_timeout() {
    let log = ProbeLog::default();
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .child(probe("quick", &log))
        .child(probe("stuck", &log).shutdown(Duration::from_secs(3)));
    let tree = TestTree::start(spec, log.clone()).await;
    let stuck = tree.probe("stuck").await;
    stuck
        .cast(ProbeMsg::Hang(Duration::from_secs(3600)))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t0 = Instant::now();
    let root = tree.root.clone();
    let done = tokio::spawn(async move {
        root.call(|reply| SupervisorMsg::Shutdown { reply }, None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(2_999)).await;
    assert_ne!(
        stuck.get_status(),
        ActorStatus::Stopped,
        "still given time 1 ms before the timeout"
    );
    done.await.unwrap().unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(3),
        "killed at the timeout"
    );
    assert_eq!(stuck.get_status(), ActorStatus::Stopped);
    // A killed actor runs no post_stop, so only "quick" logs its stop, after "stuck" went.
    assert_eq!(log.lines(), ["start:quick", "start:stuck", "stop:quick"]);
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn dynamic_temporary_children_come_and_go_without_restarts() {
    let log = ProbeLog::default();
    let mut tree = TestTree::start(
        SupervisorSpec::new("conns", Strategy::OneForOne),
        log.clone(),
    )
    .await;
    for i in 0..50 {
        let spec = probe(&format!("conn-{i}"), &log).restart(Restart::Temporary);
        tree.root
            .call(|reply| SupervisorMsg::StartChild { spec, reply }, None)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let dup = probe("conn-0", &log);
    let err = tree
        .root
        .call(|reply| SupervisorMsg::StartChild { spec: dup, reply }, None)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("already exists"));
    assert_eq!(tree.children().await.len(), 50);
    tree.probe("conn-7").await.cast(ProbeMsg::Panic).unwrap();
    tree.probe("conn-8").await.cast(ProbeMsg::Stop).unwrap();
    settle(&mut tree).await;
    assert_eq!(tree.children().await.len(), 48);
    assert_eq!(log.starts("conn-7"), 1);
    tree.root
        .call(
            |reply| SupervisorMsg::TerminateChild {
                name: "conn-9".into(),
                reply,
            },
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(tree.children().await.len(), 47);
    let events = settle(&mut tree).await;
    assert!(!events.iter().any(restarted));
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn injected_faults_fire_at_the_chosen_message_and_kill_by_name_works() {
    let log = ProbeLog::default();
    let mut tree = TestTree::start(three(Strategy::OneForOne, &log), log.clone()).await;
    tree.faults.arm("b", Fault::PanicAt { nth: 2 });
    let b = tree.probe("b").await;
    assert_eq!(
        b.call(ProbeMsg::Ping, None).await.unwrap().unwrap(),
        1,
        "first message passes"
    );
    let _ = b.call(ProbeMsg::Ping, None).await;
    let e = tree
        .expect("b exits", |e| {
            matches!(e, SupervisionEvent::ChildExited { .. })
        })
        .await;
    assert!(
        matches!(e, SupervisionEvent::ChildExited { ref child, reason: ExitReason::Failed(ref m), .. } if child == "b" && m.contains("injected")),
        "{e:?}"
    );
    tree.expect("b restarted", restarted).await;
    let b = tree.probe("b").await;
    assert_eq!(
        b.call(ProbeMsg::Ping, None).await.unwrap().unwrap(),
        1,
        "the fault fired once; a fresh b"
    );

    tree.faults.arm("c", Fault::ErrorAt { nth: 1 });
    tree.probe("c")
        .await
        .cast(ProbeMsg::Ping(ractor::concurrency::oneshot().0.into()))
        .unwrap();
    tree.expect(
        "c restarted",
        |e| matches!(e, SupervisionEvent::ChildRestarted { child, .. } if child == "c"),
    )
    .await;

    assert!(tree.faults.kill("a"));
    let e = tree
        .expect(
            "a exits",
            |e| matches!(e, SupervisionEvent::ChildExited { child, .. } if child == "a"),
        )
        .await;
    assert!(matches!(
        e,
        SupervisionEvent::ChildExited {
            reason: ExitReason::Killed,
            ..
        }
    ));
    tree.expect(
        "a restarted",
        |e| matches!(e, SupervisionEvent::ChildRestarted { child, .. } if child == "a"),
    )
    .await;
    assert!(!tree.faults.kill("nobody"));
    tree.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_to_start_fails_the_supervisor_start() {
    let log = ProbeLog::default();
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .child(probe("ok", &log))
        .child(ChildSpec::new("bad", "probe", |_ctx| async {
            Err(ractor::SpawnErr::StartupFailed("no config".into()))
        }));
    let err = Supervisor::spawn(spec, Default::default(), Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad failed to start"), "{err}");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        log.lines(),
        ["start:ok", "stop:ok"],
        "what started is stopped again"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_backoff_restarts_at_once() {
    let log = ProbeLog::default();
    let mut tree = TestTree::start(three(Strategy::OneForOne, &log), log.clone()).await;
    let t0 = Instant::now();
    tree.probe("a").await.cast(ProbeMsg::Panic).unwrap();
    tree.expect("restart", restarted).await;
    assert_eq!(t0.elapsed(), Duration::ZERO);
    tree.finish().await;
}
