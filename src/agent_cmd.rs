//! `pincer agent -m "..."` (one turn, streamed to the terminal), `pincer sessions
//! list|show|reset`, `pincer agents list`, and `pincer mock-llm`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{AgentArgs, AgentsCmd, ChatArgs, ClientArgs, SessionsCmd};
use crate::client::Session;
use crate::commands::{call_options, fail, print_json, run};
use crate::setup::Globals;

/// Connects and completes the handshake, or says why not.
async fn open(globals: &Globals, args: &ClientArgs) -> Result<Session, ExitCode> {
    let opts = call_options(globals, args)?;
    Session::connect(&opts).await.map_err(fail)
}

/// Sends one message and streams the reply: text to stdout, tool activity and failover
/// notes to stderr. Exits 1 when the turn fails.
pub async fn agent(globals: &Globals, args: AgentArgs) -> ExitCode {
    let mut session = match open(globals, &args.client).await {
        Ok(s) => s,
        Err(c) => return c,
    };
    let mut params = json!({
        "message": args.message,
        "idempotencyKey": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(k) = &args.session {
        params["sessionKey"] = json!(k);
    } else if let Some(a) = &args.agent {
        // The gateway picks that agent's main session (agent:<id>:<session.mainKey>).
        params["agentId"] = json!(a);
    }
    if let Some(t) = &args.thinking {
        params["thinking"] = json!(t);
    }
    let accepted = match session.request("chat.send", Some(params)).await {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    stream_reply(&mut session, &accepted, args.client.json, args.wait).await
}

/// Prints a run's reply as it streams (text to stdout, tool and failover notes to stderr)
/// until its final `chat` event: success, or 1 when the turn failed, 3 on timeout.
async fn stream_reply(
    session: &mut Session,
    accepted: &Value,
    json_out: bool,
    wait: u64,
) -> ExitCode {
    let run_id = accepted["runId"].as_str().unwrap_or_default().to_owned();
    if accepted["status"] == "queued" {
        eprintln!(
            "(queued behind a turn already running in {})",
            accepted["sessionKey"]
        );
    }
    let mut pending: Vec<Value> = std::mem::take(&mut session.events);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut out = std::io::stdout();
    loop {
        let frame = if let Some(f) = (!pending.is_empty()).then(|| pending.remove(0)) {
            f
        } else {
            match tokio::time::timeout_at(deadline, session.next_frame()).await {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => return fail(e),
                Err(_) => {
                    eprintln!(
                        "error: no final answer within {} s (the turn goes on in the gateway; see `pincer sessions show`)",
                        wait
                    );
                    return ExitCode::from(3);
                }
            }
        };
        if frame["type"] != "event" || frame["payload"]["runId"] != run_id.as_str() {
            continue;
        }
        let p = &frame["payload"];
        match (frame["event"].as_str(), p["state"].as_str()) {
            (Some("chat"), Some("delta")) if !json_out => {
                if let Some(t) = p["message"]["content"][0]["text"].as_str() {
                    let _ = out.write_all(t.as_bytes());
                    let _ = out.flush();
                }
            }
            (Some("chat"), Some("final")) => {
                if json_out {
                    print_json(p);
                } else {
                    println!();
                }
                return ExitCode::SUCCESS;
            }
            (Some("chat"), Some(state @ ("error" | "aborted"))) => {
                if json_out {
                    print_json(p);
                } else {
                    eprintln!(
                        "\nerror ({state}): {}",
                        p["errorMessage"].as_str().unwrap_or(state)
                    );
                }
                return ExitCode::from(1);
            }
            (Some("agent"), _) if !json_out => {
                let d = &p["data"];
                match (p["stream"].as_str(), d["phase"].as_str()) {
                    (Some("tool"), Some("start")) => {
                        eprintln!(
                            "\n[tool {} {}]",
                            d["name"].as_str().unwrap_or("?"),
                            d["args"]
                        )
                    }
                    (Some("tool"), Some("result")) if d["isError"] == true => {
                        eprintln!(
                            "[tool {} failed: {}]",
                            d["name"].as_str().unwrap_or("?"),
                            d["result"].as_str().unwrap_or("")
                        )
                    }
                    (Some("lifecycle"), Some("failover")) => {
                        eprintln!(
                            "[failover {}: {}]",
                            d["layer"].as_str().unwrap_or("?"),
                            d["detail"].as_str().unwrap_or("")
                        )
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// `pincer chat`: an interactive chat over the gateway, one turn per line.
/// `/new` resets the session, `/quit` (or end of input) leaves.
pub async fn chat(globals: &Globals, args: ChatArgs) -> ExitCode {
    use tokio::io::AsyncBufReadExt;
    let mut session = match open(globals, &args.client).await {
        Ok(s) => s,
        Err(c) => return c,
    };
    let key = match &args.session {
        Some(k) => k.clone(),
        // The agent's main session: agent:<id>:<session.mainKey>.
        None => match session.request("agents.list", None).await {
            Ok(v) => format!(
                "agent:{}:{}",
                args.agent
                    .as_deref()
                    .or(v["defaultId"].as_str())
                    .unwrap_or("main"),
                v["mainKey"].as_str().unwrap_or("main")
            ),
            Err(e) => return fail(e),
        },
    };
    eprintln!("chatting in {key}; /new starts afresh, /quit leaves");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("> ");
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot read the terminal: {e}");
                return ExitCode::from(1);
            }
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => return ExitCode::SUCCESS,
            "/new" | "/reset" => {
                let params =
                    json!({"key": key, "idempotencyKey": uuid::Uuid::new_v4().to_string()});
                match session.request("sessions.reset", Some(params)).await {
                    Ok(_) => eprintln!("(session {key} reset)"),
                    Err(e) => eprintln!("error: {e}"),
                }
                continue;
            }
            _ => {}
        }
        let params = json!({"sessionKey": key, "message": line,
                            "idempotencyKey": uuid::Uuid::new_v4().to_string()});
        let accepted = match session.request("chat.send", Some(params)).await {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        let code = stream_reply(&mut session, &accepted, false, args.wait).await;
        if code == ExitCode::from(3) {
            return code;
        }
    }
}

pub async fn sessions(globals: &Globals, cmd: SessionsCmd) -> ExitCode {
    let (client, method, params) = match &cmd {
        SessionsCmd::List { client } => (client, "sessions.list", None),
        SessionsCmd::Show { key, limit, client } => (
            client,
            "chat.history",
            Some(json!({"sessionKey": key, "limit": limit})),
        ),
        SessionsCmd::Reset { key, client } => (
            client,
            "sessions.reset",
            Some(json!({"key": key, "idempotencyKey": uuid::Uuid::new_v4().to_string()})),
        ),
    };
    let v = match run(globals, client, method, params).await {
        Ok(v) => v,
        Err(c) => return c,
    };
    if client.json {
        print_json(&v);
        return ExitCode::SUCCESS;
    }
    match cmd {
        SessionsCmd::List { .. } => {
            let list = v["sessions"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no sessions yet; start one with `pincer agent -m \"hello\"`");
            }
            for s in list {
                println!(
                    "{}  turns {}  model {}",
                    s["key"].as_str().unwrap_or("?"),
                    s["turns"],
                    s["model"].as_str().unwrap_or("-")
                );
            }
        }
        SessionsCmd::Show { .. } => {
            for m in v["messages"].as_array().cloned().unwrap_or_default() {
                let role = m["role"].as_str().unwrap_or("?");
                let text = m["content"].as_str().unwrap_or("");
                match role {
                    "tool" => println!(
                        "  [{} -> {} chars]",
                        m["name"].as_str().unwrap_or("tool"),
                        text.len()
                    ),
                    _ => println!("{role}: {text}"),
                }
            }
        }
        SessionsCmd::Reset { key, .. } => println!("session {key} reset"),
    }
    ExitCode::SUCCESS
}

pub async fn agents(globals: &Globals, cmd: AgentsCmd) -> ExitCode {
    let (client, method, params, full) = match &cmd {
        AgentsCmd::List { client } => (client, "agents.list", None, false),
        AgentsCmd::Prompt {
            agent,
            session,
            full,
            client,
        } => (
            client,
            "agents.prompt",
            Some(json!({"agentId": agent, "sessionKey": session})),
            *full,
        ),
    };
    let v = match run(globals, client, method, params).await {
        Ok(v) => v,
        Err(c) => return c,
    };
    if client.json {
        print_json(&v);
        return ExitCode::SUCCESS;
    }
    if method == "agents.list" {
        for a in v["agents"].as_array().cloned().unwrap_or_default() {
            println!(
                "{}{}  model {}  tools {}  workspace {}",
                a["id"].as_str().unwrap_or("?"),
                if a["default"] == true {
                    " (default)"
                } else {
                    ""
                },
                a["model"].as_str().unwrap_or("none"),
                a["toolProfile"].as_str().unwrap_or("?"),
                a["workspace"].as_str().unwrap_or("?")
            );
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "prompt of agent {} in session {}",
        v["agentId"].as_str().unwrap_or("?"),
        v["sessionKey"].as_str().unwrap_or("?")
    );
    for p in v["parts"].as_array().cloned().unwrap_or_default() {
        println!(
            "  {:>7} chars  {}{}",
            p["chars"],
            p["name"].as_str().unwrap_or("?"),
            if p["truncated"] == true {
                " (truncated at bootstrapMaxChars)"
            } else {
                ""
            }
        );
    }
    println!(
        "  {:>7} chars  fixed cost of every model call (system prompt + tool schemas)",
        v["fixedChars"]
    );
    println!("  {:>7} chars  in all, with the history", v["totalChars"]);
    if full {
        println!("\n{}", v["system"].as_str().unwrap_or(""));
    }
    ExitCode::SUCCESS
}

/// `pincer mock-llm`: the fault-injecting LLM server, in the foreground.
pub async fn mock_llm(addr: std::net::SocketAddr) -> ExitCode {
    match pincer_mockllm::MockLlm::start(addr).await {
        Ok(m) => {
            let a = m.addr();
            println!("mock LLM listening on http://{a}");
            println!("  openai-completions    baseUrl http://{a}/v1");
            println!("  anthropic-messages    baseUrl http://{a}");
            println!("  google-generative-ai  baseUrl http://{a}/v1beta");
            println!(
                "  script replies and faults: POST http://{a}/__mock/steps (see mockllm/README.md)"
            );
            let _ = tokio::signal::ctrl_c().await;
            m.shutdown().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            ExitCode::from(1)
        }
    }
}
