//! The exec server (execd) against a real Docker Engine, in hardened containers with
//! network `none`: commands through it see exactly what an Engine exec sees, its timeouts
//! kill whole trees (a `setsid` grandchild, a fork bomb at the pids limit) without taking
//! the container or execd down, the OOM killer picks commands rather than execd, many
//! commands run at once, a dead execd fails its commands clearly and is replaced, and
//! background commands take stdin and die on request. Needs a Docker daemon (see
//! `common`).

mod common;

use std::time::Duration;

use common::{
    Guard, MEMORY_HOG, capped_output, engine, escaping_tree, fork_bomb, sh, spec, test_config,
    unique, up,
};
use pincer_sandbox::config::DockerConfig;
use pincer_sandbox::docker::{Docker, ExecRequest, ExecResult, OutputKind};
use pincer_sandbox::execd::{self, Event, ExecServer};

/// A started container with execd mounted (the binary installed in a temporary
/// directory), and a server for it.
struct Sandbox {
    docker: Docker,
    server: ExecServer,
    c: Guard,
    _bin: tempfile::TempDir,
}

async fn sandbox(test: &str, config: DockerConfig) -> Option<Sandbox> {
    let docker = engine(test).await?;
    let bin = tempfile::tempdir().unwrap();
    execd::install(bin.path()).unwrap();
    let mut s = spec(&unique(test), config);
    s.mounts.push(execd::mount(bin.path()));
    let c = up(&docker, &s).await;
    let server = ExecServer::start(&docker, &c.id)
        .await
        .expect("execd starts");
    Some(Sandbox {
        docker,
        server,
        c,
        _bin: bin,
    })
}

impl Sandbox {
    /// `sh -c script` through execd.
    async fn run(&self, script: &str) -> ExecResult {
        self.server
            .exec(&req(script, 20), &mut |_, _| {})
            .await
            .expect("exec through execd")
    }

    /// `ps -o pid,args` as an Engine exec.
    async fn ps(&self) -> String {
        sh(&self.docker, &self.c.id, "ps -o pid,args").await.stdout
    }
}

fn req(script: &str, timeout_s: u64) -> ExecRequest {
    ExecRequest {
        timeout: Duration::from_secs(timeout_s),
        ..ExecRequest::new(["sh", "-c", script])
    }
}

#[tokio::test]
async fn commands_see_what_an_engine_exec_sees() {
    let mut config = test_config();
    config.env.insert("FROM_CONFIG".into(), "yes".into());
    config.ulimits.insert(
        "nofile".into(),
        pincer_sandbox::config::Ulimit::Pair {
            soft: 100,
            hard: 200,
        },
    );
    let Some(sb) = sandbox("execd_view", config).await else {
        return;
    };
    // The same user, hostname, directory, limits, capabilities, seccomp and
    // no-new-privileges as an Engine exec: execd adds and drops nothing.
    let probe = "id -u; id -g; hostname; pwd; ulimit -Sn; ulimit -Hn; echo $FROM_CONFIG; \
                 grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; \
                 cat /proc/self/cgroup | sort";
    let engine_exec = sh(&sb.docker, &sb.c.id, probe).await;
    let through = sb.run(probe).await;
    assert_eq!(through.exit_code, Some(0), "{through:?}");
    assert_eq!(through.stdout, engine_exec.stdout);
    assert!(
        through
            .stdout
            .starts_with("1000\n1000\nsbx-test\n/tmp\n100\n200\nyes\n"),
        "{}",
        through.stdout
    );
    for line in [
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        assert!(through.stdout.contains(line), "{line}: {}", through.stdout);
    }
    // The OOM killer prefers commands; execd itself keeps the default.
    let pid = sb.server.pid().await.expect("execd runs");
    let r = sb
        .run(&format!(
            "cat /proc/self/oom_score_adj /proc/{pid}/oom_score_adj"
        ))
        .await;
    assert_eq!(r.stdout, "1000\n0\n", "{r:?}");

    // Exit codes, separate stdout and stderr, streaming, env, workdir, argv untouched.
    let mut seen: Vec<(OutputKind, Vec<u8>)> = Vec::new();
    let r = ExecRequest {
        workdir: Some("/var/tmp".into()),
        env: vec![
            ("GREETING".into(), "hi there".into()),
            ("FROM_CONFIG".into(), "overridden".into()),
        ],
        ..ExecRequest::new([
            "sh",
            "-c",
            "echo \"$GREETING $FROM_CONFIG $(pwd)\"; printf '[%s]' \"$@\"; echo oops >&2; exit 3",
            "x",
            "a b",
            "$HOME",
        ])
    };
    let r = sb
        .server
        .exec(&r, &mut |k, b| seen.push((k, b.to_vec())))
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.stdout, "hi there overridden /var/tmp\n[a b][$HOME]");
    assert_eq!(r.stderr, "oops\n");
    assert!(!r.timed_out && !r.truncated);
    assert!(
        seen.iter()
            .any(|(k, b)| *k == OutputKind::Stderr && b == b"oops\n")
    );
    // A missing program or directory is the command's failure, like in a shell.
    let r = sb
        .server
        .exec(&ExecRequest::new(["no-such-program"]), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(127), "{r:?}");
    assert!(r.stderr.contains("no-such-program"), "{r:?}");
    let r = ExecRequest {
        workdir: Some("/nowhere".into()),
        ..ExecRequest::new(["true"])
    };
    let r = sb.server.exec(&r, &mut |_, _| {}).await.unwrap();
    assert!(
        r.exit_code == Some(127) && r.stderr.contains("/nowhere"),
        "{r:?}"
    );
    // Output over the cap is dropped (in execd), the command still runs to its end.
    let r = sb
        .server
        .exec(&capped_output(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.truncated, r.stdout.len()),
        (Some(0), true, 1000)
    );
    assert_eq!(sb.run("cat /tmp/finished").await.stdout, "done\n");
    // A command that closes its output is still waited for.
    let r = sb.run("echo bye; exec >&- 2>&-; sleep 1; exit 7").await;
    assert_eq!(
        (r.exit_code, r.stdout.as_str()),
        (Some(7), "bye\n"),
        "{r:?}"
    );
    assert!(r.duration >= Duration::from_secs(1), "{r:?}");
    // Another user goes through an Engine exec (execd runs as the container's user).
    let r = ExecRequest {
        user: Some("0:0".into()),
        ..ExecRequest::new(["id", "-u"])
    };
    assert_eq!(
        sb.server.exec(&r, &mut |_, _| {}).await.unwrap().stdout,
        "0\n"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_tree_and_a_fork_bomb_but_not_execd_or_the_container() {
    let mut config = test_config();
    config.pids_limit = Some(32);
    let Some(sb) = sandbox("execd_timeout", config).await else {
        return;
    };
    let execd_pid = sb.server.pid().await.unwrap();
    let r = sb.run("sleep 300 >/dev/null 2>&1 &").await;
    assert_eq!(r.exit_code, Some(0));
    // In the background, in a session of its own, with an empty environment.
    let timeout = Duration::from_secs(2);
    let r = sb
        .server
        .exec(&escaping_tree(timeout), &mut |_, _| {})
        .await
        .unwrap();
    assert!(r.timed_out && r.exit_code.is_none(), "{r:?}");
    assert_eq!(r.stdout, "started\n");
    assert!(r.duration >= timeout && r.duration < timeout + Duration::from_secs(5));
    let ps = sb.ps().await;
    for gone in ["sleep 100", "sleep 101", "sleep 102"] {
        assert!(!ps.contains(gone), "{gone} survived:\n{ps}");
    }
    assert!(ps.contains("sleep 300"), "an unrelated process died:\n{ps}");
    assert!(ps.contains("sleep 3600"), "PID 1's child died:\n{ps}");

    // A fork bomb that holds every pid: execd kills it without forking, and the
    // container stays up.
    let r = sb
        .server
        .exec(&fork_bomb(Duration::from_secs(3)), &mut |_, _| {})
        .await
        .unwrap();
    assert!(r.timed_out, "{r:?}");
    assert!(sb.docker.inspect(&sb.c.id).await.unwrap().unwrap().running);
    let r = sb.run("ps -o args | grep -c '^sleep 100' || true").await;
    assert_eq!(r.stdout, "0\n", "the bomb is gone: {r:?}");
    assert_eq!(sb.server.pid().await, Some(execd_pid), "the same execd");
}

#[tokio::test]
async fn the_oom_killer_takes_the_command_not_execd() {
    let mut config = test_config();
    config.memory = Some("32m".into());
    let Some(sb) = sandbox("execd_oom", config).await else {
        return;
    };
    let pid = sb.server.pid().await.unwrap();
    let r = sb.run(MEMORY_HOG).await;
    assert_eq!(r.exit_code, Some(137), "{r:?}");
    assert!(!r.stdout.contains("survived"));
    assert_eq!(sb.run("echo alive").await.stdout, "alive\n");
    assert_eq!(sb.server.pid().await, Some(pid), "execd survived");
}

#[tokio::test]
async fn fifty_commands_run_at_once() {
    let Some(sb) = sandbox("execd_many", test_config()).await else {
        return;
    };
    let started = tokio::time::Instant::now();
    let runs = (0..50).map(|i| {
        let server = sb.server.clone();
        async move {
            let r = server
                .exec(
                    &req(&format!("sleep 1; echo {i}; echo e{i} >&2"), 30),
                    &mut |_, _| {},
                )
                .await
                .unwrap();
            (i, r)
        }
    });
    for (i, r) in futures_util::future::join_all(runs).await {
        assert_eq!(r.exit_code, Some(0), "{r:?}");
        assert_eq!(r.stdout, format!("{i}\n"));
        assert_eq!(r.stderr, format!("e{i}\n"));
    }
    // One after the other they would take 50 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dead_execd_fails_its_commands_clearly_and_is_replaced() {
    let Some(sb) = sandbox("execd_death", test_config()).await else {
        return;
    };
    let first = sb.server.pid().await.unwrap();
    let server = sb.server.clone();
    let (ready, is_ready) = tokio::sync::oneshot::channel();
    let running = tokio::spawn(async move {
        let mut ready = Some(ready);
        let r = req("echo running; exec sleep 104", 60);
        server
            .exec(&r, &mut |_, _| {
                ready.take().map(|r| r.send(()));
            })
            .await
    });
    // Once the command runs, execd is killed from outside.
    is_ready.await.unwrap();
    sh(&sb.docker, &sb.c.id, &format!("kill -9 {first}")).await;
    let e = running.await.unwrap().unwrap_err().to_string();
    assert!(
        e.contains("exec server") && e.contains("stopped while the command ran"),
        "{e}"
    );
    assert!(
        !sb.ps().await.contains("sleep 104"),
        "the orphaned command was killed"
    );
    // The next command starts a new execd.
    assert_eq!(sb.run("echo again").await.stdout, "again\n");
    let second = sb.server.pid().await.unwrap();
    assert_ne!(first, second);
}

#[tokio::test]
async fn background_commands_take_stdin_and_die_on_request() {
    let Some(sb) = sandbox("execd_background", test_config()).await else {
        return;
    };
    let mut cat = sb
        .server
        .spawn(&ExecRequest::new(["sh", "-c", "cat; echo eof"]))
        .await
        .unwrap();
    let control = cat.control();
    control.write(b"hello\n").unwrap();
    assert_eq!(
        cat.next().await,
        Some(Event::Output(OutputKind::Stdout, "hello\n".into()))
    );
    control.close_stdin().unwrap();
    let mut out = Vec::new();
    let status = loop {
        match cat.next().await.unwrap() {
            Event::Output(_, b) => out.extend_from_slice(&b),
            Event::Exited(s) => break s,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(out, b"eof\n");
    assert_eq!((status.code, status.killed), (Some(0), false));
    assert_eq!(cat.next().await, None);

    // Kill on request: the whole tree goes.
    let mut sleeper = sb
        .server
        .spawn(&req("sleep 105 & echo go; sleep 106; echo never", 60))
        .await
        .unwrap();
    assert_eq!(
        sleeper.next().await,
        Some(Event::Output(OutputKind::Stdout, "go\n".into()))
    );
    sleeper.control().kill();
    match sleeper.next().await {
        Some(Event::Exited(s)) => assert!(s.killed && s.signal == Some(9), "{s:?}"),
        other => panic!("{other:?}"),
    }
    let ps = sb.ps().await;
    assert!(
        !ps.contains("sleep 105") && !ps.contains("sleep 106"),
        "{ps}"
    );
    // Dropping the handle kills it too.
    let dropped = sb.server.spawn(&req("exec sleep 107", 60)).await.unwrap();
    drop(dropped);
    // The kill frame went first: execd handled it before this command.
    let r = sb.run("ps -o args | grep -c '^sleep 107' || true").await;
    assert_eq!(r.stdout, "0\n");
}

#[tokio::test]
async fn without_execd_commands_fall_back_to_engine_execs() {
    let Some(docker) = engine("execd_fallback").await else {
        return;
    };
    // No bind of the binary.
    let c = up(&docker, &spec(&unique("execd_fallback"), test_config())).await;
    let e = ExecServer::start(&docker, &c.id).await.unwrap_err();
    assert!(e.to_string().contains("did not start"), "{e}");
    let server = ExecServer::new(&docker, &c.id);
    let r = server
        .exec(&req("echo engine", 20), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.stdout.as_str()), (Some(0), "engine\n"));
    assert_eq!(server.pid().await, None);
    let e = server.spawn(&req("sleep 1", 20)).await.err().unwrap();
    assert!(
        e.to_string().contains("need the sandbox's exec server"),
        "{e}"
    );
}
