//! The locally built images against the real Docker Engine.
//!
//! Needs a running daemon (`dockerd`) and the host's apt mirror for the first build
//! of the busybox test image (cached by tag afterwards). With no daemon the tests
//! fail, unless `PINCER_SKIP_DOCKER=1`, where they print a note and pass.
//!
//! The full Debian image is slow (about 30 s here, 54 MiB from the mirror):
//! `cargo test -p pincer-sandbox --test image -- --ignored --nocapture`

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use pincer_sandbox::SandboxError;
use pincer_sandbox::config::DockerConfig;
use pincer_sandbox::docker::{ContainerSpec, ExecRequest, LABEL_SANDBOX};
use pincer_sandbox::image::{
    DEFAULT_IMAGE, IMAGE_REVISION, ImportConfig, Progress, TEST_IMAGE, build_image,
    ensure_test_image, image_info, import_rootfs,
};

/// The Engine, or `None` (after a note) when it is down and skipping is allowed.
async fn docker() -> Option<Docker> {
    let skip = std::env::var("PINCER_SKIP_DOCKER").is_ok_and(|v| v == "1");
    let connected = match Docker::connect_with_unix_defaults() {
        Ok(d) => d.negotiate_version().await,
        Err(e) => Err(e),
    };
    let reachable = match connected {
        Ok(d) => d.ping().await.map(|_| d),
        Err(e) => Err(e),
    };
    match reachable {
        Ok(d) => Some(d),
        Err(e) if skip => {
            eprintln!(
                "skipping: the Docker Engine is not reachable ({e}) and PINCER_SKIP_DOCKER=1"
            );
            None
        }
        Err(e) => panic!(
            "the Docker Engine is not reachable ({e}): start dockerd \
             (`sudo dockerd &`) or set PINCER_SKIP_DOCKER=1 to skip these tests"
        ),
    }
}

struct Ran {
    code: i64,
    output: String,
}

/// Runs `script` under `/bin/sh -c` in a fresh container with no network.
async fn run_in(docker: &Docker, image: &str, user: Option<&str>, script: &str) -> Ran {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "pincer-image-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        user: user.map(str::to_string),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .expect("create container");
    docker
        .start_container(&name, None)
        .await
        .expect("start container");
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        docker.wait_container(&name, None).next(),
    )
    .await
    .expect("container finished within 60 s");
    let code = match waited {
        Some(Ok(r)) => r.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        other => panic!("waiting for {name}: {other:?}"),
    };
    let mut logs = docker.logs(
        &name,
        Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
    );
    let mut output = String::new();
    while let Some(chunk) = logs.next().await {
        output.push_str(&chunk.expect("logs").to_string());
    }
    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .expect("remove container");
    Ran { code, output }
}

#[tokio::test]
async fn test_image_is_built_once_then_cached() {
    let Some(docker) = docker().await else { return };
    // Two builders at once: the lock makes one wait for the other.
    let (a, b) = tokio::join!(ensure_test_image(&docker), ensure_test_image(&docker));
    assert_eq!(a.expect("first ensure_test_image"), TEST_IMAGE);
    assert_eq!(b.expect("second ensure_test_image"), TEST_IMAGE);
    let first = image_info(&docker, TEST_IMAGE)
        .await
        .unwrap()
        .expect("the test image exists");
    assert!(first.id.starts_with("sha256:"), "{first:?}");
    assert!(first.size > 500_000 && first.size < 20_000_000, "{first:?}");

    let started = Instant::now();
    assert_eq!(ensure_test_image(&docker).await.unwrap(), TEST_IMAGE);
    let cached = started.elapsed();
    assert!(
        cached < Duration::from_secs(2),
        "cached call took {cached:?}"
    );
    let second = image_info(&docker, TEST_IMAGE).await.unwrap().unwrap();
    assert_eq!(first.id, second.id);

    // The import applied the configuration.
    let inspect = docker.inspect_image(TEST_IMAGE).await.unwrap();
    let config = inspect.config.expect("image config");
    assert_eq!(config.user.as_deref(), Some("1000:1000"));
    assert_eq!(config.working_dir.as_deref(), Some("/workspace"));
    assert_eq!(
        config
            .labels
            .unwrap_or_default()
            .get("pincer.image")
            .map(String::as_str),
        Some("1")
    );
}

/// Under the default hardening (read-only root, tmpfs on /tmp, /var/tmp and /run, uid
/// 1000, no capabilities) the sandbox user can write all three: Docker copies the
/// image directory's mode onto the tmpfs, so the image must ship them 1777.
#[tokio::test]
async fn the_sandbox_user_can_write_the_scratch_dirs_under_the_default_hardening() {
    let Some(raw) = docker().await else { return };
    let image = ensure_test_image(&raw).await.expect("test image");
    let info = image_info(&raw, &image).await.unwrap().unwrap();
    assert_eq!(info.revision.as_deref(), Some(IMAGE_REVISION), "{info:?}");
    let docker = pincer_sandbox::docker::Docker::connect()
        .await
        .expect("the daemon answered a moment ago");
    let config = DockerConfig {
        image: image.clone(),
        ..Default::default()
    };
    assert!(
        config.read_only_root && config.network == "none",
        "{config:?}"
    );
    let spec = ContainerSpec {
        name: format!("pincer-image-test-scratch-{}", std::process::id()),
        config,
        labels: BTreeMap::from([(LABEL_SANDBOX.to_string(), "1".to_string())]),
        mounts: Vec::new(),
        workdir: "/workspace".into(),
        hostname: None,
    };
    let id = docker.create(&spec).await.expect("create");
    let removed = common::Guard {
        docker: docker.clone(),
        id: id.clone(),
    };
    docker.start(&id).await.expect("start");
    let script = "id -u; for d in /tmp /var/tmp /run; do \
                  echo x > $d/probe && mkdir $d/sub && echo \"$d $(stat -c %a $d) ok\"; done; \
                  touch /probe 2>/dev/null || echo root read-only; \
                  grep -E ' /(tmp|var/tmp|run) ' /proc/mounts | cut -d' ' -f2,3 | sort";
    let r = docker
        .exec(&id, &ExecRequest::new(["sh", "-c", script]), &mut |_, _| {})
        .await
        .expect("exec");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "1000\n/tmp 1777 ok\n/var/tmp 1777 ok\n/run 1777 ok\nroot read-only\n\
         /run tmpfs\n/tmp tmpfs\n/var/tmp tmpfs\n",
        "{r:?}"
    );
    drop(removed);
}

#[tokio::test]
async fn missing_images_have_no_info() {
    let Some(docker) = docker().await else { return };
    let info = image_info(&docker, "pincer-sandbox-no-such-image:never")
        .await
        .unwrap();
    assert!(info.is_none());
}

#[tokio::test]
async fn test_image_runs_a_shell_without_network() {
    let Some(docker) = docker().await else { return };
    let image = ensure_test_image(&docker).await.expect("test image");
    let ran = run_in(
        &docker,
        &image,
        None,
        "id -u; ls /bin | wc -l; id -un; ls /sys/class/net; stat -c '%u %a' /workspace /tmp /var/tmp /run",
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.output);
    let lines: Vec<&str> = ran.output.lines().map(str::trim).collect();
    assert_eq!(lines[0], "1000", "{}", ran.output);
    let applets: usize = lines[1].parse().expect("a count");
    assert!(applets > 100, "only {applets} entries in /bin");
    assert_eq!(lines[2], "sandbox");
    assert_eq!(lines[3], "lo", "network none has only loopback");
    assert_eq!(
        lines[4], "1000 755",
        "/workspace belongs to the sandbox user"
    );
    assert_eq!(lines[5], "0 1777", "/tmp is sticky and world-writable");
    assert_eq!(lines[6], "0 1777", "/var/tmp is sticky and world-writable");
    assert_eq!(lines[7], "0 1777", "/run is sticky and world-writable");

    let root = run_in(&docker, &image, Some("0:0"), "id -u; cat /etc/hostname").await;
    assert_eq!(root.code, 0, "{}", root.output);
    assert!(root.output.starts_with("0\n"), "{}", root.output);

    let failing = run_in(&docker, &image, None, "exit 3").await;
    assert_eq!(failing.code, 3);
}

/// The full Debian image. Slow and downloads ~54 MiB from the apt mirror:
/// `cargo test -p pincer-sandbox --test image -- --ignored --nocapture`
#[tokio::test]
#[ignore = "slow: builds pincer-sandbox:bookworm from Debian packages (run with --ignored)"]
async fn full_image_builds_and_has_the_tools() {
    let Some(docker) = docker().await else { return };
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut progress = |p: Progress| {
        let keep = !matches!(p, Progress::Unpack { .. });
        if keep {
            eprintln!("[{:>6.1}s] {p}", started.elapsed().as_secs_f64());
        }
        lines.push(p);
    };
    let id = build_image(&docker, DEFAULT_IMAGE, &mut progress)
        .await
        .expect("build the sandbox image");
    let took = started.elapsed();
    let info = image_info(&docker, DEFAULT_IMAGE).await.unwrap().unwrap();
    assert_eq!(info.id, id);
    eprintln!(
        "built {DEFAULT_IMAGE} ({id}) in {took:.1?}: {:.1} MiB",
        info.size as f64 / 1048576.0
    );
    assert!(matches!(lines.last(), Some(Progress::Done { .. })));
    assert!(
        lines
            .iter()
            .any(|p| matches!(p, Progress::Download { name, .. } if name == "libc6"))
    );

    for (script, expect) in [
        ("bash --version | head -1", "GNU bash"),
        ("python3 -c 'print(1+1)'", "2"),
        ("git --version", "git version"),
        ("jq --version", "jq-"),
        ("rg --version | head -1", "ripgrep"),
        ("curl --version | head -1", "curl"),
        ("id", "uid=1000(sandbox) gid=1000(sandbox)"),
        ("echo $HOME; pwd", "/workspace\n/workspace"),
        (
            "readlink /bin/sh; awk 'BEGIN{print 6*7}'; which ls",
            "dash\n42\n/usr/bin/ls",
        ),
        (
            "ps -o pid= -p 1; for c in pkill setsid timeout sed grep find xargs tar gzip xz less diff patch; do command -v $c || echo missing $c; done",
            "/usr/bin/setsid",
        ),
        (
            "python3 -c 'import ssl; print(ssl.create_default_context().cert_store_stats()[\"x509_ca\"] > 100)'",
            "True",
        ),
        (
            "echo '{\"a\":[1,2]}' | jq -c '.a|add'; printf 'x\\ny\\n' | rg -c y",
            "3\n1",
        ),
        (
            "git init -q /tmp/r && cd /tmp/r && git status --short && echo ok",
            "ok",
        ),
        ("ls /sys/class/net", "lo"),
        (
            "stat -c '%n %a' /tmp /var/tmp /run",
            "/tmp 1777\n/var/tmp 1777\n/run 1777",
        ),
    ] {
        let ran = run_in(&docker, DEFAULT_IMAGE, None, script).await;
        assert_eq!(ran.code, 0, "`{script}` failed: {}", ran.output);
        assert!(!ran.output.contains("missing"), "{}", ran.output);
        assert!(
            ran.output.contains(expect),
            "`{script}` printed {:?}, expected {expect:?}",
            ran.output
        );
        eprintln!(
            "ok: {script} -> {}",
            ran.output.lines().next().unwrap_or("")
        );
    }
    // As root: ldconfig ran (the build ran as root here) and no file is setuid/setgid.
    let root = run_in(
        &docker,
        DEFAULT_IMAGE,
        Some("0:0"),
        "id -u; test -s /etc/ld.so.cache && echo cache; echo setid=$(find / -xdev -perm /6000 -type f | wc -l)",
    )
    .await;
    assert_eq!(root.code, 0, "{}", root.output);
    assert!(root.output.starts_with("0\n"), "{}", root.output);
    assert!(root.output.contains("setid=0"), "{}", root.output);
    eprintln!("as root: {}", root.output.replace('\n', " "));
}

#[tokio::test]
async fn an_import_the_engine_refuses_fails_without_hanging() {
    let Some(docker) = docker().await else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/hostname"), "x\n").unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        import_rootfs(
            &docker,
            dir.path(),
            "UPPERCASE-REPOS-ARE-INVALID:tag",
            ImportConfig::test(),
            &mut |_| {},
        ),
    )
    .await
    .expect("the failed import returns");
    match result {
        Err(SandboxError::Docker(msg)) => assert!(msg.contains("lowercase"), "{msg}"),
        other => panic!("expected an Engine error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_daemon_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("docker.sock");
    std::fs::write(&fake, "").unwrap();
    let docker = Docker::connect_with_unix(fake.to_str().unwrap(), 5, bollard::API_DEFAULT_VERSION)
        .expect("a client (connecting is lazy)");
    let err = image_info(&docker, TEST_IMAGE).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(matches!(err, SandboxError::Unreachable { .. }), "{err:?}");
}
