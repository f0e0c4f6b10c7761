//! Client-side commands: `pincer gateway call`, `pincer health`, `pincer status`.

use std::process::ExitCode;
use std::time::Duration;

use pincer_actors::protocol::ConnectAuth;
use serde_json::Value;

use crate::cli::{CallArgs, ClientArgs};
use crate::client::{self, CallOptions};
use crate::setup::{self, Globals};

/// `pincer gateway call <method> [--params JSON]`.
pub async fn call(globals: &Globals, args: CallArgs) -> ExitCode {
    let params = match args.params.as_deref().map(parse_params).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = if args.expect_final {
        match call_options(globals, &args.client) {
            Ok(opts) => client::call_final(&opts, &args.method, params)
                .await
                .map_err(fail),
            Err(code) => Err(code),
        }
    } else {
        run(globals, &args.client, &args.method, params).await
    };
    match result {
        Ok(payload) => {
            print_json(&payload);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `pincer health`.
pub async fn health(globals: &Globals, args: ClientArgs) -> ExitCode {
    match run(globals, &args, "health", None).await {
        Ok(payload) if args.json => {
            print_json(&payload);
            exit_for(&payload)
        }
        Ok(payload) => {
            let ok = payload["ok"] == true;
            let channels = payload["channels"].as_object().map_or(0, |c| c.len());
            println!(
                "{} (answered in {} ms; {} channel{} configured)",
                if ok {
                    "gateway is healthy"
                } else {
                    "gateway reports a problem"
                },
                payload["durationMs"].as_u64().unwrap_or(0),
                channels,
                if channels == 1 { "" } else { "s" }
            );
            exit_for(&payload)
        }
        Err(code) => code,
    }
}

/// `pincer status`.
pub async fn status(globals: &Globals, args: ClientArgs) -> ExitCode {
    match run(globals, &args, "status", None).await {
        Ok(payload) if args.json => {
            print_json(&payload);
            ExitCode::SUCCESS
        }
        Ok(p) => {
            let uptime = Duration::from_millis(p["uptimeMs"].as_u64().unwrap_or(0));
            println!(
                "pincer {} up {}",
                p["version"].as_str().unwrap_or("?"),
                human_duration(uptime)
            );
            println!(
                "  listening   {}",
                p["gateway"]["listen"].as_str().unwrap_or("?")
            );
            println!(
                "  auth        {}",
                p["gateway"]["authMode"].as_str().unwrap_or("?")
            );
            println!("  clients     {}", p["gateway"]["connections"]);
            if let Some(c) = p["configPath"].as_str() {
                println!("  config      {c}");
            }
            if let Some(s) = p["stateDir"].as_str() {
                println!("  state       {s}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Where and how a client command reaches the gateway, or exit code 2 with the reason.
pub fn call_options(globals: &Globals, args: &ClientArgs) -> Result<CallOptions, ExitCode> {
    let target = setup::client_target(globals, args).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    Ok(CallOptions {
        url: target.url,
        auth: ConnectAuth {
            token: target.token,
            password: target.password,
            ..Default::default()
        },
        timeout: Duration::from_millis(args.timeout),
        scopes: None,
    })
}

/// Reports a client error and gives its exit code.
pub fn fail(e: client::ClientError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code())
}

/// Calls one method on the gateway `args` names; errors are printed.
pub async fn run(
    globals: &Globals,
    args: &ClientArgs,
    method: &str,
    params: Option<Value>,
) -> Result<Value, ExitCode> {
    let opts = call_options(globals, args)?;
    client::call(&opts, method, params).await.map_err(fail)
}

fn parse_params(raw: &str) -> Result<Value, String> {
    let v: Value =
        json5::from_str(raw).map_err(|e| format!("--params is not valid JSON/JSON5: {e}"))?;
    if !v.is_object() {
        return Err(format!(
            "--params must be an object like '{{\"key\": \"value\"}}', got {v}"
        ));
    }
    Ok(v)
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
pub fn print_json(v: &Value) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(v).expect("JSON prints");
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn exit_for(health: &Value) -> ExitCode {
    if health["ok"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `3d 4h`, `5m 2s`, `42s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{mins}m {secs}s"),
        (0, _, _) => format!("{hours}h {mins}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_accept_json5_objects_only() {
        assert_eq!(
            parse_params("{a: 1, 'b': 'x',}").unwrap(),
            serde_json::json!({"a": 1, "b": "x"})
        );
        assert!(
            parse_params("[1]")
                .unwrap_err()
                .contains("must be an object")
        );
        assert!(parse_params("{").unwrap_err().contains("not valid"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(302)), "5m 2s");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 60)), "3h 1m");
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86_400 + 7200)),
            "2d 2h"
        );
    }
}
