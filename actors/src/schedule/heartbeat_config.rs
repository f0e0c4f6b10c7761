//! The pure half of heartbeats: `agents.defaults.heartbeat` / `agents.list[].heartbeat`
//! resolved per agent, the cost guard's decision, the heartbeat message, day arithmetic
//! for the daily token budget. No I/O except [`read_heartbeat_file`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// OpenClaw's default heartbeat prompt.
pub const DEFAULT_PROMPT: &str = "Read HEARTBEAT.md if it exists (workspace context). Follow it strictly. Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply HEARTBEAT_OK.";
/// `heartbeat.every` when unset.
pub const DEFAULT_EVERY: &str = "30m";
/// The shortest `heartbeat.every` taken: a shorter one is a configuration error.
pub const MIN_EVERY: Duration = Duration::from_secs(60);
/// `heartbeat.ackMaxChars` when unset.
pub const DEFAULT_ACK_MAX_CHARS: usize = 300;
/// `heartbeat.dailyTokenBudget` when unset: tokens (input + output) per agent per UTC day.
pub const DEFAULT_DAILY_TOKEN_BUDGET: u64 = 200_000;
/// HEARTBEAT.md is put in the heartbeat message up to this many characters.
pub const MAX_FILE_CHARS: usize = 20_000;
/// The file the cost guard reads in the agent's workspace.
pub const HEARTBEAT_FILE: &str = "HEARTBEAT.md";

const DAY_MS: u64 = 86_400_000;

/// Where a heartbeat's reply goes when it is not an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The chat the agent's main session last answered (none yet: nowhere).
    Last,
    /// Nowhere: the reply stays in the transcript.
    None,
    /// A chat on a channel: `to` on `account` (`None`: the channel's default account).
    Channel {
        channel: String,
        to: String,
        account: Option<String>,
    },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Last => "last".into(),
            Target::None => "none".into(),
            Target::Channel { channel, to, .. } => format!("{channel}:{to}"),
        }
    }
}

/// One agent's heartbeat settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    /// `None`: heartbeats are off for this agent.
    pub every: Option<Duration>,
    /// `every` as written (for status).
    pub every_text: String,
    /// `provider/model` for heartbeat turns (`None`: the agent's own).
    pub model: Option<String>,
    pub target: Target,
    pub prompt: String,
    pub ack_max_chars: usize,
    /// Tokens per UTC day; 0: no limit.
    pub daily_token_budget: u64,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            every: Some(Duration::from_secs(30 * 60)),
            every_text: DEFAULT_EVERY.into(),
            model: None,
            target: Target::Last,
            prompt: DEFAULT_PROMPT.into(),
            ack_max_chars: DEFAULT_ACK_MAX_CHARS,
            daily_token_budget: DEFAULT_DAILY_TOKEN_BUDGET,
        }
    }
}

/// An agent that has heartbeats configured (possibly off).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentHeartbeat {
    pub agent: String,
    pub workspace: PathBuf,
    pub config: HeartbeatConfig,
    /// The config key the settings come from (`agents.defaults.heartbeat`,
    /// `agents.list.2.heartbeat`): what the budget notice tells the user to raise.
    pub source: String,
}

/// Parses a duration: `30m`, `1h`, `90s`, `1h30m`, `500ms`, `1d`; a bare number is minutes.
/// `None` for `0` of any unit and for `off`.
pub fn parse_every(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim().to_ascii_lowercase();
    if t == "off" || t == "none" || t == "false" {
        return Ok(None);
    }
    if t.is_empty() {
        return Err("is empty; use a duration like \"30m\", \"1h\" or \"off\"".into());
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok((n > 0).then(|| Duration::from_secs(n * 60)));
    }
    let mut total = Duration::ZERO;
    let mut rest = t.as_str();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration; use a number with a unit (ms, s, m, h, d), like \"30m\" or \"1h30m\", or \"off\""
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: {} is too large", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" | "sec" | "secs" => Duration::from_secs(1),
            "m" | "min" | "mins" => Duration::from_secs(60),
            "h" | "hr" | "hrs" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?}; use ms, s, m, h or d (e.g. \"30m\")"
                ));
            }
        };
        total += unit * u32::try_from(n).map_err(|_| format!("{text:?} is too large"))?;
        rest = &rest[unit_len..];
    }
    Ok((!total.is_zero()).then_some(total))
}

/// Which agents run heartbeats, with their settings. As in OpenClaw: when some entry of
/// `agents.list` has a `heartbeat` block, exactly those agents do (each block merged over
/// `agents.defaults.heartbeat`); otherwise only the default agent does. `agents` are the
/// configured agents' ids and workspaces.
pub fn resolve(
    config: &Value,
    agents: &[(String, PathBuf)],
    default_agent: &str,
) -> Result<Vec<AgentHeartbeat>, String> {
    let defaults = config.pointer("/agents/defaults/heartbeat");
    let list: Vec<&Value> = config
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    let own = |id: &str| {
        list.iter().enumerate().find_map(|(i, a)| {
            (a.get("id").and_then(Value::as_str) == Some(id))
                .then(|| a.get("heartbeat").map(|h| (i, h)))
                .flatten()
        })
    };
    let any_own = agents.iter().any(|(id, _)| own(id).is_some());
    let mut out = Vec::new();
    for (id, workspace) in agents {
        let block = own(id);
        if any_own && block.is_none() {
            continue;
        }
        if !any_own && id != default_agent {
            continue;
        }
        let mut merged = defaults
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let mut at = "agents.defaults.heartbeat".to_owned();
        if let Some((i, b)) = block {
            if let (Some(m), Some(b)) = (merged.as_object_mut(), b.as_object()) {
                for (k, v) in b {
                    m.insert(k.clone(), v.clone());
                }
            }
            at = format!("agents.list.{i}.heartbeat");
        }
        out.push(AgentHeartbeat {
            agent: id.clone(),
            workspace: workspace.clone(),
            config: parse_block(&merged, &at)?,
            source: at,
        });
    }
    Ok(out)
}

/// One merged `heartbeat` block; `at` names it in errors.
pub fn parse_block(v: &Value, at: &str) -> Result<HeartbeatConfig, String> {
    let mut c = HeartbeatConfig::default();
    let string = |key: &str| -> Result<Option<String>, String> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
            Some(other) => Err(format!("{at}.{key}: expected a string, found {other}")),
        }
    };
    if let Some(every) = string("every")? {
        c.every = parse_every(&every).map_err(|e| format!("{at}.every {e}"))?;
        if let Some(d) = c.every
            && d < MIN_EVERY
        {
            return Err(format!(
                "{at}.every {every:?} is shorter than the minimum of 1m: heartbeats call the model, so use \"1m\" or more (or \"off\")"
            ));
        }
        c.every_text = every;
    }
    if let Some(m) = string("model")? {
        crate::agent::config::ModelRef::parse(&m)
            .map_err(|e| format!("{at}.model {m:?}: {e} (use provider/model)"))?;
        c.model = Some(m);
    }
    let to = string("to")?;
    let account = string("accountId")?;
    c.target = match string("target")?.as_deref() {
        None | Some("last") => Target::Last,
        Some("none") => Target::None,
        Some(channel) => {
            let known: Vec<&str> = crate::hooks::mapping::CHANNELS
                .iter()
                .copied()
                .filter(|c| *c != "last")
                .collect();
            if !known.contains(&channel) {
                return Err(format!(
                    "{at}.target {channel:?} is not a target: use \"last\", \"none\" or a channel ({})",
                    known.join(", ")
                ));
            }
            let to = to.ok_or_else(|| {
                format!(
                    "{at}.target is {channel:?} but {at}.to is not set: give the chat id, channel or phone number to send heartbeat replies to"
                )
            })?;
            Target::Channel {
                channel: channel.to_owned(),
                to,
                account,
            }
        }
    };
    if let Some(p) = string("prompt")? {
        c.prompt = p;
    }
    let count = |key: &str| -> Result<Option<u64>, String> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n.as_u64().map(Some).ok_or_else(|| {
                format!("{at}.{key}: expected a whole number of 0 or more, found {n}")
            }),
        }
    };
    if let Some(n) = count("ackMaxChars")? {
        c.ack_max_chars = n as usize;
    }
    if let Some(n) = count("dailyTokenBudget")? {
        c.daily_token_budget = n;
    }
    Ok(c)
}

/// What HEARTBEAT.md holds, as the cost guard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatFile {
    Missing,
    /// Only whitespace, markdown headers, empty list items or HTML comments.
    Empty,
    Content {
        text: String,
        hash: String,
    },
}

/// Reads `<workspace>/HEARTBEAT.md`. An unreadable file counts as missing.
pub fn read_heartbeat_file(workspace: &Path) -> HeartbeatFile {
    match std::fs::read_to_string(workspace.join(HEARTBEAT_FILE)) {
        Ok(text) => classify(text),
        Err(_) => HeartbeatFile::Missing,
    }
}

pub fn classify(text: String) -> HeartbeatFile {
    if is_effectively_empty(&text) {
        HeartbeatFile::Empty
    } else {
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        HeartbeatFile::Content { text, hash }
    }
}

/// Whether a HEARTBEAT.md asks for nothing: every line is blank, a markdown header
/// (`#`, `## Tasks`), an empty list item (`-`, `* [ ]`) or an HTML comment on one line.
pub fn is_effectively_empty(text: &str) -> bool {
    text.lines().all(|line| {
        let l = line.trim();
        if l.is_empty() {
            return true;
        }
        if let Some(rest) = l.strip_prefix('#') {
            let rest = rest.trim_start_matches('#');
            return rest.is_empty() || rest.starts_with(char::is_whitespace);
        }
        if l.starts_with("<!--") && l.ends_with("-->") {
            return true;
        }
        let item = l
            .strip_prefix("- ")
            .or_else(|| l.strip_prefix("* "))
            .or_else(|| l.strip_prefix("+ "))
            .map(str::trim);
        match item {
            Some(rest) => rest.is_empty() || rest == "[ ]" || rest == "[x]",
            None => matches!(l, "-" | "*" | "+"),
        }
    })
}

/// Why a tick makes no model call, or what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No model call; the reason is recorded.
    Skip(&'static str),
    /// Today's budget is spent: no model call, and the user hears of it once a day.
    OverBudget,
    /// Call the model.
    Run,
}

/// The cost guard. A tick calls the model only when something may need attention:
/// HEARTBEAT.md has content that changed since the last heartbeat that called the model,
/// or a system event is queued (`force`: a manual run, which skips this check); and only
/// while today's heartbeat spend is under the budget (0: no limit).
pub fn decide(
    file: &HeartbeatFile,
    last_hash: Option<&str>,
    queued_events: usize,
    force: bool,
    spent_today: u64,
    budget: u64,
) -> Decision {
    if !force && queued_events == 0 {
        match file {
            HeartbeatFile::Missing => return Decision::Skip("no-heartbeat-file"),
            HeartbeatFile::Empty => return Decision::Skip("empty-heartbeat-file"),
            HeartbeatFile::Content { hash, .. } if Some(hash.as_str()) == last_hash => {
                return Decision::Skip("unchanged-heartbeat-file");
            }
            HeartbeatFile::Content { .. } => {}
        }
    }
    if budget > 0 && spent_today >= budget {
        return Decision::OverBudget;
    }
    Decision::Run
}

/// The message of a heartbeat turn: the prompt, HEARTBEAT.md's text (not part of the
/// system prompt, so the model sees it here without a tool call) and the queued system
/// events as `System:` lines.
pub fn heartbeat_message(prompt: &str, file: &HeartbeatFile, events: &[String]) -> String {
    let mut out = prompt.to_owned();
    if let HeartbeatFile::Content { text, .. } = file {
        let cut: String = text.chars().take(MAX_FILE_CHARS).collect();
        out.push_str("\n\nHEARTBEAT.md:\n");
        out.push_str(cut.trim_end());
        if cut.len() < text.len() {
            out.push_str("\n[... cut]");
        }
    }
    if !events.is_empty() {
        out.push_str("\n\nSystem events since the last heartbeat:");
        for e in events {
            out.push_str("\nSystem: ");
            out.push_str(e.trim());
        }
    }
    out
}

/// What the user is told, once a day, when heartbeats pause for the budget.
pub fn budget_notice(agent: &str, spent: u64, budget: u64, at: &str) -> String {
    format!(
        "Heartbeats for agent {agent} are paused until tomorrow (00:00 UTC): they used {spent} of the {budget} tokens allowed per day. To allow more, raise {at}.dailyTokenBudget in pincer.json (0 means no limit)."
    )
}

/// The UTC day of a Unix time in ms (days since 1970-01-01).
pub fn day_of(ms: u64) -> u64 {
    ms / DAY_MS
}

/// `YYYY-MM-DD` of a day number (proleptic Gregorian, UTC).
pub fn date_of(day: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A system event waiting for an agent's next heartbeat (stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedEvent {
    pub text: String,
    pub queued_ms: u64,
    /// Who queued it (`hooks:wake`, ...).
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_with_units_and_off() {
        let d = |s: &str| parse_every(s).unwrap();
        assert_eq!(d("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("90s"), Some(Duration::from_secs(90)));
        assert_eq!(d("45"), Some(Duration::from_secs(45 * 60)));
        assert_eq!(d("2d"), Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(d("0m"), None);
        assert_eq!(d("0"), None);
        assert_eq!(d("off"), None);
        assert!(parse_every("m5").unwrap_err().contains("not a duration"));
        assert!(parse_every("5y").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn only_the_default_agent_beats_unless_some_agent_has_its_own_block() {
        let agents = vec![
            ("main".to_owned(), PathBuf::from("/w/main")),
            ("work".to_owned(), PathBuf::from("/w/work")),
        ];
        let cfg =
            json!({"agents": {"defaults": {"heartbeat": {"every": "1h", "model": "cheap/mini"}}}});
        let r = resolve(&cfg, &agents, "main").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].agent, "main");
        assert_eq!(r[0].config.every, Some(Duration::from_secs(3600)));
        assert_eq!(r[0].config.model.as_deref(), Some("cheap/mini"));
        assert_eq!(r[0].config.prompt, DEFAULT_PROMPT);
        assert_eq!(r[0].config.ack_max_chars, 300);
        assert_eq!(r[0].config.daily_token_budget, DEFAULT_DAILY_TOKEN_BUDGET);

        let cfg = json!({"agents": {
            "defaults": {"heartbeat": {"every": "1h", "dailyTokenBudget": 500}},
            "list": [{"id": "main"}, {"id": "work", "heartbeat": {"every": "2h", "target": "telegram", "to": "42"}}]
        }});
        let r = resolve(&cfg, &agents, "main").unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].agent, "work");
        assert_eq!(r[0].workspace, PathBuf::from("/w/work"));
        assert_eq!(r[0].config.every, Some(Duration::from_secs(7200)));
        assert_eq!(r[0].config.daily_token_budget, 500, "merged from defaults");
        assert_eq!(
            r[0].config.target,
            Target::Channel {
                channel: "telegram".into(),
                to: "42".into(),
                account: None
            }
        );
    }

    #[test]
    fn bad_blocks_say_which_key_and_what_to_do() {
        let err = |v: Value| parse_block(&v, "agents.defaults.heartbeat").unwrap_err();
        let e = err(json!({"every": "10s"}));
        assert!(
            e.contains("agents.defaults.heartbeat.every") && e.contains("minimum of 1m"),
            "{e}"
        );
        let e = err(json!({"target": "telegram"}));
        assert!(e.contains("agents.defaults.heartbeat.to is not set"), "{e}");
        let e = err(json!({"target": "pigeon"}));
        assert!(e.contains("\"last\", \"none\" or a channel"), "{e}");
        let e = err(json!({"model": "no-slash"}));
        assert!(e.contains("provider/model"), "{e}");
        let e = err(json!({"ackMaxChars": -1}));
        assert!(e.contains("ackMaxChars"), "{e}");
        let off = parse_block(&json!({"every": "0m"}), "x").unwrap();
        assert_eq!(off.every, None);
    }

    #[test]
    fn headers_and_blank_lines_are_empty_content_is_not() {
        assert!(is_effectively_empty(""));
        assert!(is_effectively_empty("  \n\t\n"));
        assert!(is_effectively_empty(
            "# Heartbeat\n\n## Tasks\n- [ ]\n<!-- add tasks here -->\n"
        ));
        assert!(!is_effectively_empty("# Tasks\n- check the mail\n"));
        assert!(!is_effectively_empty("#hashtag is text"));
        assert_eq!(
            read_heartbeat_file(Path::new("/nonexistent/x")),
            HeartbeatFile::Missing
        );
    }

    #[test]
    fn the_cost_guard_runs_only_for_changed_content_or_queued_events_within_budget() {
        let content = classify("- water the plants".into());
        let HeartbeatFile::Content { hash, .. } = &content else {
            panic!()
        };
        let empty = HeartbeatFile::Empty;
        assert_eq!(
            decide(&empty, None, 0, false, 0, 100),
            Decision::Skip("empty-heartbeat-file")
        );
        assert_eq!(
            decide(&HeartbeatFile::Missing, None, 0, false, 0, 100),
            Decision::Skip("no-heartbeat-file")
        );
        assert_eq!(decide(&content, None, 0, false, 0, 100), Decision::Run);
        assert_eq!(
            decide(&content, Some(hash.as_str()), 0, false, 0, 100),
            Decision::Skip("unchanged-heartbeat-file")
        );
        // Something due, or a manual run: the file does not matter.
        assert_eq!(decide(&empty, None, 1, false, 0, 100), Decision::Run);
        assert_eq!(
            decide(&content, Some(hash.as_str()), 0, true, 0, 100),
            Decision::Run
        );
        // The budget: just below runs, at it pauses; 0 is no limit.
        assert_eq!(decide(&content, None, 0, false, 99, 100), Decision::Run);
        assert_eq!(
            decide(&content, None, 0, false, 100, 100),
            Decision::OverBudget
        );
        assert_eq!(decide(&content, None, 0, false, u64::MAX, 0), Decision::Run);
        // A skip wins over the budget: an idle agent is not reported as paused.
        assert_eq!(
            decide(&empty, None, 0, false, 100, 100),
            Decision::Skip("empty-heartbeat-file")
        );
    }

    #[test]
    fn the_message_carries_the_file_and_the_events() {
        let file = classify("# Tasks\n- call mum\n".into());
        let m = heartbeat_message("PROMPT", &file, &["backup done".into()]);
        assert_eq!(
            m,
            "PROMPT\n\nHEARTBEAT.md:\n# Tasks\n- call mum\n\nSystem events since the last heartbeat:\nSystem: backup done"
        );
        assert_eq!(heartbeat_message("P", &HeartbeatFile::Empty, &[]), "P");
    }

    #[test]
    fn days_are_utc_calendar_dates() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(day_of(1_709_164_800_000)), "2024-02-29");
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
    }
}
