//! Supervisor restart latency: from a child's panic to its replacement running.
//!
//! `cargo bench --bench supervision`. The child is a test-kit probe with no backoff under a
//! one_for_one root; each iteration makes it panic and waits for the `ChildRestarted`
//! event, so the figure includes ractor's panic capture, the supervision message, the
//! restart decision and the spawn of the new actor.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pincer_supervision::testkit::{ProbeLog, ProbeMsg, probe};
use pincer_supervision::{
    EventSink, Strategy, SupervisionEvent, Supervisor, SupervisorMsg, SupervisorSpec,
    fault::FaultHandle,
};

fn restart_latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Panics are expected here: keep the default hook from printing each one.
    std::panic::set_hook(Box::new(|_| {}));
    let log = ProbeLog::default();
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .intensity(u32::MAX, Duration::from_secs(1))
        .child(probe("victim", &log));
    let (events, mut rx) = EventSink::channel();
    let (root, _h) = rt
        .block_on(Supervisor::spawn(spec, FaultHandle::new(), events))
        .unwrap();
    c.bench_function("supervisor/restart_crashed_child", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let kids = root
                        .call(|reply| SupervisorMsg::WhichChildren { reply }, None)
                        .await
                        .unwrap()
                        .unwrap();
                    let victim: ractor::ActorRef<ProbeMsg> = kids[0].cell.clone().unwrap().into();
                    while rx.try_recv().is_ok() {}
                    let t0 = Instant::now();
                    victim.cast(ProbeMsg::Panic).unwrap();
                    loop {
                        if let Some(SupervisionEvent::ChildRestarted { .. }) = rx.recv().await {
                            break;
                        }
                    }
                    total += t0.elapsed();
                }
                total
            })
        })
    });
}

criterion_group!(benches, restart_latency);
criterion_main!(benches);
