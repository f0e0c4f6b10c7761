//! `pincer doctor`: checks what a gateway needs and says how to fix each problem.
//! Exits 1 when a check fails; warnings alone exit 0.

use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;
use std::time::Duration;

use pincer_actors::config::{self, StateDir};
use pincer_actors::store::{GatewayLock, Store};
use serde::Serialize;
use serde_json::json;

use crate::setup::{self, Globals};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(
    name: &'static str,
    status: Status,
    message: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        status,
        message: message.into(),
        fix,
    }
}

pub async fn run(globals: &Globals, as_json: bool) -> ExitCode {
    let checks = match setup::state_dir(globals) {
        Ok(state) => checks(&state).await,
        Err(e) => vec![check(
            "state directory",
            Status::Fail,
            e,
            Some("set PINCER_HOME or HOME".into()),
        )],
    };
    let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warns = checks.iter().filter(|c| c.status == Status::Warn).count();
    if as_json {
        let v = json!({ "ok": fails == 0, "problems": fails, "warnings": warns, "checks": checks });
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON prints"));
    } else {
        for c in &checks {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{tag}  {:<16} {}", c.name, c.message);
            if let Some(fix) = &c.fix {
                println!("      {:<16} fix: {fix}", "");
            }
        }
        println!(
            "{} problem{}, {} warning{}",
            fails,
            if fails == 1 { "" } else { "s" },
            warns,
            if warns == 1 { "" } else { "s" }
        );
    }
    if fails == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Which model the default agent would use, or how to configure one.
async fn model_check(value: &serde_json::Value, state: &StateDir) -> Check {
    use pincer_actors::agent::config::{self as agents, AgentsConfig};
    let mut c = match agents::resolve(value, state.root(), &setup::env) {
        Ok(c) => c,
        Err(e) => return check("model", Status::Fail, e, None),
    };
    if c.needs_models() {
        let base = agents::ollama_base(&setup::env);
        let http = pincer_actors::agent::providers::http_client();
        if let Ok(Ok(models)) = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            pincer_actors::agent::providers::ollama_models(&http, &base),
        )
        .await
        {
            c.add_ollama(&base, &models);
        }
    }
    match c.agent(&c.default_agent).and_then(|a| a.models.first()) {
        Some(m) => {
            let source = c
                .providers
                .get(&m.provider)
                .map(|p| p.source.clone())
                .unwrap_or_default();
            check("model", Status::Ok, format!("{m} (from {source})"), None)
        }
        None => check(
            "model",
            Status::Fail,
            "no model is configured",
            Some(AgentsConfig::no_model_help().into()),
        ),
    }
}

async fn checks(state: &StateDir) -> Vec<Check> {
    let mut out = Vec::new();
    let root = state.root();
    match std::fs::metadata(root) {
        Err(_) => out.push(check(
            "state directory",
            Status::Warn,
            format!("{} does not exist yet", root.display()),
            Some("run `pincer onboard --yes` (or just start `pincer gateway`)".into()),
        )),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.push(check(
            "state directory",
            Status::Fail,
            format!(
                "{} can be read by other users (mode {:o})",
                root.display(),
                m.permissions().mode() & 0o777
            ),
            Some(format!("chmod 700 {}", root.display())),
        )),
        Ok(_) => out.push(check(
            "state directory",
            Status::Ok,
            format!("{} (private)", root.display()),
            None,
        )),
    }

    let loaded = match config::load(&state.config_path()) {
        Ok(l) => {
            let msg = if l.exists {
                format!("{} is valid", state.config_path().display())
            } else {
                format!("no {}; the defaults apply", state.config_path().display())
            };
            out.push(check("config", Status::Ok, msg, None));
            for w in &l.warnings {
                out.push(check(
                    "config",
                    Status::Warn,
                    w.to_string(),
                    Some("remove the key, or keep it for OpenClaw".into()),
                ));
            }
            Some(l)
        }
        Err(e) => {
            out.push(check(
                "config",
                Status::Fail,
                e.to_string(),
                Some("edit the lines named above; `pincer config validate` re-checks".into()),
            ));
            None
        }
    };

    if let Some(l) = &loaded {
        match config::resolve_gateway_auth(&l.config, state, &setup::env, false) {
            Ok(a) => {
                out.push(check("auth", Status::Ok, a.describe(state), None));
                match l.config.gateway.bind_ip(None).and_then(|ip| config::ensure_safe_bind(ip, &a.policy).map(|_| ip)) {
                    Ok(ip) => out.push(check("bind", Status::Ok, format!("{ip} ({})", l.config.gateway.bind), None)),
                    Err(e) => out.push(check("bind", Status::Fail, e.to_string(), None)),
                }
            }
            Err(e) if state.token_file().exists() => out.push(check("auth", Status::Fail, e.to_string(), None)),
            Err(_) => out.push(check(
                "auth",
                Status::Warn,
                "no gateway token yet",
                Some("it is generated on the first `pincer gateway` start, or by `pincer onboard --yes`".into()),
            )),
        }
    }

    if let Some(l) = &loaded {
        out.push(model_check(&l.value, state).await);
    }

    // Is a gateway running on this state directory?
    let running = root.exists() && GatewayLock::acquire(&state.pid_file(), root).is_err();
    if let Some(l) = &loaded {
        let port = setup::port(None, l).unwrap_or(l.config.gateway.port);
        if running {
            let pid = std::fs::read_to_string(state.pid_file()).unwrap_or_default();
            match healthz(port).await {
                true => out.push(check(
                    "gateway",
                    Status::Ok,
                    format!("running (pid {}) and healthy on port {port}", pid.trim()),
                    None,
                )),
                false => out.push(check(
                    "gateway",
                    Status::Fail,
                    format!(
                        "running (pid {}) but GET http://127.0.0.1:{port}/healthz does not answer",
                        pid.trim()
                    ),
                    Some("look at logs/gateway.log; restart it".into()),
                )),
            }
        } else {
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(_) => out.push(check("port", Status::Ok, format!("{port} is free"), None)),
                Err(e) => out.push(check(
                    "port",
                    Status::Fail,
                    format!("port {port} is not available: {e}"),
                    Some(format!(
                        "stop what uses it, or pick another: pincer config set gateway.port {}",
                        port.wrapping_add(1)
                    )),
                )),
            }
        }
    }

    if state.state_db().exists() && !running {
        match Store::open(&state.state_db()) {
            Ok(s) => out.push(check(
                "store",
                Status::Ok,
                format!(
                    "{} (schema {})",
                    state.state_db().display(),
                    s.schema_version().unwrap_or(0)
                ),
                None,
            )),
            Err(e) => out.push(check("store", Status::Fail, e.to_string(), None)),
        }
    }

    out.push(docker_check().await);
    if let Some(l) = &loaded
        && let Some(c) = sandbox_check(&l.value, state).await
    {
        out.push(c);
    }
    out
}

/// When an agent sandboxes sessions: its sandbox config is safe and its image exists.
async fn sandbox_check(value: &serde_json::Value, state: &StateDir) -> Option<Check> {
    let agents = pincer_actors::agent::config::resolve(value, state.root(), &setup::env).ok()?;
    let defaults = value
        .pointer("/agents/defaults/sandbox")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let mut images = Vec::new();
    for a in &agents.agents {
        let own = value
            .pointer("/agents/list")
            .and_then(serde_json::Value::as_array)
            .and_then(|l| l.iter().find(|x| x["id"] == a.id.as_str()))
            .and_then(|x| x.get("sandbox"));
        let cfg = match pincer_actors::sandbox::agent_config(&defaults, own) {
            Ok(c) => c,
            Err(e) => {
                return Some(check(
                    "sandbox",
                    Status::Fail,
                    format!("agent {}: {e}", a.id),
                    None,
                ));
            }
        };
        if cfg.mode == pincer_sandbox::config::Mode::Off {
            continue;
        }
        if let Err(e) = cfg.check(state.root(), &a.workspace) {
            return Some(check(
                "sandbox",
                Status::Fail,
                format!("agent {}: {e}", a.id),
                Some("change agents.*.sandbox in pincer.json; `pincer sandbox explain` shows the result".into()),
            ));
        }
        if !images.contains(&cfg.docker.image) {
            images.push(cfg.docker.image.clone());
        }
    }
    if images.is_empty() {
        return None;
    }
    let docker = match tokio::time::timeout(
        Duration::from_secs(3),
        pincer_sandbox::docker::Docker::connect(),
    )
    .await
    {
        Ok(Ok(d)) => d,
        _ => {
            return Some(check(
                "sandbox",
                Status::Fail,
                format!(
                    "sessions are sandboxed ({}) but Docker does not answer",
                    images.join(", ")
                ),
                Some("start dockerd (see the docker check above)".into()),
            ));
        }
    };
    for image in &images {
        if !docker.image_exists(image).await.unwrap_or(false) {
            return Some(check(
                "sandbox",
                Status::Fail,
                format!("the sandbox image {image} is missing"),
                Some("build it with `pincer sandbox setup` (from Debian packages, no registry needed)".into()),
            ));
        }
    }
    Some(check(
        "sandbox",
        Status::Ok,
        format!("sandbox image ready: {}", images.join(", ")),
        None,
    ))
}

async fn healthz(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// The Docker Engine answers `GET /_ping` on its socket.
async fn docker_check() -> Check {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = setup::env("DOCKER_HOST")
        .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let fix = Some(
        "only sandboxed tools need it: `apt-get install docker.io` and start dockerd".to_owned(),
    );
    let attempt = async {
        let mut s = tokio::net::UnixStream::connect(&socket)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        if buf.starts_with(b"HTTP/1.1 200") {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&buf[..buf.len().min(80)]).into_owned())
        }
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(())) => check(
            "docker",
            Status::Ok,
            format!("engine answers on {socket}"),
            None,
        ),
        Ok(Err(e)) => check(
            "docker",
            Status::Warn,
            format!("no Docker engine on {socket} ({e})"),
            fix,
        ),
        Err(_) => check(
            "docker",
            Status::Warn,
            format!("Docker engine on {socket} did not answer within 3 s"),
            fix,
        ),
    }
}
