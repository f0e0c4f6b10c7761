//! `pincer cron add|list|rm|run|runs|status`: scheduled jobs on a running gateway (the
//! `cron.*` methods), like OpenClaw's `openclaw cron`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use pincer_actors::gateway::now_ms;
use pincer_actors::schedule::cron::{parse_at, parse_duration, parse_schedule, rfc3339};
use serde_json::{Value, json};

use crate::cli::ClientArgs;
use crate::client::{self, ClientError};
use crate::commands::{call_options, fail, print_json, run};
use crate::setup::Globals;

#[derive(Debug, Subcommand)]
pub enum CronCmd {
    /// Add a job: `pincer cron add SCHEDULE MESSAGE`, or `pincer cron add --every 30m MESSAGE`
    #[command(after_help = "SCHEDULE is one of:\n  \
        a cron expression, 5 fields (minute hour day month weekday) or 6 (seconds first),\n    \
        read in --tz or the gateway's local zone: \"0 7 * * 1-5\" (07:00 on weekdays)\n  \
        every DURATION: \"every 30m\", \"every 1h30m\" (units ms, s, m, h, d)\n  \
        at TIME: \"at 2026-12-03T09:00\" (UTC, or in --tz), \"at 2026-12-03T09:00+01:00\",\n    \
        \"at 20m\" (20 minutes from now)\n\
        With --at or --every, give MESSAGE alone.\n\n\
        Examples:\n  \
        pincer cron add \"0 7 * * *\" \"Summarise my inbox\" --tz Europe/Paris --deliver telegram:12345\n  \
        pincer cron add --every 2h \"Check the build\" --agent ops --name builds\n  \
        pincer cron add --at 20m --main \"Reminder: stand up and stretch\"")]
    Add(Box<CronAddArgs>),
    /// The jobs, soonest due first (disabled ones too)
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a job and its run history
    #[command(visible_alias = "remove")]
    Rm {
        /// The job's id (`pincer cron list` shows them)
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run a job now and wait for how it went (up to three quarters of --timeout); exits 1
    /// when the run failed
    Run {
        /// The job's id
        id: String,
        /// Only run it if it is due (its next time has come)
        #[arg(long)]
        due: bool,
        /// Do not wait: answer once the run has started
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A job's runs, newest first: when, why, outcome, duration, summary or error
    Runs {
        /// The job's id
        id: String,
        /// How many runs to show (at most 200)
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Whether the scheduler fires jobs, how many there are, when it next wakes
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct CronAddArgs {
    /// SCHEDULE then MESSAGE (see below); MESSAGE alone with --at or --every
    #[arg(value_name = "SCHEDULE MESSAGE", num_args = 1..=2, required = true)]
    pub args: Vec<String>,
    /// The agent that runs it (default: the default agent)
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Send the reply to this chat: CHANNEL:TO, e.g. telegram:12345 or slack:C0123
    #[arg(long, value_name = "CHANNEL:TO")]
    pub deliver: Option<String>,
    /// The channel account that delivers (default: the one called default, else the only one)
    #[arg(long, value_name = "ID", requires = "deliver")]
    pub account: Option<String>,
    /// A name, shown in lists and at the start of the message
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Time zone (IANA, e.g. Europe/Paris) for a cron expression and for an --at time
    /// without an offset
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Run as its own agent turn in a fresh session agent:<agent>:cron:<id> (the default)
    #[arg(long, conflicts_with = "main")]
    pub isolated: bool,
    /// Tell the agent's main session instead, as a system event
    #[arg(long)]
    pub main: bool,
    /// Once, at TIME (see below); MESSAGE is then the only argument
    #[arg(long, value_name = "TIME", conflicts_with = "every")]
    pub at: Option<String>,
    /// Every DURATION (30m, 1h30m, 2d); MESSAGE is then the only argument
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Model for the turn, provider/model (isolated jobs)
    #[arg(long, value_name = "MODEL", conflicts_with = "main")]
    pub model: Option<String>,
    /// Thinking level for the turn: off, low, medium, high (isolated jobs)
    #[arg(long, value_name = "LEVEL", conflicts_with = "main")]
    pub thinking: Option<String>,
    /// The turn is aborted after this many seconds (default 600; isolated jobs)
    #[arg(long, value_name = "SECS", conflicts_with = "main")]
    pub timeout_seconds: Option<u64>,
    /// Keep a one-shot (--at) job after it ran (disabled) instead of deleting it
    #[arg(long)]
    pub keep_after_run: bool,
    /// Add it disabled
    #[arg(long)]
    pub disabled: bool,
    /// The job's id (default: a generated one); letters, digits, - and _
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn cron(globals: &Globals, cmd: CronCmd) -> ExitCode {
    match cmd {
        CronCmd::Add(args) => add(globals, *args).await,
        CronCmd::List { client } => {
            let params = json!({"includeDisabled": true});
            let v = match run(globals, &client, "cron.list", Some(params)).await {
                Ok(v) => v,
                Err(c) => return c,
            };
            if client.json {
                print_json(&v);
            } else {
                let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
                if jobs.is_empty() {
                    println!(
                        "no cron jobs (add one: pincer cron add \"0 7 * * *\" \"Good morning\")"
                    );
                }
                for j in &jobs {
                    println!("{}", job_line(j));
                }
            }
            ExitCode::SUCCESS
        }
        CronCmd::Rm { id, client } => {
            let p = json!({"jobId": id, "idempotencyKey": uuid::Uuid::new_v4().to_string()});
            match run(globals, &client, "cron.remove", Some(p)).await {
                Ok(v) if client.json => print_json(&v),
                Ok(_) => println!("removed cron job {id} and its run history"),
                Err(c) => return c,
            }
            ExitCode::SUCCESS
        }
        CronCmd::Run {
            id,
            due,
            no_wait,
            client,
        } => run_now(globals, id, due, no_wait, client).await,
        CronCmd::Runs { id, limit, client } => {
            let p = json!({"jobId": id, "limit": limit});
            let v = match run(globals, &client, "cron.runs", Some(p)).await {
                Ok(v) => v,
                Err(c) => return c,
            };
            if client.json {
                print_json(&v);
                return ExitCode::SUCCESS;
            }
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            if entries.is_empty() {
                println!("job {id} has not run yet");
            }
            for e in &entries {
                println!("{}", run_line(e));
            }
            ExitCode::SUCCESS
        }
        CronCmd::Status { client } => {
            let v = match run(globals, &client, "cron.status", None).await {
                Ok(v) => v,
                Err(c) => return c,
            };
            if client.json {
                print_json(&v);
            } else {
                println!("{}", status_line(&v));
            }
            ExitCode::SUCCESS
        }
    }
}

async fn add(globals: &Globals, args: CronAddArgs) -> ExitCode {
    let params = match add_params(&args, now_ms()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let v = match run(globals, &args.client, "cron.add", Some(params)).await {
        Ok(v) => v,
        Err(c) => return c,
    };
    if args.client.json {
        print_json(&v);
    } else {
        println!("added {}", job_line(&v));
    }
    ExitCode::SUCCESS
}

/// The `cron.add` params for `pincer cron add`.
pub fn add_params(a: &CronAddArgs, now_ms: u64) -> Result<Value, String> {
    let tz = a.tz.as_deref();
    let (schedule, message) = match (&a.at, &a.every, a.args.as_slice()) {
        (Some(at), None, [m]) => (
            json!({"kind": "at", "at": rfc3339(parse_at(at, tz, now_ms).map_err(|e| e.to_string())?)}),
            m,
        ),
        (None, Some(every), [m]) => (
            json!({"kind": "every", "everyMs": parse_duration(every).map_err(|e| e.to_string())?}),
            m,
        ),
        (None, None, [s, m]) => (
            serde_json::to_value(parse_schedule(s, tz, now_ms).map_err(|e| e.to_string())?)
                .expect("a schedule serialises"),
            m,
        ),
        (None, None, [_]) => {
            return Err(
                "give SCHEDULE and MESSAGE, e.g. pincer cron add \"0 7 * * *\" \"Good morning\" (or --at/--every with MESSAGE alone)"
                    .into(),
            );
        }
        _ => {
            return Err(
                "with --at or --every, give MESSAGE alone (the schedule is the flag)".into(),
            );
        }
    };
    let mut p = if a.main {
        json!({"sessionTarget": "main", "payload": {"kind": "systemEvent", "text": message}})
    } else {
        let mut payload = json!({"kind": "agentTurn", "message": message});
        for (k, v) in [("model", &a.model), ("thinking", &a.thinking)] {
            if let Some(v) = v {
                payload[k] = json!(v);
            }
        }
        if let Some(t) = a.timeout_seconds {
            payload["timeoutSeconds"] = json!(t);
        }
        json!({"sessionTarget": "isolated", "payload": payload})
    };
    p["schedule"] = schedule;
    for (k, v) in [("name", &a.name), ("agentId", &a.agent), ("id", &a.id)] {
        if let Some(v) = v {
            p[k] = json!(v);
        }
    }
    if let Some(d) = &a.deliver {
        let (channel, to) = d
            .split_once(':')
            .filter(|(c, t)| !c.trim().is_empty() && !t.trim().is_empty())
            .ok_or_else(|| {
                format!("--deliver {d:?}: expected CHANNEL:TO, e.g. telegram:12345 or slack:C0123")
            })?;
        p["delivery"] = json!({"mode": "announce", "channel": channel.trim(), "to": to.trim()});
        if let Some(acc) = &a.account {
            p["delivery"]["accountId"] = json!(acc);
        }
    }
    if a.keep_after_run {
        p["deleteAfterRun"] = json!(false);
    }
    if a.disabled {
        p["enabled"] = json!(false);
    }
    p["idempotencyKey"] = json!(uuid::Uuid::new_v4().to_string());
    Ok(p)
}

/// `cron.run`, waiting for the outcome unless told not to.
async fn run_now(
    globals: &Globals,
    id: String,
    due: bool,
    no_wait: bool,
    client: ClientArgs,
) -> ExitCode {
    let opts = match call_options(globals, &client) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let wait_ms = if no_wait { 0 } else { client.timeout * 3 / 4 };
    let p = json!({
        "jobId": id, "mode": if due { "due" } else { "force" }, "waitMs": wait_ms,
        "idempotencyKey": uuid::Uuid::new_v4().to_string(),
    });
    let v = match client::call(&opts, "cron.run", Some(p)).await {
        Ok(v) => v,
        Err(e @ ClientError::Rpc { .. }) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        Err(e) => return fail(e),
    };
    if client.json {
        print_json(&v);
    } else if v["ran"] == false {
        println!("job {id} is not due; not run (drop --due to run it anyway)");
    } else if v["run"].is_object() {
        println!("{}", run_line(&v["run"]));
    } else {
        println!(
            "run #{} of job {id} started in session {}; still running (`pincer cron runs {id}` shows how it went)",
            v["seq"],
            v["sessionKey"].as_str().unwrap_or("?")
        );
    }
    if v["run"]["status"] == "error" {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `brief  on  cron "0 7 * * *" Europe/Paris  isolated  next 2026-...  last ok  (Morning brief)`.
fn job_line(j: &Value) -> String {
    let s = &j["schedule"];
    let schedule = match s["kind"].as_str() {
        Some("at") => format!("at {}", s["at"].as_str().unwrap_or("?")),
        Some("every") => format!("every {}", ms_text(s["everyMs"].as_u64().unwrap_or(0))),
        Some("cron") => format!(
            "cron \"{}\" {}",
            s["expr"].as_str().unwrap_or("?"),
            s["tz"].as_str().unwrap_or("(local time)")
        ),
        _ => "?".into(),
    };
    let st = &j["state"];
    let mut line = format!(
        "{}  {}  {schedule}  {}",
        j["id"].as_str().unwrap_or("?"),
        if j["enabled"] == true { "on " } else { "off" },
        j["sessionTarget"].as_str().unwrap_or("?"),
    );
    if let Some(a) = j["agentId"].as_str() {
        line.push_str(&format!(" agent {a}"));
    }
    match st["nextRunAtMs"].as_u64() {
        Some(t) => line.push_str(&format!("  next {}", rfc3339(t))),
        None => line.push_str("  next -"),
    }
    if let Some(l) = st["lastStatus"].as_str() {
        line.push_str(&format!("  last {l}"));
    }
    if let (Some(c), Some(t)) = (
        j["delivery"]["channel"].as_str(),
        j["delivery"]["to"].as_str(),
    ) {
        line.push_str(&format!("  -> {c}:{t}"));
    }
    if let Some(n) = j["name"].as_str() {
        line.push_str(&format!("  ({n})"));
    }
    line
}

/// `#3  2026-...  manual  ok  1.2 s  summary`.
fn run_line(r: &Value) -> String {
    let text = r["error"]
        .as_str()
        .or(r["summary"].as_str())
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(120)
        .collect::<String>();
    format!(
        "#{}  {}  {}  {}  {}  {}",
        r["seq"],
        rfc3339(r["startedAtMs"].as_u64().unwrap_or(0)),
        r["trigger"].as_str().unwrap_or("?"),
        r["status"].as_str().unwrap_or("?"),
        r["durationMs"]
            .as_u64()
            .map(ms_text)
            .unwrap_or_else(|| "-".into()),
        text
    )
}

fn status_line(v: &Value) -> String {
    let mut line = format!(
        "scheduler {}: {} jobs ({} enabled), {} running",
        if v["enabled"] == true {
            "on"
        } else {
            "off (cron.enabled is false: jobs run only by hand)"
        },
        v["jobs"],
        v["enabledJobs"],
        v["running"]
    );
    if let Some(t) = v["nextWakeAtMs"].as_u64() {
        line.push_str(&format!(", next at {}", rfc3339(t)));
    }
    line
}

/// `1.25 s`, `30m`, `1h30m`, `250 ms`.
fn ms_text(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 if !ms.is_multiple_of(1000) => format!("{:.1} s", ms as f64 / 1000.0),
        1_000..60_000 => format!("{}s", ms / 1000),
        _ => {
            let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
            let mut out = String::new();
            if h > 0 {
                out.push_str(&format!("{h}h"));
            }
            if m > 0 {
                out.push_str(&format!("{m}m"));
            }
            if s > 0 {
                out.push_str(&format!("{s}s"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: CronCmd,
    }

    /// 2026-03-02 00:00:00 UTC.
    const T0: u64 = 1_772_409_600_000;

    fn params(argv: &[&str]) -> Result<Value, String> {
        let mut all = vec!["t", "add"];
        all.extend_from_slice(argv);
        let CronCmd::Add(a) = T::try_parse_from(all).map_err(|e| e.to_string())?.cmd else {
            panic!("not add")
        };
        let mut p = add_params(&a, T0)?;
        p.as_object_mut().unwrap().remove("idempotencyKey");
        Ok(p)
    }

    #[test]
    fn add_builds_openclaw_job_params() {
        assert_eq!(
            params(&[
                "0 7 * * 1-5",
                "Summarise",
                "--tz",
                "Europe/Paris",
                "--deliver",
                "slack:channel:C1",
                "--agent",
                "ops",
                "--name",
                "brief",
                "--thinking",
                "low"
            ])
            .unwrap(),
            json!({"schedule": {"kind": "cron", "expr": "0 7 * * 1-5", "tz": "Europe/Paris"},
                "sessionTarget": "isolated",
                "payload": {"kind": "agentTurn", "message": "Summarise", "thinking": "low"},
                "delivery": {"mode": "announce", "channel": "slack", "to": "channel:C1"},
                "agentId": "ops", "name": "brief"})
        );
        assert_eq!(
            params(&["--at", "20m", "--main", "stretch", "--keep-after-run"]).unwrap(),
            json!({"schedule": {"kind": "at", "at": "2026-03-02T00:20:00.000Z"},
                "sessionTarget": "main", "payload": {"kind": "systemEvent", "text": "stretch"},
                "deleteAfterRun": false})
        );
        let every = params(&["--every", "1h30m", "m", "--disabled", "--id", "x"]).unwrap();
        assert_eq!(
            every["schedule"],
            json!({"kind": "every", "everyMs": 5_400_000})
        );
        assert_eq!(
            (&every["enabled"], &every["id"]),
            (&json!(false), &json!("x"))
        );
        let grammar = params(&["every 5m", "m"]).unwrap();
        assert_eq!(grammar["schedule"]["everyMs"], 300_000);
        let at = params(&["at 2026-03-02T09:00", "m", "--tz", "Europe/Paris"]).unwrap();
        assert_eq!(at["schedule"]["at"], "2026-03-02T08:00:00.000Z");
    }

    #[test]
    fn add_refuses_what_it_cannot_read_and_says_why() {
        for (argv, want) in [
            (&["only"][..], "give SCHEDULE and MESSAGE"),
            (&["--every", "5m", "a", "b"][..], "give MESSAGE alone"),
            (&["* * *", "m"][..], "has 3 fields"),
            (&["--every", "5", "m"][..], "is not a duration"),
            (
                &["0 7 * * *", "m", "--deliver", "telegram"][..],
                "expected CHANNEL:TO",
            ),
            (
                &["0 7 * * *", "m", "--main", "--model", "x"][..],
                "cannot be used with",
            ),
            (
                &["--at", "x", "--every", "5m", "m"][..],
                "cannot be used with",
            ),
        ] {
            let e = params(argv).unwrap_err();
            assert!(e.contains(want), "{argv:?}: {e}");
        }
    }

    #[test]
    fn lines_read_naturally() {
        let job = json!({"id": "brief", "enabled": true, "sessionTarget": "isolated",
            "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "UTC"}, "name": "Brief",
            "delivery": {"channel": "telegram", "to": "5"},
            "state": {"nextRunAtMs": T0, "lastStatus": "ok"}});
        assert_eq!(
            job_line(&job),
            "brief  on   cron \"0 7 * * *\" UTC  isolated  next 2026-03-02T00:00:00.000Z  last ok  -> telegram:5  (Brief)"
        );
        let every = json!({"id": "e", "enabled": false, "sessionTarget": "main", "agentId": "ops",
            "schedule": {"kind": "every", "everyMs": 5_400_000}, "state": {}});
        assert_eq!(
            job_line(&every),
            "e  off  every 1h30m  main agent ops  next -"
        );
        let run = json!({"seq": 3, "startedAtMs": T0, "trigger": "manual", "status": "error",
            "durationMs": 1250, "error": "model down\nmore"});
        assert_eq!(
            run_line(&run),
            "#3  2026-03-02T00:00:00.000Z  manual  error  1.2 s  model down"
        );
        assert_eq!(ms_text(250), "250 ms");
        assert_eq!(ms_text(30_000), "30s");
        let st =
            json!({"enabled": true, "jobs": 3, "enabledJobs": 2, "running": 0, "nextWakeAtMs": T0});
        assert_eq!(
            status_line(&st),
            "scheduler on: 3 jobs (2 enabled), 0 running, next at 2026-03-02T00:00:00.000Z"
        );
    }
}
