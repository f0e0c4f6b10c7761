//! The agent's built-in tools called the way the ReAct loop calls them: `find(name)`, then
//! `call(ctx, json_args)`, in a temporary workspace, against real child processes and a
//! local HTTP server on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use pincer_actors::agent::tools::{
    self, Limits, Profile, ToolContext, ToolOutput, ToolPolicy, WorkspaceAccess,
};
use serde_json::{Value, json};

fn workspace(access: WorkspaceAccess) -> (tempfile::TempDir, ToolContext) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext::new(dir.path(), access);
    (dir, ctx)
}

async fn call(ctx: &ToolContext, tool: &str, args: Value) -> ToolOutput {
    tools::find(tool)
        .unwrap_or_else(|| panic!("no tool {tool}"))
        .call(ctx.clone(), args)
        .await
}

fn assert_error(out: &ToolOutput, needle: &str) {
    assert!(
        out.is_error,
        "expected an error containing {needle:?}, got {out:?}"
    );
    assert!(
        out.content.contains(needle),
        "expected {needle:?} in {:?}",
        out.content
    );
}

// ---------------------------------------------------------------- files

#[tokio::test]
async fn write_read_edit_round_trip() {
    let (dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    let out = call(
        &ctx,
        "write",
        json!({"path": "notes/todo.md", "content": "one\ntwo\nthree\n"}),
    )
    .await;
    assert_eq!(out, ToolOutput::ok("Wrote 14 bytes to notes/todo.md"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes/todo.md")).unwrap(),
        "one\ntwo\nthree\n"
    );

    let out = call(&ctx, "read", json!({"path": "notes/todo.md"})).await;
    assert_eq!(out, ToolOutput::ok("one\ntwo\nthree\n"));
    let out = call(
        &ctx,
        "read",
        json!({"path": "notes/todo.md", "offset": 2, "limit": 1}),
    )
    .await;
    assert_eq!(
        out.content,
        "two\n\n[showing lines 2-2 of 3; use offset=3 to continue]"
    );

    let out = call(
        &ctx,
        "edit",
        json!({"path": "notes/todo.md", "oldText": "two", "newText": "TWO"}),
    )
    .await;
    assert!(!out.is_error, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes/todo.md")).unwrap(),
        "one\nTWO\nthree\n"
    );
}

#[tokio::test]
async fn edit_needs_exactly_one_match() {
    let (dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    std::fs::write(dir.path().join("f.txt"), "a b a\n").unwrap();
    let out = call(
        &ctx,
        "edit",
        json!({"path": "f.txt", "oldText": "zzz", "newText": "y"}),
    )
    .await;
    assert_error(&out, "0 matches");
    let out = call(
        &ctx,
        "edit",
        json!({"path": "f.txt", "oldText": "a", "newText": "y"}),
    )
    .await;
    assert_error(&out, "occurs 2 times");
    assert_error(&out, "2 matches");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.txt")).unwrap(),
        "a b a\n"
    );
    let out = call(&ctx, "edit", json!({"path": "f.txt", "oldText": "a"})).await;
    assert_error(&out, "missing required parameter `newText`");
}

#[tokio::test]
async fn path_escapes_are_refused_with_clear_errors() {
    let (dir, mut ctx) = workspace(WorkspaceAccess::ReadWrite);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();

    for (path, why) in [
        ("../x", "climbs out of the workspace"),
        ("a/../../x", "climbs out of the workspace"),
        ("/etc/passwd", "outside the workspace"),
        ("link/secret", "points outside the workspace"),
        ("a\0b", "NUL byte"),
        ("", "empty"),
    ] {
        let out = call(&ctx, "read", json!({ "path": path })).await;
        assert_error(&out, why);
        let out = call(&ctx, "write", json!({ "path": path, "content": "x" })).await;
        assert_error(&out, why);
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret")).unwrap(),
        "s3cret"
    );
    assert!(!outside.path().join("x").exists());

    ctx.limits.read_max_bytes = 1000;
    std::fs::write(dir.path().join("huge.log"), vec![b'x'; 5000]).unwrap();
    let out = call(&ctx, "read", json!({"path": "huge.log"})).await;
    assert_error(&out, "huge.log is 5000 bytes, over the 1000-byte limit");
    let out = call(
        &ctx,
        "edit",
        json!({"path": "huge.log", "oldText": "x", "newText": "y"}),
    )
    .await;
    assert_error(&out, "over the 1000-byte limit");
}

#[tokio::test]
async fn workspace_access_none_and_ro_are_enforced() {
    let (dir, none) = workspace(WorkspaceAccess::None);
    std::fs::write(dir.path().join("f.txt"), "hello\n").unwrap();
    for (tool, args) in [
        ("read", json!({"path": "f.txt"})),
        ("write", json!({"path": "g.txt", "content": "x"})),
        (
            "edit",
            json!({"path": "f.txt", "oldText": "hello", "newText": "bye"}),
        ),
        (
            "apply_patch",
            json!({"input": "*** Begin Patch\n*** Add File: g.txt\n+x\n*** End Patch"}),
        ),
        ("exec", json!({"command": "touch g.txt"})),
    ] {
        let out = call(&none, tool, args).await;
        assert_error(&out, "workspace access is none");
    }

    let ro = ToolContext::new(dir.path(), WorkspaceAccess::ReadOnly);
    let out = call(&ro, "read", json!({"path": "f.txt"})).await;
    assert_eq!(out, ToolOutput::ok("hello\n"));
    for (tool, args) in [
        ("write", json!({"path": "g.txt", "content": "x"})),
        (
            "edit",
            json!({"path": "f.txt", "oldText": "hello", "newText": "bye"}),
        ),
        (
            "apply_patch",
            json!({"input": "--- a/f.txt\n+++ b/f.txt\n@@ -1 +1 @@\n-hello\n+bye\n"}),
        ),
        ("exec", json!({"command": "touch g.txt"})),
    ] {
        let out = call(&ro, tool, args).await;
        assert_error(&out, "read-only");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.txt")).unwrap(),
        "hello\n"
    );
    assert!(!dir.path().join("g.txt").exists());
}

#[tokio::test]
async fn apply_patch_is_all_or_nothing() {
    let (dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    std::fs::write(dir.path().join("first.txt"), "alpha\nbeta\n").unwrap();
    std::fs::write(dir.path().join("second.txt"), "gamma\n").unwrap();
    let diff = "--- a/first.txt\n+++ b/first.txt\n@@ -1,2 +1,2 @@\n-alpha\n+ALPHA\n beta\n\
                --- a/second.txt\n+++ b/second.txt\n@@ -1 +1 @@\n-not in the file\n+delta\n";
    let out = call(&ctx, "apply_patch", json!({ "input": diff })).await;
    assert_error(&out, "second.txt");
    assert_error(&out, "nothing was written");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("first.txt")).unwrap(),
        "alpha\nbeta\n"
    );

    let good = diff.replace("-not in the file", "-gamma");
    let out = call(&ctx, "apply_patch", json!({ "input": good })).await;
    assert_eq!(
        out,
        ToolOutput::ok("Success. Updated the following files:\nM first.txt\nM second.txt")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("first.txt")).unwrap(),
        "ALPHA\nbeta\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("second.txt")).unwrap(),
        "delta\n"
    );
}

#[tokio::test]
async fn apply_patch_envelope_adds_and_deletes() {
    let (dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    std::fs::write(dir.path().join("old.txt"), "bye\n").unwrap();
    let out = call(
        &ctx,
        "apply_patch",
        json!({"input": "*** Begin Patch\n*** Add File: src/new.rs\n+fn main() {}\n*** Delete File: old.txt\n*** End Patch"}),
    )
    .await;
    assert_eq!(
        out,
        ToolOutput::ok("Success. Updated the following files:\nA src/new.rs\nD old.txt")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/new.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert!(!dir.path().join("old.txt").exists());
}

// ---------------------------------------------------------------- exec and process

/// Whether no process is left in group `pgid`, zombies included. The supervisor kills and
/// reaps the group right after the leader exits; this gives it up to a second of real time.
async fn group_gone(pgid: i32) -> bool {
    assert!(pgid > 1);
    for _ in 0..100 {
        // SAFETY: signal 0 only checks for existence.
        let rc = unsafe { libc::kill(-pgid, 0) };
        if rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The first line of an output, as a pid (commands under test start with `echo $$`).
fn first_pid(text: &str) -> i32 {
    text.lines().next().unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn exec_runs_in_the_workspace_and_reports_the_exit_code() {
    let (dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let out = call(
        &ctx,
        "exec",
        json!({"command": "echo hi; echo oops >&2; pwd"}),
    )
    .await;
    assert!(!out.is_error, "{out:?}");
    let root = dir.path().canonicalize().unwrap();
    assert_eq!(
        out.content,
        format!("hi\noops\n{}\n\n\n[exit code 0]", root.display())
    );

    let out = call(
        &ctx,
        "exec",
        json!({"command": "pwd; exit 3", "workdir": "sub"}),
    )
    .await;
    assert_error(&out, "[exit code 3]");
    assert_error(&out, &format!("{}/sub", root.display()));

    let out = call(&ctx, "exec", json!({"command": "pwd", "workdir": "../"})).await;
    assert_error(&out, "climbs out of the workspace");

    // The child sees a fixed set of variables plus `env`, never the gateway's secrets.
    let out = call(
        &ctx,
        "exec",
        json!({"command": "echo \"$GREETING\"; env | cut -d= -f1 | sort", "env": {"GREETING": "hello"}}),
    )
    .await;
    assert!(out.content.starts_with("hello\n"), "{out:?}");
    let names: Vec<&str> = out
        .content
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        names.contains(&"GREETING") && names.contains(&"PATH"),
        "{names:?}"
    );
    let allowed = [
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ",
        "TMPDIR", "GREETING", "PWD", "OLDPWD", "SHLVL", "_",
    ];
    for name in names {
        assert!(allowed.contains(&name), "{name} leaked into the child");
    }
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_process_group() {
    let (_dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    let out = call(
        &ctx,
        "exec",
        json!({"command": "echo $$; sleep 30 & sleep 30", "timeoutMs": 300}),
    )
    .await;
    assert_error(
        &out,
        "timed out after 0.3s; the whole process group was killed",
    );
    let pgid = first_pid(&out.content);
    assert!(
        group_gone(pgid).await,
        "process group {pgid} survived the timeout"
    );
}

#[tokio::test]
async fn a_dropped_exec_call_kills_its_group() {
    let (dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    let fut = call(
        &ctx,
        "exec",
        json!({"command": "echo $$ > pid; sleep 30 & sleep 30"}),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), fut)
            .await
            .is_err()
    );
    let pgid = first_pid(&std::fs::read_to_string(dir.path().join("pid")).unwrap());
    assert!(
        group_gone(pgid).await,
        "process group {pgid} outlived its caller"
    );
}

#[tokio::test]
async fn exec_output_is_capped_with_a_note() {
    let (_dir, mut ctx) = workspace(WorkspaceAccess::ReadWrite);
    ctx.limits.max_output_bytes = 1000;
    let out = call(
        &ctx,
        "exec",
        json!({"command": "head -c 100000 /dev/zero | tr '\\0' a; echo; echo END"}),
    )
    .await;
    assert!(!out.is_error, "{:?}", &out.content[..200]);
    assert!(
        out.content.contains("[... 99005 bytes of output cut ...]"),
        "{}",
        out.content
    );
    assert!(out.content.starts_with(&"a".repeat(500)));
    assert!(out.content.contains("a\nEND\n"));
    assert!(out.content.len() < 1100, "{}", out.content.len());
}

#[tokio::test]
async fn background_exec_with_process_list_poll_log_kill() {
    let (_dir, ctx) = workspace(WorkspaceAccess::ReadWrite);

    // A command that finishes: started in the background, then followed to the end.
    let out = call(
        &ctx,
        "exec",
        json!({"command": "echo one; sleep 0.1; echo two", "background": true}),
    )
    .await;
    assert!(!out.is_error, "{out:?}");
    let done_id = session_id(&out.content);
    ctx.processes.get(&done_id).unwrap().wait().await;
    let out = call(
        &ctx,
        "process",
        json!({"action": "poll", "sessionId": done_id}),
    )
    .await;
    assert_eq!(out, ToolOutput::ok("one\ntwo\n\n\n[exit code 0]"));
    let out = call(
        &ctx,
        "process",
        json!({"action": "poll", "sessionId": done_id}),
    )
    .await;
    assert_eq!(out, ToolOutput::ok("(no new output)\n\n[exit code 0]"));
    let out = call(
        &ctx,
        "process",
        json!({"action": "log", "sessionId": done_id, "offset": 1, "limit": 1}),
    )
    .await;
    assert_eq!(out, ToolOutput::ok("two\n\n[lines 2-2 of 2; exit code 0]"));
    let out = call(
        &ctx,
        "process",
        json!({"action": "log", "sessionId": done_id, "limit": 1}),
    )
    .await;
    assert_eq!(out, ToolOutput::ok("two\n\n[lines 2-2 of 2; exit code 0]"));
    let out = call(
        &ctx,
        "process",
        json!({"action": "log", "sessionId": done_id}),
    )
    .await;
    assert_eq!(
        out,
        ToolOutput::ok("one\ntwo\n\n[lines 1-2 of 2; exit code 0]")
    );

    // A command that does not: moved to the background by yieldMs, then killed.
    let out = call(
        &ctx,
        "exec",
        json!({"command": "echo $$; sleep 30 & sleep 30", "yieldMs": 300}),
    )
    .await;
    assert!(!out.is_error, "{out:?}");
    assert!(out.content.contains("moved to the background"), "{out:?}");
    let id = session_id(&out.content);
    let pgid: i32 = out
        .content
        .split("Output so far:\n")
        .nth(1)
        .map(first_pid)
        .unwrap();
    assert_eq!(ctx.processes.get(&id).unwrap().pgid, pgid);

    let out = call(&ctx, "process", json!({"action": "list"})).await;
    let lines: Vec<&str> = out.content.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with(&format!("{id} running")), "{out:?}");
    assert!(
        lines[0].ends_with(":: echo $$; sleep 30 & sleep 30"),
        "{out:?}"
    );
    assert!(
        lines[1].starts_with(&format!("{done_id} completed")),
        "{out:?}"
    );

    let out = call(&ctx, "process", json!({"action": "poll", "sessionId": id})).await;
    assert_eq!(out, ToolOutput::ok("(no new output)\n\n[still running]"));
    let out = call(&ctx, "process", json!({"action": "kill", "sessionId": id})).await;
    assert_eq!(
        out,
        ToolOutput::ok(format!(
            "Session {id}: killed on request; the whole process group was killed"
        ))
    );
    assert!(group_gone(pgid).await, "process group {pgid} survived kill");
    let out = call(&ctx, "process", json!({"action": "list"})).await;
    assert!(out.content.starts_with(&format!("{id} killed")), "{out:?}");

    let out = call(
        &ctx,
        "process",
        json!({"action": "poll", "sessionId": "nope"}),
    )
    .await;
    assert_error(&out, "no session nope");
    let out = call(&ctx, "process", json!({"action": "poll"})).await;
    assert_error(&out, "needs `sessionId`");
    let out = call(&ctx, "process", json!({"action": "write", "sessionId": id})).await;
    assert_error(&out, "unknown action \"write\"");
}

#[tokio::test]
async fn dropping_the_process_table_kills_its_runs() {
    let (_dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    let out = call(
        &ctx,
        "exec",
        json!({"command": "sleep 30 & sleep 30", "background": true}),
    )
    .await;
    let id = session_id(&out.content);
    let run = ctx.processes.get(&id).unwrap();
    let pgid = run.pgid;
    assert_eq!(ctx.processes.running(), 1);
    drop(ctx);
    run.wait().await;
    assert!(
        group_gone(pgid).await,
        "process group {pgid} outlived its table"
    );
}

fn session_id(text: &str) -> String {
    text.split("sessionId ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .unwrap_or_else(|| panic!("no session id in {text:?}"))
        .to_owned()
}

// ---------------------------------------------------------------- web_fetch

async fn http_server() -> SocketAddr {
    use axum::http::{StatusCode, header::CONTENT_TYPE};
    use axum::response::Redirect;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/page",
            get(|| async {
                (
                    [(CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<html><head><title>Doc</title><script>var x = 1;</script></head>\
                     <body><h1>Hello</h1><p>fish &amp; chips</p></body></html>",
                )
            }),
        )
        .route("/big", get(|| async { "x".repeat(200_000) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/moved", get(|| async { Redirect::temporary("/page") }))
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such page") }),
        )
        .route(
            "/image",
            get(|| async { ([(CONTENT_TYPE, "image/png")], vec![0u8; 64]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn fetch_ctx(limits: Limits) -> ToolContext {
    let mut ctx = ToolContext::new(std::env::temp_dir(), WorkspaceAccess::None);
    ctx.limits = Limits {
        fetch_allow_private: true,
        ..limits
    };
    ctx
}

#[tokio::test]
async fn web_fetch_returns_page_text() {
    let addr = http_server().await;
    let ctx = fetch_ctx(Limits::default());
    let out = call(
        &ctx,
        "web_fetch",
        json!({"url": format!("http://{addr}/page")}),
    )
    .await;
    assert_eq!(
        out,
        ToolOutput::ok(format!(
            "URL: http://{addr}/page\nStatus: 200\n\nDoc\nHello\nfish & chips\n"
        ))
    );
    let out = call(
        &ctx,
        "web_fetch",
        json!({"url": format!("http://{addr}/moved")}),
    )
    .await;
    assert!(
        out.content
            .starts_with(&format!("URL: http://{addr}/page\nStatus: 200")),
        "{out:?}"
    );
    let out = call(
        &ctx,
        "web_fetch",
        json!({"url": format!("http://{addr}/missing")}),
    )
    .await;
    assert_error(&out, "Status: 404");
    let out = call(
        &ctx,
        "web_fetch",
        json!({"url": format!("http://{addr}/image")}),
    )
    .await;
    assert_error(&out, "is image/png (64 bytes), not text");
}

#[tokio::test]
async fn web_fetch_caps_size_and_characters() {
    let addr = http_server().await;
    let ctx = fetch_ctx(Limits {
        fetch_max_bytes: 1000,
        ..Limits::default()
    });
    let out = call(
        &ctx,
        "web_fetch",
        json!({"url": format!("http://{addr}/big")}),
    )
    .await;
    assert!(!out.is_error, "{out:?}");
    assert!(
        out.content
            .ends_with("[the body was cut at 1000 bytes (the size limit)]"),
        "{}",
        &out.content[out.content.len() - 100..]
    );
    assert_eq!(out.content.matches('x').count(), 1000);

    let ctx = fetch_ctx(Limits::default());
    let out = call(
        &ctx,
        "web_fetch",
        json!({"url": format!("http://{addr}/big"), "maxChars": 10}),
    )
    .await;
    assert_eq!(
        out.content,
        format!(
            "URL: http://{addr}/big\nStatus: 200\n\nxxxxxxxxxx\n\n[showing 10 of 200000 characters (199990 more cut)]"
        )
    );
}

#[tokio::test]
async fn web_fetch_times_out() {
    let addr = http_server().await;
    let ctx = fetch_ctx(Limits {
        fetch_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let out = call(
        &ctx,
        "web_fetch",
        json!({"url": format!("http://{addr}/slow")}),
    )
    .await;
    assert_error(&out, "did not answer within 0.3s");
}

#[tokio::test]
async fn web_fetch_refuses_other_schemes_and_internal_hosts_by_default() {
    let addr = http_server().await;
    let ctx = fetch_ctx(Limits::default());
    for url in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/"] {
        let out = call(&ctx, "web_fetch", json!({ "url": url })).await;
        assert_error(&out, "only http and https URLs can be fetched");
    }
    let out = call(&ctx, "web_fetch", json!({"url": "not a url"})).await;
    assert_error(&out, "is not a URL");

    let strict = ToolContext::new(std::env::temp_dir(), WorkspaceAccess::None);
    assert!(!strict.limits.fetch_allow_private);
    let out = call(
        &strict,
        "web_fetch",
        json!({"url": format!("http://{addr}/page")}),
    )
    .await;
    assert_error(&out, "internal address (127.0.0.1)");
    let out = call(
        &strict,
        "web_fetch",
        json!({"url": format!("http://localhost:{}/page", addr.port())}),
    )
    .await;
    assert_error(&out, "internal address");
}

// ---------------------------------------------------------------- policy and specs

#[test]
fn policy_filters_the_builtin_tools() {
    let offered = |policy: &ToolPolicy| -> Vec<&'static str> {
        tools::builtin()
            .iter()
            .filter(|t| policy.allows(t.name(), t.group()))
            .map(|t| t.name())
            .collect()
    };
    let all = [
        "read",
        "write",
        "edit",
        "apply_patch",
        "exec",
        "process",
        "web_fetch",
        "sessions_spawn",
        "sessions_send",
        "sessions_list",
        "sessions_history",
    ];
    let policy = |profile, allow: &[&str], deny: &[&str]| ToolPolicy {
        profile,
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(offered(&policy(Profile::Coding, &[], &[])), all);
    let full = [
        "read",
        "write",
        "edit",
        "apply_patch",
        "exec",
        "process",
        "web_fetch",
        "message",
        "sessions_spawn",
        "sessions_send",
        "sessions_list",
        "sessions_history",
        "agents_list",
    ];
    assert_eq!(offered(&policy(Profile::Full, &[], &[])), full);
    assert!(offered(&policy(Profile::Minimal, &[], &[])).is_empty());
    let messaging = [
        "message",
        "sessions_send",
        "sessions_list",
        "sessions_history",
    ];
    assert_eq!(offered(&policy(Profile::Messaging, &[], &[])), messaging);
    assert_eq!(
        offered(&policy(
            Profile::Messaging,
            &["group:fs"],
            &["write", "group:sessions"]
        )),
        ["read", "edit", "apply_patch", "message"]
    );
    assert_eq!(
        offered(&policy(
            Profile::Full,
            &[],
            &[
                "group:runtime",
                "group:web",
                "group:sessions",
                "group:agents"
            ]
        )),
        ["read", "write", "edit", "apply_patch", "message"]
    );
}

/// The tool schemas are part of the system prompt budget (8,000 characters in all). The
/// thirteen built-in specs take about 4,100 characters (the eight file, shell, web and
/// message tools about 2,500); this keeps them from creeping.
#[test]
fn builtin_specs_fit_the_prompt_budget() {
    const BUDGET: usize = 4_300;
    let specs: Vec<_> = tools::builtin().iter().map(|t| t.spec()).collect();
    let size = serde_json::to_string(&specs).unwrap().len();
    assert!(size < BUDGET, "tool specs take {size} characters");
    for spec in &specs {
        assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
        assert!(!spec.description.is_empty() && spec.description.len() <= 100);
        for required in spec.parameters["required"].as_array().unwrap() {
            let name = required.as_str().unwrap();
            assert!(
                spec.parameters["properties"].get(name).is_some(),
                "{}: required {name} is not a property",
                spec.name
            );
        }
    }
}

#[tokio::test]
async fn bad_arguments_are_explained_not_panicked_on() {
    let (_dir, ctx) = workspace(WorkspaceAccess::ReadWrite);
    for tool in tools::builtin() {
        let out = tool.call(ctx.clone(), json!("not an object")).await;
        assert_error(&out, "must be a JSON object");
        let out = tool.call(ctx.clone(), Value::Null).await;
        assert!(out.is_error, "{}: {out:?}", tool.name());
        assert!(out.content.starts_with(tool.name()), "{out:?}");
    }
}
