//! The sandbox configuration, shaped like OpenClaw's `agents.*.sandbox` block (camelCase
//! JSON keys), the per-agent merge over the defaults, the safety checks run before any
//! container is made from it, and the hash that tells when a container is out of date.
//!
//! ```json
//! { "mode": "non-main", "scope": "session", "workspaceAccess": "rw",
//!   "docker": { "image": "pincer-sandbox:bookworm", "network": "none", "memory": "1g",
//!               "binds": ["/srv/datasets:/data:ro"], "ulimits": { "nofile": { "soft": 1024, "hard": 2048 } } },
//!   "prune": { "idleHours": 24, "maxAgeDays": 7 } }
//! ```

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::SandboxError;

/// The seccomp profile shipped with Pincer (Docker's default minus namespace, mount,
/// keyring, ptrace, BPF, module and reboot calls), used when `seccompProfile` is unset.
pub const DEFAULT_SECCOMP_PROFILE: &str = include_str!("../../deploy/seccomp.json");

/// Host paths a bind may never expose, nor be inside of.
const FORBIDDEN_ROOTS: &[&str] = &["/etc", "/proc", "/sys", "/dev", "/var/run", "/run"];

/// Docker socket locations a bind may never be or contain.
const DOCKER_SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];

/// Which sessions run their tools in a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// No sandbox: tools run on the host.
    #[default]
    Off,
    /// Every session except the agent's main one.
    NonMain,
    /// Every session.
    All,
}

/// How containers are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// One container per session.
    #[default]
    Session,
    /// One container per agent, shared by its sessions.
    Agent,
    /// One container for everything.
    Shared,
}

/// How the agent workspace is mounted into the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Not mounted.
    #[default]
    None,
    /// Mounted read-only.
    Ro,
    /// Mounted read-write.
    Rw,
}

/// `agents.*.sandbox`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SandboxConfig {
    pub mode: Mode,
    pub scope: Scope,
    pub workspace_access: Access,
    pub docker: DockerConfig,
    pub prune: PruneConfig,
}

/// `sandbox.docker`: everything that shapes the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerConfig {
    pub image: String,
    /// `none` (default) or a user-defined network name; `host` and `container:*` are refused.
    pub network: String,
    pub read_only_root: bool,
    /// tmpfs mounts, `path` or `path:options` (`/tmp:size=128m`); missing options are filled
    /// from `rw,exec,nosuid,nodev,size=64m,mode=1777`.
    pub tmpfs: Vec<String>,
    /// `uid:gid` the container runs as; `None` keeps the image's user.
    pub user: Option<String>,
    pub cap_drop: Vec<String>,
    /// `512m`, `1g`, `65536k` or bytes; swap is set equal (no swap).
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `None`: the shipped profile; otherwise an absolute path to a JSON profile.
    /// `unconfined` is refused.
    pub seccomp_profile: Option<String>,
    /// An AppArmor profile name loaded on the host; `unconfined` is refused.
    pub apparmor_profile: Option<String>,
    pub env: BTreeMap<String, String>,
    /// Extra binds, `host:container[:ro|rw]`, host paths absolute.
    pub binds: Vec<String>,
    /// A shell command run once after the container is created.
    pub setup_command: Option<String>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            image: "pincer-sandbox:bookworm".into(),
            network: "none".into(),
            read_only_root: true,
            tmpfs: vec!["/tmp".into(), "/var/tmp".into(), "/run".into()],
            user: Some("1000:1000".into()),
            cap_drop: vec!["ALL".into()],
            memory: Some("512m".into()),
            cpus: Some(1.0),
            pids_limit: Some(256),
            ulimits: BTreeMap::new(),
            seccomp_profile: None,
            apparmor_profile: None,
            env: BTreeMap::new(),
            binds: Vec::new(),
            setup_command: None,
        }
    }
}

/// A ulimit: one number for both soft and hard, or both spelled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ulimit {
    Both(i64),
    Pair { soft: i64, hard: i64 },
}

impl Ulimit {
    /// `(soft, hard)`.
    pub fn limits(self) -> (i64, i64) {
        match self {
            Ulimit::Both(n) => (n, n),
            Ulimit::Pair { soft, hard } => (soft, hard),
        }
    }
}

/// `sandbox.prune`: when idle or old containers are removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PruneConfig {
    pub idle_hours: u64,
    pub max_age_days: u64,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            idle_hours: 24,
            max_age_days: 7,
        }
    }
}

/// A bind mount of a host path: one parsed `docker.binds` entry, or one the caller asks
/// for (the workspace) in [`crate::docker::ContainerSpec::mounts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
}

impl Mount {
    /// Parses `host:container[:ro|rw]` (default `rw`); refuses relative paths (Docker would
    /// take a relative host path for a named volume) and other options.
    pub fn parse(spec: &str) -> Result<Mount, SandboxError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, container, mode) = match parts.as_slice() {
            [h, c] => (*h, *c, "rw"),
            [h, c, m] => (*h, *c, *m),
            _ => {
                return Err(SandboxError::Refused(format!(
                    "docker.binds: `{spec}` is not `host:container[:ro|rw]` (paths may not contain `:`)"
                )));
            }
        };
        let read_only = match mode {
            "ro" => true,
            "rw" => false,
            other => {
                return Err(SandboxError::Refused(format!(
                    "docker.binds: `{spec}` has mode `{other}`; only `ro` and `rw` are allowed"
                )));
            }
        };
        if !host.starts_with('/') {
            return Err(SandboxError::Refused(format!(
                "docker.binds: host path `{host}` in `{spec}` is relative; use an absolute path (a relative one would be a Docker named volume)"
            )));
        }
        if !container.starts_with('/') || container == "/" {
            return Err(SandboxError::Refused(format!(
                "docker.binds: container path `{container}` in `{spec}` must be absolute and not `/`"
            )));
        }
        Ok(Mount {
            host: PathBuf::from(host),
            container: container.to_string(),
            read_only,
        })
    }
}

impl SandboxConfig {
    /// Deep-merges a per-agent JSON object over `defaults`: objects merge key by key, any
    /// other value (arrays included) replaces. `null` or an empty object keeps the defaults.
    pub fn merge(
        defaults: &SandboxConfig,
        per_agent: &serde_json::Value,
    ) -> Result<SandboxConfig, String> {
        let mut base = serde_json::to_value(defaults)
            .map_err(|e| format!("sandbox config: cannot serialise the defaults: {e}"))?;
        match per_agent {
            serde_json::Value::Null => {}
            serde_json::Value::Object(_) => merge_values(&mut base, per_agent),
            other => {
                return Err(format!(
                    "sandbox config: the per-agent sandbox must be an object, not `{other}`"
                ));
            }
        }
        serde_json::from_value(base).map_err(|e| format!("sandbox config: {e}"))
    }

    /// Refuses configurations that would let a container reach the host: binds of the Docker
    /// socket, `/`, `/etc`, `/proc`, `/sys`, `/dev`, `/run`, or the state directory (binds
    /// inside the agent's own workspace are fine), relative binds, the host network or
    /// another container's, and unconfined seccomp or AppArmor. Also refuses values Docker
    /// would reject later (memory, cpus, tmpfs, seccomp file). Dropping fewer capabilities
    /// than `ALL` is allowed with a warning.
    pub fn check(&self, state_dir: &Path, workspace: &Path) -> Result<(), SandboxError> {
        let d = &self.docker;
        check_static(d)?;

        let state = resolve(state_dir);
        let ws = resolve(workspace);
        if self.workspace_access != Access::None {
            if let Some(why) = forbidden_host_path(&ws) {
                return Err(SandboxError::Refused(format!(
                    "workspace {} cannot be mounted into a sandbox: it {why}",
                    workspace.display()
                )));
            }
            if ws == state || state.starts_with(&ws) {
                return Err(SandboxError::Refused(format!(
                    "workspace {} cannot be mounted into a sandbox: it contains the state directory {} (credentials, sessions)",
                    workspace.display(),
                    state_dir.display()
                )));
            }
        }
        for spec in &d.binds {
            let bind = Mount::parse(spec)?;
            let host = resolve(&bind.host);
            if let Some(why) = forbidden_host_path(&host) {
                return Err(SandboxError::Refused(format!(
                    "docker.binds: `{spec}` would expose {} which {why}",
                    host.display()
                )));
            }
            let inside_workspace =
                host.starts_with(&ws) && !(ws == state || state.starts_with(&ws));
            if !inside_workspace
                && (host == state || host.starts_with(&state) || state.starts_with(&host))
            {
                return Err(SandboxError::Refused(format!(
                    "docker.binds: `{spec}` would expose Pincer's state directory {} (credentials, sessions, config)",
                    state_dir.display()
                )));
            }
        }
        Ok(())
    }

    /// A short hash of everything that shapes the container (all of `docker`, plus the
    /// workspace access and scope, plus the seccomp profile's contents): a different hash
    /// means the container must be recreated.
    pub fn config_hash(&self) -> String {
        #[derive(Serialize)]
        struct Hashed<'a> {
            scope: Scope,
            workspace_access: Access,
            docker: &'a DockerConfig,
            seccomp: String,
        }
        let seccomp = match self.docker.seccomp_json() {
            Ok(json) => hex::encode(Sha256::digest(json.as_bytes())),
            Err(e) => format!("unreadable: {e}"),
        };
        let canonical = serde_json::to_string(&Hashed {
            scope: self.scope,
            workspace_access: self.workspace_access,
            docker: &self.docker,
            seccomp,
        })
        .unwrap_or_default();
        let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
        digest[..16].to_string()
    }
}

impl DockerConfig {
    /// The seccomp profile to hand Docker (`seccomp=<this>`), compact JSON: the shipped one,
    /// or the file `seccompProfile` names. `unconfined` is refused.
    pub fn seccomp_json(&self) -> Result<String, SandboxError> {
        let (text, source) = match self.seccomp_profile.as_deref() {
            None => (
                DEFAULT_SECCOMP_PROFILE.to_string(),
                "the shipped profile".to_string(),
            ),
            Some(p) if p.eq_ignore_ascii_case("unconfined") => {
                return Err(SandboxError::Refused(
                    "docker.seccompProfile: `unconfined` would allow every syscall (mount, unshare, ptrace...); remove it to use the shipped profile".into(),
                ));
            }
            Some(p) => {
                if !p.starts_with('/') {
                    return Err(SandboxError::Refused(format!(
                        "docker.seccompProfile: `{p}` must be an absolute path to a JSON profile"
                    )));
                }
                let text = std::fs::read_to_string(p).map_err(|e| {
                    SandboxError::Refused(format!("docker.seccompProfile: cannot read {p}: {e}"))
                })?;
                (text, p.to_string())
            }
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            SandboxError::Refused(format!(
                "docker.seccompProfile: {source} is not valid JSON: {e}"
            ))
        })?;
        if !value.get("defaultAction").is_some_and(|v| v.is_string()) {
            return Err(SandboxError::Refused(format!(
                "docker.seccompProfile: {source} has no `defaultAction`; it is not a seccomp profile"
            )));
        }
        Ok(value.to_string())
    }

    /// `memory` in bytes (`None` when unset).
    pub fn memory_bytes(&self) -> Result<Option<i64>, SandboxError> {
        self.memory.as_deref().map(parse_memory).transpose()
    }

    /// The tmpfs mounts as Docker wants them: path -> options, defaults filled in.
    pub fn tmpfs_map(&self) -> Result<BTreeMap<String, String>, SandboxError> {
        let mut out = BTreeMap::new();
        for entry in &self.tmpfs {
            let (path, opts) = match entry.split_once(':') {
                Some((p, o)) => (p, o),
                None => (entry.as_str(), ""),
            };
            if !path.starts_with('/') || path == "/" {
                return Err(SandboxError::Refused(format!(
                    "docker.tmpfs: `{entry}` must start with an absolute path other than `/`"
                )));
            }
            out.insert(path.to_string(), tmpfs_options(opts));
        }
        Ok(out)
    }
}

/// Fills the options missing from `given` from `rw,exec,nosuid,nodev,size=64m,mode=1777`.
/// `exec` is explicit because Docker mounts tmpfs `noexec` unless told otherwise, and
/// scripts written to /tmp must run. `mode` only applies where the image has no such
/// directory: Docker copies the image directory (and its mode) onto the tmpfs.
fn tmpfs_options(given: &str) -> String {
    const DEFAULTS: &[(&str, &str)] = &[
        ("rw", "rw"),
        ("exec", "exec"),
        ("nosuid", "nosuid"),
        ("nodev", "nodev"),
        ("size", "size=64m"),
        ("mode", "mode=1777"),
    ];
    let mut opts: Vec<String> = given
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(String::from)
        .collect();
    let key = |o: &str| o.split('=').next().unwrap_or("").to_string();
    for (k, v) in DEFAULTS {
        let taken = opts.iter().any(|o| {
            let ok = key(o);
            ok == *k
                || (*k == "rw" && ok == "ro")
                || (*k == "exec" && ok == "noexec")
                || (*k == "nosuid" && ok == "suid")
                || (*k == "nodev" && ok == "dev")
        });
        if !taken {
            opts.push((*v).to_string());
        }
    }
    opts.join(",")
}

/// Parses `512m`, `1g`, `64k`, `1048576`, `512mb` (case-insensitive, binary units).
pub fn parse_memory(s: &str) -> Result<i64, SandboxError> {
    let bad = || {
        SandboxError::Refused(format!(
            "docker.memory: `{s}` is not a size like `512m`, `1g` or a number of bytes"
        ))
    };
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(mult).ok_or_else(bad)?;
    // Docker's own floor is 6 MiB.
    if bytes < 6 << 20 {
        return Err(SandboxError::Refused(format!(
            "docker.memory: `{s}` is below Docker's minimum of 6m"
        )));
    }
    Ok(bytes)
}

/// Checks that need no paths: network, seccomp, AppArmor, limits, tmpfs, bind syntax. Also
/// run by `Docker::create` so a container is never made from a config refused here.
pub(crate) fn check_static(d: &DockerConfig) -> Result<(), SandboxError> {
    let net = d.network.trim();
    if net.eq_ignore_ascii_case("host") {
        return Err(SandboxError::Refused(
            "docker.network: `host` would share the host's network stack (and its loopback services) with the sandbox; use `none` or a dedicated network".into(),
        ));
    }
    if net.to_ascii_lowercase().starts_with("container:") {
        return Err(SandboxError::Refused(format!(
            "docker.network: `{net}` would join another container's network namespace; use `none` or a dedicated network"
        )));
    }
    if net.is_empty() {
        return Err(SandboxError::Refused(
            "docker.network: empty; use `none` (Docker would pick its default bridge)".into(),
        ));
    }
    d.seccomp_json()?;
    if let Some(p) = &d.apparmor_profile
        && p.trim().eq_ignore_ascii_case("unconfined")
    {
        return Err(SandboxError::Refused(
            "docker.apparmorProfile: `unconfined` disables AppArmor for the sandbox; remove it or name a loaded profile".into(),
        ));
    }
    if !d.cap_drop.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        tracing::warn!(cap_drop = ?d.cap_drop, "sandbox keeps some capabilities: docker.capDrop does not contain ALL");
    }
    d.memory_bytes()?;
    if let Some(c) = d.cpus
        && !(c.is_finite() && c > 0.0)
    {
        return Err(SandboxError::Refused(format!(
            "docker.cpus: {c} must be a positive number"
        )));
    }
    if let Some(p) = d.pids_limit
        && p <= 0
    {
        return Err(SandboxError::Refused(format!(
            "docker.pidsLimit: {p} must be positive (unset it for no limit)"
        )));
    }
    d.tmpfs_map()?;
    for spec in &d.binds {
        Mount::parse(spec)?;
    }
    Ok(())
}

/// Why a (resolved) host path may not be mounted, if it may not.
pub(crate) fn forbidden_host_path(p: &Path) -> Option<String> {
    if p == Path::new("/") {
        return Some("is the host's root directory".into());
    }
    if p.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("docker.sock"))
    {
        return Some(
            "is a Docker socket (control of the Docker daemon is root on the host)".into(),
        );
    }
    for sock in DOCKER_SOCKETS {
        let sock = Path::new(sock);
        if sock.starts_with(p) || resolve(sock).starts_with(p) {
            return Some(format!(
                "contains the Docker socket {} (control of the Docker daemon is root on the host)",
                sock.display()
            ));
        }
    }
    for root in FORBIDDEN_ROOTS {
        let root = Path::new(root);
        if p.starts_with(root) || p.starts_with(resolve(root)) {
            return Some(format!(
                "is or is inside {} (host system state)",
                root.display()
            ));
        }
    }
    None
}

/// Canonicalises `p` when it exists; otherwise canonicalises its longest existing ancestor
/// and appends the rest lexically normalised. Symlinks in the existing part are resolved.
pub(crate) fn resolve(p: &Path) -> PathBuf {
    let normal = normalize(p);
    if let Ok(c) = normal.canonicalize() {
        return c;
    }
    let mut existing = normal.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => {
                rest.push(name.to_os_string());
                existing.pop();
            }
            None => return normal,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    out
}

/// Lexical normalisation: drops `.`, folds `..`, never climbs above `/`.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn merge_values(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge_values(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(r: Result<(), SandboxError>) -> String {
        match r {
            Err(SandboxError::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn with_binds(binds: &[&str]) -> SandboxConfig {
        let mut c = SandboxConfig::default();
        c.docker.binds = binds.iter().map(|s| s.to_string()).collect();
        c
    }

    struct Dirs {
        _tmp: tempfile::TempDir,
        state: PathBuf,
        ws: PathBuf,
        other: PathBuf,
    }

    fn dirs() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let ws = state.join("workspaces/main");
        let other = tmp.path().join("data");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        Dirs {
            _tmp: tmp,
            state,
            ws,
            other,
        }
    }

    #[test]
    fn defaults_match_the_documented_hardening() {
        let c: SandboxConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, SandboxConfig::default());
        assert_eq!(c.mode, Mode::Off);
        assert_eq!(c.scope, Scope::Session);
        assert_eq!(c.workspace_access, Access::None);
        let d = &c.docker;
        assert_eq!(d.image, "pincer-sandbox:bookworm");
        assert_eq!(d.network, "none");
        assert!(d.read_only_root);
        assert_eq!(d.tmpfs, ["/tmp", "/var/tmp", "/run"]);
        assert_eq!(d.user.as_deref(), Some("1000:1000"));
        assert_eq!(d.cap_drop, ["ALL"]);
        assert_eq!(d.memory.as_deref(), Some("512m"));
        assert_eq!(d.cpus, Some(1.0));
        assert_eq!(d.pids_limit, Some(256));
        assert!(d.seccomp_profile.is_none() && d.apparmor_profile.is_none());
        assert_eq!(
            c.prune,
            PruneConfig {
                idle_hours: 24,
                max_age_days: 7
            }
        );
        let dirs = dirs();
        c.check(&dirs.state, &dirs.ws).unwrap();
    }

    #[test]
    fn json_keys_are_camel_case_and_enums_kebab_case() {
        let c: SandboxConfig = serde_json::from_value(json!({
            "mode": "non-main", "scope": "agent", "workspaceAccess": "ro",
            "docker": { "readOnlyRoot": false, "capDrop": [], "pidsLimit": 10,
                        "seccompProfile": "/x.json", "apparmorProfile": "p", "setupCommand": "true",
                        "ulimits": { "nofile": { "soft": 1, "hard": 2 }, "nproc": 5 } },
            "prune": { "idleHours": 1, "maxAgeDays": 2 }
        }))
        .unwrap();
        assert_eq!(c.mode, Mode::NonMain);
        assert_eq!(c.scope, Scope::Agent);
        assert_eq!(c.workspace_access, Access::Ro);
        assert!(!c.docker.read_only_root);
        assert!(c.docker.cap_drop.is_empty());
        assert_eq!(c.docker.pids_limit, Some(10));
        assert_eq!(c.docker.ulimits["nofile"].limits(), (1, 2));
        assert_eq!(c.docker.ulimits["nproc"].limits(), (5, 5));
        assert_eq!(c.prune.max_age_days, 2);
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["workspaceAccess"], "ro");
        assert_eq!(back["docker"]["ulimits"]["nproc"], 5);
        assert_eq!(serde_json::from_value::<SandboxConfig>(back).unwrap(), c);
    }

    #[test]
    fn merge_is_deep_for_objects_and_replaces_everything_else() {
        let mut defaults = SandboxConfig {
            mode: Mode::All,
            ..Default::default()
        };
        defaults.docker.env.insert("A".into(), "1".into());
        defaults.docker.binds = vec!["/srv/a:/a:ro".into()];
        let merged = SandboxConfig::merge(
            &defaults,
            &json!({ "docker": { "memory": "1g", "env": { "B": "2" }, "binds": ["/srv/b:/b"], "user": null },
                     "workspaceAccess": "rw" }),
        )
        .unwrap();
        assert_eq!(merged.mode, Mode::All, "untouched keys keep the defaults");
        assert_eq!(merged.workspace_access, Access::Rw);
        assert_eq!(merged.docker.memory.as_deref(), Some("1g"));
        assert_eq!(merged.docker.image, "pincer-sandbox:bookworm");
        assert_eq!(merged.docker.env.len(), 2, "objects merge key by key");
        assert_eq!(merged.docker.binds, ["/srv/b:/b"], "arrays replace");
        assert_eq!(merged.docker.user, None, "null replaces");
        assert_eq!(
            SandboxConfig::merge(&defaults, &json!(null)).unwrap(),
            defaults
        );
        assert_eq!(
            SandboxConfig::merge(&defaults, &json!({})).unwrap(),
            defaults
        );
        assert!(SandboxConfig::merge(&defaults, &json!([1])).is_err());
        let e = SandboxConfig::merge(&defaults, &json!({ "scope": "galaxy" })).unwrap_err();
        assert!(e.contains("galaxy"), "{e}");
    }

    #[test]
    fn refuses_docker_socket_binds() {
        let d = dirs();
        for b in [
            "/var/run/docker.sock:/var/run/docker.sock",
            "/run/docker.sock:/s",
            "/home/u/.docker/run/docker.sock:/s:ro",
            "/var/run:/x:ro",
            "/var:/x:ro",
        ] {
            let m = refused(with_binds(&[b]).check(&d.state, &d.ws));
            assert!(
                m.contains("Docker socket") || m.contains("/var/run"),
                "{b}: {m}"
            );
        }
    }

    #[test]
    fn refuses_system_paths() {
        let d = dirs();
        for (b, what) in [
            ("/:/host", "root directory"),
            ("/etc:/e:ro", "/etc"),
            ("/etc/ssh:/e:ro", "/etc"),
            ("/proc:/p", "/proc"),
            ("/sys/fs:/p", "/sys"),
            ("/dev:/d", "/dev"),
            ("/run/user:/r", "/run"),
            ("/tmp/../etc:/e", "/etc"),
        ] {
            let m = refused(with_binds(&[b]).check(&d.state, &d.ws));
            assert!(m.contains(what), "{b}: {m}");
        }
    }

    #[test]
    fn refuses_a_symlink_to_root() {
        let d = dirs();
        let link = d.other.join("innocent");
        std::os::unix::fs::symlink("/", &link).unwrap();
        let spec = format!("{}:/data:ro", link.display());
        let m = refused(with_binds(&[&spec]).check(&d.state, &d.ws));
        assert!(m.contains("root directory"), "{m}");
        // A path that does not exist yet, below the link, resolves through it too.
        let spec = format!("{}/etc/not-yet:/data:ro", link.display());
        let m = refused(with_binds(&[&spec]).check(&d.state, &d.ws));
        assert!(m.contains("/etc"), "{m}");
    }

    #[test]
    fn refuses_the_state_dir_in_every_direction() {
        let d = dirs();
        let parent = d.state.parent().unwrap().display().to_string();
        for b in [
            format!("{}:/s", d.state.display()),
            format!("{}/credentials:/s:ro", d.state.display()),
            format!("{parent}:/s:ro"),
        ] {
            let m = refused(with_binds(&[&b]).check(&d.state, &d.ws));
            assert!(m.contains("state directory"), "{b}: {m}");
        }
        // A symlink elsewhere that points into the state dir is caught too.
        let link = d.other.join("sneaky");
        std::os::unix::fs::symlink(&d.state, &link).unwrap();
        let b = format!("{}:/s", link.display());
        assert!(refused(with_binds(&[&b]).check(&d.state, &d.ws)).contains("state directory"));
        // Binds inside the agent's own workspace are fine, even though it lives in the state dir.
        let ok = format!("{}/sub:/w2:ro", d.ws.display());
        with_binds(&[&ok]).check(&d.state, &d.ws).unwrap();
        let ok = format!("{}:/data:ro", d.other.display());
        with_binds(&[&ok]).check(&d.state, &d.ws).unwrap();
    }

    #[test]
    fn refuses_a_workspace_that_contains_the_state_dir() {
        let d = dirs();
        let mut c = SandboxConfig {
            workspace_access: Access::Rw,
            ..Default::default()
        };
        c.check(&d.state, &d.ws).unwrap();
        let parent = d.state.parent().unwrap();
        let m = refused(c.check(&d.state, parent));
        assert!(m.contains("state directory"), "{m}");
        let m = refused(c.check(&d.state, Path::new("/")));
        assert!(m.contains("root directory"), "{m}");
        // Not mounted: not checked.
        c.workspace_access = Access::None;
        c.check(&d.state, parent).unwrap();
    }

    #[test]
    fn refuses_relative_and_malformed_binds() {
        let d = dirs();
        for (b, what) in [
            ("data:/data", "relative"),
            ("./data:/data", "relative"),
            ("/srv/a:data", "absolute"),
            ("/srv/a:/a:z", "mode"),
            ("/srv/a", "host:container"),
            ("/srv/a:/a:ro:extra", "host:container"),
        ] {
            let m = refused(with_binds(&[b]).check(&d.state, &d.ws));
            assert!(m.contains(what), "{b}: {m}");
        }
    }

    type Tweak = fn(&mut DockerConfig);

    #[test]
    fn refuses_unsafe_or_invalid_docker_settings() {
        let d = dirs();
        let cases: [(Tweak, &str); 9] = [
            (|c| c.network = "host".into(), "docker.network"),
            (|c| c.network = "HOST".into(), "docker.network"),
            (|c| c.network = "container:abc".into(), "docker.network"),
            (
                |c| c.seccomp_profile = Some("unconfined".into()),
                "seccompProfile",
            ),
            (
                |c| c.apparmor_profile = Some("unconfined".into()),
                "apparmorProfile",
            ),
            (|c| c.memory = Some("lots".into()), "docker.memory"),
            (|c| c.cpus = Some(0.0), "docker.cpus"),
            (|c| c.pids_limit = Some(0), "docker.pidsLimit"),
            (|c| c.tmpfs = vec!["tmp:size=1m".into()], "docker.tmpfs"),
        ];
        for (tweak, what) in cases {
            let mut c = SandboxConfig::default();
            tweak(&mut c.docker);
            let m = refused(c.check(&d.state, &d.ws));
            assert!(m.contains(what), "{what}: {m}");
        }
        // Allowed: a named network, a named AppArmor profile, keeping capabilities (warned).
        let allowed: [Tweak; 3] = [
            |c| c.network = "pincer-egress".into(),
            |c| c.apparmor_profile = Some("docker-default".into()),
            |c| c.cap_drop = vec!["NET_RAW".into()],
        ];
        for tweak in allowed {
            let mut c = SandboxConfig::default();
            tweak(&mut c.docker);
            c.check(&d.state, &d.ws).unwrap();
        }
    }

    #[test]
    fn seccomp_profile_files_are_read_and_validated() {
        let d = dirs();
        let mut c = SandboxConfig::default();
        c.docker.seccomp_profile = Some("profiles/x.json".into());
        assert!(refused(c.check(&d.state, &d.ws)).contains("absolute"));
        let missing = d.other.join("missing.json");
        c.docker.seccomp_profile = Some(missing.display().to_string());
        assert!(refused(c.check(&d.state, &d.ws)).contains("cannot read"));
        let bad = d.other.join("bad.json");
        std::fs::write(&bad, "{ not json").unwrap();
        c.docker.seccomp_profile = Some(bad.display().to_string());
        assert!(refused(c.check(&d.state, &d.ws)).contains("not valid JSON"));
        let good = d.other.join("good.json");
        std::fs::write(&good, r#"{ "defaultAction": "SCMP_ACT_ALLOW" }"#).unwrap();
        c.docker.seccomp_profile = Some(good.display().to_string());
        c.check(&d.state, &d.ws).unwrap();
        assert_eq!(
            c.docker.seccomp_json().unwrap(),
            r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#
        );
    }

    #[test]
    fn shipped_seccomp_profile_blocks_what_it_says() {
        let v: serde_json::Value = serde_json::from_str(DEFAULT_SECCOMP_PROFILE).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        let mut allowed = std::collections::BTreeSet::new();
        for rule in v["syscalls"].as_array().unwrap() {
            assert!(
                rule.get("includes").and_then(|i| i.get("caps")).is_none(),
                "no capability-conditional rules: {rule}"
            );
            if rule["action"] == "SCMP_ACT_ALLOW" {
                for n in rule["names"].as_array().unwrap() {
                    allowed.insert(n.as_str().unwrap().to_string());
                }
            }
        }
        for needed in "read write execve clone wait4 openat arch_prctl socket".split(' ') {
            assert!(allowed.contains(needed), "{needed} must stay allowed");
        }
        let blocked = "mount umount umount2 pivot_root unshare setns keyctl add_key request_key \
            ptrace process_vm_readv process_vm_writev bpf perf_event_open kexec_load \
            kexec_file_load init_module finit_module delete_module open_by_handle_at userfaultfd \
            swapon swapoff reboot chroot clone3 fsopen fsmount move_mount open_tree io_uring_setup";
        for name in blocked.split_whitespace() {
            assert!(!allowed.contains(name), "{name} must not be allowed");
        }
        // clone is allowed only without namespace flags.
        let clone_rules: Vec<_> = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == "clone"))
            .collect();
        assert!(!clone_rules.is_empty());
        for r in clone_rules {
            let args = r["args"].as_array().expect("clone is conditional");
            assert_eq!(args[0]["op"], "SCMP_CMP_MASKED_EQ");
            assert_eq!(args[0]["value"], 0x7E02_0000u64);
        }
    }

    #[test]
    fn memory_sizes_parse() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("512mb").unwrap(), 512 << 20);
        assert_eq!(parse_memory("65536k").unwrap(), 64 << 20);
        assert_eq!(parse_memory("33554432").unwrap(), 32 << 20);
        assert!(parse_memory("1m").is_err(), "below Docker's floor");
        assert!(parse_memory("1.5g").is_err());
        assert!(parse_memory("").is_err());
        assert!(parse_memory("99999999999g").is_err());
    }

    #[test]
    fn tmpfs_options_are_filled_in() {
        let d = DockerConfig {
            tmpfs: vec![
                "/tmp".into(),
                "/cache:size=128m,noexec".into(),
                "/ro:ro,mode=0755".into(),
            ],
            ..Default::default()
        };
        let m = d.tmpfs_map().unwrap();
        assert_eq!(m["/tmp"], "rw,exec,nosuid,nodev,size=64m,mode=1777");
        assert_eq!(m["/cache"], "size=128m,noexec,rw,nosuid,nodev,mode=1777");
        assert_eq!(m["/ro"], "ro,mode=0755,exec,nosuid,nodev,size=64m");
    }

    #[test]
    fn hash_changes_with_anything_that_shapes_the_container() {
        let base = SandboxConfig::default();
        let h = base.config_hash();
        assert_eq!(h.len(), 16);
        assert_eq!(h, SandboxConfig::default().config_hash(), "stable");
        let variants: [fn(&mut SandboxConfig); 6] = [
            |c| c.docker.memory = Some("1g".into()),
            |c| _ = c.docker.env.insert("X".into(), "1".into()),
            |c| c.docker.binds.push("/srv:/srv:ro".into()),
            |c| c.workspace_access = Access::Ro,
            |c| c.scope = Scope::Shared,
            |c| c.docker.image = "other:1".into(),
        ];
        for tweak in variants {
            let mut c = base.clone();
            tweak(&mut c);
            assert_ne!(c.config_hash(), h, "{c:?}");
        }
        // What does not shape the container does not change it.
        let mut c = base.clone();
        c.mode = Mode::All;
        c.prune.idle_hours = 1;
        assert_eq!(c.config_hash(), h);
    }

    #[test]
    fn hash_follows_the_seccomp_file_contents() {
        let d = dirs();
        let f = d.other.join("p.json");
        std::fs::write(&f, r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#).unwrap();
        let mut c = SandboxConfig::default();
        c.docker.seccomp_profile = Some(f.display().to_string());
        let h1 = c.config_hash();
        std::fs::write(&f, r#"{"defaultAction":"SCMP_ACT_KILL"}"#).unwrap();
        assert_ne!(c.config_hash(), h1);
    }
}
