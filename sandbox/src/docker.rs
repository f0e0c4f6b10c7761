//! A thin wrapper over bollard for one local Docker Engine: connect (unix socket only),
//! create hardened containers from a [`DockerConfig`], start/stop/remove/inspect/list
//! them, and copy files in and out. Running commands ([`Docker::exec`], streamed and
//! capped output, a timeout that kills the whole process tree) is in [`crate::exec`];
//! its types are re-exported here.
//!
//! What the Engine does not do, and how this module works around it:
//! - Archive upload (`PUT /containers/{id}/archive`) is refused outright for a container with
//!   a read-only root ("container rootfs is marked read-only"), even towards a tmpfs, and
//!   archive download reads the image layers under a tmpfs, not the tmpfs itself. So
//!   [`Docker::copy_in`] streams a tar into `tar -x` through an exec's stdin and
//!   [`Docker::copy_out`] runs `cat` in an exec: both see exactly what the container sees.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, Mount as BollardMount, MountType,
    ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};

use crate::SandboxError;
pub use crate::config::Mount;
use crate::config::{self, DockerConfig};
use crate::exec::RunArgs;
pub use crate::exec::{EXEC_MARK_VAR, ExecRequest, ExecResult, OutputKind};

/// Every container Pincer makes carries `pincer.sandbox=1`.
pub const LABEL_SANDBOX: &str = "pincer.sandbox";
/// The session key the container serves (scope `session`).
pub const LABEL_SESSION: &str = "pincer.session";
/// The key the container is shared under (session key, agent id or `shared`).
pub const LABEL_SCOPE_KEY: &str = "pincer.scope-key";
/// The agent id.
pub const LABEL_AGENT: &str = "pincer.agent";
/// [`crate::config::SandboxConfig::config_hash`] at creation.
pub const LABEL_CONFIG_HASH: &str = "pincer.config-hash";
/// Unix seconds at creation.
pub const LABEL_CREATED_AT: &str = "pincer.created-at";

/// Where the Engine listens when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// PID 1's command: waits forever, reaps orphans (the shell's `wait` reaps any child), and
/// exits at once on SIGTERM so `stop` does not wait for the grace period.
pub const KEEP_ALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// `copy_in`: `$1` destination, `$2` number of subdirectories, those, then mode/name pairs
/// (tar applies the umask for non-root users, so modes are set again afterwards).
const COPY_IN_SCRIPT: &str = r#"set -e; mkdir -p -- "$1"; cd "$1"; n=$2; shift 2
while [ "$n" -gt 0 ]; do mkdir -p -- "$1"; shift; n=$((n - 1)); done
tar -xf -
while [ $# -gt 1 ]; do chmod -- "$1" "$2"; shift 2; done"#;

/// `copy_out`: `$1` the file.
const COPY_OUT_SCRIPT: &str = r#"if [ -f "$1" ]; then exec cat -- "$1"
elif [ -e "$1" ]; then echo "not a regular file" >&2; exit 3
else echo "no such file" >&2; exit 4; fi"#;

/// How long a copy may take.
const COPY_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest file [`Docker::copy_out`] returns.
pub const COPY_OUT_MAX: usize = 64 << 20;

/// A connection to one Docker Engine.
#[derive(Debug, Clone)]
pub struct Docker {
    pub(crate) inner: bollard::Docker,
    socket: String,
    /// Whether the daemon has an init binary (`docker-init`) to run as PID 1.
    init: bool,
}

/// Everything [`Docker::create`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub config: DockerConfig,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub workdir: String,
    pub hostname: Option<String>,
}

/// What [`Docker::inspect`] and [`Docker::list`] report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
    /// Unix seconds.
    pub created: i64,
}

impl Docker {
    /// Connects to `DOCKER_HOST` (`unix://` only) or [`DEFAULT_SOCKET`], negotiates the API
    /// version and pings. A daemon that does not answer is `Unreachable`; a `tcp://` (or
    /// any non-unix) `DOCKER_HOST` is refused.
    pub async fn connect() -> Result<Docker, SandboxError> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.trim().is_empty() => socket_from_host(h.trim())?,
            _ => DEFAULT_SOCKET.to_string(),
        };
        Docker::connect_with_socket(&socket).await
    }

    /// Connects to the unix socket at `path` (a `unix://` prefix is accepted).
    pub async fn connect_with_socket(path: &str) -> Result<Docker, SandboxError> {
        let socket = path.trim_start_matches("unix://").to_string();
        let unreachable = |detail: String| SandboxError::Unreachable {
            socket: socket.clone(),
            detail,
        };
        if !std::path::Path::new(&socket).exists() {
            return Err(unreachable("no such socket".into()));
        }
        let raw = bollard::Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?;
        let raw = raw
            .negotiate_version()
            .await
            .map_err(|e| unreachable(format!("version negotiation: {e}")))?;
        raw.ping()
            .await
            .map_err(|e| unreachable(format!("ping: {e}")))?;
        let init = match raw.info().await {
            Ok(info) => info.init_binary.is_some_and(|b| !b.is_empty()),
            Err(e) => return Err(unreachable(format!("info: {e}"))),
        };
        tracing::debug!(%socket, api = ?raw.client_version(), init, "connected to docker");
        Ok(Docker {
            inner: raw,
            socket,
            init,
        })
    }

    /// The bollard client, for what this wrapper does not cover.
    pub fn raw(&self) -> &bollard::Docker {
        &self.inner
    }

    /// The socket path this connection uses.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Whether containers get the daemon's init (`docker-init`, tini) as PID 1.
    pub fn uses_init(&self) -> bool {
        self.init
    }

    /// Whether `image` (`name:tag` or id) is present locally. Never pulls.
    pub async fn image_exists(&self, image: &str) -> Result<bool, SandboxError> {
        match self.inner.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Creates (does not start) a hardened container and returns its id: no new privileges,
    /// the seccomp profile, the capability drops, read-only root with tmpfs mounts,
    /// network, memory (no swap), cpu, pids and ulimits from the config, and exactly the
    /// binds of `config.binds` and `spec.mounts` (bind mounts of existing host paths:
    /// nothing is created on the host). PID 1 runs [`KEEP_ALIVE`], under `docker-init`
    /// when the daemon has one. Refuses what [`crate::config::SandboxConfig::check`]
    /// refuses without knowing the state directory; a missing image is `ImageMissing`.
    pub async fn create(&self, spec: &ContainerSpec) -> Result<String, SandboxError> {
        let c = &spec.config;
        config::check_static(c)?;
        let mut mounts = Vec::new();
        let binds = c.binds.iter().map(|b| Mount::parse(b));
        for m in binds
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .chain(&spec.mounts)
        {
            let why = match m.host.is_absolute() && m.container.starts_with('/') {
                false => Some("both paths must be absolute".to_string()),
                true => config::forbidden_host_path(&config::resolve(&m.host))
                    .map(|why| format!("the host path {why}")),
            };
            if let Some(why) = why {
                let (host, container) = (m.host.display(), &m.container);
                return Err(SandboxError::Refused(format!(
                    "mount {host} -> {container}: {why}"
                )));
            }
            mounts.push(BollardMount {
                target: Some(m.container.clone()),
                source: Some(m.host.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(m.read_only),
                ..Default::default()
            });
        }
        let missing = || SandboxError::ImageMissing {
            image: c.image.clone(),
        };
        if !self.image_exists(&c.image).await? {
            return Err(missing());
        }

        let mut security_opt = vec![
            "no-new-privileges:true".to_string(),
            format!("seccomp={}", c.seccomp_json()?),
        ];
        if let Some(p) = &c.apparmor_profile {
            security_opt.push(format!("apparmor={p}"));
        }
        let memory = c.memory_bytes()?;
        let ulimits = c
            .ulimits
            .iter()
            .map(|(name, u)| {
                let (soft, hard) = u.limits();
                ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(soft),
                    hard: Some(hard),
                }
            })
            .collect::<Vec<_>>();
        let host_config = HostConfig {
            security_opt: Some(security_opt),
            cap_drop: Some(c.cap_drop.clone()),
            readonly_rootfs: Some(c.read_only_root),
            tmpfs: Some(c.tmpfs_map()?.into_iter().collect::<HashMap<_, _>>()),
            network_mode: Some(c.network.clone()),
            memory,
            memory_swap: memory,
            nano_cpus: c.cpus.map(|n| (n * 1e9).round() as i64),
            pids_limit: c.pids_limit,
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            mounts: Some(mounts),
            init: self.init.then_some(true),
            privileged: Some(false),
            ipc_mode: Some("private".into()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(c.image.clone()),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), KEEP_ALIVE.into()]),
            cmd: Some(vec![]),
            user: c.user.clone(),
            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            working_dir: (!spec.workdir.is_empty()).then(|| spec.workdir.clone()),
            hostname: spec.hostname.clone(),
            host_config: Some(host_config),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        match self.inner.create_container(Some(opts), body).await {
            Ok(resp) => {
                for w in resp.warnings.iter().filter(|w| !w.is_empty()) {
                    tracing::warn!(name = %spec.name, warning = %w, "docker warned on container create");
                }
                Ok(resp.id)
            }
            Err(e) if is_not_found(&e) => Err(missing()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Starts a created container.
    pub async fn start(&self, id: &str) -> Result<(), SandboxError> {
        self.inner
            .start_container(id, None)
            .await
            .map_err(|e| match e {
                BollardError::DockerResponseServerError { message, .. }
                    if message.contains("docker-init") =>
                {
                    SandboxError::Docker(format!(
                        "the daemon cannot run its init binary ({message}); install docker-init (tini) beside dockerd"
                    ))
                }
                e => self.err(e),
            })
    }

    /// Stops a container, SIGKILL after `grace`. A missing or stopped container is fine.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), SandboxError> {
        let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let opts = StopContainerOptionsBuilder::default().t(t).build();
        match self.inner.stop_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(|e| self.err(e)),
        }
    }

    /// Removes a container (running or not) and its anonymous volumes. A missing container
    /// is fine.
    pub async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.inner.remove_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            other => other.map_err(|e| self.err(e)),
        }
    }

    /// The container `id` (or name), `None` when there is none.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, SandboxError> {
        let c = match self.inner.inspect_container(id, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let labels = c.config.and_then(|cfg| cfg.labels).unwrap_or_default();
        Ok(Some(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: bare_name(c.name),
            labels: labels.into_iter().collect(),
            running: c.state.and_then(|s| s.running).unwrap_or(false),
            created: c.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
        }))
    }

    /// Containers in any state carrying all of the given labels (`key=value`).
    pub async fn list(
        &self,
        label_filter: &[(&str, &str)],
    ) -> Result<Vec<ContainerInfo>, SandboxError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        if !label_filter.is_empty() {
            filters.insert(
                "label".into(),
                label_filter
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            );
        }
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .inner
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.err(e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: bare_name(c.names.and_then(|n| n.into_iter().next())),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                running: c.state == Some(ContainerSummaryStateEnum::RUNNING),
                created: c.created.unwrap_or(0),
            })
            .collect())
    }

    /// Writes `files` (relative name, contents, mode) under `dest_dir`, creating it and any
    /// subdirectories, as the container's user. Works on a read-only root (into tmpfs or
    /// writable binds): a tar is streamed into `tar -x` through an exec's stdin, because the
    /// Engine refuses archive uploads into containers with a read-only root.
    pub async fn copy_in(
        &self,
        id: &str,
        dest_dir: &str,
        files: &[(String, Vec<u8>, u32)],
    ) -> Result<(), SandboxError> {
        if !dest_dir.starts_with('/') {
            return Err(SandboxError::Refused(format!(
                "copy_in: destination `{dest_dir}` must be an absolute path"
            )));
        }
        let mut builder = tar::Builder::new(Vec::new());
        let mut dirs = std::collections::BTreeSet::new();
        let mut modes = Vec::new();
        for (name, data, mode) in files {
            check_relative_name(name)?;
            if let Some((parent, _)) = name.rsplit_once('/') {
                dirs.insert(parent.to_string());
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode & 0o7777);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mtime(unix_now());
            builder.append_data(&mut header, name, data.as_slice())?;
            modes.extend([format!("{:o}", mode & 0o7777), name.clone()]);
        }
        let archive = builder.into_inner()?;
        let mut args = vec![dest_dir.to_string(), dirs.len().to_string()];
        args.extend(dirs);
        args.extend(modes);
        let run = RunArgs::script(COPY_IN_SCRIPT, args, COPY_TIMEOUT);
        let run = RunArgs {
            stdin: Some(archive),
            ..run
        };
        let h = self.helper(id, run, 0).await?;
        if h.code != Some(0) {
            return Err(SandboxError::Docker(format!(
                "copy_in to {dest_dir} failed (exit {:?}): {}",
                h.code, h.stderr
            )));
        }
        Ok(())
    }

    /// The bytes of the regular file `path` as the container sees it (tmpfs included),
    /// read by `cat` in an exec as the container's user. Errors if `path` is not a regular
    /// file or is larger than [`COPY_OUT_MAX`].
    pub async fn copy_out(&self, id: &str, path: &str) -> Result<Vec<u8>, SandboxError> {
        let run = RunArgs::script(COPY_OUT_SCRIPT, vec![path.into()], COPY_TIMEOUT);
        let h = self.helper(id, run, COPY_OUT_MAX).await?;
        match h.code {
            _ if h.overflow => Err(SandboxError::Docker(format!(
                "copy_out {path}: larger than {COPY_OUT_MAX} bytes"
            ))),
            Some(0) => Ok(h.stdout),
            code => Err(SandboxError::Docker(format!(
                "copy_out {path}: {} (exit {code:?})",
                h.stderr
            ))),
        }
    }

    pub(crate) fn err(&self, e: BollardError) -> SandboxError {
        use BollardError as E;
        match e {
            E::DockerResponseServerError {
                status_code,
                message,
            } => SandboxError::Docker(format!("{message} (HTTP {status_code})")),
            E::HyperLegacyError { .. }
            | E::IOError { .. }
            | E::SocketNotFoundError(_)
            | E::RequestTimeoutError
            | E::HyperResponseError { .. } => SandboxError::Unreachable {
                socket: self.socket.clone(),
                detail: e.to_string(),
            },
            other => SandboxError::Docker(other.to_string()),
        }
    }
}

/// A container name without the Engine's leading `/`.
fn bare_name(name: Option<String>) -> String {
    name.unwrap_or_default().trim_start_matches('/').to_string()
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The socket path in a `DOCKER_HOST` value; only `unix://` is accepted.
fn socket_from_host(host: &str) -> Result<String, SandboxError> {
    match host.strip_prefix("unix://") {
        Some(path) if path.starts_with('/') => Ok(path.to_string()),
        Some(_) => Err(SandboxError::Refused(format!(
            "DOCKER_HOST={host}: the socket path must be absolute (unix:///var/run/docker.sock)"
        ))),
        None => Err(SandboxError::Refused(format!(
            "DOCKER_HOST={host}: only a local unix socket (unix:///path) is supported; a tcp:// or ssh:// daemon would put the sandbox's Docker control on the network, unencrypted or out of reach of the host checks"
        ))),
    }
}

/// A relative file name with no `..`, `.` or empty component.
fn check_relative_name(name: &str) -> Result<(), SandboxError> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(SandboxError::Refused(format!(
            "copy_in: `{name}` must be a relative path without `.`, `..` or empty components"
        )));
    }
    Ok(())
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix seconds of an RFC 3339 UTC timestamp as the Engine writes them
/// (`2024-05-01T12:34:56.123456789Z`).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let num = |x: Option<&str>| x?.parse::<i64>().ok();
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut t = time.split('.').next()?.split(':');
    let (hh, mm, ss) = (num(t.next())?, num(t.next())?, num(t.next())?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.123456789Z"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some(-62_135_596_800));
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn docker_host_must_be_a_unix_socket() {
        let ok = socket_from_host("unix:///run/user/1000/docker.sock");
        assert_eq!(ok.unwrap(), "/run/user/1000/docker.sock");
        for h in [
            "tcp://127.0.0.1:2375",
            "ssh://me@box",
            "unix://relative.sock",
        ] {
            assert!(
                matches!(socket_from_host(h), Err(SandboxError::Refused(_))),
                "{h}"
            );
        }
    }

    #[test]
    fn copy_in_names_stay_below_the_destination() {
        for ok in ["a.txt", "sub/dir/b.py"] {
            check_relative_name(ok).unwrap();
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/"] {
            assert!(check_relative_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable() {
        let e = Docker::connect_with_socket("/nonexistent/docker.sock")
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
    }
}
