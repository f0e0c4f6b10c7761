//! `pincer audit`: the gateway's audit log (exec approvals, config changes, delegations,
//! cross-agent messages) through `audit.query`, one line per record, oldest first.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::cli::AuditArgs;
use crate::commands::{print_json, run};
use crate::setup::Globals;

pub async fn audit(globals: &Globals, args: AuditArgs) -> ExitCode {
    let since = match args
        .since
        .as_deref()
        .map(|s| parse_since(s, pincer_actors::gateway::now_ms()))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let params = json!({
        "since": since,
        "agentId": args.agent,
        "kind": args.kind,
        "limit": args.limit,
    });
    let v = match run(globals, &args.client, "audit.query", Some(params)).await {
        Ok(v) => v,
        Err(c) => return c,
    };
    if args.client.json {
        print_json(&v);
        return ExitCode::SUCCESS;
    }
    let records = v["records"].as_array().cloned().unwrap_or_default();
    if records.is_empty() {
        let filtered = args.since.is_some() || args.agent.is_some() || args.kind.is_some();
        println!(
            "no audit records{}",
            if filtered { " match" } else { " yet" }
        );
    }
    for r in &records {
        println!("{}", line(r));
    }
    ExitCode::SUCCESS
}

/// `2026-12-02 09:40:01  approval  operator -> agent:main:main  denied  id 5f3c…  exec: ls`
fn line(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or_default();
    let mut out = format!(
        "{}  {}  {}",
        local_time(r["ts"].as_u64().unwrap_or(0)),
        s("kind"),
        s("actor")
    );
    if let Some(t) = r["target"].as_str() {
        out.push_str(&format!(" -> {t}"));
    }
    out.push_str(&format!("  {}", s("outcome")));
    if let Some(c) = r["correlationId"].as_str() {
        out.push_str(&format!("  id {c}"));
    }
    let d = &r["detail"];
    if let Some(paths) = d["paths"].as_array() {
        let paths: Vec<&str> = paths.iter().filter_map(Value::as_str).collect();
        out.push_str(&format!("  paths {}", paths.join(", ")));
    } else if let Some(tool) = d["tool"].as_str() {
        let command = match &d["command"] {
            Value::String(c) => c.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let mut shown: String = command.chars().take(60).collect();
        if shown.len() < command.len() {
            shown.push('…');
        }
        out.push_str(&format!("  {tool}: {shown}"));
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` in the local time zone.
fn local_time(ms: u64) -> String {
    let t = (ms / 1000) as libc::time_t;
    // SAFETY: localtime_r only writes the `tm` it is given; both pointers are to live
    // stack values.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        (!libc::localtime_r(&t, &mut tm).is_null()).then_some(tm)
    };
    match tm {
        Some(tm) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        ),
        None => format!("{ms} ms"),
    }
}

/// `--since`: a duration back from `now_ms` (`30m`, `1h30m`, `2d`), an RFC 3339 time or
/// unix milliseconds; the result is unix milliseconds.
pub fn parse_since(s: &str, now_ms: u64) -> Result<u64, String> {
    let s = s.trim();
    let forms = "give a duration back from now (30m, 2h, 1d, 1w, 1h30m), an RFC 3339 time (2026-01-31T09:00:00Z) or unix milliseconds";
    if s.is_empty() {
        return Err(format!("--since is empty: {forms}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = s
            .parse()
            .map_err(|_| format!("--since {s}: too large: {forms}"))?;
        // 10^11 ms is March 1973: a smaller number is surely seconds.
        if ms < 100_000_000_000 {
            return Err(format!(
                "--since {s} looks like unix seconds; give milliseconds ({s}000) or a duration like 1h"
            ));
        }
        return Ok(ms);
    }
    if let Some(ms) = duration_ms(s) {
        return Ok(now_ms.saturating_sub(ms));
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return rfc3339_ms(s).map_err(|e| format!("--since {s}: {e}"));
    }
    Err(format!("--since {s:?} is not understood: {forms}"))
}

/// `1h30m`, `45s`, `2d`, `1w` in milliseconds; `None` if it is not such a duration.
fn duration_ms(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let unit: u64 = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    digits.is_empty().then_some(total)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` in unix milliseconds.
fn rfc3339_ms(s: &str) -> Result<u64, String> {
    let bad = || {
        "not an RFC 3339 time like 2026-01-31T09:00:00Z or 2026-01-31T10:00:00+01:00 (the offset is required)".to_owned()
    };
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r.clone())
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac_ms = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        let digits = format!("{:0<3}", &f[..n.min(3)]);
        frac_ms = digits.parse().map_err(|_| bad())?;
        rest = &f[n..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let h: i64 = rest[1..3].parse().map_err(|_| bad())?;
            let m: i64 = rest[4..6].parse().map_err(|_| bad())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return Err(bad()),
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return Err(format!("month {month} does not exist")),
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(bad());
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + frac_ms).map_err(|_| "before 1970".to_owned())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000_000;

    #[test]
    fn since_takes_durations_rfc3339_and_unix_ms() {
        assert_eq!(parse_since("1h", NOW), Ok(NOW - 3_600_000));
        assert_eq!(parse_since("1h30m", NOW), Ok(NOW - 5_400_000));
        assert_eq!(parse_since("2d", NOW), Ok(NOW - 2 * 86_400_000));
        assert_eq!(parse_since("1w", NOW), Ok(NOW - 7 * 86_400_000));
        assert_eq!(parse_since("45s", NOW), Ok(NOW - 45_000));
        assert_eq!(parse_since("1764000000000", NOW), Ok(NOW));
        assert_eq!(parse_since("1970-01-01T00:00:00Z", NOW), Ok(0));
        assert_eq!(
            parse_since("2025-11-24T16:00:00Z", NOW),
            Ok(1_764_000_000_000)
        );
        assert_eq!(
            parse_since("2025-11-24T17:00:00.25+01:00", NOW),
            Ok(1_764_000_000_250)
        );
        assert_eq!(
            parse_since("2024-02-29T00:00:00-00:30", NOW),
            Ok(1_709_166_600_000)
        );
    }

    #[test]
    fn since_says_what_it_takes_when_it_cannot_read_it() {
        for (bad, says) in [
            ("yesterday", "not understood"),
            ("1x", "not understood"),
            ("h", "not understood"),
            ("1700000000", "looks like unix seconds"),
            ("2025-11-24", "not an RFC 3339 time"),
            ("2025-11-24T16:00:00", "the offset is required"),
            ("2025-02-30T00:00:00Z", "not an RFC 3339 time"),
            ("2025-13-01T00:00:00Z", "month 13"),
            ("", "is empty"),
        ] {
            let err = parse_since(bad, NOW).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_line_shows_time_kind_actors_outcome_id_and_what() {
        let r = serde_json::json!({"ts": NOW, "kind": "approval", "actor": "operator",
            "target": "agent:main:main", "outcome": "denied", "correlationId": "a1",
            "detail": {"tool": "exec", "command": "rm -rf /tmp/x"}});
        let l = line(&r);
        assert!(
            l.ends_with(
                "  approval  operator -> agent:main:main  denied  id a1  exec: rm -rf /tmp/x"
            ),
            "{l}"
        );
        assert_eq!(l.as_bytes()[4], b'-', "starts with the local date: {l}");
        let r = serde_json::json!({"ts": NOW, "kind": "config.change", "actor": "config-file",
            "outcome": "applied", "detail": {"paths": ["agents.list", "logging.level"]}});
        assert!(
            line(&r)
                .ends_with("config.change  config-file  applied  paths agents.list, logging.level"),
            "{}",
            line(&r)
        );
    }
}
