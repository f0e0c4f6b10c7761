//! One turn: the ReAct loop. Assemble the prompt, call the model through the three
//! failover layers, run the tool calls it asks for (independent calls in parallel, risky
//! ones only with approval), feed the results back, until the model answers or the
//! iteration limit is reached. The RunActor (in `session`) runs this under a deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::config::{AgentSpec, ExecPolicy, Mode, ModelRef, ProviderSpec};
use super::failover::Cooldowns;
use super::model::{
    ChatRequest, Endpoint, Message, ProviderError, StopReason, StreamEvent, Thinking, ToolCall,
    ToolSpec, Tools, Usage,
};
use super::providers;
use super::tools::{ProcessTable, Risk, Tool, ToolContext, ToolPolicy, WorkspaceAccess};

/// Sends an event to the operator clients (`chat`, `agent`, `exec.approval.requested`).
pub type EventSink = Arc<dyn Fn(&str, Value) + Send + Sync>;

/// Pending exec approvals, resolved by `exec.approval.resolve`.
pub struct Approvals {
    /// Each pending request's answer: allowed or not, and who answered.
    pending: Mutex<HashMap<String, oneshot::Sender<(bool, String)>>>,
    events: EventSink,
    /// Where every decision is recorded (`None`: nowhere).
    audit: Option<crate::store::Store>,
}

impl Approvals {
    pub fn new(events: EventSink) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            events,
            audit: None,
        }
    }

    /// Records every decision (approved, denied, expired) in this store's audit log.
    pub fn with_audit(mut self, store: crate::store::Store) -> Self {
        self.audit = Some(store);
        self
    }

    /// Asks the operators; `false` when denied or not answered within `timeout`.
    pub async fn request(&self, request: Value, timeout: Duration) -> bool {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id.clone(), tx);
        let now = crate::gateway::now_ms();
        (self.events)(
            "exec.approval.requested",
            json!({
                "id": id,
                "request": &request,
                "createdAtMs": now,
                "expiresAtMs": now + timeout.as_millis() as u64,
            }),
        );
        let decision = tokio::time::timeout(timeout, rx).await;
        self.pending.lock().unwrap().remove(&id);
        let allowed = matches!(decision, Ok(Ok((true, _))));
        let reason = match decision {
            Ok(Ok((true, _))) => "allowed",
            Ok(_) => "denied",
            Err(_) => "timed out",
        };
        if let Some(store) = &self.audit {
            use crate::audit::{ACTOR_TIMEOUT, ApprovalOutcome, AuditRecord};
            let (outcome, by) = match &decision {
                Ok(Ok((true, by))) => (ApprovalOutcome::Approved, by.as_str()),
                Ok(Ok((false, by))) => (ApprovalOutcome::Denied, by.as_str()),
                Ok(Err(_)) => (ApprovalOutcome::Denied, "gateway"),
                Err(_) => (ApprovalOutcome::Expired, ACTOR_TIMEOUT),
            };
            crate::audit::record(store, AuditRecord::approval(&id, &request, outcome, by));
        }
        (self.events)(
            "exec.approval.resolved",
            json!({ "id": id, "decision": if allowed { "allow-once" } else { "deny" }, "reason": reason }),
        );
        allowed
    }

    /// Answers a pending request as an operator; `false` when there is no such request
    /// (any more).
    pub fn resolve(&self, id: &str, allow: bool) -> bool {
        self.resolve_by(id, allow, crate::audit::ACTOR_OPERATOR)
    }

    /// Answers a pending request; `by` (who answered) goes to the audit log.
    pub fn resolve_by(&self, id: &str, allow: bool, by: &str) -> bool {
        match self.pending.lock().unwrap().remove(id) {
            Some(tx) => tx.send((allow, by.to_owned())).is_ok(),
            None => false,
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap().len()
    }
}

/// What an agent owns across turns: its config, the provider state and its tools.
pub struct AgentRuntime {
    pub spec: AgentSpec,
    pub providers: BTreeMap<String, ProviderSpec>,
    pub exec: ExecPolicy,
    /// Built on the first model call (building it parses the TLS root store, which a
    /// gateway with no model never needs).
    http: std::sync::OnceLock<reqwest::Client>,
    pub cooldowns: Arc<Cooldowns>,
    tools: Vec<Arc<dyn Tool>>,
    /// The tools' schemas, built once: every model call sends them (and their JSON, made
    /// once per wire format, see [`Tools`]).
    specs: Tools,
    /// The same without the tools a sandboxed session is not offered, made on first use.
    sandboxed_specs: std::sync::OnceLock<Tools>,
    /// Their serialised size, for the context-window estimate.
    tool_chars: usize,
    pub processes: Arc<ProcessTable>,
    pub approvals: Arc<Approvals>,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Model calls, failovers and tokens for `/metrics`.
    pub metrics: crate::gateway::Metrics,
    /// The agent's sandbox policy and the manager of sandboxes (None: never sandboxed).
    pub sandbox: Option<crate::sandbox::SandboxBinding>,
    /// The gateway's channels, for the `message` tool (None: it has nothing to send with).
    outbound: Option<Arc<dyn crate::channels::send::Outbound>>,
}

impl AgentRuntime {
    /// A runtime with the agent's allowed tools, a fresh process table and the default
    /// provider timeouts (30 s to the first byte, 90 s between stream chunks).
    pub fn new(
        spec: AgentSpec,
        providers: BTreeMap<String, ProviderSpec>,
        exec: ExecPolicy,
        cooldowns: Arc<Cooldowns>,
        approvals: Arc<Approvals>,
        metrics: crate::gateway::Metrics,
    ) -> Self {
        let tools = Self::allowed_tools(&spec);
        let specs: Vec<ToolSpec> = tools.iter().map(|t| t.spec()).collect();
        Self {
            tool_chars: crate::agent::prompt::tool_chars(&specs),
            tools,
            specs: specs.into(),
            sandboxed_specs: std::sync::OnceLock::new(),
            spec,
            providers,
            exec,
            http: std::sync::OnceLock::new(),
            cooldowns,
            processes: Arc::new(ProcessTable::new()),
            approvals,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            metrics,
            sandbox: None,
            outbound: None,
        }
    }

    /// Gives the `message` tool the gateway's channels to send with.
    pub fn set_outbound(&mut self, outbound: Arc<dyn crate::channels::send::Outbound>) {
        self.outbound = Some(outbound);
    }

    /// The tools this agent may use: its policy applied to the built-in set.
    pub fn allowed_tools(spec: &AgentSpec) -> Vec<Arc<dyn Tool>> {
        let policy = tool_policy(spec);
        super::tools::builtin()
            .into_iter()
            .filter(|t| policy.allows(t.name(), t.group()))
            .collect()
    }

    /// The primary model's context window in tokens (128k when the config does not say).
    pub fn context_window(&self) -> usize {
        self.spec
            .models
            .first()
            .and_then(|m| {
                self.providers
                    .get(&m.provider)?
                    .models
                    .iter()
                    .find(|x| x.id == m.model)?
                    .context_window
            })
            .unwrap_or(128_000) as usize
    }

    /// The HTTP client for model calls (shared by every agent; created on first use).
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(providers::http_client)
    }

    pub fn tool_specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    fn access(&self) -> WorkspaceAccess {
        match self.spec.workspace_access.as_str() {
            "none" => WorkspaceAccess::None,
            "ro" => WorkspaceAccess::ReadOnly,
            _ => WorkspaceAccess::ReadWrite,
        }
    }
}

pub fn tool_policy(spec: &AgentSpec) -> ToolPolicy {
    let profile =
        serde_json::from_value(json!(spec.tool_profile)).unwrap_or(super::tools::Profile::Coding);
    ToolPolicy {
        profile,
        allow: spec.tools_allow.clone(),
        deny: spec.tools_deny.clone(),
    }
}

/// Progress of a turn, for the session to stream out.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    Text(String),
    Thinking(String),
    ToolStarted {
        id: String,
        name: String,
        arguments: Value,
    },
    ToolFinished {
        id: String,
        name: String,
        content: String,
        is_error: bool,
    },
    /// A failover step: which layer, from what to what, why.
    Failover {
        layer: &'static str,
        detail: String,
    },
}

pub struct TurnInput {
    pub session_key: String,
    pub history: Vec<Message>,
    pub message: String,
    pub system: String,
    pub thinking: Option<Thinking>,
    /// The summary of what was compacted before (the cold layer), if any.
    pub summary: Option<String>,
    pub compact: Compact,
    /// This turn's mode, overriding the agent's.
    pub mode: Option<Mode>,
    /// Set while the message this turn answers is still on its way to the disk: the model
    /// call starts at once, tools wait for it (a message that was never acknowledged must
    /// not have had effects).
    pub stored: Option<crate::store::Durable>,
    /// Models for this turn only (a heartbeat's cheaper model, a delegation's `model`),
    /// tried before the agent's own chain.
    pub models: Option<Vec<ModelRef>>,
    /// The calling session, for the session tools (`sessions_spawn`...).
    pub sessions: Option<super::tools::sessions::SessionsCtx>,
}

/// When a turn first summarises older history into the session's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compact {
    /// When the request would pass 75% of the model's context window.
    Auto,
    /// Now, and nothing else (`sessions.compact`).
    Only,
}

/// Recent messages kept verbatim when compacting (from a user message on).
const KEEP_RECENT: usize = 6;

/// Characters per token, for estimates (no tokenizer is shipped).
const CHARS_PER_TOKEN: usize = 4;

/// What a turn produced: the messages to append after the user's, the final text.
#[derive(Debug, Default)]
pub struct TurnOutput {
    pub messages: Vec<Message>,
    pub text: String,
    pub usage: Usage,
    pub model: Option<String>,
    pub stop: Option<StopReason>,
    /// The turn failed: what to tell the user.
    pub error: Option<String>,
    pub model_calls: u32,
    /// Time spent in model calls (request to the end of the stream), failover included.
    pub model_time: Duration,
    /// History was compacted: the new summary and how many leading history messages it
    /// replaces.
    pub compacted: Option<(String, usize)>,
}

struct CallResult {
    text: String,
    tool_calls: Vec<ToolCall>,
    stop: StopReason,
    usage: Usage,
}

/// Runs one turn to its end (the caller applies the deadline and can drop it to abort).
/// Admission (`maxConcurrent`, priorities) is the AgentActor's job, before this.
pub async fn run_turn(
    rt: &AgentRuntime,
    input: TurnInput,
    emit: &(dyn Fn(TurnEvent) + Send + Sync),
) -> TurnOutput {
    let mut out = TurnOutput::default();
    let mode = input.mode.unwrap_or(rt.spec.mode);
    let chain: Vec<ModelRef> = match &input.models {
        Some(first) => first
            .iter()
            .chain(rt.spec.models.iter().filter(|m| !first.contains(m)))
            .cloned()
            .collect(),
        None => rt.spec.models.clone(),
    };
    let models = chain.as_slice();
    if models.is_empty() {
        out.error = Some(super::config::AgentsConfig::no_model_help().to_owned());
        return out;
    }
    // A sandboxed session runs `exec` in its container and its file tools in the
    // container's workspace; tools that would act outside the container are not offered.
    let sandbox: Option<Result<Arc<crate::sandbox::SandboxHandle>, String>> = rt
        .sandbox
        .as_ref()
        .and_then(|b| b.for_session(&rt.spec.id, &rt.spec.workspace, &input.session_key))
        .map(|r| r.map(Arc::new));
    let tools: Tools = if mode == Mode::Fast {
        Tools::default()
    } else if sandbox.is_some() {
        rt.sandboxed_specs
            .get_or_init(|| {
                rt.specs
                    .iter()
                    .filter(|t| !super::tools::DENIED_IN_SANDBOX.contains(&t.name.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
                    .into()
            })
            .clone()
    } else {
        rt.specs.clone()
    };
    let mut thinking = input.thinking.unwrap_or(rt.spec.thinking);
    if mode == Mode::Deep && thinking == Thinking::Off {
        thinking = Thinking::High;
    }
    let mut system = input.system.clone();
    let mut messages = input.history;
    let mut summary = input.summary.clone();
    let window_chars = rt.context_window() * CHARS_PER_TOKEN;
    // Estimated without serialising: the schemas' size is known, texts are counted.
    let size = |m: &[Message], s: &str| {
        s.len()
            + if tools.is_empty() { 0 } else { rt.tool_chars }
            + crate::agent::prompt::history_part(m).chars
    };
    let due = input.compact == Compact::Only
        || size(&messages, &system) + input.message.len() > window_chars * 3 / 4;
    if due {
        let t = tokio::time::Instant::now();
        let compacted = compact(rt, models, &mut messages, summary.as_deref(), emit).await;
        out.model_time += t.elapsed();
        match compacted {
            Ok(Some((text, n))) => {
                out.model_calls += 1;
                summary = Some(text.clone());
                out.compacted = Some((text, n));
            }
            Ok(None) => {}
            Err(e) => {
                out.error = Some(format!("could not compact the history: {e}"));
                return out;
            }
        }
        if input.compact == Compact::Only {
            return out;
        }
    }
    if let Some(s) = &summary {
        system.push_str(&format!(
            "\n\n## Earlier in this conversation (summary)\n{s}"
        ));
    }
    messages.push(Message::User {
        content: input.message.clone(),
    });
    let max_calls = if mode == Mode::Fast {
        1
    } else {
        rt.spec.max_iterations
    };
    loop {
        if out.model_calls >= max_calls {
            out.error = Some(format!(
                "stopped after {} model calls without a final answer (agents.defaults.maxIterations)",
                out.model_calls
            ));
            return out;
        }
        let req = ChatRequest {
            model: String::new(),
            system: system.clone(),
            messages: messages.clone(),
            tools: tools.clone(),
            thinking,
            max_tokens: None,
        };
        out.model_calls += 1;
        let t = tokio::time::Instant::now();
        let called = call_with_failover(rt, models, req, &mut thinking, emit).await;
        out.model_time += t.elapsed();
        let call = match called {
            Ok((model, r)) => {
                out.model = Some(model);
                r
            }
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        out.usage += call.usage;
        out.stop = Some(call.stop);
        let assistant = Message::Assistant {
            content: call.text.clone(),
            tool_calls: call.tool_calls.clone(),
        };
        messages.push(assistant.clone());
        out.messages.push(assistant);
        if call.tool_calls.is_empty() {
            out.text = call.text;
            break;
        }
        if let Some(stored) = &input.stored
            && let Err(e) = stored.wait().await
        {
            out.error = Some(format!(
                "the message could not be stored, so its tool calls were not run: {e}"
            ));
            return out;
        }
        // Independent calls of one step run in parallel; results go back in call order.
        let results = futures_util::future::join_all(call.tool_calls.iter().map(|c| {
            run_tool(
                rt,
                &input.session_key,
                input.sessions.as_ref(),
                sandbox.as_ref(),
                c,
                emit,
            )
        }))
        .await;
        for (c, r) in call.tool_calls.iter().zip(results) {
            let m = Message::Tool {
                call_id: c.id.clone(),
                name: c.name.clone(),
                content: r.content,
                is_error: r.is_error,
            };
            messages.push(m.clone());
            out.messages.push(m);
        }
    }
    if mode == Mode::Deep && out.error.is_none() {
        // Self-critique: one more call that checks the answer and corrects it if needed.
        messages.push(Message::User {
            content: "Check your answer above for mistakes and omissions. Reply with the final answer only, corrected if needed.".into(),
        });
        let req = ChatRequest {
            model: String::new(),
            system: system.clone(),
            messages,
            tools: Tools::default(),
            thinking,
            max_tokens: None,
        };
        out.model_calls += 1;
        let t = tokio::time::Instant::now();
        let critique = call_with_failover(rt, models, req, &mut thinking, emit).await;
        out.model_time += t.elapsed();
        if let Ok((_, r)) = critique {
            out.usage += r.usage;
            if !r.text.trim().is_empty() {
                out.text = r.text.clone();
                out.messages.push(Message::Assistant {
                    content: r.text,
                    tool_calls: Vec::new(),
                });
            }
        }
    }
    out
}

/// Summarises all but the last few messages (cut at a user message) into one text that
/// extends the previous summary. `None` when there is too little to compact.
async fn compact(
    rt: &AgentRuntime,
    models: &[ModelRef],
    messages: &mut Vec<Message>,
    previous: Option<&str>,
    emit: &(dyn Fn(TurnEvent) + Send + Sync),
) -> Result<Option<(String, usize)>, String> {
    let mut cut = messages.len().saturating_sub(KEEP_RECENT);
    while cut > 0 && !matches!(messages[cut], Message::User { .. }) {
        cut -= 1;
    }
    if cut == 0 {
        return Ok(None);
    }
    let mut transcript = String::new();
    for m in &messages[..cut] {
        match m {
            Message::User { content } => transcript.push_str(&format!("User: {content}\n")),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                transcript.push_str(&format!("Assistant: {content}\n"));
                for c in tool_calls {
                    transcript.push_str(&format!("(called {} {})\n", c.name, c.arguments));
                }
            }
            Message::Tool { name, content, .. } => {
                let short: String = content.chars().take(500).collect();
                transcript.push_str(&format!("({name} returned: {short})\n"));
            }
        }
    }
    let req = ChatRequest {
        model: String::new(),
        system: "You compact conversations. Write a concise summary of the conversation below: \
                 facts learned, decisions, open tasks, files touched. Extend the previous summary \
                 if there is one. Reply with the summary only."
            .into(),
        messages: vec![Message::User {
            content: format!(
                "Previous summary:\n{}\n\nConversation:\n{transcript}",
                previous.unwrap_or("(none)")
            ),
        }],
        tools: Tools::default(),
        thinking: Thinking::Off,
        max_tokens: None,
    };
    let mut thinking = Thinking::Off;
    let (_, r) = call_with_failover(rt, models, req, &mut thinking, &|e| {
        if let TurnEvent::Failover { .. } = e {
            emit(e)
        }
    })
    .await?;
    emit(TurnEvent::Failover {
        layer: "compaction",
        detail: format!("{cut} older messages summarised"),
    });
    messages.drain(..cut);
    Ok(Some((r.text, cut)))
}

/// Layers 1-3: profile rotation, thinking downgrade, model cascade. Returns the model used.
async fn call_with_failover(
    rt: &AgentRuntime,
    models: &[ModelRef],
    mut req: ChatRequest,
    thinking: &mut Thinking,
    emit: &(dyn Fn(TurnEvent) + Send + Sync),
) -> Result<(String, CallResult), String> {
    let mut errors: Vec<String> = Vec::new();
    for (mi, mref) in models.iter().enumerate() {
        if mi > 0 {
            rt.metrics.model_failover("model");
            emit(TurnEvent::Failover {
                layer: "model",
                detail: format!("falling back to {mref}"),
            });
            info!(model = %mref, "model cascade: trying the next model");
        }
        let Some(provider) = rt.providers.get(&mref.provider) else {
            errors.push(format!(
                "{mref}: no provider {:?} configured",
                mref.provider
            ));
            continue;
        };
        let profiles = provider.keys.len().max(1);
        let mut next_model = false;
        for idx in 0..profiles {
            let profile = Cooldowns::profile_id(&provider.id, idx);
            if let Some(left) = rt.cooldowns.remaining(&profile, crate::gateway::now_ms()) {
                errors.push(format!(
                    "{mref}: auth profile {profile} cooling down for {}s",
                    left.as_secs()
                ));
                continue;
            }
            loop {
                req.model = mref.model.clone();
                req.thinking = *thinking;
                // The model's `maxTokens` from the config, when it has one.
                req.max_tokens = provider
                    .models
                    .iter()
                    .find(|m| m.id == mref.model)
                    .and_then(|m| m.max_tokens);
                let ep = endpoint(rt, provider, idx);
                let result = call_once(rt, &ep, &req, emit).await;
                rt.metrics.model_call(
                    &provider.id,
                    match &result {
                        Ok(_) => "ok",
                        Err(e) => error_class(e),
                    },
                );
                match result {
                    Ok(r) => {
                        rt.cooldowns.succeeded(&profile);
                        rt.metrics.model_tokens("input", r.usage.input);
                        rt.metrics.model_tokens("output", r.usage.output);
                        rt.metrics.model_tokens("cached", r.usage.cached);
                        return Ok((mref.to_string(), r));
                    }
                    Err(ProviderError::ThinkingUnsupported { .. })
                        if thinking.downgrade().is_some() =>
                    {
                        let lower = thinking.downgrade().expect("checked");
                        rt.metrics.model_failover("thinking");
                        emit(TurnEvent::Failover {
                            layer: "thinking",
                            detail: format!(
                                "{mref} rejected thinking {}; retrying with {}",
                                thinking.as_str(),
                                lower.as_str()
                            ),
                        });
                        warn!(model = %mref, from = thinking.as_str(), to = lower.as_str(), "thinking level downgraded");
                        *thinking = lower;
                    }
                    Err(e) if e.rotates_profile() => {
                        let cool = rt.cooldowns.failed(&profile, &e, crate::gateway::now_ms());
                        rt.metrics.model_failover("profile");
                        warn!(model = %mref, %profile, error = %e, cooldown_s = cool.as_secs(), "auth profile cooling down");
                        emit(TurnEvent::Failover {
                            layer: "profile",
                            detail: format!(
                                "{profile} cooling down {}s after: {e}",
                                cool.as_secs()
                            ),
                        });
                        errors.push(format!("{mref} ({profile}): {e}"));
                        break;
                    }
                    Err(e) => {
                        warn!(model = %mref, error = %e, "model call failed");
                        errors.push(format!("{mref}: {e}"));
                        next_model = true;
                        break;
                    }
                }
            }
            if next_model {
                break;
            }
        }
    }
    Err(format!(
        "every model failed: {}",
        if errors.is_empty() {
            "no usable model".to_owned()
        } else {
            errors.join("; ")
        }
    ))
}

fn error_class(e: &ProviderError) -> &'static str {
    match e {
        ProviderError::Auth { .. } => "auth",
        ProviderError::RateLimited { .. } => "rate_limited",
        ProviderError::Billing { .. } => "billing",
        ProviderError::ThinkingUnsupported { .. } => "thinking_unsupported",
        ProviderError::BadRequest { .. } => "bad_request",
        ProviderError::Server { .. } => "server",
        ProviderError::Connection { .. } => "connection",
        ProviderError::Timeout(_) => "timeout",
        ProviderError::Truncated(_) => "truncated",
        ProviderError::Malformed(_) => "malformed",
    }
}

fn endpoint(rt: &AgentRuntime, p: &ProviderSpec, idx: usize) -> Endpoint {
    Endpoint {
        api: p.api,
        base_url: p.base_url.clone(),
        api_key: p.keys.get(idx).cloned(),
        headers: p.headers.clone(),
        connect_timeout: rt.connect_timeout,
        idle_timeout: rt.idle_timeout,
    }
}

async fn call_once(
    rt: &AgentRuntime,
    ep: &Endpoint,
    req: &ChatRequest,
    emit: &(dyn Fn(TurnEvent) + Send + Sync),
) -> Result<CallResult, ProviderError> {
    let mut stream = providers::stream_chat(rt.http(), ep, req).await?;
    let mut r = CallResult {
        text: String::new(),
        tool_calls: Vec::new(),
        stop: StopReason::End,
        usage: Usage::default(),
    };
    while let Some(ev) = stream.next().await {
        match ev? {
            StreamEvent::Text(t) => {
                r.text.push_str(&t);
                emit(TurnEvent::Text(t));
            }
            StreamEvent::Thinking(t) => emit(TurnEvent::Thinking(t)),
            StreamEvent::ToolCall(c) => r.tool_calls.push(c),
            StreamEvent::ToolCallStarted { .. } | StreamEvent::ToolCallDelta { .. } => {}
            StreamEvent::Done { stop, usage } => {
                r.stop = stop;
                r.usage = usage;
                return Ok(r);
            }
        }
    }
    Err(ProviderError::Truncated(
        "the stream ended without its final event".into(),
    ))
}

async fn run_tool(
    rt: &AgentRuntime,
    session_key: &str,
    sessions: Option<&super::tools::sessions::SessionsCtx>,
    sandbox: Option<&Result<Arc<crate::sandbox::SandboxHandle>, String>>,
    call: &ToolCall,
    emit: &(dyn Fn(TurnEvent) + Send + Sync),
) -> super::tools::ToolOutput {
    emit(TurnEvent::ToolStarted {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
    });
    let out = match rt.tools.iter().find(|t| t.name() == call.name) {
        Some(_)
            if sandbox.is_some()
                && super::tools::DENIED_IN_SANDBOX.contains(&call.name.as_str()) =>
        {
            super::tools::ToolOutput::error(format!(
                "{} is not available in a sandboxed session: it would act outside the sandbox (the host's network)",
                call.name
            ))
        }
        Some(_) if matches!(sandbox, Some(Err(_))) => {
            let Some(Err(e)) = sandbox else {
                unreachable!()
            };
            super::tools::ToolOutput::error(format!(
                "{}: this session is sandboxed and its sandbox is unavailable: {e}",
                call.name
            ))
        }
        None => super::tools::ToolOutput::error(format!(
            "tool {:?} is not available to this agent (its tool policy: profile {}, allow {:?}, deny {:?})",
            call.name, rt.spec.tool_profile, rt.spec.tools_allow, rt.spec.tools_deny
        )),
        Some(tool) => {
            if needs_approval(&rt.exec, tool.as_ref(), &call.arguments)
                && !rt
                    .approvals
                    .request(
                        json!({
                            "tool": call.name,
                            "command": call.arguments.get("command").cloned().unwrap_or(call.arguments.clone()),
                            "sessionKey": session_key,
                            "agentId": rt.spec.id,
                        }),
                        rt.exec.approval_timeout,
                    )
                    .await
            {
                super::tools::ToolOutput::error(format!(
                    "{} was not approved by the operator (tools.exec.ask = {:?}); do not retry it, tell the user what you wanted to run",
                    call.name, rt.exec.ask
                ))
            } else {
                let mut ctx = ToolContext::new(&rt.spec.workspace, rt.access());
                ctx.processes = rt.processes.clone();
                ctx.limits.exec_timeout = rt.exec.timeout;
                ctx.outbound = rt.outbound.clone().map(|sender| super::tools::message::OutboundCtx {
                    sender,
                    session_key: session_key.to_owned(),
                });
                ctx.sessions = sessions.cloned();
                if let Some(Ok(handle)) = sandbox {
                    // The container's /workspace: the agent's workspace (rw) or a private
                    // scratch directory (none, ro), writable either way.
                    ctx.workspace = handle.spec.workspace_host.clone();
                    ctx.access = WorkspaceAccess::ReadWrite;
                    if let Err(e) = std::fs::create_dir_all(&ctx.workspace) {
                        warn!(error = %e, "cannot create the sandbox workspace");
                    }
                    ctx.sandbox = Some(handle.clone() as Arc<dyn super::tools::SandboxRunner>);
                }
                tool.call(ctx, call.arguments.clone()).await
            }
        }
    };
    emit(TurnEvent::ToolFinished {
        id: call.id.clone(),
        name: call.name.clone(),
        content: out.content.clone(),
        is_error: out.is_error,
    });
    out
}

/// `tools.exec.ask`: off never asks; always asks for every high-risk call; on-miss asks
/// unless an exec command starts with an allowlisted prefix.
pub fn needs_approval(policy: &ExecPolicy, tool: &dyn Tool, args: &Value) -> bool {
    if tool.risk() != Risk::High {
        return false;
    }
    match policy.ask.as_str() {
        "off" => false,
        "always" => true,
        _ => {
            let command = args.get("command").and_then(Value::as_str).unwrap_or("");
            let plain =
                !command.is_empty() && !command.contains(['&', ';', '|', '`', '$', '>', '<', '\n']);
            let listed = policy
                .allowlist
                .iter()
                .any(|p| command == p || command.starts_with(&format!("{p} ")));
            tool.name() != "exec" || !plain || !listed
        }
    }
}

/// A model reference for display when none was used.
pub fn describe_models(models: &[ModelRef]) -> String {
    models
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ")
}
