//! What a model call is, independent of any provider's wire format: the request the
//! RunActor builds, the stream of events every provider client turns its wire format into,
//! and the errors that drive failover. No I/O here.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The wire protocol of a provider, in OpenClaw's names (`models.providers.<id>.api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Api {
    /// OpenAI chat completions; also Ollama, vLLM, LM Studio, OpenRouter through `baseUrl`.
    #[serde(rename = "openai-completions")]
    OpenAiCompletions,
    #[serde(rename = "anthropic-messages")]
    AnthropicMessages,
    #[serde(rename = "google-generative-ai")]
    GoogleGenerativeAi,
}

impl Api {
    pub const ALL: [&'static str; 3] = [
        "openai-completions",
        "anthropic-messages",
        "google-generative-ai",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAiCompletions => "openai-completions",
            Self::AnthropicMessages => "anthropic-messages",
            Self::GoogleGenerativeAi => "google-generative-ai",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai-completions" => Some(Self::OpenAiCompletions),
            "anthropic-messages" => Some(Self::AnthropicMessages),
            "google-generative-ai" => Some(Self::GoogleGenerativeAi),
            _ => None,
        }
    }
}

/// Where and how to reach one provider with one credential.
#[derive(Clone)]
pub struct Endpoint {
    pub api: Api,
    /// e.g. `https://api.openai.com/v1`, `https://api.anthropic.com`,
    /// `https://generativelanguage.googleapis.com/v1beta`, `http://127.0.0.1:11434/v1`.
    /// No trailing slash.
    pub base_url: String,
    /// The secret; `None` for keyless local servers (Ollama). Never logged.
    pub api_key: Option<String>,
    /// Extra headers from `models.providers.<id>.headers`.
    pub headers: Vec<(String, String)>,
    /// No first byte within this: [`ProviderError::Timeout`].
    pub connect_timeout: Duration,
    /// No new stream data within this: [`ProviderError::Timeout`].
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("api", &self.api)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// How hard the model should think before answering (extended thinking / reasoning effort).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Thinking {
    #[default]
    Off,
    Low,
    Medium,
    High,
}

impl Thinking {
    /// The next level down, for the thinking-level failover layer.
    pub fn downgrade(self) -> Option<Self> {
        match self {
            Self::High => Some(Self::Medium),
            Self::Medium => Some(Self::Low),
            Self::Low => Some(Self::Off),
            Self::Off => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// One tool the model may call: name, description and a JSON Schema for its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// The tools a model call offers: shared (a clone is a pointer copy), and serialised for
/// each wire format once per tool set rather than once per call. An agent's tool list
/// is made once per runtime and offered on every call of every turn: rebuilding and
/// serialising its JSON Schemas per call was a tenth of a busy gateway's CPU.
#[derive(Clone, Default)]
pub struct Tools(Arc<ToolsInner>);

#[derive(Default)]
struct ToolsInner {
    specs: Vec<ToolSpec>,
    /// The `tools` value of each [`Api`], serialised, made on first use.
    json: [OnceLock<Box<str>>; 3],
}

impl Tools {
    pub fn new(specs: Vec<ToolSpec>) -> Self {
        Tools(Arc::new(ToolsInner {
            specs,
            json: Default::default(),
        }))
    }

    /// The JSON text of the `tools` value for `api`; `make` builds that value from the
    /// specs the first time it is asked for.
    pub fn json(&self, api: Api, make: impl FnOnce(&[ToolSpec]) -> Value) -> &str {
        let i = match api {
            Api::OpenAiCompletions => 0,
            Api::AnthropicMessages => 1,
            Api::GoogleGenerativeAi => 2,
        };
        self.0.json[i].get_or_init(|| make(&self.0.specs).to_string().into_boxed_str())
    }
}

impl std::ops::Deref for Tools {
    type Target = [ToolSpec];
    fn deref(&self) -> &[ToolSpec] {
        &self.0.specs
    }
}

impl From<Vec<ToolSpec>> for Tools {
    fn from(specs: Vec<ToolSpec>) -> Self {
        Tools::new(specs)
    }
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.specs.iter()).finish()
    }
}

impl PartialEq for Tools {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.specs == other.0.specs
    }
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id (OpenAI `call_...`, Anthropic `toolu_...`); Gemini has none, so
    /// its client makes one up.
    pub id: String,
    pub name: String,
    /// The arguments as parsed JSON (an object); `Value::Null` if the model sent none.
    pub arguments: Value,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    User {
        content: String,
    },
    Assistant {
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering `ToolCall::id`.
    Tool {
        call_id: String,
        name: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

/// A request for one model call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The provider's model id (no `provider/` prefix).
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Tools,
    pub thinking: Thinking,
    pub max_tokens: Option<u32>,
}

/// Tokens used by one model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Self) {
        self.input += o.input;
        self.output += o.output;
        self.cached += o.cached;
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A complete answer.
    End,
    /// It wants tool results.
    ToolUse,
    /// It hit `max_tokens`.
    MaxTokens,
    /// Refused or filtered by the provider.
    Refusal,
}

/// What a provider client yields while a call streams. A well-formed stream is any
/// number of deltas and finished tool calls, then exactly one `Done`.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Visible answer text.
    Text(String),
    /// Reasoning text, where the provider shows it.
    Thinking(String),
    /// A tool call has started streaming (its arguments follow as fragments).
    ToolCallStarted {
        index: usize,
        id: String,
        name: String,
    },
    /// A fragment of a tool call's JSON arguments, as streamed.
    ToolCallDelta {
        index: usize,
        fragment: String,
    },
    /// A tool call whose arguments are complete and parsed.
    ToolCall(ToolCall),
    Done {
        stop: StopReason,
        usage: Usage,
    },
}

/// What went wrong with a model call; the classification decides the failover layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// 401/403: the key is wrong or revoked. Rotate to another auth profile.
    #[error("the provider refused the API key (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// 429 or an overload status: rotate the profile, honour `retry_after`.
    #[error("rate limited by the provider{}: {message}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Quota exhausted or payment required (402, `insufficient_quota`): a long cool-down.
    #[error("the provider account is out of credit or quota: {message}")]
    Billing { message: String },
    /// The model rejects the requested thinking level: downgrade it and retry.
    #[error("the model does not support thinking level {level:?}: {message}")]
    ThinkingUnsupported { level: Thinking, message: String },
    /// The request itself is wrong (400 other than the above, 404 model not found): not
    /// retried on the same model.
    #[error("the provider rejected the request (HTTP {status}): {message}")]
    BadRequest { status: u16, message: String },
    /// 5xx: the provider is down; try another model.
    #[error("the provider failed (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    /// No connection, reset, DNS, TLS.
    #[error("could not reach the provider at {url}: {message}")]
    Connection { url: String, message: String },
    /// No answer or no stream progress within the endpoint's timeouts.
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The stream ended before its final event.
    #[error("the provider's stream ended early: {0}")]
    Truncated(String),
    /// The provider sent something that is not its documented format.
    #[error("the provider sent malformed data: {0}")]
    Malformed(String),
}

impl ProviderError {
    /// Worth trying with another auth profile of the same provider.
    pub fn rotates_profile(&self) -> bool {
        matches!(
            self,
            Self::Auth { .. } | Self::RateLimited { .. } | Self::Billing { .. }
        )
    }

    /// Worth trying on the next model of the fallback chain.
    pub fn falls_back(&self) -> bool {
        !matches!(self, Self::ThinkingUnsupported { .. })
    }
}
