//! The locally built sandbox images.
//!
//! No registry is needed: the root filesystem is made from Debian packages fetched
//! through the host's apt (its configured mirror, nothing else), unpacked with
//! `dpkg-deb` without running maintainer scripts, fixed up the way those scripts
//! would have (users, CA bundle, alternatives, `/bin/sh`), then imported into the
//! Docker Engine (`docker import` over the API: `create_image` with `fromSrc=-`).
//!
//! Nothing here needs root: apt resolves the closure against an empty private
//! status file (`apt-get install --print-uris`), `apt-get download` fetches into a
//! private directory and the import tarball records root ownership. Run as root,
//! package file ownership is kept exactly and `ldconfig -r` builds `ld.so.cache`.
//!
//! The host must be Debian (the image is made from the host's apt sources: on a
//! bookworm host, bookworm) with `apt-get`, `dpkg-deb` and GNU `tar`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::SandboxError;

/// The full sandbox image `pincer sandbox setup` builds.
pub const DEFAULT_IMAGE: &str = "pincer-sandbox:bookworm";

/// The small busybox image the tests use (built once, then cached by tag).
pub const TEST_IMAGE: &str = "pincer-sandbox-test:busybox";

/// The revision of the image layout, recorded as the [`LABEL_REVISION`] label. Bumped
/// whenever the root filesystem changes in a way containers notice (2: `/run` is 1777
/// like `/tmp`), so [`ensure_test_image`] rebuilds a stale test image and callers can
/// tell a sandbox image built by an older version ([`ImageInfo::revision`]).
pub const IMAGE_REVISION: &str = "2";

/// The image label holding [`IMAGE_REVISION`].
pub const LABEL_REVISION: &str = "pincer.image.revision";

/// The unprivileged user inside the images (`sandbox`, home `/workspace`).
pub const SANDBOX_UID: u32 = 1000;
pub const SANDBOX_GID: u32 = 1000;

/// The packages asked for; apt adds their dependency closure (no recommends).
pub const PACKAGES: &[&str] = &[
    // The base and a working shell environment.
    "base-files",
    "usr-is-merged", // satisfies init-system-helpers' `usrmerge | usr-is-merged` without perl tooling
    "bash",
    "dash",
    "coreutils",
    "debianutils",
    "findutils",
    "grep",
    "sed",
    "mawk",
    "procps",
    "util-linux",
    "hostname",
    "tar",
    "gzip",
    "bzip2",
    "xz-utils",
    "diffutils",
    "patch",
    "less",
    "ncurses-base",
    "netbase",
    // What the agent works with.
    "ca-certificates",
    "python3",
    "git",
    "curl",
    "jq",
    "ripgrep",
];

/// The search path set in the images.
pub const PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A step of an image build, for the CLI to print (`Display` gives the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A phase starts or ends ("resolving 28 packages", "unpacking").
    Step(String),
    /// Package `done` of `total` is being downloaded.
    Download {
        done: usize,
        total: usize,
        name: String,
    },
    /// Package `done` of `total` is being unpacked.
    Unpack {
        done: usize,
        total: usize,
        name: String,
    },
    /// Bytes of the root filesystem streamed into the Engine so far.
    Import { done: u64, total: u64 },
    /// The image exists: its tag, id and size in bytes.
    Done {
        image: String,
        id: String,
        size: u64,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Step(s) => f.write_str(s),
            Progress::Download { done, total, name } => {
                write!(f, "downloading {done}/{total} {name}")
            }
            Progress::Unpack { done, total, name } => write!(f, "unpacking {done}/{total} {name}"),
            Progress::Import { done, total } => {
                write!(f, "importing {}/{} MiB", mib(*done), mib(*total))
            }
            Progress::Done { image, id, size } => {
                write!(f, "done: {image} ({id}, {} MiB)", mib(*size))
            }
        }
    }
}

/// The progress sink: the CLI prints each item, tests may ignore them.
pub type ProgressFn<'a> = &'a mut (dyn FnMut(Progress) + Send);

/// How the imported image is configured (the `changes` of `docker import`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportConfig {
    /// `CMD` in exec form; empty: none.
    pub cmd: Vec<String>,
    /// `ENV` entries.
    pub env: BTreeMap<String, String>,
    /// `USER` (`"1000:1000"`).
    pub user: Option<String>,
    /// `WORKDIR`.
    pub workdir: Option<String>,
    /// `LABEL` entries.
    pub labels: BTreeMap<String, String>,
    /// Owners recorded in the image for paths relative to the root filesystem
    /// (`"workspace"` -> 1000:1000), whatever they are on disk.
    pub owners: Vec<(String, u32, u32)>,
}

impl ImportConfig {
    /// The configuration of the full sandbox image: bash, uid 1000, `/workspace`.
    pub fn sandbox() -> Self {
        Self::base("/bin/bash", "sandbox")
    }

    /// The configuration of the busybox test image.
    pub fn test() -> Self {
        Self::base("/bin/sh", "test")
    }

    fn base(shell: &str, kind: &str) -> Self {
        let env = [("PATH", PATH_ENV), ("LANG", "C.UTF-8")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let labels = [
            ("pincer.image", "1"),
            ("pincer.image.kind", kind),
            (LABEL_REVISION, IMAGE_REVISION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        ImportConfig {
            cmd: vec![shell.to_string()],
            env,
            user: Some(format!("{SANDBOX_UID}:{SANDBOX_GID}")),
            workdir: Some("/workspace".to_string()),
            labels,
            owners: vec![("workspace".to_string(), SANDBOX_UID, SANDBOX_GID)],
        }
    }

    /// The Dockerfile instructions handed to the Engine.
    pub fn changes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.env {
            out.push(format!("ENV {k}={}", dockerfile_value(v)));
        }
        for (k, v) in &self.labels {
            out.push(format!("LABEL {k}={}", dockerfile_value(v)));
        }
        if let Some(w) = &self.workdir {
            out.push(format!("WORKDIR {w}"));
        }
        if let Some(u) = &self.user {
            out.push(format!("USER {u}"));
        }
        if !self.cmd.is_empty() {
            let json = serde_json::to_string(&self.cmd).unwrap_or_else(|_| "[]".into());
            out.push(format!("CMD {json}"));
        }
        out
    }
}

/// What the Engine knows of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:…`
    pub id: String,
    /// Bytes.
    pub size: u64,
    /// RFC 3339, when the Engine reports it.
    pub created: Option<String>,
    /// The [`LABEL_REVISION`] label; `None` for images built before it existed.
    pub revision: Option<String>,
}

/// The image `tag`, or `None` when the Engine has no such image.
pub async fn image_info(docker: &Docker, tag: &str) -> Result<Option<ImageInfo>, SandboxError> {
    match docker.inspect_image(tag).await {
        Ok(img) => Ok(Some(ImageInfo {
            id: img.id.unwrap_or_default(),
            size: img.size.unwrap_or(0).max(0) as u64,
            created: img.created.as_ref().and_then(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
            }),
            revision: img
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(LABEL_REVISION)),
        })),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(docker_error(e)),
    }
}

/// Builds the full sandbox image `tag` (normally [`DEFAULT_IMAGE`]) from [`PACKAGES`]
/// and returns its id. About 30 s on a fast mirror, 54 MiB downloaded, a 168 MiB image.
pub async fn build_image(
    docker: &Docker,
    tag: &str,
    progress: ProgressFn<'_>,
) -> Result<String, SandboxError> {
    // Fail before downloading anything when the Engine is not there.
    docker.ping().await.map_err(docker_error)?;
    let work = TempDir::new("pincer-image")?;
    let rootfs = work.path().join("rootfs");
    build_rootfs(PACKAGES, &rootfs, progress).await?;
    let id = import_rootfs(docker, &rootfs, tag, ImportConfig::sandbox(), progress).await?;
    work.remove().await;
    Ok(id)
}

/// Makes a Debian root filesystem in `dir` (created; must be empty if it exists)
/// holding `packages` and their dependency closure, ready for [`import_rootfs`].
pub async fn build_rootfs(
    packages: &[&str],
    dir: &Path,
    progress: ProgressFn<'_>,
) -> Result<(), SandboxError> {
    prepare_root(dir).await?;
    let work = TempDir::new("pincer-debs")?;

    progress(Progress::Step(format!(
        "resolving {} packages with apt (dependency closure, no recommends)",
        packages.len()
    )));
    let debs = resolve(packages, work.path()).await?;
    let bytes: u64 = debs.iter().map(|d| d.size).sum();
    progress(Progress::Step(format!(
        "resolved {} packages, {} MiB to download",
        debs.len(),
        mib(bytes)
    )));

    let dl = work.path().join("debs");
    tokio::fs::create_dir_all(&dl).await?;
    download(&debs, &dl, progress).await?;

    progress(Progress::Step(format!("unpacking {} packages", debs.len())));
    let as_root = running_as_root();
    let mut postinsts = Vec::new();
    for (i, deb) in debs.iter().enumerate() {
        progress(Progress::Unpack {
            done: i + 1,
            total: debs.len(),
            name: deb.name.clone(),
        });
        let file = dl.join(&deb.file);
        unpack_deb(&file, dir, as_root).await?;
        if let Some(script) = control_file(&file, "postinst").await {
            postinsts.push(script);
        }
    }

    progress(Progress::Step(
        "configuring (users, CA bundle, alternatives, /bin/sh; no maintainer scripts run)".into(),
    ));
    let root = dir.to_path_buf();
    let manifest: String = debs
        .iter()
        .map(|d| format!("{} {} {}\n", d.name, d.version, d.arch))
        .collect();
    blocking(move || configure_debian(&root, &postinsts, &manifest)).await?;
    if as_root {
        // What libc-bin's trigger does; without it the loader still searches the
        // multiarch directories, so failing here is not fatal.
        let mut cmd = Command::new("ldconfig");
        cmd.arg("-r").arg(dir);
        if let Err(e) = run(&mut cmd).await {
            tracing::warn!(error = %e, "ldconfig -r failed; the image has no ld.so.cache");
        }
    }
    work.remove().await;

    let root = dir.to_path_buf();
    let size = blocking(move || tree_size(&root)).await?;
    progress(Progress::Step(format!(
        "root filesystem ready: {} MiB",
        mib(size)
    )));
    Ok(())
}

/// Imports the root filesystem `dir` into the Engine as `tag` and returns the
/// image id. Symlinks, hard links and modes are kept; owners are root (or, run as
/// root, what is on disk) except `config.owners`; setuid and setgid bits are
/// dropped from files (a sandbox has no use for them).
pub async fn import_rootfs(
    docker: &Docker,
    dir: &Path,
    tag: &str,
    config: ImportConfig,
    progress: ProgressFn<'_>,
) -> Result<String, SandboxError> {
    let (repo, tag_part) = split_tag(tag);
    // The image the tag names now, to drop once the tag moves (a lookup failure
    // is left to the import itself to report).
    let previous = image_info(docker, tag).await.ok().flatten();
    let root = dir.to_path_buf();
    let (files, entries) = blocking(move || tree_count(&root)).await?;
    // What the tarball will weigh: a header per entry, data padded to blocks.
    let total = files + 512 * entries + 1024;
    progress(Progress::Step(format!(
        "importing {} MiB into Docker as {tag}",
        mib(files)
    )));

    let owners: HashMap<PathBuf, (u32, u32)> = config
        .owners
        .iter()
        .map(|(p, u, g)| (PathBuf::from(p.trim_start_matches('/')), (*u, *g)))
        .collect();
    let keep_ids = running_as_root();
    let sent = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
    let root = dir.to_path_buf();
    let writer = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
        sent: sent.clone(),
    };
    let producer = tokio::task::spawn_blocking(move || {
        let result = write_tar(&root, writer, &owners, keep_ids);
        if let Err(e) = &result {
            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        result
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));

    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag_part)
        .message("pincer sandbox setup")
        .changes(config.changes())
        .build();
    // The whole upload is one request: allow it more than the default 2 minutes.
    let slow = docker.clone().with_timeout(Duration::from_secs(30 * 60));
    // Boxed so that dropping it really ends the request (see below).
    let mut stream =
        Box::pin(slow.create_image(Some(options), Some(bollard::body_try_stream(body)), None));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut reported = 0u64;
    let mut engine_result: Result<Option<String>, bollard::errors::Error> = Ok(None);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                None => break,
                Some(Ok(info)) => {
                    if let Some(s) = info.status.filter(|s| s.starts_with("sha256:")) {
                        engine_result = Ok(Some(s));
                    }
                }
                Some(Err(e)) => {
                    engine_result = Err(e);
                    break;
                }
            },
            _ = tick.tick() => {
                let done = sent.load(Ordering::Relaxed);
                if done >= reported + 16 * MIB && done < total {
                    reported = done;
                    progress(Progress::Import { done, total });
                }
            }
        }
    }
    // Dropping the request stops a producer the Engine no longer reads from.
    drop(stream);
    let produced = producer
        .await
        .map_err(|e| SandboxError::Io(io::Error::other(format!("tar writer panicked: {e}"))))?;
    let tar_error = |e: io::Error| {
        SandboxError::Io(io::Error::new(
            e.kind(),
            format!("writing the image tarball from {}: {e}", dir.display()),
        ))
    };
    let streamed_id = match (produced, engine_result) {
        // A broken tarball explains an Engine error better than the Engine does,
        // unless it broke because the Engine stopped reading.
        (Err(e), _) if e.kind() != io::ErrorKind::BrokenPipe => return Err(tar_error(e)),
        (_, Err(e)) => return Err(docker_error(e)),
        (Err(e), Ok(_)) => return Err(tar_error(e)),
        (Ok(()), Ok(id)) => id,
    };
    progress(Progress::Import { done: total, total });

    let info = image_info(docker, tag).await?.ok_or_else(|| {
        SandboxError::Docker(format!(
            "the Engine accepted the import ({}) but has no image {tag}",
            streamed_id.as_deref().unwrap_or("no id")
        ))
    })?;
    if let Some(old) = previous.filter(|old| old.id != info.id) {
        // The tag moved: drop the image it left behind, unless something (a
        // container, another tag) still uses it.
        let removed = docker
            .remove_image(
                &old.id,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
        if let Err(e) = removed {
            tracing::info!(image = %old.id, error = %e, "kept the previous image");
        }
    }
    progress(Progress::Done {
        image: tag.to_string(),
        id: info.id.clone(),
        size: info.size,
    });
    Ok(info.id)
}

/// Makes sure the small test image [`TEST_IMAGE`] exists (busybox from Debian's
/// `busybox-static`, a uid 1000 user, `/workspace`, `/agent`, `/tmp`, `/var/tmp` and
/// `/run` 1777) and returns its tag. Built once, then found by tag (rebuilt when its
/// [`LABEL_REVISION`] is not [`IMAGE_REVISION`]); safe to call from concurrent test
/// processes.
pub async fn ensure_test_image(docker: &Docker) -> Result<String, SandboxError> {
    let current = async || {
        let info = image_info(docker, TEST_IMAGE).await?;
        Ok::<_, SandboxError>(info.is_some_and(|i| i.revision.as_deref() == Some(IMAGE_REVISION)))
    };
    if current().await? {
        return Ok(TEST_IMAGE.to_string());
    }
    // One builder at a time across processes (flock on a file in the temp dir).
    let lock_path = std::env::temp_dir().join("pincer-sandbox-test-image.lock");
    let _lock = blocking(move || {
        let f = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
        {
            // Another user's lock file: flock works on a read-only descriptor too.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                std::fs::File::open(&lock_path)?
            }
            other => other?,
        };
        f.lock()?;
        Ok(f)
    })
    .await?;
    if current().await? {
        return Ok(TEST_IMAGE.to_string());
    }

    let work = TempDir::new("pincer-test-image")?;
    let rootfs = work.path().join("rootfs");
    prepare_root(&rootfs).await?;
    let debs = work.path().join("debs");
    tokio::fs::create_dir_all(&debs).await?;
    let mut cmd = apt("apt-get");
    cmd.arg("download").arg("busybox-static").current_dir(&debs);
    run(&mut cmd).await?;
    let mut entries = tokio::fs::read_dir(&debs).await?;
    let mut deb = None;
    while let Some(e) = entries.next_entry().await? {
        if e.file_name().to_string_lossy().ends_with(".deb") {
            deb = Some(e.path());
        }
    }
    let deb = deb.ok_or_else(|| {
        SandboxError::Io(io::Error::other(
            "apt-get download busybox-static left no .deb",
        ))
    })?;
    unpack_deb(&deb, &rootfs, running_as_root()).await?;
    // busybox-static is static: run it on the host to learn its applets.
    let busybox = rootfs.join("usr/bin/busybox");
    let mut cmd = Command::new(&busybox);
    cmd.arg("--list");
    let applets = String::from_utf8_lossy(&run(&mut cmd).await?.stdout).into_owned();
    let root = rootfs.clone();
    blocking(move || configure_busybox(&root, &applets)).await?;

    let mut quiet = |_: Progress| {};
    let imported = import_rootfs(
        docker,
        &rootfs,
        TEST_IMAGE,
        ImportConfig::test(),
        &mut quiet,
    )
    .await;
    work.remove().await;
    match imported {
        Ok(id) => {
            tracing::info!(image = TEST_IMAGE, id = %id, "built the sandbox test image");
            Ok(TEST_IMAGE.to_string())
        }
        // Another builder (without our lock: other temp dir) may have won.
        Err(e) => match current().await {
            Ok(true) => Ok(TEST_IMAGE.to_string()),
            _ => Err(e),
        },
    }
}

// ---------------------------------------------------------------------------
// apt and dpkg-deb

/// A package of the closure as apt would fetch it.
#[derive(Debug, Clone)]
struct Deb {
    name: String,
    version: String,
    arch: String,
    /// The file name `apt-get download` saves it as.
    file: String,
    size: u64,
}

fn apt(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .arg("-q");
    if running_as_root() {
        // apt drops to `_apt` for downloads, which cannot write our private dirs.
        cmd.arg("-o").arg("APT::Sandbox::User=root");
    }
    cmd
}

/// The dependency closure of `packages` on an empty system, by apt's own resolver
/// against an empty private status file (nothing is locked or written outside
/// `work`; no root needed).
async fn resolve(packages: &[&str], work: &Path) -> Result<Vec<Deb>, SandboxError> {
    let status = work.join("status");
    tokio::fs::write(&status, b"").await?;
    let cache = work.join("apt-cache");
    tokio::fs::create_dir_all(cache.join("archives/partial")).await?;
    let mut cmd = apt("apt-get");
    cmd.args(["install", "--print-uris", "-qq", "--no-install-recommends"])
        .args(["-o", "APT::Install-Suggests=false"])
        .args(["-o", "Debug::NoLocking=1"])
        .arg("-o")
        .arg(format!("Dir::State::status={}", status.display()))
        .arg("-o")
        .arg(format!(
            "Dir::State::extended_states={}",
            work.join("extended_states").display()
        ))
        .arg("-o")
        .arg(format!("Dir::Cache={}", cache.display()))
        .arg("-o")
        .arg(format!(
            "Dir::Cache::archives={}",
            cache.join("archives").display()
        ))
        .arg("--")
        .args(packages);
    let out = run(&mut cmd).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut debs = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(uri), Some(file), Some(size)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !uri.starts_with('\'') || !file.ends_with(".deb") {
            continue;
        }
        let mut parts = file.trim_end_matches(".deb").splitn(3, '_');
        let (Some(name), Some(version), Some(arch)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        debs.push(Deb {
            name: name.to_string(),
            version: percent_decode(version),
            arch: arch.to_string(),
            file: file.to_string(),
            size: size.parse().unwrap_or(0),
        });
    }
    if debs.is_empty() {
        return Err(SandboxError::Io(io::Error::other(format!(
            "apt resolved no packages for {packages:?}: {}",
            tail(&String::from_utf8_lossy(&out.stderr))
        ))));
    }
    Ok(debs)
}

/// `apt-get download` of the exact versions resolved, into `dest`.
async fn download(debs: &[Deb], dest: &Path, progress: ProgressFn<'_>) -> Result<(), SandboxError> {
    let mut cmd = apt("apt-get");
    cmd.arg("download").current_dir(dest);
    for d in debs {
        if d.arch == "all" {
            cmd.arg(format!("{}={}", d.name, d.version));
        } else {
            cmd.arg(format!("{}:{}={}", d.name, d.arch, d.version));
        }
    }
    let what = describe(&cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| spawn_error(&what, e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    });
    let mut lines = BufReader::new(stdout).lines();
    let total = debs.len();
    let mut done = 0;
    while let Some(line) = lines.next_line().await? {
        // "Get:12 http://deb.debian.org/debian bookworm/main amd64 libc6 amd64 2.36-9 [2759 kB]"
        if line.starts_with("Get:") {
            done += 1;
            let name = line.split_whitespace().nth(4).unwrap_or("?").to_string();
            progress(Progress::Download {
                done: done.min(total),
                total,
                name,
            });
        }
    }
    let status = child.wait().await?;
    let stderr = err_task.await.unwrap_or_default();
    if !status.success() {
        return Err(command_failed(&what, status, &stderr, Some(APT_HINT)));
    }
    for d in debs {
        if !dest.join(&d.file).is_file() {
            return Err(SandboxError::Io(io::Error::other(format!(
                "apt-get download did not leave {} in {}",
                d.file,
                dest.display()
            ))));
        }
    }
    Ok(())
}

const APT_HINT: &str =
    "if packages are missing or out of date on the mirror, run `sudo apt-get update` and retry";

/// `dpkg-deb --fsys-tarfile deb | tar -x` into `root`, keeping the merged-/usr
/// symlinks (what `dpkg-deb -x` would replace with directories). No scripts run.
async fn unpack_deb(deb: &Path, root: &Path, as_root: bool) -> Result<(), SandboxError> {
    let mut dpkg = Command::new("dpkg-deb");
    dpkg.arg("--fsys-tarfile").arg(deb);
    let dpkg_what = describe(&dpkg);
    let mut dpkg = dpkg
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(&dpkg_what, e))?;
    let pipe: Stdio = dpkg
        .stdout
        .take()
        .expect("piped stdout")
        .try_into()
        .map_err(SandboxError::Io)?;
    let mut tar = Command::new("tar");
    tar.args([
        "-x",
        "-p",
        "--keep-directory-symlink",
        "--warning=no-timestamp",
    ]);
    if as_root {
        tar.args(["--same-owner", "--numeric-owner"]);
    } else {
        tar.arg("--no-same-owner");
    }
    tar.arg("-f").arg("-").arg("-C").arg(root);
    let tar_what = describe(&tar);
    let tar = tar
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(&tar_what, e))?;
    let (d, t) = tokio::join!(dpkg.wait_with_output(), tar.wait_with_output());
    let (d, t) = (d?, t?);
    if !d.status.success() {
        return Err(command_failed(&dpkg_what, d.status, &d.stderr, None));
    }
    if !t.status.success() {
        return Err(command_failed(&tar_what, t.status, &t.stderr, None));
    }
    Ok(())
}

/// A control file of a package (`postinst`), if it has one.
async fn control_file(deb: &Path, name: &str) -> Option<String> {
    let out = Command::new("dpkg-deb")
        .arg("--info")
        .arg(deb)
        .arg(name)
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---------------------------------------------------------------------------
// The root filesystem

/// An empty root with the merged-/usr layout bookworm expects (its base-files does
/// not create the links; debootstrap or usrmerge would).
async fn prepare_root(dir: &Path) -> Result<(), SandboxError> {
    let dir = dir.to_path_buf();
    blocking(move || {
        std::fs::create_dir_all(&dir)?;
        if std::fs::read_dir(&dir)?.next().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is not empty", dir.display()),
            ));
        }
        set_mode(&dir, 0o755)?;
        for d in ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        for (link, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            symlink(target, dir.join(link))?;
        }
        Ok(())
    })
    .await
}

const PASSWD_HEAD: &str = "root:x:0:0:root:/root:{shell}
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";

const GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
staff:x:50:
users:x:100:
nogroup:x:65534:
sandbox:x:1000:
";

/// What Debian's maintainer scripts would have done, as far as a sandbox needs.
fn configure_debian(root: &Path, postinsts: &[String], manifest: &str) -> io::Result<()> {
    base_files(root, "/bin/bash")?;

    // Defaults base-files and libc-bin install from their postinst.
    for (from, to) in [
        ("usr/share/base-files/profile", "etc/profile"),
        ("usr/share/base-files/dot.profile", "root/.profile"),
        ("usr/share/base-files/dot.bashrc", "root/.bashrc"),
        ("usr/share/libc-bin/nsswitch.conf", "etc/nsswitch.conf"),
    ] {
        if root.join(from).is_file() && !exists(&root.join(to)) {
            let data = std::fs::read(root.join(from))?;
            write_file(root, to, &data, 0o644)?;
        }
    }

    trim_docs(root)?;
    alternatives(root, postinsts)?;
    // /bin/sh and awk are what scripts lean on most.
    for (link, candidates) in [
        ("usr/bin/sh", &["dash", "bash"][..]),
        ("usr/bin/awk", &["mawk", "gawk", "original-awk"][..]),
    ] {
        if !exists(&root.join(link))
            && let Some(c) = candidates
                .iter()
                .find(|c| root.join("usr/bin").join(c).is_file())
        {
            make_symlink(root, link, Path::new(c))?;
        }
    }

    ca_bundle(root)?;
    write_file(
        root,
        "usr/share/pincer-sandbox/packages.txt",
        manifest.as_bytes(),
        0o644,
    )?;
    Ok(())
}

/// The files every image has: users, groups, hostname and the directories.
fn base_files(root: &Path, shell: &str) -> io::Result<()> {
    let passwd = format!(
        "{}sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:Pincer sandbox:/workspace:{shell}\n",
        PASSWD_HEAD.replace("{shell}", shell)
    );
    write_file(root, "etc/passwd", passwd.as_bytes(), 0o644)?;
    write_file(root, "etc/group", GROUP.as_bytes(), 0o644)?;
    write_file(root, "etc/hostname", b"sandbox\n", 0o644)?;
    for (dir, mode) in [
        ("tmp", 0o1777),
        ("var/tmp", 0o1777),
        // Docker copies these directories' modes onto the tmpfs mounted over them, so
        // they must be writable by the sandbox user here, as Debian's /tmp is.
        ("run", 0o1777),
        ("run/lock", 0o1777),
        ("workspace", 0o755),
        ("agent", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("etc", 0o755),
        ("usr/local/bin", 0o755),
        ("var/log", 0o755),
        ("var/cache", 0o755),
        ("var/lib", 0o755),
    ] {
        make_dir(root, dir, mode)?;
        let path = inside(root, dir)?;
        // Never chmod through a symlink (it could point at the host).
        if std::fs::symlink_metadata(&path)?.is_dir() {
            set_mode(&path, mode)?;
        }
    }
    Ok(())
}

/// Drops man pages, info, translations and docs (keeping the copyright files).
fn trim_docs(root: &Path) -> io::Result<()> {
    for d in [
        "usr/share/man",
        "usr/share/info",
        "usr/share/lintian",
        "usr/share/linda",
    ] {
        remove_children(&root.join(d), |_| true)?;
    }
    remove_children(&root.join("usr/share/locale"), |p| p.is_dir())?;
    let doc = root.join("usr/share/doc");
    if let Ok(entries) = std::fs::read_dir(&doc) {
        for e in entries {
            let e = e?;
            if e.file_type()?.is_dir() {
                remove_children(&e.path(), |p| {
                    p.file_name().is_none_or(|n| n != "copyright")
                })?;
            }
        }
    }
    Ok(())
}

/// Removes the entries of `dir` that `which` selects (a missing `dir` is fine).
fn remove_children(dir: &Path, which: impl Fn(&Path) -> bool) -> io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let e = e?;
        let p = e.path();
        if !which(&p) {
            continue;
        }
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// One `update-alternatives --install` group found in a postinst.
#[derive(Debug, PartialEq)]
struct Alternative {
    link: String,
    path: String,
    priority: i64,
    slaves: Vec<(String, String)>,
}

/// The literal `update-alternatives --install link name path prio [--slave l n p]…`
/// calls of maintainer scripts (the ones built from shell variables are skipped).
fn parse_alternatives(script: &str) -> Vec<(String, Alternative)> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        if !line.contains("update-alternatives") {
            continue;
        }
        let toks: Vec<&str> = line
            .split_whitespace()
            .map(|t| t.trim_matches(|c| c == '"' || c == '\''))
            .collect();
        let Some(i) = toks.iter().position(|t| *t == "--install") else {
            continue;
        };
        let [link, name, path, prio] = match toks.get(i + 1..i + 5) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => continue,
        };
        let Ok(priority) = prio.parse::<i64>() else {
            continue;
        };
        if [link, name, path].iter().any(|t| t.contains('$')) {
            continue;
        }
        let mut slaves = Vec::new();
        let mut j = i + 5;
        while let Some(&"--slave") = toks.get(j) {
            if let Some(&[l, _, p]) = toks.get(j + 1..j + 4)
                && !l.contains('$')
                && !p.contains('$')
            {
                slaves.push((l.to_string(), p.to_string()));
            }
            j += 4;
        }
        out.push((
            name.to_string(),
            Alternative {
                link: link.to_string(),
                path: path.to_string(),
                priority,
                slaves,
            },
        ));
    }
    out
}

/// Links each alternative to its highest-priority provider (`awk` -> `mawk`,
/// `which`, `pager`…), directly rather than through /etc/alternatives.
fn alternatives(root: &Path, postinsts: &[String]) -> io::Result<()> {
    let mut best: BTreeMap<String, Alternative> = BTreeMap::new();
    for script in postinsts {
        for (name, alt) in parse_alternatives(script) {
            if !exists(&root.join(alt.path.trim_start_matches('/'))) {
                continue;
            }
            if best.get(&name).is_none_or(|b| b.priority < alt.priority) {
                best.insert(name, alt);
            }
        }
    }
    for alt in best.values() {
        let links =
            std::iter::once((&alt.link, &alt.path)).chain(alt.slaves.iter().map(|(l, p)| (l, p)));
        for (link, path) in links {
            let rel = link.trim_start_matches('/');
            let target = root.join(path.trim_start_matches('/'));
            let parent_ok = root.join(rel).parent().is_some_and(Path::is_dir);
            if exists(&root.join(rel)) || !exists(&target) || !parent_ok {
                continue;
            }
            make_symlink(root, rel, Path::new(path))?;
        }
    }
    Ok(())
}

/// `update-ca-certificates`, as far as TLS clients need: the bundle of every
/// certificate under /usr/share/ca-certificates (curl, git, and python through
/// openssl's /usr/lib/ssl/cert.pem link use it).
fn ca_bundle(root: &Path) -> io::Result<()> {
    let base = root.join("usr/share/ca-certificates");
    if !base.is_dir() {
        return Ok(());
    }
    let mut certs = Vec::new();
    collect_files(&base, &mut certs)?;
    certs.retain(|p| p.extension().is_some_and(|e| e == "crt"));
    certs.sort();
    let mut bundle = Vec::new();
    let mut conf = String::from("# Generated by pincer sandbox setup\n");
    for p in &certs {
        let mut data = std::fs::read(p)?;
        if !data.ends_with(b"\n") {
            data.push(b'\n');
        }
        bundle.extend_from_slice(&data);
        if let Ok(rel) = p.strip_prefix(&base) {
            conf.push_str(&rel.to_string_lossy());
            conf.push('\n');
        }
    }
    make_dir(root, "etc/ssl/certs", 0o755)?;
    write_file(root, "etc/ssl/certs/ca-certificates.crt", &bundle, 0o644)?;
    write_file(root, "etc/ca-certificates.conf", conf.as_bytes(), 0o644)?;
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            collect_files(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// The busybox test root: applet links, users, directories.
fn configure_busybox(root: &Path, applets: &str) -> io::Result<()> {
    base_files(root, "/bin/sh")?;
    remove_children(&root.join("usr/share"), |_| true)?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        let rel = format!("usr/bin/{applet}");
        if !exists(&root.join(&rel)) {
            make_symlink(root, &rel, Path::new("busybox"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Writing inside the root without ever leaving it

/// `root/rel`, refusing when `rel` climbs out or its parent resolves outside
/// `root` (a package shipping an absolute directory symlink must not make us
/// write on the host).
fn inside(root: &Path, rel: &str) -> io::Result<PathBuf> {
    let rel = Path::new(rel.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(io::Error::other(format!(
            "bad path in rootfs: {}",
            rel.display()
        )));
    }
    let path = root.join(rel);
    let parent = path.parent().unwrap_or(root);
    let (canon_root, canon_parent) = (root.canonicalize()?, parent.canonicalize()?);
    if !canon_parent.starts_with(&canon_root) {
        return Err(io::Error::other(format!(
            "{} resolves outside the root filesystem",
            path.display()
        )));
    }
    Ok(path)
}

fn write_file(root: &Path, rel: &str, data: &[u8], mode: u32) -> io::Result<()> {
    if let Some(parent) = Path::new(rel)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        make_dir(root, &parent.to_string_lossy(), 0o755)?;
    }
    let path = inside(root, rel)?;
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&path)?;
    }
    std::fs::write(&path, data)?;
    set_mode(&path, mode)
}

/// Creates `rel` and its missing parents (each checked to stay inside `root`);
/// existing directories keep their mode.
fn make_dir(root: &Path, rel: &str, mode: u32) -> io::Result<()> {
    let mut cur = String::new();
    let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_empty() {
            cur.push('/');
        }
        cur.push_str(part);
        let path = inside(root, &cur)?;
        if !exists(&path) {
            std::fs::create_dir(&path)?;
            set_mode(&path, if i + 1 == parts.len() { mode } else { 0o755 })?;
        }
    }
    Ok(())
}

fn make_symlink(root: &Path, rel: &str, target: &Path) -> io::Result<()> {
    let path = inside(root, rel)?;
    symlink(target, path)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Whether `p` exists, a dangling symlink counting as existing.
fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Bytes of the regular files under `root` (hard links counted once).
fn tree_size(root: &Path) -> io::Result<u64> {
    Ok(tree_count(root)?.0)
}

/// Bytes of the regular files under `root` (hard links counted once, each file
/// padded to 512-byte tar blocks) and the number of entries.
fn tree_count(root: &Path) -> io::Result<(u64, u64)> {
    fn walk(
        dir: &Path,
        seen: &mut std::collections::HashSet<(u64, u64)>,
        acc: &mut (u64, u64),
    ) -> io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let md = std::fs::symlink_metadata(e.path())?;
            acc.1 += 1;
            if md.is_dir() {
                walk(&e.path(), seen, acc)?;
            } else if md.is_file() && seen.insert((md.dev(), md.ino())) {
                acc.0 += md.len().div_ceil(512) * 512;
            }
        }
        Ok(())
    }
    let mut acc = (0, 0);
    walk(root, &mut Default::default(), &mut acc)?;
    Ok(acc)
}

// ---------------------------------------------------------------------------
// The import tarball

const CHUNK: usize = 256 * 1024;
const MIB: u64 = 1024 * 1024;

/// A `Write` feeding the request body: chunks go to the upload task.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    sent: Arc<AtomicU64>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let len = chunk.len() as u64;
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Engine stopped reading the image",
            )
        })?;
        self.sent.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Streams `root` as a tar archive (sorted, symlinks as symlinks, hard links as
/// links). Owners: `owners` first, then on-disk ids when `keep_ids`, else root.
fn write_tar<W: Write>(
    root: &Path,
    out: W,
    owners: &HashMap<PathBuf, (u32, u32)>,
    keep_ids: bool,
) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    add_dir(
        root,
        Path::new(""),
        &mut builder,
        owners,
        keep_ids,
        &mut links,
    )?;
    let mut out = builder.into_inner()?;
    out.flush()
}

fn add_dir<W: Write>(
    root: &Path,
    rel: &Path,
    builder: &mut tar::Builder<W>,
    owners: &HashMap<PathBuf, (u32, u32)>,
    keep_ids: bool,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let full = root.join(&rel);
        let md = std::fs::symlink_metadata(&full)?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        let (uid, gid) = owners.get(&rel).copied().unwrap_or(if keep_ids {
            (md.uid(), md.gid())
        } else {
            (0, 0)
        });
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        let mode = md.mode() & 0o7777;
        header.set_mode(if md.is_dir() { mode } else { mode & !0o6000 });
        let ft = md.file_type();
        if ft.is_dir() {
            header.set_size(0);
            builder.append_data(&mut header, &rel, io::empty())?;
            add_dir(root, &rel, builder, owners, keep_ids, links)?;
        } else if ft.is_symlink() {
            header.set_size(0);
            let target = std::fs::read_link(&full)?;
            builder.append_link(&mut header, &rel, target)?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    builder.append_link(&mut header, &rel, first)?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), rel.clone());
            }
            let file = std::fs::File::open(&full)?;
            builder.append_data(&mut header, &rel, file)?;
        } else {
            tracing::warn!(path = %rel.display(), "skipping a special file in the rootfs");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Small helpers

/// `repo[:tag]` split the way the Engine reads it (a registry port is not a tag).
fn split_tag(image: &str) -> (&str, &str) {
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], &image[i + 1..]),
        _ => (image, "latest"),
    }
}

fn dockerfile_value(v: &str) -> String {
    if v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '$')
    {
        serde_json::to_string(v).unwrap_or_default()
    } else {
        v.to_string()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SandboxError::Io(io::Error::other(format!("blocking task failed: {e}"))))?
        .map_err(SandboxError::Io)
}

/// The command line, shortened for messages.
fn describe(cmd: &Command) -> String {
    let std = cmd.as_std();
    let mut s = std.get_program().to_string_lossy().into_owned();
    for a in std.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
        if s.len() > 240 {
            s.truncate(240);
            s.push_str(" …");
            break;
        }
    }
    s
}

fn spawn_error(what: &str, e: io::Error) -> SandboxError {
    let hint = if e.kind() == io::ErrorKind::NotFound {
        " (building sandbox images needs a Debian host with apt-get, dpkg-deb and GNU tar)"
    } else {
        ""
    };
    SandboxError::Io(io::Error::new(
        e.kind(),
        format!("cannot run `{what}`: {e}{hint}"),
    ))
}

fn command_failed(
    what: &str,
    status: std::process::ExitStatus,
    stderr: &[u8],
    hint: Option<&str>,
) -> SandboxError {
    let mut msg = format!(
        "`{what}` failed ({status}): {}",
        tail(&String::from_utf8_lossy(stderr))
    );
    if let Some(h) = hint {
        msg.push_str("; ");
        msg.push_str(h);
    }
    SandboxError::Io(io::Error::other(msg))
}

/// The last lines of a command's stderr.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(6);
    let mut s = lines[start..].join(" | ");
    if s.len() > 1200 {
        let mut cut = s.len() - 1200;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = format!("…{}", &s[cut..]);
    }
    if s.is_empty() { "no output".into() } else { s }
}

/// Runs a command to completion; a failure carries the command and its stderr.
async fn run(cmd: &mut Command) -> Result<std::process::Output, SandboxError> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| spawn_error(&what, e))?;
    if !out.status.success() {
        let hint = what.starts_with("apt-get").then_some(APT_HINT);
        return Err(command_failed(&what, out.status, &out.stderr, hint));
    }
    Ok(out)
}

/// The Engine's errors, the unreachable daemon told apart (it is transient).
fn docker_error(e: bollard::errors::Error) -> SandboxError {
    use bollard::errors::Error as E;
    let socket = || {
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
    };
    let unreachable = match &e {
        E::SocketNotFoundError(_) | E::RequestTimeoutError => true,
        E::HyperLegacyError { err } => err.is_connect(),
        E::IOError { err } => matches!(
            err.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::NotFound
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::PermissionDenied
        ),
        _ => false,
    };
    if unreachable {
        SandboxError::Unreachable {
            socket: socket(),
            detail: e.to_string(),
        }
    } else {
        SandboxError::Docker(e.to_string())
    }
}

/// A private directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<Self, SandboxError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Removes it off the async threads (a root filesystem is thousands of files).
    async fn remove(mut self) {
        let path = std::mem::take(&mut self.0);
        let _ = tokio::task::spawn_blocking(move || remove_tree(&path)).await;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            remove_tree(&self.0);
        }
    }
}

fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_err() {
        // Read-only directories from packages: open them up, then retry.
        fn open_up(p: &Path) {
            if let Ok(entries) = std::fs::read_dir(p) {
                let _ = set_mode(p, 0o755);
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = set_mode(&e.path(), 0o755);
                        open_up(&e.path());
                    }
                }
            }
        }
        open_up(path);
        if let Err(e) = std::fs::remove_dir_all(path) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a temporary directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_with_continuations() {
        let script = "if [ \"$1\" = configure ]; then\n        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\\n            --slave /usr/bin/nawk nawk /usr/bin/mawk\nfi\nupdate-alternatives --install \"$DPKG_ROOT/x\" x /y 1\n";
        let alts = parse_alternatives(script);
        assert_eq!(alts.len(), 1);
        let (name, alt) = &alts[0];
        assert_eq!(name, "awk");
        assert_eq!(alt.link, "/usr/bin/awk");
        assert_eq!(alt.path, "/usr/bin/mawk");
        assert_eq!(alt.priority, 5);
        assert_eq!(alt.slaves.len(), 2);
        assert_eq!(
            alt.slaves[1],
            ("/usr/bin/nawk".into(), "/usr/bin/mawk".into())
        );
    }

    #[test]
    fn splits_tags_and_decodes_versions() {
        assert_eq!(
            split_tag("pincer-sandbox:bookworm"),
            ("pincer-sandbox", "bookworm")
        );
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x", "latest")
        );
        assert_eq!(split_tag("localhost:5000/x:1"), ("localhost:5000/x", "1"));
        assert_eq!(percent_decode("1%3a2.39.5-0+deb12u3"), "1:2.39.5-0+deb12u3");
        assert_eq!(percent_decode("2.36%"), "2.36%");
    }

    #[test]
    fn changes_are_dockerfile_instructions() {
        let c = ImportConfig::sandbox().changes();
        assert!(c.contains(&"WORKDIR /workspace".to_string()));
        assert!(c.contains(&"USER 1000:1000".to_string()));
        assert!(c.contains(&"LABEL pincer.image=1".to_string()));
        assert!(c.contains(&"CMD [\"/bin/bash\"]".to_string()));
        assert!(c.contains(&format!("ENV PATH={PATH_ENV}")));
        assert_eq!(dockerfile_value("a b"), "\"a b\"");
    }

    #[test]
    fn scratch_directories_are_sticky_and_world_writable() {
        let dir = std::env::temp_dir().join(format!("pincer-base-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        base_files(&dir, "/bin/sh").unwrap();
        for d in ["tmp", "var/tmp", "run", "run/lock"] {
            let mode = std::fs::metadata(dir.join(d)).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o1777, "{d} is {mode:o}");
        }
        assert_eq!(
            std::fs::metadata(dir.join("root")).unwrap().mode() & 0o7777,
            0o700
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let labels = ImportConfig::test().labels;
        assert_eq!(
            labels.get(LABEL_REVISION).map(String::as_str),
            Some(IMAGE_REVISION)
        );
    }

    #[test]
    fn refuses_paths_leaving_the_root() {
        let dir = std::env::temp_dir().join(format!("pincer-inside-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let _ = std::fs::remove_file(dir.join("evil"));
        symlink("/tmp", dir.join("evil")).unwrap();
        assert!(inside(&dir, "etc/passwd").is_ok());
        assert!(inside(&dir, "evil/x").is_err());
        assert!(inside(&dir, "../x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
