//! The audit log: every delegation, cross-agent message, approval and configuration
//! change, with its time, actors, correlation id and outcome, kept in `state.redb` and
//! read with `pincer audit`.
//!
//! Writers build an [`AuditRecord`] (the constructors below cover approvals and
//! configuration changes) and hand it to [`record`], which appends it without waiting for
//! the disk (see [`Store::audit_append`]). Readers filter with an [`AuditFilter`]:
//! `audit.query` over the gateway ([`methods`]), [`Store::audit_query`] in process.
//! Records never hold secrets: a configuration change names the paths that changed, never
//! their values.

pub mod methods;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::warn;

use crate::store::Store;

/// `kind` of an exec approval decision.
pub const KIND_APPROVAL: &str = "approval";
/// `kind` of a change of `pincer.json` (over the gateway or on disk).
pub const KIND_CONFIG_CHANGE: &str = "config.change";

/// `actor` of a configuration change written over the gateway (`config.set/patch/apply`).
pub const ACTOR_OPERATOR: &str = "operator";
/// `actor` of a configuration change made by editing the file (picked up by the watcher).
pub const ACTOR_CONFIG_FILE: &str = "config-file";
/// `actor` of an approval nobody answered in time.
pub const ACTOR_TIMEOUT: &str = "timeout";

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Unix milliseconds.
    pub ts: u64,
    /// `delegation.spawn`, `delegation.result`, `agent.send`, `agent.reply`,
    /// `approval`, `config.change`.
    pub kind: String,
    /// Who did it: a session key, `operator`, `config-file`, a channel user...
    pub actor: String,
    /// Whom or what it was done to: a session key, a config path...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The agent(s) involved, for `pincer audit --agent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// `accepted`, `ok`, `error`, `timeout`, `denied`, `approved`, `applied`...
    pub outcome: String,
    /// Anything else worth keeping (never secrets).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// What became of an exec approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalOutcome {
    Approved,
    Denied,
    /// Nobody answered within `tools.exec.approvalTimeoutSeconds`.
    Expired,
}

impl ApprovalOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalOutcome::Approved => "approved",
            ApprovalOutcome::Denied => "denied",
            ApprovalOutcome::Expired => "expired",
        }
    }
}

impl AuditRecord {
    /// A record of `kind` by `actor` with `outcome`, stamped now; the builder methods add
    /// the rest.
    pub fn new(kind: &str, actor: &str, outcome: &str) -> Self {
        Self {
            ts: crate::gateway::now_ms(),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            target: None,
            agents: Vec::new(),
            correlation_id: None,
            outcome: outcome.to_owned(),
            detail: Value::Null,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Adds an agent involved (kept once, in order).
    pub fn agent(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() && !self.agents.contains(&id) {
            self.agents.push(id);
        }
        self
    }

    pub fn correlation(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// An exec approval decision. `request` is the `exec.approval.requested` request
    /// (`{tool, command, sessionKey, agentId}`); `by` is who answered (`operator`, a
    /// channel user as `<channel>:<account>:<user id>`, or `timeout`).
    pub fn approval(
        approval_id: &str,
        request: &Value,
        outcome: ApprovalOutcome,
        by: &str,
    ) -> Self {
        let field = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default();
        let mut rec = Self::new(KIND_APPROVAL, by, outcome.as_str())
            .correlation(approval_id)
            .agent(field("agentId"))
            .detail(json!({
                "tool": field("tool"),
                "command": request.get("command").cloned().unwrap_or(Value::Null),
            }));
        if !field("sessionKey").is_empty() {
            rec = rec.target(field("sessionKey"));
        }
        rec
    }

    /// A configuration change by `actor` (`operator`, `config-file`): the dotted paths
    /// that changed (`logging.level`, `agents.list`...), never their values.
    pub fn config_change(actor: &str, paths: &[String], restart_required: &[String]) -> Self {
        let outcome = if paths.is_empty() {
            "unchanged"
        } else {
            "applied"
        };
        Self::new(KIND_CONFIG_CHANGE, actor, outcome)
            .target("pincer.json")
            .detail(json!({"paths": paths, "restartRequired": restart_required}))
    }

    /// Whether agent `id` is involved: listed in `agents`, or the actor or target is one
    /// of its sessions (`agent:<id>:...`).
    pub fn involves_agent(&self, id: &str) -> bool {
        let session_of = |s: &str| {
            s.strip_prefix("agent:")
                .and_then(|rest| rest.strip_prefix(id))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
        };
        self.agents.iter().any(|a| a == id)
            || session_of(&self.actor)
            || self.target.as_deref().is_some_and(session_of)
    }
}

/// The most records one query returns.
pub const MAX_QUERY_LIMIT: usize = 10_000;
/// What a query returns when it names no limit.
pub const DEFAULT_QUERY_LIMIT: usize = 1_000;

/// Which records a query wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Records at or after this time (unix ms).
    pub since_ms: Option<u64>,
    /// Records involving this agent (see [`AuditRecord::involves_agent`]).
    pub agent: Option<String>,
    /// Records whose kind starts with this (`config`, `delegation.`, `approval`).
    pub kind: Option<String>,
    /// The newest this many matches ([`DEFAULT_QUERY_LIMIT`] when `None`, at most
    /// [`MAX_QUERY_LIMIT`]).
    pub limit: Option<usize>,
}

impl AuditFilter {
    /// Whether `rec` passes the agent and kind filters (`since` is the store's range).
    pub fn matches(&self, rec: &AuditRecord) -> bool {
        self.kind.as_deref().is_none_or(|k| rec.kind.starts_with(k))
            && self.agent.as_deref().is_none_or(|a| rec.involves_agent(a))
    }

    pub fn limit(&self) -> usize {
        self.limit
            .unwrap_or(DEFAULT_QUERY_LIMIT)
            .clamp(1, MAX_QUERY_LIMIT)
    }

    /// From `audit.query`'s params `{since?, agentId?, kind?, limit?}`; the error says
    /// which param is wrong.
    pub fn from_params(p: &Value) -> Result<Self, String> {
        if !(p.is_object() || p.is_null()) {
            return Err("audit.query takes an object: {since?, agentId?, kind?, limit?}".into());
        }
        let text = |k: &str| -> Result<Option<String>, String> {
            match p.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("audit.query: {k} must be a string, not {other}")),
            }
        };
        let number = |k: &str, what: &str| -> Result<Option<u64>, String> {
            match p.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("audit.query: {k} must be {what}, not {v}")),
            }
        };
        let limit = number("limit", "a positive integer")?;
        if limit == Some(0) {
            return Err("audit.query: limit must be at least 1".into());
        }
        Ok(Self {
            since_ms: number("since", "a time in unix milliseconds")?,
            agent: text("agentId")?,
            kind: text("kind")?,
            limit: limit.map(|l| l.min(MAX_QUERY_LIMIT as u64) as usize),
        })
    }
}

/// Appends `rec` to the audit log; a store error is logged, never returned (an audit
/// record must not fail what it records).
pub fn record(store: &Store, rec: AuditRecord) {
    if let Err(e) = store.audit_append(&rec) {
        warn!(kind = %rec.kind, actor = %rec.actor, error = %e, "cannot write an audit record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_involved_by_name_or_through_its_sessions() {
        let rec = AuditRecord::new("agent.send", "agent:main:main", "ok").target("agent:ops:x");
        assert!(rec.involves_agent("main"));
        assert!(rec.involves_agent("ops"));
        assert!(
            !rec.involves_agent("mai"),
            "a prefix of an id is not the id"
        );
        let rec = AuditRecord::new("delegation.spawn", "operator", "accepted").agent("research");
        assert!(rec.involves_agent("research"));
        assert!(!rec.involves_agent("main"));
    }

    #[test]
    fn approval_records_carry_the_session_agent_tool_and_command() {
        let req = json!({"tool": "exec", "command": "ls", "sessionKey": "agent:main:main", "agentId": "main"});
        let rec = AuditRecord::approval("a1", &req, ApprovalOutcome::Denied, "operator");
        assert_eq!(
            (rec.kind.as_str(), rec.actor.as_str(), rec.outcome.as_str()),
            ("approval", "operator", "denied")
        );
        assert_eq!(rec.target.as_deref(), Some("agent:main:main"));
        assert_eq!(rec.agents, ["main"]);
        assert_eq!(rec.correlation_id.as_deref(), Some("a1"));
        assert_eq!(rec.detail, json!({"tool": "exec", "command": "ls"}));
    }

    #[test]
    fn query_params_are_checked_and_limits_clamped() {
        let f = AuditFilter::from_params(
            &json!({"since": 5, "agentId": "main", "kind": "config", "limit": 1_000_000}),
        )
        .unwrap();
        assert_eq!(f.since_ms, Some(5));
        assert_eq!(f.agent.as_deref(), Some("main"));
        assert_eq!(f.limit(), MAX_QUERY_LIMIT);
        assert_eq!(
            AuditFilter::from_params(&Value::Null).unwrap().limit(),
            DEFAULT_QUERY_LIMIT
        );
        for (bad, says) in [
            (
                json!({"since": "yesterday"}),
                "since must be a time in unix milliseconds",
            ),
            (json!({"limit": 0}), "limit must be at least 1"),
            (json!({"kind": 3}), "kind must be a string"),
            (json!([1]), "takes an object"),
        ] {
            let err = AuditFilter::from_params(&bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let config = AuditRecord::config_change(ACTOR_OPERATOR, &["logging.level".into()], &[]);
        let kind = |k: &str| AuditFilter {
            kind: Some(k.into()),
            ..Default::default()
        };
        assert!(kind("config").matches(&config));
        assert!(!kind("approval").matches(&config));
    }
}
