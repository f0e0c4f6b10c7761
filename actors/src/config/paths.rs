//! The state directory: `~/.pincer` by default, `PINCER_HOME` to override, `--profile NAME`
//! for `~/.pincer-NAME`.

use std::path::{Path, PathBuf};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Resolves the directory. `env` reads environment variables (a parameter, so tests and
    /// callers stay hermetic). A profile wins over `PINCER_HOME`.
    pub fn resolve(
        profile: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let home = || {
            env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).ok_or_else(|| {
                ConfigError::State("HOME is not set, so ~/.pincer cannot be found; set PINCER_HOME to the state directory".into())
            })
        };
        if let Some(name) = profile {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::State(format!(
                    "invalid profile name {name:?}: use letters, digits, '-' and '_' (it becomes ~/.pincer-NAME)"
                )));
            }
            return Ok(Self {
                root: home()?.join(format!(".pincer-{name}")),
            });
        }
        match env("PINCER_HOME").filter(|h| !h.is_empty()) {
            Some(dir) => Ok(Self {
                root: PathBuf::from(dir),
            }),
            None => Ok(Self {
                root: home()?.join(".pincer"),
            }),
        }
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("pincer.json")
    }
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.redb")
    }
    pub fn workspace(&self) -> PathBuf {
        self.root.join("workspace")
    }
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials")
    }
    pub fn token_file(&self) -> PathBuf {
        self.credentials().join("gateway.token")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn gateway_log(&self) -> PathBuf {
        self.logs().join("gateway.log")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("gateway.pid")
    }

    /// Creates the directory tree; the root and `credentials/` are private (0700).
    pub fn ensure(&self) -> Result<(), ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        let fail = |p: &Path, e: std::io::Error| {
            ConfigError::State(format!("cannot create {}: {e}", p.display()))
        };
        for dir in [self.root.clone(), self.credentials(), self.logs()] {
            std::fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        }
        for dir in [self.root.clone(), self.credentials()] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| fail(&dir, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn resolution_order() {
        let e = env(&[("HOME", "/home/u")]);
        assert_eq!(
            StateDir::resolve(None, &e).unwrap().root(),
            Path::new("/home/u/.pincer")
        );
        let e = env(&[("HOME", "/home/u"), ("PINCER_HOME", "/srv/p")]);
        assert_eq!(
            StateDir::resolve(None, &e).unwrap().root(),
            Path::new("/srv/p")
        );
        assert_eq!(
            StateDir::resolve(Some("work"), &e).unwrap().root(),
            Path::new("/home/u/.pincer-work")
        );
        let err = StateDir::resolve(Some("../x"), &e).unwrap_err().to_string();
        assert!(err.contains("invalid profile name"), "{err}");
        let err = StateDir::resolve(None, &env(&[])).unwrap_err().to_string();
        assert!(err.contains("PINCER_HOME"), "{err}");
    }

    #[test]
    fn ensure_makes_private_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::at(t.path().join("p"));
        s.ensure().unwrap();
        let mode = std::fs::metadata(s.credentials())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        assert!(s.logs().is_dir());
    }
}
