//! What the Engine tests share: a daemon with the test image (started if we are root and
//! none answers), containers that remove themselves, and a shell exec.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pincer_sandbox::config::DockerConfig;
use pincer_sandbox::docker::{ContainerSpec, Docker, ExecRequest, ExecResult, LABEL_SANDBOX};
use pincer_sandbox::image::{TEST_IMAGE, ensure_test_image};
use tokio::sync::OnceCell;

// ---------------------------------------------------------------------------------------
// Engine and image

static ENGINE: OnceCell<Result<(), String>> = OnceCell::const_new();

/// A connection to a daemon that has the test image, or `None` when Docker is unavailable
/// and `PINCER_SKIP_DOCKER=1` (panics otherwise).
pub async fn engine(test: &str) -> Option<Docker> {
    let ready = ENGINE
        .get_or_init(|| async {
            let docker = match Docker::connect().await {
                Ok(d) => d,
                Err(first) => start_dockerd()
                    .await
                    .map_err(|e| format!("{first}; starting dockerd: {e}"))?,
            };
            ensure_test_image(docker.raw())
                .await
                .map(drop)
                .map_err(|e| format!("building the test image: {e}"))
        })
        .await;
    match ready {
        Ok(()) => Some(
            Docker::connect()
                .await
                .expect("the daemon answered a moment ago"),
        ),
        Err(e) if std::env::var("PINCER_SKIP_DOCKER").as_deref() == Ok("1") => {
            eprintln!("skipped {test}: no Docker ({e}) and PINCER_SKIP_DOCKER=1");
            None
        }
        Err(e) => panic!(
            "these tests need a Docker daemon: {e}\n\
             install docker.io and run `dockerd &` as root, or set PINCER_SKIP_DOCKER=1 to skip them"
        ),
    }
}

pub async fn start_dockerd() -> Result<Docker, String> {
    if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty()) {
        return Err("DOCKER_HOST is set: not starting a local dockerd".into());
    }
    if let Ok(pid) = std::fs::read_to_string("/var/run/docker.pid")
        && Path::new(&format!("/proc/{}", pid.trim())).exists()
    {
        return Err(format!(
            "a dockerd (pid {}) is running but does not answer; see its log",
            pid.trim()
        ));
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root, cannot start dockerd".into());
    }
    let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("dockerd is not installed (apt-get install docker.io)")?;
    Command::new("sh")
        .arg("-c")
        .arg(format!("nohup {dockerd} >>/tmp/pincer-dockerd.log 2>&1 &"))
        .status()
        .map_err(|e| e.to_string())?;
    let mut last = String::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match Docker::connect().await {
            Ok(d) => return Ok(d),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "dockerd did not answer within 30 s ({last}); see /tmp/pincer-dockerd.log"
    ))
}

// ---------------------------------------------------------------------------------------
// Containers that remove themselves

/// Removes its container when dropped, even when the test panicked.
pub struct Guard {
    pub docker: Docker,
    pub id: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        // Drop cannot await, and the test's runtime may be gone: use a runtime of our own
        // on a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Err(e) = docker.remove(&id).await {
                    eprintln!("cleanup of {id} failed: {e}");
                }
            })
        })
        .join();
    }
}

pub fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("pincer-test-{test}-{}-{nanos:x}", std::process::id())
}

pub fn test_config() -> DockerConfig {
    DockerConfig {
        image: TEST_IMAGE.into(),
        ..Default::default()
    }
}

pub fn spec(name: &str, config: DockerConfig) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        config,
        labels: BTreeMap::from([
            (LABEL_SANDBOX.to_string(), "1".to_string()),
            ("pincer.test".to_string(), name.to_string()),
        ]),
        mounts: Vec::new(),
        workdir: "/tmp".into(),
        hostname: Some("sbx-test".into()),
    }
}

/// Creates and starts a container from `spec`.
pub async fn up(docker: &Docker, spec: &ContainerSpec) -> Guard {
    let id = docker.create(spec).await.expect("create");
    let guard = Guard {
        docker: docker.clone(),
        id,
    };
    docker.start(&guard.id).await.expect("start");
    guard
}

pub async fn sh(docker: &Docker, id: &str, script: &str) -> ExecResult {
    let req = ExecRequest {
        timeout: Duration::from_secs(20),
        ..ExecRequest::new(["sh", "-c", script])
    };
    docker.exec(id, &req, &mut |_, _| {}).await.expect("exec")
}

/// Children in the background, one in a session of its own (escapes the process group),
/// one with an empty environment (escapes the marker), `started` on stdout, then a long
/// sleep: at its timeout `sleep 100`, `101` and `102` must all die.
pub fn escaping_tree(timeout: Duration) -> ExecRequest {
    ExecRequest {
        timeout,
        ..ExecRequest::new([
            "sh",
            "-c",
            "sleep 100 & setsid sleep 101 & env -i sleep 102 & echo started; sleep 100",
        ])
    }
}

/// A fork bomb of `sleep 100`s that survives failed forks: the first round forks until
/// the pids limit stops it, then `watch` retries every 0.1 s, so at most one pid is ever
/// free.
pub fn fork_bomb(timeout: Duration) -> ExecRequest {
    ExecRequest {
        timeout,
        ..ExecRequest::new([
            "watch",
            "-n",
            "0.1",
            "while :; do sleep 100 >/dev/null 2>&1 & done",
        ])
    }
}

/// 300,000 bytes of `x` under a 1,000-byte cap, then `done` in /tmp/finished.
pub fn capped_output() -> ExecRequest {
    ExecRequest {
        max_output: 1000,
        ..ExecRequest::new([
            "sh",
            "-c",
            "head -c 300000 /dev/zero | tr '\\0' x; echo done > /tmp/finished",
        ])
    }
}

/// A 64 MB string in a shell: OOM-killed (137) under a 32m memory limit.
pub const MEMORY_HOG: &str = "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived ${#x}";
