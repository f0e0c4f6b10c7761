//! `pincer onboard`: a commented config, the workspace files and the gateway token, so
//! `pincer gateway` starts with everything in place.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use pincer_actors::config::{self, StateDir};

use crate::setup::{self, Globals};

/// Workspace files: what the agent reads about itself, the user, its tools and memory.
use pincer_actors::agent::workspace::DEFAULT_FILES as WORKSPACE;

pub fn run(globals: &Globals, yes: bool, force: bool) -> ExitCode {
    let state = match setup::state_dir(globals) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: onboard asks before writing; run `pincer onboard --yes` to accept the defaults non-interactively"
            );
            return ExitCode::from(2);
        }
        print!("Set up Pincer in {}? [Y/n] ", state.root().display());
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim().to_lowercase().starts_with('n') {
            println!("nothing written");
            return ExitCode::SUCCESS;
        }
    }
    match onboard(&state, force) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            println!(
                "done: start the gateway with `pincer gateway`; check the setup with `pincer doctor`"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Writes what is missing; returns one line per thing done.
pub fn onboard(state: &StateDir, force: bool) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    state.ensure().map_err(|e| e.to_string())?;
    done.push(format!("state directory {}", state.root().display()));

    let cfg = state.config_path();
    if cfg.exists() && !force {
        done.push(format!(
            "kept the existing {} (--force replaces it, keeping a .bak)",
            cfg.display()
        ));
    } else {
        if cfg.exists() {
            let bak = cfg.with_extension("json.bak");
            std::fs::copy(&cfg, &bak)
                .map_err(|e| format!("cannot back up {}: {e}", cfg.display()))?;
            done.push(format!("backed up the old config to {}", bak.display()));
        }
        config::write_atomic(&cfg, config::default_config_text()).map_err(|e| e.to_string())?;
        done.push(format!("wrote {}", cfg.display()));
    }

    let ws = state.workspace();
    for dir in [
        ws.clone(),
        ws.join("memory"),
        ws.join("skills"),
        ws.join("canvas"),
    ] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for (name, text) in WORKSPACE {
        let path = ws.join(name);
        if !path.exists() {
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            done.push(format!("wrote {}", path.display()));
        }
    }

    let loaded = config::load(&cfg).map_err(|e| e.to_string())?;
    let auth = config::resolve_gateway_auth(&loaded.config, state, &setup::env, true)
        .map_err(|e| e.to_string())?;
    done.push(format!("auth: {}", auth.describe(state)));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onboard_writes_a_valid_config_workspace_and_token_and_keeps_existing_files() {
        let t = tempfile::tempdir().unwrap();
        let state = StateDir::at(t.path().join("p"));
        let lines = onboard(&state, false).unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("wrote") && l.ends_with("pincer.json")),
            "{lines:?}"
        );
        let loaded = config::load(&state.config_path()).unwrap();
        assert!(loaded.exists && loaded.warnings.is_empty());
        assert!(
            loaded.raw.contains("// Pincer configuration"),
            "the written config is commented"
        );
        for (name, _) in WORKSPACE {
            assert!(state.workspace().join(name).exists(), "{name}");
        }
        assert!(state.token_file().exists());

        std::fs::write(state.workspace().join("USER.md"), "mine").unwrap();
        let again = onboard(&state, false).unwrap();
        assert!(
            again.iter().any(|l| l.contains("kept the existing")),
            "{again:?}"
        );
        assert_eq!(
            std::fs::read_to_string(state.workspace().join("USER.md")).unwrap(),
            "mine"
        );
        onboard(&state, true).unwrap();
        assert!(state.config_path().with_extension("json.bak").exists());
    }
}
