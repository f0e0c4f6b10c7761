//! Sandboxed sessions end to end through the real binary and the real Docker Engine: the
//! mock LLM asks for `exec`, the gateway runs it in a hardened container (network none),
//! and the tool results say where it ran. Needs a Docker daemon (scripts/test.sh starts
//! one); with PINCER_SKIP_DOCKER=1 and no daemon, the tests say they are skipped.

mod support;

use std::path::Path;
use std::time::Duration;

use pincer::client::Session;
use pincer_mockllm::{MockLlm, Step};
use pincer_sandbox::docker::Docker;
use pincer_sandbox::image::{TEST_IMAGE, ensure_test_image};
use serde_json::{Value, json};
use support::*;

async fn docker(test: &str) -> Option<Docker> {
    let ready = async {
        let d = Docker::connect().await.map_err(|e| e.to_string())?;
        ensure_test_image(d.raw())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(d)
    };
    match ready.await {
        Ok(d) => Some(d),
        Err(e) if std::env::var("PINCER_SKIP_DOCKER").as_deref() == Ok("1") => {
            eprintln!("skipped {test}: no Docker ({e}) and PINCER_SKIP_DOCKER=1");
            None
        }
        Err(e) => panic!(
            "this test needs a Docker daemon: {e}\n\
             install docker.io and start `dockerd` as root (scripts/test.sh does), or set PINCER_SKIP_DOCKER=1"
        ),
    }
}

/// The mock-model config with this sandbox for the default agent and no exec approvals.
fn write_config(home: &Path, llm: &MockLlm, sandbox: Value) {
    write_mock_config(
        home,
        llm,
        json!({
            "agents": {"defaults": {"sandbox": sandbox}},
            "tools": {"exec": {"ask": "off"}},
        }),
    );
}

fn sandbox_config(extra: Value) -> Value {
    merged(
        json!({
            "mode": "non-main",
            "scope": "session",
            "workspaceAccess": "none",
            "docker": {"image": TEST_IMAGE},
        }),
        &extra,
    )
}

/// Runs a turn whose model calls one tool, and returns the tool's result event data.
async fn tool_turn(s: &mut Session, llm: &MockLlm, key: &str, tool: &str, args: Value) -> Value {
    llm.push(Step::tool_call(tool, args));
    llm.push(Step::text("done"));
    let run_id = send(s, key).await;
    tool_result(s, &run_id).await
}

/// Sends a message; returns its run id.
async fn send(s: &mut Session, key: &str) -> String {
    let accepted = s
        .request(
            "chat.send",
            Some(json!({"sessionKey": key, "message": "go",
                        "idempotencyKey": uuid::Uuid::new_v4().to_string()})),
        )
        .await
        .expect("chat.send accepted");
    accepted["runId"].as_str().unwrap().to_owned()
}

/// Reads the run's events to its end; returns its (last) tool result, or with
/// `until_tool_start`, returns as soon as a tool starts (Null).
async fn run_events(s: &mut Session, run_id: &str, until_tool_start: bool) -> Value {
    let mut result = None;
    let mut pending: Vec<Value> = std::mem::take(&mut s.events);
    loop {
        let f = if pending.is_empty() {
            tokio::time::timeout(Duration::from_secs(60), s.next_frame())
                .await
                .expect("the turn ends within 60 s")
                .unwrap()
        } else {
            pending.remove(0)
        };
        if f["type"] != "event" || f["payload"]["runId"] != run_id {
            continue;
        }
        let tool = f["event"] == "agent" && f["payload"]["stream"] == "tool";
        if tool && until_tool_start && f["payload"]["data"]["phase"] == "start" {
            return Value::Null;
        }
        if tool && f["payload"]["data"]["phase"] == "result" {
            result = Some(f["payload"]["data"].clone());
        }
        if f["event"] == "chat" && f["payload"]["state"] != "delta" {
            return result.unwrap_or_else(|| panic!("no tool result in the run; last: {f}"));
        }
    }
}

async fn tool_result(s: &mut Session, run_id: &str) -> Value {
    run_events(s, run_id, false).await
}

/// A gateway on a fresh state directory with this sandbox config, its containers (removed
/// at the end) and a client; None when Docker is missing and PINCER_SKIP_DOCKER=1.
/// Destructure it binding `_dir` and `gw`: fields left to `..` are dropped at once, which
/// deletes the state directory or stops the gateway.
struct Setup {
    _dir: tempfile::TempDir,
    home: std::path::PathBuf,
    llm: MockLlm,
    d: Docker,
    containers: Containers,
    gw: Daemon,
    s: Session,
}

async fn setup(test: &str, sandbox: Value, args: &[&str]) -> Option<Setup> {
    let d = docker(test).await?;
    let (dir, home) = temp_home();
    let llm = mock_llm().await;
    write_config(&home, &llm, sandbox_config(sandbox));
    let containers = Containers::new(&d, &home);
    let mut all = vec!["--port", "0"];
    all.extend_from_slice(args);
    let gw = Daemon::start(&home, &all, &[]);
    let s = connect(&gw.url(), &read_token(&home)).await;
    Some(Setup {
        _dir: dir,
        home,
        llm,
        d,
        containers,
        gw,
        s,
    })
}

/// The session id in an `exec` result that moved a command to the background.
fn session_id(text: &str) -> String {
    text.split("sessionId ")
        .nth(1)
        .and_then(|rest| rest.get(..8))
        .unwrap_or_else(|| panic!("no session id in {text}"))
        .to_owned()
}

fn text_of(result: &Value) -> String {
    result["result"].as_str().unwrap_or_default().to_owned()
}

/// This gateway's containers (its instance label), removed when the test ends.
struct Containers {
    docker: Docker,
    instance: String,
}

impl Containers {
    fn new(docker: &Docker, home: &Path) -> Self {
        Containers {
            docker: docker.clone(),
            instance: pincer_actors::sandbox::instance_of(home),
        }
    }

    async fn list(&self) -> Vec<pincer_sandbox::docker::ContainerInfo> {
        self.docker
            .list(&[
                ("pincer.sandbox", "1"),
                (
                    pincer_actors::sandbox::LABEL_INSTANCE,
                    self.instance.as_str(),
                ),
            ])
            .await
            .unwrap()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let instance = self.instance.clone();
        // A fresh runtime and connection on another thread: Drop may run inside the test's
        // runtime, and a client is bound to the runtime it was made in.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let Ok(docker) = Docker::connect().await else {
                        return;
                    };
                    let found = docker
                        .list(&[
                            ("pincer.sandbox", "1"),
                            (pincer_actors::sandbox::LABEL_INSTANCE, instance.as_str()),
                        ])
                        .await
                        .unwrap_or_default();
                    for c in found {
                        let _ = docker.remove(&c.id).await;
                    }
                })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_session_runs_exec_in_a_hardened_container_while_main_stays_on_the_host() {
    let Some(Setup {
        home,
        llm,
        d,
        containers,
        gw,
        mut s,
        _dir: _keep_dir,
        ..
    }) = setup(
        "a_group_session_runs_exec_in_a_hardened_container",
        json!({}),
        &[],
    )
    .await
    else {
        return;
    };
    let group = "agent:main:telegram:group:42";

    // Inside: uid 1000, the sandbox's hostname, no capabilities, no new privileges,
    // seccomp on, a read-only root, only loopback, and a workspace it can write.
    let r = tool_turn(
        &mut s,
        &llm,
        group,
        "exec",
        json!({"command": "id -u; hostname; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                touch /rootfile 2>&1; ls /sys/class/net; echo made inside > made.txt; pwd"}),
    )
    .await;
    let out = text_of(&r);
    assert_eq!(r["isError"], false, "{out}");
    assert!(out.starts_with("1000\nsandbox\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(
        out.contains("NoNewPrivs:\t1") && out.contains("Seccomp:\t2"),
        "{out}"
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(
        out.contains("\nlo\n") && !out.contains("eth0"),
        "only loopback: {out}"
    );
    assert!(out.contains("/workspace"), "{out}");
    assert!(
        out.contains("in sandbox pincer-sbx-session-agent-main-telegram-group-42-"),
        "{out}"
    );
    // The file the command wrote is in the session's scratch workspace on the host, and
    // the file tools of that session see the same directory.
    let r = tool_turn(&mut s, &llm, group, "read", json!({"path": "made.txt"})).await;
    assert!(text_of(&r).contains("made inside"), "{r}");
    assert!(
        !home.join("workspace").join("made.txt").exists(),
        "workspaceAccess none keeps the agent's workspace out of it"
    );

    // Escapes through the file tools are refused; web_fetch is not offered inside.
    let r = tool_turn(
        &mut s,
        &llm,
        group,
        "write",
        json!({"path": "../../escape.txt", "content": "x"}),
    )
    .await;
    assert_eq!(r["isError"], true, "{r}");
    let r = tool_turn(
        &mut s,
        &llm,
        group,
        "web_fetch",
        json!({"url": "http://127.0.0.1:1/"}),
    )
    .await;
    assert!(
        text_of(&r).contains("not available in a sandboxed session"),
        "{r}"
    );

    // A symlink made inside the container that points out of the workspace does not let
    // the file tools (which run on the host) out either.
    let r = tool_turn(
        &mut s,
        &llm,
        group,
        "exec",
        json!({"command": "ln -s / escape && ls escape/etc >/dev/null && echo linked"}),
    )
    .await;
    assert!(text_of(&r).contains("linked"), "{r}");
    let r = tool_turn(
        &mut s,
        &llm,
        group,
        "read",
        json!({"path": "escape/etc/hostname"}),
    )
    .await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text_of(&r).contains("outside"), "{r}");

    // Background runs work inside (through the container's exec server) and `process`
    // follows them: poll, list, kill (the tree inside the container goes with it).
    let exec =
        json!({"command": "echo bg-started; hostname; read line; echo $line", "background": true});
    let t = text_of(&tool_turn(&mut s, &llm, group, "exec", exec).await);
    assert!(t.contains("Started in the background in sandbox"), "{t}");
    let bg = session_id(&t);
    let exec = json!({"command": "sleep 30 & sleep 31", "yieldMs": 300});
    let t = text_of(&tool_turn(&mut s, &llm, group, "exec", exec).await);
    let head = "Still running after 300ms; moved to the background in sandbox";
    assert!(t.contains(head), "{t}");
    let yielded = session_id(&t);
    let process = |action: &str, id: &str| json!({"action": action, "sessionId": id});
    let t = text_of(&tool_turn(&mut s, &llm, group, "process", process("list", "")).await);
    assert!(
        t.contains(&bg) && t.contains(&yielded) && t.contains("running"),
        "{t}"
    );
    let t = text_of(&tool_turn(&mut s, &llm, group, "process", process("poll", &bg)).await);
    assert!(
        t.starts_with("bg-started\nsandbox\n") && t.contains("[still running]"),
        "{t}"
    );
    let t = text_of(&tool_turn(&mut s, &llm, group, "process", process("kill", &yielded)).await);
    assert!(t.contains("killed on request"), "{t}");
    let ps = json!({"command": "ps -o args | grep -c '^sleep 3[01]' || true"});
    let t = text_of(&tool_turn(&mut s, &llm, group, "exec", ps).await);
    assert!(t.starts_with("0\n"), "the killed tree is gone: {t}");

    // The timeout kills what the command started.
    let r = tool_turn(
        &mut s,
        &llm,
        group,
        "exec",
        json!({"command": "sleep 30 & sleep 30", "timeout": 1}),
    )
    .await;
    assert!(text_of(&r).contains("timed out after 1.0s"), "{r}");
    let r = tool_turn(
        &mut s,
        &llm,
        group,
        "exec",
        json!({"command": "pgrep -x sleep | wc -l"}),
    )
    .await;
    assert!(text_of(&r).starts_with("0\n"), "no sleep survived: {r}");

    // The owner's main session runs on the host (non-main mode).
    let r = tool_turn(
        &mut s,
        &llm,
        "agent:main:main",
        "exec",
        json!({"command": "echo on the host"}),
    )
    .await;
    assert!(text_of(&r).contains("on the host"), "{r}");
    assert!(!text_of(&r).contains("in sandbox"), "{r}");

    // Scope session: a second group gets its own container; both have network none and
    // carry their labels.
    tool_turn(
        &mut s,
        &llm,
        "agent:main:telegram:group:43",
        "exec",
        json!({"command": "true"}),
    )
    .await;
    let list = containers.list().await;
    assert_eq!(list.len(), 2, "{list:?}");
    for c in &list {
        let inspect = d.raw().inspect_container(&c.id, None).await.unwrap();
        let host = inspect.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert!(c.labels.contains_key("pincer.config-hash"));
        assert!(c.labels["pincer.session"].starts_with("agent:main:telegram:group:4"));
    }
    // sandbox.list over the gateway says the same, and so does the CLI.
    let listed = s.request("sandbox.list", None).await.unwrap();
    assert_eq!(listed["sandboxes"].as_array().unwrap().len(), 2, "{listed}");
    let url = gw.url();
    let out = pincer(&home, &["sandbox", "list", "--url", &url]);
    assert!(
        text(&out).contains("scope session:agent:main:telegram:group:43"),
        "{}",
        text(&out)
    );
    let out = pincer(&home, &["sandbox", "explain", "--session", group]);
    let t = text(&out);
    assert!(
        t.contains("sandboxed: yes") && t.contains("network none") && t.contains("-> /workspace"),
        "{t}"
    );
    let out = pincer(&home, &["sandbox", "explain"]);
    assert!(text(&out).contains("sandboxed: no"), "{}", text(&out));

    // Consecutive failures of the sandbox (here: its container paused) open the breaker:
    // the tool says it is suspended instead of failing slowly again and again.
    let id = &list
        .iter()
        .find(|c| c.labels["pincer.session"] == group)
        .unwrap()
        .id;
    d.raw().pause_container(id).await.unwrap();
    for _ in 0..3 {
        let r = tool_turn(&mut s, &llm, group, "exec", json!({"command": "true"})).await;
        assert!(text_of(&r).contains("the sandbox failed"), "{r}");
    }
    let r = tool_turn(&mut s, &llm, group, "exec", json!({"command": "true"})).await;
    assert!(text_of(&r).contains("suspended for another"), "{r}");
    d.raw().unpause_container(id).await.unwrap();

    // A container removed behind the gateway's back is made again on the next failure.
    let other = "agent:main:telegram:group:43";
    let gone = &list
        .iter()
        .find(|c| c.labels["pincer.session"] == other)
        .unwrap()
        .id;
    d.remove(gone).await.unwrap();
    let r = tool_turn(&mut s, &llm, other, "exec", json!({"command": "true"})).await;
    assert_eq!(r["isError"], true, "the call that found it gone fails: {r}");
    let r = tool_turn(&mut s, &llm, other, "exec", json!({"command": "echo back"})).await;
    assert!(text_of(&r).contains("back"), "{r}");

    // `pincer sandbox setup --test` builds (here: finds) the test image and prints its name.
    let out = pincer(&home, &["sandbox", "setup", "--test"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        TEST_IMAGE,
        "{}",
        text(&out)
    );

    // Nothing is idle or old yet: prune keeps both.
    let out = pincer(&home, &["sandbox", "prune", "--url", &url]);
    assert!(
        text(&out).contains("removed 0 container(s)"),
        "{}",
        text(&out)
    );

    // recreate removes them; the next use makes a new one.
    let out = pincer(&home, &["sandbox", "recreate", "--all", "--url", &url]);
    assert!(
        text(&out).contains("removed 2 container(s)"),
        "{}",
        text(&out)
    );
    assert!(containers.list().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_reported_with_how_to_build_it() {
    let Some(Setup {
        home,
        llm,
        containers,
        mut s,
        gw: _gw,
        _dir: _keep_dir,
        ..
    }) = setup(
        "a_missing_image_is_reported_with_how_to_build_it",
        json!({"mode": "all", "docker": {"image": "pincer-no-such-image:never"}}),
        &[],
    )
    .await
    else {
        return;
    };
    let r = tool_turn(
        &mut s,
        &llm,
        "agent:main:main",
        "exec",
        json!({"command": "true"}),
    )
    .await;
    let t = text_of(&r);
    assert!(
        t.contains("pincer-no-such-image:never") && t.contains("pincer sandbox setup"),
        "{t}"
    );
    assert!(containers.list().await.is_empty());
    // `pincer doctor` says the same before anyone sends a message.
    let out = pincer(&home, &["doctor"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("the sandbox image pincer-no-such-image:never is missing"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_sandbox_actor_adopts_its_container_and_a_restart_keeps_or_replaces_it() {
    // The SandboxActor's 2nd message is the report after the first exec: it panics there.
    let Some(Setup {
        home,
        llm,
        containers,
        gw,
        mut s,
        _dir: _keep_dir,
        ..
    }) = setup(
        "a_crashed_sandbox_actor_adopts_its_container",
        json!({"mode": "all", "scope": "agent"}),
        &["--inject-fault", "sandbox:panic@2"],
    )
    .await
    else {
        return;
    };
    let r = tool_turn(
        &mut s,
        &llm,
        "agent:main:main",
        "exec",
        json!({"command": "echo first > /tmp/mark; cat /tmp/mark"}),
    )
    .await;
    assert!(text_of(&r).contains("first"), "{r}");
    // Scope agent: another session of the agent uses the same container, which the
    // restarted SandboxActor adopted (its tmpfs still holds the mark).
    let r = tool_turn(
        &mut s,
        &llm,
        "agent:main:telegram:group:7",
        "exec",
        json!({"command": "cat /tmp/mark"}),
    )
    .await;
    assert!(text_of(&r).contains("first"), "adopted, not recreated: {r}");
    let ids: Vec<String> = containers.list().await.into_iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 1, "no orphan: {ids:?}");
    let metrics = reqwest_like_get(&gw.addr, "/metrics").await;
    assert!(
        metrics.contains("pincer_actor_restarts_total{kind=\"sandbox\"} 1"),
        "{metrics}"
    );

    // A gateway killed outright, then started again with the same config: the container
    // is kept (its record and policy match) and adopted on first use.
    gw.signal(libc::SIGKILL);
    drop(gw);
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    let r = tool_turn(
        &mut s,
        &llm,
        "agent:main:main",
        "exec",
        json!({"command": "cat /tmp/mark"}),
    )
    .await;
    assert!(text_of(&r).contains("first"), "{r}");
    let after: Vec<String> = containers.list().await.into_iter().map(|c| c.id).collect();
    assert_eq!(after, ids, "the same container");

    // A changed policy: the old container is removed at start-up, a new one made on use.
    drop(s);
    gw.signal(libc::SIGTERM);
    let _ = gw.wait();
    write_config(
        &home,
        &llm,
        sandbox_config(json!({"mode": "all", "scope": "agent", "docker": {"memory": "256m"}})),
    );
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    let r = tool_turn(
        &mut s,
        &llm,
        "agent:main:main",
        "exec",
        json!({"command": "cat /tmp/mark 2>&1 || echo fresh"}),
    )
    .await;
    assert!(text_of(&r).contains("fresh"), "{r}");
    let now: Vec<String> = containers.list().await.into_iter().map(|c| c.id).collect();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, ids, "replaced");
}

#[tokio::test]
async fn binds_that_would_expose_the_host_stop_start_up_with_the_reason() {
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    for (bind, why) in [
        ("/var/run/docker.sock:/var/run/docker.sock", "docker"),
        ("/:/host", "/"),
        ("/etc:/etc2:ro", "/etc"),
    ] {
        write_config(
            &home,
            &llm,
            sandbox_config(json!({"docker": {"binds": [bind]}})),
        );
        let out = pincer(&home, &["gateway", "--port", "0"]);
        let t = text(&out);
        assert!(!out.status.success(), "{bind}: {t}");
        assert!(
            t.contains("sandbox") && t.contains("refused") && t.contains(why),
            "{bind}: {t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_actor_that_crashes_while_an_exec_runs_leaves_no_orphan_and_both_calls_finish() {
    let Some(d) = docker("a_sandbox_actor_that_crashes_while_an_exec_runs").await else {
        return;
    };
    let (_dir, home) = temp_home();
    let llm = mock_llm().await;
    // Two agents on two mock models (so each gets its own scripted replies), one shared
    // sandbox; no default model.
    write_mock_config(
        &home,
        &llm,
        json!({
            "models": {"providers": {"mock": {"models": [{"id": "m1"}, {"id": "m2"}]}}},
            "agents": {
                "defaults": {
                    "model": null,
                    "sandbox": sandbox_config(json!({"mode": "all", "scope": "shared"})),
                },
                "list": [
                    {"id": "main", "default": true, "model": "mock/m1"},
                    {"id": "ops", "model": "mock/m2"},
                ],
            },
            "tools": {"exec": {"ask": "off"}},
        }),
    );
    let containers = Containers::new(&d, &home);
    // The SandboxActor's 1st message is the long exec's lease, its 2nd the other
    // agent's lease, which arrives while the long exec runs: it panics there.
    let gw = Daemon::start(
        &home,
        &["--port", "0", "--inject-fault", "sandbox:panic@2"],
        &[],
    );
    let token = read_token(&home);
    let (mut s1, mut s2) = (
        connect(&gw.url(), &token).await,
        connect(&gw.url(), &token).await,
    );
    llm.push(
        Step::tool_call("exec", json!({"command": "sleep 2; echo long-done"})).for_model("m1"),
    );
    llm.push(Step::text("done").for_model("m1"));
    llm.push(Step::tool_call("exec", json!({"command": "echo short-done"})).for_model("m2"));
    llm.push(Step::text("done").for_model("m2"));
    let long = send(&mut s1, "agent:main:main").await;
    run_events(&mut s1, &long, true).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let short = send(&mut s2, "agent:ops:main").await;
    let short = tool_result(&mut s2, &short).await;
    assert!(
        text_of(&short).contains("short-done"),
        "retried against the restarted actor: {short}"
    );
    let long = tool_result(&mut s1, &long).await;
    assert!(
        text_of(&long).contains("long-done"),
        "the running exec finished: {long}"
    );
    let list = containers.list().await;
    assert_eq!(
        list.len(),
        1,
        "one shared container, adopted, no orphan: {list:?}"
    );
    let metrics = reqwest_like_get(&gw.addr, "/metrics").await;
    assert!(
        metrics.contains("pincer_actor_restarts_total{kind=\"sandbox\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_need_one_new_container_at_once_get_the_same_one() {
    let Some(Setup {
        home: _home,
        llm,
        containers,
        gw,
        mut s,
        _dir: _keep_dir,
        ..
    }) = setup(
        "sessions_that_need_one_new_container_at_once",
        json!({"mode": "all", "scope": "agent"}),
        &[],
    )
    .await
    else {
        return;
    };
    let mut s2 = connect(&gw.url(), &read_token(&_home)).await;
    // Both first requests get a tool call, both second requests the closing text.
    for _ in 0..2 {
        llm.push(Step::tool_call("exec", json!({"command": "hostname"})));
    }
    for _ in 0..2 {
        llm.push(Step::text("done"));
    }
    let (a, b) = (
        send(&mut s, "agent:main:telegram:group:1").await,
        send(&mut s2, "agent:main:telegram:group:2").await,
    );
    let (ra, rb) = tokio::join!(tool_result(&mut s, &a), tool_result(&mut s2, &b));
    assert!(text_of(&ra).starts_with("sandbox"), "{ra}");
    assert!(text_of(&rb).starts_with("sandbox"), "{rb}");
    assert_eq!(
        containers.list().await.len(),
        1,
        "one container for the agent scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_prune_removes_idle_and_old_containers_and_keeps_the_rest() {
    let Some(Setup {
        home,
        llm,
        containers,
        gw,
        mut s,
        _dir: _keep_dir,
        ..
    }) = setup(
        "sandbox_prune_removes_idle_and_old_containers",
        json!({"mode": "all", "prune": {"idleHours": 24, "maxAgeDays": 7}}),
        &[],
    )
    .await
    else {
        return;
    };
    let (idle, old, fresh) = (
        "agent:main:telegram:group:61",
        "agent:main:telegram:group:62",
        "agent:main:telegram:group:63",
    );
    for key in [idle, old] {
        let r = tool_turn(&mut s, &llm, key, "exec", json!({"command": "true"})).await;
        assert_eq!(r["isError"], false, "{r}");
    }
    assert_eq!(containers.list().await.len(), 2);
    // Age them in the store while the gateway is down: one idle for 25 hours, one made
    // 8 days ago (and used just now).
    drop(s);
    gw.signal(libc::SIGTERM);
    let _ = gw.wait();
    {
        let store = pincer_actors::store::Store::open(&home.join("state.redb")).unwrap();
        let hour = 3_600_000;
        for (scope, mut r) in store
            .sandboxes::<pincer_actors::sandbox::SandboxRecord>()
            .unwrap()
        {
            if r.session_key == idle {
                r.last_used -= 25 * hour;
            } else {
                r.created_at -= 8 * 24 * hour;
            }
            store.set_sandbox(&scope, Some(&r), true).unwrap();
        }
    }
    let gw = Daemon::start(&home, &["--port", "0"], &[]);
    let mut s = connect(&gw.url(), &read_token(&home)).await;
    // Both were kept at start-up (recorded, same policy); a third session makes a new one.
    let r = tool_turn(&mut s, &llm, fresh, "exec", json!({"command": "true"})).await;
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(containers.list().await.len(), 3);
    let pruned = s.request("sandbox.prune", None).await.unwrap();
    let mut removed: Vec<String> = pruned["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    removed.sort();
    let left = containers.list().await;
    assert_eq!(left.len(), 1, "{pruned} {left:?}");
    assert_eq!(left[0].labels["pincer.session"], fresh);
    let instance = pincer_actors::sandbox::instance_of(&home);
    let mut expected: Vec<String> = [idle, old]
        .iter()
        .map(|k| pincer_actors::sandbox::container_name(&instance, &format!("session:{k}")))
        .collect();
    expected.sort();
    assert_eq!(removed, expected);
}
