//! `pincer sandbox setup|list|explain|recreate|prune`.
//!
//! `setup` builds the sandbox image locally (no registry is needed: a Debian rootfs from
//! Debian packages, imported into the Engine) and `explain` reads the config; neither needs
//! a running gateway. `list`, `recreate` and `prune` ask the gateway, which owns the
//! containers and their records.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::cli::SandboxCmd;
use crate::commands::{print_json, run};
use crate::setup;
use crate::setup::Globals;

pub async fn sandbox(globals: &Globals, cmd: SandboxCmd) -> ExitCode {
    match cmd {
        SandboxCmd::Setup { image, test } => setup_image(image, test).await,
        SandboxCmd::Explain {
            agent,
            session,
            json,
        } => explain(globals, agent, session, json),
        SandboxCmd::List { client } => {
            let v = match run(globals, &client, "sandbox.list", None).await {
                Ok(v) => v,
                Err(c) => return c,
            };
            if client.json {
                print_json(&v);
                return ExitCode::SUCCESS;
            }
            let list = v["sandboxes"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!(
                    "no sandbox containers (sessions are sandboxed per agents.*.sandbox.mode)"
                );
            }
            for s in list {
                println!(
                    "{}  {}  scope {}  agent {}  {}{}",
                    s["name"].as_str().unwrap_or("?"),
                    if s["running"] == true {
                        "running"
                    } else {
                        "stopped"
                    },
                    s["scope"].as_str().unwrap_or("?"),
                    s["agentId"].as_str().unwrap_or("?"),
                    s["image"].as_str().unwrap_or(""),
                    s["suspended"]
                        .as_str()
                        .map(|w| format!("  SUSPENDED: {w}"))
                        .unwrap_or_default(),
                );
            }
            ExitCode::SUCCESS
        }
        SandboxCmd::Recreate {
            all,
            agent,
            session,
            client,
        } => {
            let mut params = json!({"idempotencyKey": uuid::Uuid::new_v4().to_string()});
            match (all, agent, session) {
                (true, None, None) => {}
                (false, Some(a), None) => params["agentId"] = json!(a),
                (false, None, Some(s)) => params["sessionKey"] = json!(s),
                _ => {
                    eprintln!("error: give exactly one of --all, --agent ID, --session KEY");
                    return ExitCode::from(2);
                }
            }
            removed(
                globals,
                &client,
                "sandbox.recreate",
                params,
                "the next use creates them afresh",
            )
            .await
        }
        SandboxCmd::Prune { client } => {
            let params = json!({"idempotencyKey": uuid::Uuid::new_v4().to_string()});
            removed(
                globals,
                &client,
                "sandbox.prune",
                params,
                "idle or old per agents.*.sandbox.prune",
            )
            .await
        }
    }
}

async fn removed(
    globals: &Globals,
    client: &crate::cli::ClientArgs,
    method: &str,
    params: Value,
    note: &str,
) -> ExitCode {
    let v = match run(globals, client, method, Some(params)).await {
        Ok(v) => v,
        Err(c) => return c,
    };
    if client.json {
        print_json(&v);
        return ExitCode::SUCCESS;
    }
    let names = v["removed"].as_array().cloned().unwrap_or_default();
    println!("removed {} container(s) ({note})", names.len());
    for n in names {
        println!("  {}", n.as_str().unwrap_or("?"));
    }
    ExitCode::SUCCESS
}

async fn setup_image(image: Option<String>, test: bool) -> ExitCode {
    use pincer_sandbox::image;
    let docker = match pincer_sandbox::docker::Docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let started = std::time::Instant::now();
    let result = if test {
        eprintln!(
            "building the small test image {} (busybox)",
            image::TEST_IMAGE
        );
        image::ensure_test_image(docker.raw())
            .await
            .map(|_| image::TEST_IMAGE.to_owned())
    } else {
        let tag = image.unwrap_or_else(|| image::DEFAULT_IMAGE.to_owned());
        eprintln!(
            "building {tag} from Debian packages ({}); this takes a minute or two",
            image::PACKAGES.join(", ")
        );
        let mut last_line = String::new();
        image::build_image(docker.raw(), &tag, &mut |p| {
            let line = p.to_string();
            if line != last_line {
                eprintln!("  {line}");
                last_line = line;
            }
        })
        .await
        .map(|_| tag)
    };
    // stdout: the image name, which agents.*.sandbox.docker.image takes.
    match result {
        Ok(tag) => {
            eprintln!("done in {:.0}s", started.elapsed().as_secs_f64());
            println!("{tag}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn explain(
    globals: &Globals,
    agent: Option<String>,
    session: Option<String>,
    json_out: bool,
) -> ExitCode {
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let state = match setup::state_dir(globals) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let loaded = match setup::load_config(&state) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let env = |k: &str| std::env::var(k).ok();
    let agents = match pincer_actors::agent::config::resolve(&loaded.value, state.root(), &env) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let id = agent.unwrap_or_else(|| agents.default_agent.clone());
    let Some(spec) = agents.agents.iter().find(|a| a.id == id) else {
        let ids: Vec<&str> = agents.agents.iter().map(|a| a.id.as_str()).collect();
        return fail(format!("no agent {id:?} (agents: {})", ids.join(", ")));
    };
    let key = session.unwrap_or_else(|| format!("agent:{id}:{}", agents.main_key));
    let defaults = loaded
        .value
        .pointer("/agents/defaults/sandbox")
        .cloned()
        .unwrap_or(Value::Null);
    let own = loaded
        .value
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|a| a["id"] == id.as_str()))
        .and_then(|a| a.get("sandbox"));
    let cfg = match pincer_actors::sandbox::agent_config(&defaults, own) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let problem = cfg
        .check(state.root(), &spec.workspace)
        .err()
        .map(|e| e.to_string());
    let sandboxed = pincer_actors::sandbox::sandboxed(&cfg, &id, &agents.main_key, &key);
    let plan = pincer_actors::sandbox::plan(&cfg, state.root(), &id, &spec.workspace, &key);
    let name = pincer_actors::sandbox::container_name(&plan.instance, &plan.scope);
    let d = &cfg.docker;
    let v = json!({
        "agentId": id, "sessionKey": key, "sandboxed": sandboxed,
        "mode": cfg.mode, "scope": cfg.scope, "workspaceAccess": cfg.workspace_access,
        "scopeKey": plan.scope, "container": name,
        "mounts": plan.mounts.iter().map(|m| json!({"host": m.host, "container": m.container, "readOnly": m.read_only})).collect::<Vec<_>>(),
        "docker": d, "configHash": plan.hash(), "problem": problem,
    });
    if json_out {
        print_json(&v);
    } else {
        println!("agent {id}, session {key}");
        if sandboxed {
            println!(
                "  sandboxed: yes (mode {:?}); exec runs in container {name}",
                cfg.mode
            );
        } else {
            println!(
                "  sandboxed: no (mode {:?}{}); tools run on the host in {}",
                cfg.mode,
                if matches!(cfg.mode, pincer_sandbox::config::Mode::NonMain) {
                    ", and this is the owner's main session"
                } else {
                    ""
                },
                spec.workspace.display()
            );
        }
        println!("  scope: {:?} (key {})", cfg.scope, plan.scope);
        for m in &plan.mounts {
            println!(
                "  mount: {} -> {}{}",
                m.host.display(),
                m.container,
                if m.read_only { " (read-only)" } else { "" }
            );
        }
        println!(
            "  image {}, network {}, read-only root {}, user {}, capDrop {:?}, memory {}, cpus {}, pids {}",
            d.image,
            d.network,
            d.read_only_root,
            d.user.as_deref().unwrap_or("(image's)"),
            d.cap_drop,
            d.memory.as_deref().unwrap_or("unlimited"),
            d.cpus.map_or("unlimited".into(), |c| c.to_string()),
            d.pids_limit.map_or("unlimited".into(), |p| p.to_string()),
        );
        println!(
            "  seccomp {}, no-new-privileges, tmpfs {:?}",
            d.seccomp_profile
                .as_deref()
                .unwrap_or("deploy/seccomp.json (built in)"),
            d.tmpfs
        );
        if let Some(p) = &problem {
            println!("  PROBLEM: {p}");
        }
    }
    if problem.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
