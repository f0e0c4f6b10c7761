use super::*;
use serde_json::json;

fn p() -> &'static Path {
    Path::new("/etc/pincer.json")
}

#[test]
fn defaults_when_the_file_is_missing_and_the_onboard_text_is_clean() {
    let t = tempfile::tempdir().unwrap();
    let l = load(&t.path().join("pincer.json")).unwrap();
    assert!(!l.exists);
    assert_eq!(l.config, PincerConfig::default());
    assert_eq!(l.config.gateway.port, 18789);
    let d = parse(default_config_text(), p()).unwrap();
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.config, PincerConfig::default());
}

#[test]
fn unknown_key_names_file_line_key_and_suggestion() {
    let raw = "{\n  gateway: {\n    prot: 1234,\n  },\n}\n";
    let err = parse(raw, p()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/pincer.json:3:5: gateway.prot: unknown key; did you mean \"port\"?"
    );
}

#[test]
fn type_errors_and_syntax_errors_have_lines() {
    let err = parse("{ gateway: { port: 'abc' } }", p())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":1:14: gateway.port: expected an integer 0-65535, found \"abc\""),
        "{err}"
    );
    let err = parse("{\n  gateway: {\n    port: 1,,\n  }\n}", p()).unwrap_err();
    let issue = &err.issues()[0];
    assert_eq!(issue.line, Some(3), "{err}");
    assert!(issue.message.starts_with("JSON5 syntax error"), "{err}");
}

#[test]
fn openclaw_keys_are_warnings_with_lines() {
    let raw = "{\n  browser: { enabled: true },\n  gateway: { port: 1, controlUi: { enabled: true } },\n}";
    let l = parse(raw, p()).unwrap();
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "/etc/pincer.json:2:3: browser: OpenClaw key not implemented by Pincer yet; ignored",
            "/etc/pincer.json:3:23: gateway.controlUi: OpenClaw key not implemented by Pincer yet; ignored"
        ]
    );
    assert_eq!(l.config.gateway.port, 1);
}

#[test]
fn cross_key_rules() {
    let err = parse("{gateway: {bind: 'tailnet'}}", p())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not supported by Pincer yet"), "{err}");
    let err = parse("{gateway: {bind: 'custom'}}", p())
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs gateway.customBindHost"), "{err}");
    let ok = parse(
        "{gateway: {bind: 'custom', customBindHost: '10.1.2.3'}}",
        p(),
    )
    .unwrap();
    assert_eq!(
        ok.config.gateway.bind_ip(None).unwrap().to_string(),
        "10.1.2.3"
    );
    let err = parse("{gateway: {auth: {token: ''}}}", p())
        .unwrap_err()
        .to_string();
    assert!(err.contains("must not be empty"), "{err}");
}

#[test]
fn secrets_are_redacted_in_values_and_raw_text_and_restored_on_write() {
    let raw = "{\n  // keep me\n  gateway: { auth: { mode: 'token', token: 's3cret' } },\n}";
    let l = parse(raw, p()).unwrap();
    let r = redacted(&l.value);
    assert_eq!(r["gateway"]["auth"]["token"], REDACTED);
    let text = redacted_raw(raw);
    assert!(
        !text.contains("s3cret") && text.contains("// keep me") && text.contains(REDACTED),
        "{text}"
    );
    let mut edited = r.clone();
    edited["gateway"]["port"] = json!(1);
    restore_redacted(&mut edited, &l.value);
    assert_eq!(edited["gateway"]["auth"]["token"], "s3cret");
    assert!(!format!("{:?}", l.config).contains("s3cret"));
}

#[test]
fn merge_patch_follows_rfc_7396() {
    let mut t = json!({"a": {"b": 1, "c": 2}, "d": [1]});
    merge_patch(&mut t, &json!({"a": {"b": null, "e": 3}, "d": {"x": 1}}));
    assert_eq!(t, json!({"a": {"c": 2, "e": 3}, "d": {"x": 1}}));
}

#[test]
fn diff_separates_live_from_restart_keys() {
    let a = PincerConfig::default();
    let mut b = a.clone();
    b.gateway.port = 1;
    b.logging.level = "debug".into();
    b.gateway.auth.token = Some("x".into());
    let d = diff(&a, &b);
    assert_eq!(
        d.changed,
        ["gateway.auth.token", "gateway.port", "logging.level"]
    );
    assert_eq!(d.restart_required, ["gateway.port"]);
    assert_eq!(d.live, ["gateway.auth.token", "logging.level"]);
    assert!(diff(&a, &a).is_empty());
}

#[test]
fn safe_bind_rule() {
    use crate::gateway::AuthPolicy;
    let lan = "0.0.0.0".parse().unwrap();
    let err = ensure_safe_bind(lan, &AuthPolicy::None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("anyone who can reach this address"), "{err}");
    assert!(ensure_safe_bind(lan, &AuthPolicy::Token("t".into())).is_ok());
    assert!(ensure_safe_bind("127.0.0.1".parse().unwrap(), &AuthPolicy::None).is_ok());
}

#[test]
fn atomic_write_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("pincer.json");
    write_atomic(&f, "{}").unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "{}");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// docs/configuration.md carries the generated key table between markers; this keeps it
/// in step with the schema table. Regenerate it with
/// `PINCER_UPDATE_DOCS=1 cargo test -p pincer-actors the_configuration_reference`.
#[test]
fn the_configuration_reference_matches_the_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start =
        doc.find("<!-- keys:begin -->").expect("begin marker") + "<!-- keys:begin -->".len();
    let end = doc.find("<!-- keys:end -->").expect("end marker");
    let expected = schema::markdown_reference();
    if std::env::var_os("PINCER_UPDATE_DOCS").is_some() {
        let updated = format!("{}\n{}\n{}", &doc[..start], expected.trim(), &doc[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        doc[start..end].trim(),
        expected.trim(),
        "docs/configuration.md is out of date; paste:\n{expected}"
    );
}

#[test]
fn provider_keys_are_redacted_in_values_and_raw_text_and_restored_on_write_back() {
    let raw = r#"{
  models: { providers: { openai: { api: "openai-completions", baseUrl: "http://127.0.0.1:1/v1",
    apiKey: "sk-one", apiKeys: ["sk-two", "sk-three"] } } },
}"#;
    let value: serde_json::Value = json5::from_str(raw).unwrap();
    let red = super::redacted(&value);
    let p = &red["models"]["providers"]["openai"];
    assert_eq!(p["apiKey"], super::REDACTED);
    assert_eq!(
        p["apiKeys"],
        serde_json::json!([super::REDACTED, super::REDACTED])
    );
    let text = super::redacted_raw(raw);
    assert!(!text.contains("sk-"), "{text}");
    assert!(text.contains("baseUrl"));
    let mut back = red.clone();
    super::restore_redacted(&mut back, &value);
    assert_eq!(back, value);
}

#[test]
fn agent_model_and_tool_changes_are_reported_as_needing_a_restart() {
    let old = super::parse("{ logging: { level: 'info' } }", std::path::Path::new("p")).unwrap();
    let new = super::parse(
        "{ logging: { level: 'debug' }, agents: { defaults: { maxIterations: 3 } }, tools: { profile: 'full' } }",
        std::path::Path::new("p"),
    )
    .unwrap();
    let d = super::diff(&old.config, &new.config);
    assert_eq!(d.live, ["logging.level"]);
    assert_eq!(d.restart_required, ["agents.defaults", "tools"]);
}
