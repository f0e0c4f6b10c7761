//! `pincer config get|set|validate`: the config file from the command line. Edits are
//! validated before anything is written; a running gateway picks them up by itself.

use std::path::PathBuf;
use std::process::ExitCode;

use pincer_actors::config::{self, ConfigError, StateDir, schema};
use serde_json::{Value, json};

use crate::setup::{self, Globals};

pub fn get(globals: &Globals, key: Option<String>, as_json: bool) -> ExitCode {
    let Some((state, loaded)) = open(globals) else {
        return ExitCode::from(2);
    };
    let _ = state;
    let value = config::redacted(&effective(&loaded.config));
    let shown = match &key {
        None => value,
        Some(k) => match lookup(&value, k) {
            Some(v) => v.clone(),
            None => {
                eprintln!("error: no key {k:?} in the config{}", hint_for(k));
                return ExitCode::from(1);
            }
        },
    };
    match (&shown, as_json) {
        (Value::String(s), false) => println!("{s}"),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&shown).expect("JSON prints")
        ),
    }
    ExitCode::SUCCESS
}

pub fn set(globals: &Globals, key: &str, raw_value: &str) -> ExitCode {
    let Some((state, loaded)) = open(globals) else {
        return ExitCode::from(2);
    };
    let value: Value =
        json5::from_str(raw_value).unwrap_or_else(|_| Value::String(raw_value.to_owned()));
    let path = state.config_path();
    let new_raw = match edit(&loaded.raw, key, &value) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let parsed = match config::parse(&new_raw, &path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {key} = {raw_value} is not accepted; nothing was written:\n{e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = config::write_atomic(&path, &new_raw) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let diff = config::diff(&loaded.config, &parsed.config);
    if diff.is_empty() {
        println!("{key} unchanged");
    } else {
        println!("set {key} in {}", path.display());
        if !diff.restart_required.is_empty() {
            println!(
                "restart the gateway to apply: {}",
                diff.restart_required.join(", ")
            );
        } else {
            println!("a running gateway applies it now");
        }
    }
    ExitCode::SUCCESS
}

pub fn validate(globals: &Globals, as_json: bool, file: Option<PathBuf>) -> ExitCode {
    let path = match file {
        Some(f) => f,
        None => match setup::state_dir(globals) {
            Ok(s) => s.config_path(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let result = config::load(&path);
    if as_json {
        let v = match &result {
            Ok(l) => {
                json!({"valid": true, "path": path, "exists": l.exists, "issues": [], "warnings": l.warnings})
            }
            Err(e) => json!({"valid": false, "path": path, "issues": issues_of(e), "warnings": []}),
        };
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON prints"));
    } else {
        match &result {
            Ok(l) if !l.exists => println!(
                "{}: no file; the defaults apply (`pincer onboard --yes` writes one)",
                path.display()
            ),
            Ok(l) => {
                for w in &l.warnings {
                    println!("warning: {w}");
                }
                println!("{}: valid", path.display());
            }
            Err(e) => eprintln!("{e}"),
        }
    }
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn issues_of(e: &ConfigError) -> Value {
    match e {
        ConfigError::Invalid { issues, .. } => {
            serde_json::to_value(issues).expect("issues serialise")
        }
        other => json!([{ "message": other.to_string() }]),
    }
}

fn open(globals: &Globals) -> Option<(StateDir, config::LoadedConfig)> {
    let state = setup::state_dir(globals)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()?;
    let loaded = setup::load_config(&state)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()?;
    Some((state, loaded))
}

/// The config with defaults filled in, as Pincer runs it.
fn effective(c: &config::PincerConfig) -> Value {
    serde_json::to_value(c).expect("config serialises")
}

fn lookup<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |cur, k| cur.get(k))
}

fn hint_for(key: &str) -> String {
    let mut known = Vec::new();
    schema::walk(schema::ROOT, "", &mut |p, _| known.push(p.to_owned()));
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    schema::suggest(key, &refs)
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default()
}

/// The file's text with `key` set to `value`: the value is replaced in place when the key
/// is already there (comments and layout kept), otherwise the file is rewritten as JSON.
pub fn edit(raw: &str, key: &str, value: &Value) -> Result<String, String> {
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!(
            "invalid key {key:?}: use a dotted path like gateway.port"
        ));
    }
    let spans = config::scan(raw);
    if let Some(span) = spans.get(key)
        && !value.is_object()
        && !value.is_array()
    {
        let mut out = raw.to_owned();
        out.replace_range(span.value_start..span.value_end, &value.to_string());
        return Ok(out);
    }
    let mut doc: Value = if raw.trim().is_empty() {
        json!({})
    } else {
        json5::from_str(raw).map_err(|e| format!("the config does not parse, fix it first: {e}"))?
    };
    let mut patch = value.clone();
    for part in key.rsplit('.') {
        patch = json!({ part: patch });
    }
    config::merge_patch(&mut doc, &patch);
    Ok(serde_json::to_string_pretty(&doc).expect("JSON prints") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_comments_when_the_key_exists_and_adds_keys_otherwise() {
        let raw = "{\n  // the port\n  gateway: { port: 18789 },\n}\n";
        let out = edit(raw, "gateway.port", &json!(18790)).unwrap();
        assert_eq!(out, "{\n  // the port\n  gateway: { port: 18790 },\n}\n");
        let out = edit(raw, "logging.level", &json!("debug")).unwrap();
        let v: Value = json5::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({"gateway": {"port": 18789}, "logging": {"level": "debug"}})
        );
        assert!(edit(raw, "a..b", &json!(1)).is_err());
    }
}
