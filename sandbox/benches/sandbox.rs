//! Sandbox figures for docs/PERFORMANCE.md ("Sandboxes"), against the local Docker
//! Engine, with the hardened defaults (`DockerConfig::default()`: network `none`,
//! read-only root with tmpfs, uid 1000, every capability dropped, the shipped seccomp
//! profile, 512m, 1 cpu, 256 pids), the image aside:
//!
//! 1. cold start: create + start a container, to the end of its first `exec` of `true`;
//!    then starting its exec server (execd) and a first `true` through it;
//! 2. warm exec round trip: `exec` of `true` in a running container, through execd
//!    (`ExecServer::exec`) and as an Engine exec (`Docker::exec`; and, for reference, the
//!    bare Engine round trip under it: create + start + inspect of an exec, no wrapper);
//!    2b. where a warm exec goes: that bare exec in containers that differ in one setting
//!    (seccomp profile, Engine defaults), interleaved (`--breakdown N`, 0 skips);
//! 3. concurrent sessions: N containers created and started at once (wall time until all
//!    answered their first exec), then every session runs M execs one after the other,
//!    all sessions at once (N in flight), then all N*M execs at once: through execd (one
//!    per container), then as Engine execs.
//!
//! `cargo bench -p pincer-sandbox --bench sandbox -- [--cold N] [--warm N] [--concurrent N] [--execs N] [--breakdown N]`
//! (defaults 10, 200, 20, 10, 50). The image is `pincer-sandbox-test:busybox`, built if
//! missing (from Debian's busybox-static through the host's apt); set
//! `PINCER_SANDBOX_BENCH_IMAGE` to use another (`pincer-sandbox:bookworm`). Every
//! container is labelled with the run and removed at the end, also when the bench panics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pincer_sandbox::config::DockerConfig;
use pincer_sandbox::docker::{ContainerSpec, Docker, ExecRequest, LABEL_SANDBOX};
use pincer_sandbox::execd::{self, ExecServer};
use pincer_sandbox::image::ensure_test_image;

/// The label every container of one bench run carries (value: the run id).
const LABEL_RUN: &str = "pincer.bench-run";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn show(name: &str, mut v: Vec<Duration>) {
    if v.is_empty() {
        println!("{name:<52} n=0");
        return;
    }
    v.sort();
    let (p50, p99) = (pct(&v, 0.5), pct(&v, 0.99));
    println!(
        "{name:<52} n={:<5} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        v.len(),
        ms(p50),
        ms(p99),
        ms(*v.last().unwrap())
    );
}

/// Removes, when dropped (also while unwinding from a panic), every container it was told
/// about and every container labelled with its run, from a runtime of its own.
struct Cleanup {
    docker: Docker,
    run: String,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let run = self.run.clone();
        let mut ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                // Also what was created but never tracked (a create cut short by a panic).
                match docker.list(&[(LABEL_RUN, &run)]).await {
                    Ok(found) => ids.extend(found.into_iter().map(|c| c.id)),
                    Err(e) => eprintln!("cleanup: listing this run's containers failed: {e}"),
                }
                ids.sort();
                ids.dedup();
                let removals = ids.iter().map(|id| {
                    let docker = docker.clone();
                    let id = id.clone();
                    async move {
                        if let Err(e) = docker.remove(&id).await {
                            eprintln!("cleanup of {id} failed: {e}");
                        }
                    }
                });
                futures_util::future::join_all(removals).await;
                if !ids.is_empty() {
                    println!("cleanup: removed {} leftover containers", ids.len());
                }
            })
        })
        .join();
    }
}

struct Bench {
    docker: Docker,
    config: DockerConfig,
    run: String,
    cleanup: Arc<Mutex<Vec<String>>>,
    /// Where the execd binary is installed for this run (bound into every container).
    execd_dir: std::path::PathBuf,
}

impl Bench {
    fn spec(&self, name: &str) -> ContainerSpec {
        ContainerSpec {
            name: format!("pincer-bench-{}-{name}", self.run),
            config: self.config.clone(),
            labels: BTreeMap::from([
                (LABEL_SANDBOX.to_string(), "1".to_string()),
                (LABEL_RUN.to_string(), self.run.clone()),
            ]),
            mounts: vec![execd::mount(&self.execd_dir)],
            workdir: "/tmp".into(),
            hostname: Some("sandbox".into()),
        }
    }

    /// Create, start, first `true`: the container id and the three steps' times.
    async fn cold(&self, name: &str) -> (String, [Duration; 3]) {
        self.cold_with(self.spec(name)).await
    }

    async fn cold_with(&self, spec: ContainerSpec) -> (String, [Duration; 3]) {
        let t = Instant::now();
        let id = self.docker.create(&spec).await.expect("create");
        self.cleanup.lock().unwrap().push(id.clone());
        let created = t.elapsed();
        self.docker.start(&id).await.expect("start");
        let started = t.elapsed();
        self.exec_true(&id).await;
        (id, [created, started - created, t.elapsed() - started])
    }

    /// Removes a container and forgets it.
    async fn remove(&self, id: &str) {
        self.docker.remove(id).await.expect("remove");
        self.cleanup.lock().unwrap().retain(|x| x != id);
    }

    /// A container made by the Engine's own defaults (its seccomp profile, its
    /// capabilities, no init, read-write root) plus `security_opt`, network `none`,
    /// running `sleep`.
    async fn plain(&self, name: &str, security_opt: &[&str]) -> String {
        use bollard::models::{ContainerCreateBody, HostConfig};
        use bollard::query_parameters::CreateContainerOptionsBuilder;
        let body = ContainerCreateBody {
            image: Some(self.config.image.clone()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            labels: Some(
                [(LABEL_RUN.to_string(), self.run.clone())]
                    .into_iter()
                    .collect(),
            ),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                security_opt: Some(security_opt.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!("pincer-bench-{}-{name}", self.run);
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        let raw = self.docker.raw();
        let id = raw
            .create_container(Some(opts), body)
            .await
            .expect("create")
            .id;
        self.cleanup.lock().unwrap().push(id.clone());
        raw.start_container(&id, None).await.expect("start");
        id
    }

    async fn exec_true(&self, id: &str) -> Duration {
        let t = Instant::now();
        let req = ExecRequest {
            timeout: Duration::from_secs(60),
            ..ExecRequest::new(["true"])
        };
        let r = self
            .docker
            .exec(id, &req, &mut |_, _| {})
            .await
            .expect("exec");
        assert_eq!(r.exit_code, Some(0), "{r:?}");
        t.elapsed()
    }

    /// `true` through the container's execd.
    async fn execd_true(server: &ExecServer) -> Duration {
        let t = Instant::now();
        let req = ExecRequest {
            timeout: Duration::from_secs(60),
            ..ExecRequest::new(["true"])
        };
        let r = server
            .exec(&req, &mut |_, _| {})
            .await
            .expect("exec via execd");
        assert_eq!(r.exit_code, Some(0), "{r:?}");
        t.elapsed()
    }

    /// Starts the container's execd (one Engine exec, attached).
    async fn server(&self, id: &str) -> ExecServer {
        ExecServer::start(&self.docker, id)
            .await
            .expect("execd starts")
    }

    /// The Engine's part alone: create, start (attached, reading to the end) and inspect
    /// of an exec of `true`, no wrapper shell, no marker, no exit-code polling.
    async fn bare_exec(&self, id: &str) -> Duration {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        use futures_util::StreamExt;
        let raw = self.docker.raw();
        let t = Instant::now();
        let opts = CreateExecOptions {
            cmd: Some(vec!["true".to_string()]),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = raw.create_exec(id, opts).await.expect("create_exec");
        match raw.start_exec(&exec.id, None).await.expect("start_exec") {
            StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    chunk.expect("output");
                }
            }
            StartExecResults::Detached => panic!("detached"),
        }
        let _ = raw.inspect_exec(&exec.id).await.expect("inspect_exec");
        t.elapsed()
    }
}

async fn machine(docker: &Docker) {
    let info = docker.raw().info().await.expect("info");
    let version = docker.raw().version().await.expect("version");
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {nproc} cpus, kernel {}, Docker {} (API {}), storage {}, cgroup {} ({} driver), runc {}, init {}",
        info.kernel_version.unwrap_or_default(),
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default(),
        info.driver.unwrap_or_default(),
        info.cgroup_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        info.cgroup_driver
            .map(|v| v.to_string())
            .unwrap_or_default(),
        info.runc_commit.and_then(|c| c.id).unwrap_or_default(),
        if docker.uses_init() {
            "docker-init"
        } else {
            "none"
        },
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cold_n = arg("--cold", 10);
    let warm_n = arg("--warm", 200);
    let sessions = arg("--concurrent", 20);
    let execs = arg("--execs", 10);
    let breakdown_n = arg("--breakdown", 50);

    let docker = rt.block_on(Docker::connect()).unwrap_or_else(|e| {
        panic!("the sandbox bench needs a Docker daemon: {e}");
    });
    let image = match std::env::var("PINCER_SANDBOX_BENCH_IMAGE") {
        Ok(i) if !i.trim().is_empty() => i.trim().to_string(),
        _ => rt
            .block_on(ensure_test_image(docker.raw()))
            .expect("the test image"),
    };
    if !rt.block_on(docker.image_exists(&image)).unwrap() {
        panic!(
            "no image {image} (build it with `pincer sandbox setup`, or unset PINCER_SANDBOX_BENCH_IMAGE)"
        );
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let run = format!("{}-{nanos:x}", std::process::id());
    let cleanup = Cleanup {
        docker: docker.clone(),
        run: run.clone(),
        ids: Arc::new(Mutex::new(Vec::new())),
    };
    let config = DockerConfig {
        image: image.clone(),
        ..Default::default()
    };
    let execd_dir = std::env::temp_dir().join(format!("pincer-bench-execd-{run}"));
    execd::install(&execd_dir).expect("install execd");
    let bench = Arc::new(Bench {
        docker: docker.clone(),
        config: config.clone(),
        run,
        cleanup: cleanup.ids.clone(),
        execd_dir: execd_dir.clone(),
    });

    rt.block_on(async {
        machine(&docker).await;
        println!(
            "image {image}; network {}, read-only root {}, tmpfs {:?}, user {}, cap_drop {:?}, seccomp {}, memory {}, cpus {}, pids {}",
            config.network,
            config.read_only_root,
            config.tmpfs,
            config.user.as_deref().unwrap_or("image's"),
            config.cap_drop,
            config.seccomp_profile.as_deref().unwrap_or("shipped"),
            config.memory.as_deref().unwrap_or("-"),
            config.cpus.unwrap_or(0.0),
            config.pids_limit.unwrap_or(0),
        );

        // Warm the Engine's caches (image, seccomp compile, first containerd shim) off the
        // clock.
        let (id, _) = bench.cold("warmup").await;
        bench.remove(&id).await;

        // 1. Cold start, one at a time.
        let mut total = Vec::new();
        let mut steps: [Vec<Duration>; 3] = Default::default();
        let mut removal = Vec::new();
        let mut execd_start = Vec::new();
        for i in 0..cold_n {
            let t = Instant::now();
            let (id, s) = bench.cold(&format!("cold-{i}")).await;
            total.push(t.elapsed());
            for (v, d) in steps.iter_mut().zip(s) {
                v.push(d);
            }
            let t = Instant::now();
            let server = bench.server(&id).await;
            Bench::execd_true(&server).await;
            execd_start.push(t.elapsed());
            drop(server);
            let t = Instant::now();
            bench.remove(&id).await;
            removal.push(t.elapsed());
        }
        println!("-- 1. cold start, one container at a time");
        show("create + start + first exec `true`", total);
        let [create, start, first] = steps;
        show("  create (incl. image check)", create);
        show("  start", start);
        show("  first exec `true`", first);
        show("then: start execd + first `true` through it", execd_start);
        show("remove (force, running)", removal);

        // 2. Warm exec round trip.
        let (id, _) = bench.cold("warm").await;
        let server = bench.server(&id).await;
        for _ in 0..10 {
            Bench::execd_true(&server).await;
            bench.exec_true(&id).await;
            bench.bare_exec(&id).await;
        }
        let mut via_execd = Vec::with_capacity(warm_n);
        let mut warm = Vec::with_capacity(warm_n);
        let mut bare = Vec::with_capacity(warm_n);
        for _ in 0..warm_n {
            // Interleaved, so that drift on the machine hits every path alike.
            via_execd.push(Bench::execd_true(&server).await);
            warm.push(bench.exec_true(&id).await);
            bare.push(bench.bare_exec(&id).await);
        }
        drop(server);
        println!("-- 2. warm exec round trip, one at a time");
        show("ExecServer::exec `true` (through execd)", via_execd);
        show("Docker::exec `true` (wrapper, marker, exit code)", warm);
        show("  bare Engine exec `true` (create/start/inspect)", bare);
        bench.remove(&id).await;
        if breakdown_n > 0 {
            breakdown(&bench, breakdown_n).await;
        }

        if sessions > 0 {
            concurrent(&bench, sessions, execs).await;
        }
    });
    drop(cleanup);
    let _ = std::fs::remove_dir_all(&execd_dir);
}

/// Where the warm exec time goes: the bare Engine exec of `true` (no wrapper) in
/// containers that differ in one setting at a time.
async fn breakdown(bench: &Bench, n: usize) {
    let dir = std::env::temp_dir().join(format!("pincer-bench-{}", bench.run));
    std::fs::create_dir_all(&dir).unwrap();
    let allow_all = dir.join("allow-all.json");
    std::fs::write(&allow_all, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
    let mut trivial = bench.spec("bd-allow-all");
    trivial.config.seccomp_profile = Some(allow_all.display().to_string());
    // What the shipped profile denies outright, as a short denylist (no argument rules):
    // only to see how the filter's size weighs on each exec, not a proposal as it stands.
    let denied = [
        "mount",
        "umount2",
        "pivot_root",
        "unshare",
        "setns",
        "chroot",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "keyctl",
        "add_key",
        "request_key",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "bpf",
        "perf_event_open",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "open_by_handle_at",
        "userfaultfd",
        "swapon",
        "swapoff",
        "reboot",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
    ];
    let deny_list = dir.join("deny-list.json");
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": denied.as_slice(), "action": "SCMP_ACT_ERRNO" }],
    });
    std::fs::write(&deny_list, profile.to_string()).unwrap();
    let mut short = bench.spec("bd-deny-list");
    short.config.seccomp_profile = Some(deny_list.display().to_string());
    let hardened = bench.cold("bd-hardened").await.0;
    let trivial = bench.cold_with(trivial).await.0;
    let short = bench.cold_with(short).await.0;
    let engine = bench.plain("bd-engine", &[]).await;
    let unconfined = bench.plain("bd-unconfined", &["seccomp=unconfined"]).await;
    let variants = [
        ("hardened (the shipped seccomp profile)", &hardened),
        ("hardened, a 34-syscall denylist profile", &short),
        ("hardened, an allow-all seccomp profile", &trivial),
        ("Engine defaults (Docker's seccomp profile)", &engine),
        ("Engine defaults, seccomp unconfined", &unconfined),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); variants.len()];
    for round in 0..n + 5 {
        // Interleaved, so that drift on the machine hits every variant alike.
        for (i, (_, id)) in variants.iter().enumerate() {
            let d = bench.bare_exec(id).await;
            if round >= 5 {
                times[i].push(d);
            }
        }
    }
    println!(
        "-- 2b. where a warm exec goes: bare Engine exec `true`, one setting changed at a time"
    );
    for ((name, _), v) in variants.iter().zip(times) {
        show(&format!("  {name}"), v);
    }
    for id in [&hardened, &short, &trivial, &engine, &unconfined] {
        bench.remove(id).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// N sessions created and started at once, then M execs each: in turn per session (N in
/// flight), then all at once.
async fn concurrent(bench: &Arc<Bench>, sessions: usize, execs: usize) {
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..sessions {
        let bench = bench.clone();
        tasks.spawn(async move {
            let (id, _) = bench.cold(&format!("session-{i}")).await;
            (id, t.elapsed())
        });
    }
    let mut ids = Vec::new();
    let mut ready = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (id, at) = done.expect("a session failed to start");
        ids.push(id);
        ready.push(at);
    }
    let all_ready = t.elapsed();
    println!("-- 3. {sessions} sessions at once");
    println!(
        "{:<52} {:.0} ms (first ready at {:.0} ms)",
        format!("wall time to all {sessions} ready (create+start+`true`)"),
        ms(all_ready),
        ms(*ready.iter().min().unwrap())
    );
    show("  time to ready, per session", ready);

    let t = Instant::now();
    let servers = futures_util::future::join_all(ids.iter().map(|id| bench.server(id))).await;
    println!(
        "{:<52} {:.0} ms",
        format!("start execd in all {sessions} at once"),
        ms(t.elapsed())
    );
    let run_execs = async |all_at_once: bool, through_execd: bool| {
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (id, server) in ids.iter().zip(&servers) {
            let per_task = if all_at_once { 1 } else { execs };
            for _ in 0..(execs / per_task) {
                let (bench, id, server) = (bench.clone(), id.clone(), server.clone());
                tasks.spawn(async move {
                    let mut v = Vec::with_capacity(per_task);
                    for _ in 0..per_task {
                        v.push(match through_execd {
                            true => Bench::execd_true(&server).await,
                            false => bench.exec_true(&id).await,
                        });
                    }
                    v
                });
            }
        }
        let mut lat = Vec::new();
        while let Some(v) = tasks.join_next().await {
            lat.extend(v.expect("an exec failed"));
        }
        (lat, t.elapsed())
    };
    let runs = [(false, true), (true, true), (false, false), (true, false)];
    for (all_at_once, through_execd) in runs.into_iter().filter(|_| execs > 0) {
        let (lat, wall) = run_execs(all_at_once, through_execd).await;
        let how = if through_execd { "execd" } else { "Engine" };
        let what = match all_at_once {
            false => {
                format!("{how} `true`, {execs} in turn per session ({sessions} in flight)")
            }
            true => format!("{how} `true`, all {} at once", sessions * execs),
        };
        show(&what, lat);
        println!(
            "{:<52} {:.0} ms, {:.0} execs/s",
            "  wall time",
            ms(wall),
            (sessions * execs) as f64 / wall.as_secs_f64()
        );
    }
    drop(servers);
    let t = Instant::now();
    futures_util::future::join_all(ids.iter().map(|id| bench.remove(id))).await;
    println!(
        "{:<52} {:.0} ms",
        format!("remove all {sessions} at once"),
        ms(t.elapsed())
    );
}
