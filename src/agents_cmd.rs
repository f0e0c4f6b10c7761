//! `pincer agents add|remove`: edits of `agents.list[]` in pincer.json, the way `pincer
//! config set` edits it: checked before anything is written (the whole config, and the
//! agents as the gateway would resolve them), written atomically, with the comments
//! outside the list kept. A running gateway picks the edit up (and records it in the
//! audit log as a `config.change` by `config-file`); agents start and stop at its next
//! start.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pincer_actors::agent::config::{AgentsConfig, ModelRef};
use pincer_actors::agent::workspace;
use pincer_actors::config::{self, LoadedConfig, StateDir};
use serde_json::{Map, Value, json};

use crate::cli::{AgentsAddArgs, AgentsRemoveArgs};
use crate::setup::{self, Globals};

const RESTART: &str = "restart the gateway to apply it (agents change at the next gateway start)";

pub fn add(globals: &Globals, args: AgentsAddArgs) -> ExitCode {
    let Some((state, loaded, agents)) = open(globals) else {
        return ExitCode::from(2);
    };
    match plan_add(&state, &loaded, &agents, &args) {
        Ok(plan) => apply(&state, plan),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn remove(globals: &Globals, args: AgentsRemoveArgs) -> ExitCode {
    let Some((state, loaded, agents)) = open(globals) else {
        return ExitCode::from(2);
    };
    match plan_remove(&state, &loaded, &agents, &args) {
        Ok(plan) => apply(&state, plan),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// A checked edit: the new file text, what to do on disk besides, what to tell the user.
struct Plan {
    raw: String,
    /// A workspace to create (with the workspace files unless `skipBootstrap`).
    create: Option<(PathBuf, bool)>,
    /// A workspace to delete after the config is written.
    delete: Option<PathBuf>,
    said: Vec<String>,
}

fn open(globals: &Globals) -> Option<(StateDir, LoadedConfig, AgentsConfig)> {
    let state = setup::state_dir(globals)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()?;
    let loaded = setup::load_config(&state)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()?;
    let agents = resolve(&state, &loaded.value)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()?;
    Some((state, loaded, agents))
}

fn resolve(state: &StateDir, value: &Value) -> Result<AgentsConfig, String> {
    pincer_actors::agent::config::resolve(value, state.root(), &setup::env)
        .map_err(|e| format!("{}: {e}", state.config_path().display()))
}

/// Agent ids go into session keys (`agent:<id>:main`) and directory names.
fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid agent id {id:?}: use 1-64 lowercase letters, digits, - and _, starting with a letter or digit (e.g. research)"
        ))
    }
}

/// `agents.list[]` as written (an empty or missing list means the one implicit agent
/// `main`, which an edit must keep).
fn entries(value: &Value, agents: &AgentsConfig) -> Vec<Value> {
    match value.pointer("/agents/list").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.clone(),
        _ => agents.agents.iter().map(|a| json!({"id": a.id})).collect(),
    }
}

fn ids(agents: &AgentsConfig) -> String {
    let ids: Vec<&str> = agents.agents.iter().map(|a| a.id.as_str()).collect();
    ids.join(", ")
}

fn plan_add(
    state: &StateDir,
    loaded: &LoadedConfig,
    agents: &AgentsConfig,
    args: &AgentsAddArgs,
) -> Result<Plan, String> {
    let id = args.id.as_str();
    check_id(id)?;
    if let Some(a) = agents.agent(id) {
        return Err(format!(
            "agent {id:?} already exists (workspace {}); choose another id, or remove it first with `pincer agents remove {id}`",
            a.workspace.display()
        ));
    }
    let mut entry = Map::new();
    entry.insert("id".into(), json!(id));
    if let Some(n) = &args.name {
        entry.insert("name".into(), json!(n));
    }
    if let Some(w) = &args.workspace {
        entry.insert("workspace".into(), json!(absolute(w)?));
    }
    if let Some(m) = &args.model {
        ModelRef::parse(m).map_err(|e| format!("--model: {e}"))?;
        entry.insert("model".into(), json!(m));
    }
    let mut list = entries(&loaded.value, agents);
    if args.default {
        clear_defaults(&mut list);
        entry.insert("default".into(), json!(true));
    }
    list.push(Value::Object(entry));
    let (raw, new_agents) = checked(state, loaded, &list)?;
    let spec = new_agents.agent(id).expect("the added agent resolves");
    if let Some(other) = agents.agents.iter().find(|a| a.workspace == spec.workspace) {
        return Err(format!(
            "workspace {} is already agent {:?}'s; give this agent its own with --workspace DIR",
            spec.workspace.display(),
            other.id
        ));
    }
    let skip_bootstrap = loaded
        .value
        .pointer("/agents/defaults/skipBootstrap")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let models: Vec<String> = spec.models.iter().map(ToString::to_string).collect();
    let mut said = vec![
        format!(
            "added agent {id} ({}) to agents.list in {}",
            spec.name,
            state.config_path().display()
        ),
        format!("  workspace  {}", spec.workspace.display()),
        format!(
            "  model      {}",
            if models.is_empty() {
                "none yet (set agents.defaults.model or --model)".to_owned()
            } else {
                models.join(" -> ")
            }
        ),
        format!("  session    agent:{id}:{}", new_agents.main_key),
    ];
    if new_agents.default_agent == id {
        said.push(format!("{id} is now the default agent"));
    }
    said.push(RESTART.into());
    Ok(Plan {
        raw,
        create: Some((spec.workspace.clone(), !skip_bootstrap)),
        delete: None,
        said,
    })
}

fn plan_remove(
    state: &StateDir,
    loaded: &LoadedConfig,
    agents: &AgentsConfig,
    args: &AgentsRemoveArgs,
) -> Result<Plan, String> {
    let id = args.id.as_str();
    let Some(spec) = agents.agent(id) else {
        return Err(format!(
            "there is no agent {id:?}; the agents are: {} (`pincer agents list` shows them)",
            ids(agents)
        ));
    };
    if agents.agents.len() == 1 {
        return Err(format!(
            "agent {id:?} is the only agent and the gateway needs one; add another first (`pincer agents add <id>`)"
        ));
    }
    let others: Vec<&str> = agents
        .agents
        .iter()
        .map(|a| a.id.as_str())
        .filter(|a| *a != id)
        .collect();
    if let Some(n) = &args.new_default
        && (n == id || agents.agent(n).is_none())
    {
        return Err(format!(
            "--new-default {n:?} must be one of the other agents: {}",
            others.join(", ")
        ));
    }
    if agents.default_agent == id && args.new_default.is_none() {
        return Err(format!(
            "agent {id:?} is the default agent; say which agent takes its place: `pincer agents remove {id} --new-default <id>` (one of: {})",
            others.join(", ")
        ));
    }
    let mut list = entries(&loaded.value, agents);
    list.retain(|e| e["id"] != id);
    if let Some(n) = &args.new_default {
        clear_defaults(&mut list);
        if let Some(e) = list.iter_mut().find(|e| e["id"] == n.as_str()) {
            e["default"] = json!(true);
        }
    }
    let (raw, new_agents) = checked(state, loaded, &list)?;
    let mut said = vec![format!(
        "removed agent {id} from agents.list in {}",
        state.config_path().display()
    )];
    if new_agents.default_agent != agents.default_agent {
        said.push(format!(
            "{} is now the default agent",
            new_agents.default_agent
        ));
    }
    let delete = if args.delete_workspace {
        check_deletable(state, &spec.workspace, id, &new_agents)?;
        said.push(format!(
            "deleted its workspace {}",
            spec.workspace.display()
        ));
        Some(spec.workspace.clone())
    } else {
        said.push(format!(
            "its workspace {} was kept (--delete-workspace deletes it)",
            spec.workspace.display()
        ));
        None
    };
    said.push(format!(
        "its sessions (agent:{id}:...) stay in the store; {RESTART}"
    ));
    Ok(Plan {
        raw,
        create: None,
        delete,
        said,
    })
}

/// The workspace may go: it is a directory of this agent alone and not the state
/// directory or one holding it.
fn check_deletable(
    state: &StateDir,
    ws: &Path,
    id: &str,
    remaining: &AgentsConfig,
) -> Result<(), String> {
    if let Some(other) = remaining.agents.iter().find(|a| a.workspace == ws) {
        return Err(format!(
            "--delete-workspace: {} is also agent {:?}'s workspace; nothing was changed (remove without --delete-workspace to keep it)",
            ws.display(),
            other.id
        ));
    }
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let (ws_c, root_c) = (canon(ws), canon(state.root()));
    if root_c.starts_with(&ws_c) || ws_c.parent().is_none() {
        return Err(format!(
            "--delete-workspace: agent {id:?}'s workspace {} holds the state directory {}; delete what you mean to by hand; nothing was changed",
            ws.display(),
            state.root().display()
        ));
    }
    Ok(())
}

/// Makes no other entry the default.
fn clear_defaults(list: &mut [Value]) {
    for e in list.iter_mut() {
        if let Some(o) = e.as_object_mut() {
            o.remove("default");
        }
    }
}

fn absolute(p: &Path) -> Result<String, String> {
    if p.is_absolute() || p.starts_with("~") {
        return Ok(p.display().to_string());
    }
    let cwd = std::env::current_dir().map_err(|e| {
        format!(
            "--workspace {}: cannot read the current directory: {e}",
            p.display()
        )
    })?;
    Ok(cwd.join(p).display().to_string())
}

/// The file with `agents.list` replaced by `list`, checked as the gateway would load it.
fn checked(
    state: &StateDir,
    loaded: &LoadedConfig,
    list: &[Value],
) -> Result<(String, AgentsConfig), String> {
    let path = state.config_path();
    let raw = with_list(&loaded.raw, list)?;
    let parsed = config::parse(&raw, &path)
        .map_err(|e| format!("the new agents.list is not accepted; nothing was written:\n{e}"))?;
    let agents = resolve(state, &parsed.value).map_err(|e| format!("{e}\nnothing was written"))?;
    Ok((raw, agents))
}

fn apply(state: &StateDir, plan: Plan) -> ExitCode {
    let path = state.config_path();
    if let Some((ws, bootstrap)) = &plan.create {
        let made = if *bootstrap {
            workspace::ensure(ws).map(|_| ())
        } else {
            std::fs::create_dir_all(ws)
        };
        if let Err(e) = made {
            eprintln!(
                "error: cannot create the workspace {}: {e}; nothing was written (pick another with --workspace DIR)",
                ws.display()
            );
            return ExitCode::from(1);
        }
    }
    if let Err(e) = config::write_atomic(&path, &plan.raw) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    if let Some(ws) = &plan.delete
        && ws.exists()
        && let Err(e) = std::fs::remove_dir_all(ws)
    {
        eprintln!(
            "error: the agent was removed from {}, but its workspace {} could not be deleted: {e}",
            path.display(),
            ws.display()
        );
        return ExitCode::from(1);
    }
    for line in &plan.said {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// `raw` with `agents.list` set to `list`: the list's text is replaced in place when it
/// is in the file (everything around it, comments included, is kept), otherwise the file
/// is rewritten as JSON with the list added (as `pincer config set` does).
pub fn with_list(raw: &str, list: &[Value]) -> Result<String, String> {
    let pretty = serde_json::to_string_pretty(list).expect("JSON prints");
    if let Some(span) = config::scan(raw).get("agents.list") {
        let line_start = raw[..span.value_start].rfind('\n').map_or(0, |i| i + 1);
        let indent: String = raw[line_start..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let text = pretty.replace('\n', &format!("\n{indent}"));
        let mut out = raw.to_owned();
        out.replace_range(span.value_start..span.value_end, &text);
        return Ok(out);
    }
    let mut doc: Value = if raw.trim().is_empty() {
        json!({})
    } else {
        json5::from_str(raw).map_err(|e| format!("the config does not parse, fix it first: {e}"))?
    };
    config::merge_patch(&mut doc, &json!({"agents": {"list": list}}));
    Ok(serde_json::to_string_pretty(&doc).expect("JSON prints") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_replaced_in_place_keeping_comments() {
        let raw = config::default_config_text();
        let out = with_list(raw, &[json!({"id": "main"}), json!({"id": "ops"})]).unwrap();
        assert!(out.contains("// The default agent is \"main\""), "{out}");
        assert!(
            out.contains("// trace, debug, info, warn or error"),
            "{out}"
        );
        let v: Value = json5::from_str(&out).unwrap();
        assert_eq!(v["agents"]["list"], json!([{"id": "main"}, {"id": "ops"}]));
        assert_eq!(v["gateway"]["port"], 18789);
        // Again, on its own output: still one list, still valid.
        let again = with_list(&out, &[json!({"id": "ops"})]).unwrap();
        let v: Value = json5::from_str(&again).unwrap();
        assert_eq!(v["agents"]["list"], json!([{"id": "ops"}]));
    }

    #[test]
    fn without_a_list_the_file_gets_one() {
        let out = with_list("{ logging: { level: 'debug' } }", &[json!({"id": "a"})]).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({"logging": {"level": "debug"}, "agents": {"list": [{"id": "a"}]}})
        );
        let out = with_list("", &[json!({"id": "a"})]).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            json!({"agents": {"list": [{"id": "a"}]}})
        );
    }

    #[test]
    fn ids_must_fit_in_session_keys() {
        for ok in ["main", "research-2", "a_b", "7"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Main", "a:b", "-x", "a b", &"x".repeat(65)] {
            let err = check_id(bad).unwrap_err();
            assert!(err.contains("lowercase letters"), "{bad}: {err}");
        }
    }
}
