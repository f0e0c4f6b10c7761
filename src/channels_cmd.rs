//! `pincer channels status` and `pincer pairing list|approve|reject`: the gateway's
//! channel accounts and the senders waiting to be let in.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::cli::{ChannelsCmd, PairingCmd};
use crate::commands::{print_json, run};
use crate::setup::Globals;

pub async fn channels(globals: &Globals, cmd: ChannelsCmd) -> ExitCode {
    match cmd {
        ChannelsCmd::Status { client } => {
            let v = match run(globals, &client, "channels.status", None).await {
                Ok(v) => v,
                Err(c) => return c,
            };
            if client.json {
                print_json(&v);
                return ExitCode::SUCCESS;
            }
            let mut any = false;
            for (channel, list) in v["channelAccounts"].as_object().into_iter().flatten() {
                for a in list.as_array().into_iter().flatten() {
                    any |= channel != "webchat";
                    println!("{}", status_line(a));
                }
            }
            if !any {
                println!(
                    "no channels configured (add one under channels.<name> in the config; see docs/channels.md)"
                );
            }
            ExitCode::SUCCESS
        }
    }
}

fn status_line(a: &Value) -> String {
    let n = |k: &str| a[k].as_u64().unwrap_or(0);
    if a["channel"] == "webchat" {
        return format!(
            "webchat:default  {} at {} ({} clients connected)",
            a["state"].as_str().unwrap_or("?"),
            a["bot"].as_str().unwrap_or("?"),
            n("connectedClients")
        );
    }
    let mut line = format!(
        "{}:{}  {}{}  in {} (routed {}, duplicates {}, refused {})  out {} (failed {})",
        a["channel"].as_str().unwrap_or("?"),
        a["accountId"].as_str().unwrap_or("?"),
        a["state"].as_str().unwrap_or("?"),
        a["bot"]
            .as_str()
            .map(|b| format!(" as {b}"))
            .unwrap_or_default(),
        n("inbound"),
        n("routed"),
        n("duplicates"),
        n("denied"),
        n("outbound"),
        n("failed"),
    );
    if let Some(e) = a["lastError"].as_str() {
        line.push_str(&format!("\n    last error: {e}"));
    }
    line
}

pub async fn pairing(globals: &Globals, cmd: PairingCmd) -> ExitCode {
    let (method, params, client) = match cmd {
        PairingCmd::List { client } => ("pairing.list", None, client),
        PairingCmd::Approve {
            channel,
            code,
            client,
        } => ("pairing.approve", Some(decision(&channel, &code)), client),
        PairingCmd::Reject {
            channel,
            code,
            client,
        } => ("pairing.reject", Some(decision(&channel, &code)), client),
    };
    let v = match run(globals, &client, method, params).await {
        Ok(v) => v,
        Err(c) => return c,
    };
    if client.json {
        print_json(&v);
        return ExitCode::SUCCESS;
    }
    if method == "pairing.list" {
        let list = v["requests"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            println!("no pairing requests");
        }
        for r in list {
            println!(
                "{}  {}:{}  sender {} ({})  code {}",
                r["status"].as_str().unwrap_or("?"),
                r["channel"].as_str().unwrap_or("?"),
                r["accountId"].as_str().unwrap_or("?"),
                r["senderId"].as_str().unwrap_or("?"),
                r["senderName"].as_str().unwrap_or(""),
                r["code"].as_str().unwrap_or("?"),
            );
        }
    } else {
        println!(
            "{} {} ({}) on {}",
            v["status"].as_str().unwrap_or("done"),
            v["senderId"].as_str().unwrap_or("?"),
            v["senderName"].as_str().unwrap_or(""),
            v["channel"].as_str().unwrap_or("?"),
        );
    }
    ExitCode::SUCCESS
}

fn decision(channel: &str, code: &str) -> Value {
    json!({
        "channel": channel,
        "code": code,
        "idempotencyKey": uuid::Uuid::new_v4().to_string(),
    })
}
