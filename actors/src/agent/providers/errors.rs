//! Turning HTTP statuses, error bodies and transport failures into [`ProviderError`]s.
//! Pure functions, shared by the three APIs (their error bodies all carry
//! `error.message`; Anthropic adds `error.type`, OpenAI `error.code`, Gemini
//! `error.status` and `error.details`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::agent::model::{ProviderError, Thinking};

/// Provider messages are cut to this many characters.
const MAX_MESSAGE: usize = 1000;

/// Classifies an HTTP error answer. `retry_after` comes from the response headers
/// ([`retry_after`]); `body` is the response body as text; `thinking` is the level the
/// request asked for (reported back in [`ProviderError::ThinkingUnsupported`]).
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    thinking: Thinking,
) -> ProviderError {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let message = error_message(json.as_ref(), body, status);
    let haystack = body.to_ascii_lowercase();
    let code = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("code").or_else(|| e.get("type")))
        .and_then(Value::as_str)
        .unwrap_or("");

    let billing = matches!(
        code,
        "insufficient_quota" | "billing_hard_limit_reached" | "billing_not_active"
    ) || haystack.contains("credit balance is too low");

    match status {
        401 | 403 => ProviderError::Auth { status, message },
        402 => ProviderError::Billing { message },
        429 if billing => ProviderError::Billing { message },
        429 => ProviderError::RateLimited {
            retry_after: retry_after.or_else(|| json.as_ref().and_then(google_retry_delay)),
            message,
        },
        500..=599 => ProviderError::Server { status, message },
        400..=499 => {
            // Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
            if haystack.contains("api_key_invalid") || haystack.contains("api key not valid") {
                return ProviderError::Auth { status, message };
            }
            if billing {
                return ProviderError::Billing { message };
            }
            if matches!(status, 400 | 422)
                && thinking != Thinking::Off
                && mentions_thinking(&haystack)
            {
                return ProviderError::ThinkingUnsupported {
                    level: thinking,
                    message,
                };
            }
            ProviderError::BadRequest { status, message }
        }
        _ => ProviderError::Malformed(format!("unexpected HTTP status {status}: {message}")),
    }
}

fn mentions_thinking(lower: &str) -> bool {
    [
        "thinking",
        "reasoning",
        "budget_tokens",
        "thinkingbudget",
        "thinking_budget",
        "thinkingconfig",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// The provider's own words: `error.message` (with `error.type`/`error.status` in
/// front when present), a bare `error` string (Ollama), `message`, or the raw body.
pub fn error_message(json: Option<&Value>, body: &str, status: u16) -> String {
    let from_json = json.and_then(|v| {
        let err = v.get("error");
        match err {
            Some(Value::String(s)) => Some(s.clone()),
            Some(e @ Value::Object(_)) => {
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                let kind = e
                    .get("type")
                    .or_else(|| e.get("status"))
                    .or_else(|| e.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match (kind.is_empty(), msg.is_empty()) {
                    (true, true) => None,
                    (true, false) => Some(msg.to_string()),
                    (false, true) => Some(kind.to_string()),
                    (false, false) => Some(format!("{kind}: {msg}")),
                }
            }
            _ => v.get("message").and_then(Value::as_str).map(str::to_string),
        }
    });
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    if text.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        truncate(&text, MAX_MESSAGE)
    }
}

/// Cuts `s` to at most `max` characters, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// `retry-after-ms` (Azure OpenAI), then `retry-after` as seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    parse_retry_after_value(v, SystemTime::now())
}

/// One `Retry-After` value: delay seconds (a decimal is tolerated) or an IMF-fixdate.
pub fn parse_retry_after_value(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(v)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` to seconds since the epoch.
fn parse_http_date(s: &str) -> Option<u64> {
    let rest = s.split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo as i64 + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + sec)
}

/// Gemini puts the delay in the body: `error.details[] {"@type": "...RetryInfo",
/// "retryDelay": "37s"}`.
fn google_retry_delay(v: &Value) -> Option<Duration> {
    v.get("error")?
        .get("details")?
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("RetryInfo"))
        })
        .find_map(|d| {
            let s = d.get("retryDelay")?.as_str()?.strip_suffix('s')?;
            let secs: f64 = s.parse().ok()?;
            (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
        })
}

/// A transport failure while sending (connect, TLS, reset before the answer).
pub fn from_send_error(e: &reqwest::Error, url: &str) -> ProviderError {
    ProviderError::Connection {
        url: url.to_string(),
        message: chain(e),
    }
}

/// A transport failure while reading the stream: a reset is a [`ProviderError::Connection`],
/// anything else (the body ended before its chunked terminator) a truncation.
pub fn from_body_error(e: &reqwest::Error, url: &str) -> ProviderError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected
            ) {
                return ProviderError::Connection {
                    url: url.to_string(),
                    message: chain(e),
                };
            }
        }
        src = s.source();
    }
    ProviderError::Truncated(chain(e))
}

/// The error and its sources, `a: b: c`, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// Replaces the key wherever a provider (or a proxy) echoed it back.
pub fn scrub(e: ProviderError, secret: Option<&str>) -> ProviderError {
    let Some(k) = secret.filter(|k| !k.trim().is_empty()) else {
        return e;
    };
    let f = |m: String| {
        if m.contains(k) {
            m.replace(k, "<redacted>")
        } else {
            m
        }
    };
    use ProviderError::*;
    match e {
        Auth { status, message } => Auth {
            status,
            message: f(message),
        },
        RateLimited {
            retry_after,
            message,
        } => RateLimited {
            retry_after,
            message: f(message),
        },
        Billing { message } => Billing {
            message: f(message),
        },
        ThinkingUnsupported { level, message } => ThinkingUnsupported {
            level,
            message: f(message),
        },
        BadRequest { status, message } => BadRequest {
            status,
            message: f(message),
        },
        Server { status, message } => Server {
            status,
            message: f(message),
        },
        Connection { url, message } => Connection {
            url: f(url),
            message: f(message),
        },
        Timeout(d) => Timeout(d),
        Truncated(m) => Truncated(f(m)),
        Malformed(m) => Malformed(f(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn c(status: u16, body: &str) -> ProviderError {
        classify(status, None, body, Thinking::Off)
    }

    #[test]
    fn statuses_map_to_their_failover_class() {
        let openai = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        assert_eq!(
            c(401, openai),
            ProviderError::Auth {
                status: 401,
                message: "invalid_request_error: Incorrect API key provided".into()
            }
        );
        let anthropic =
            r#"{"type":"error","error":{"type":"permission_error","message":"no access"}}"#;
        assert_eq!(
            c(403, anthropic),
            ProviderError::Auth {
                status: 403,
                message: "permission_error: no access".into()
            }
        );
        assert!(
            matches!(c(402, "pay up"), ProviderError::Billing { message } if message == "pay up")
        );
        for s in [500, 502, 503, 504, 529] {
            assert!(
                matches!(c(s, "{}"), ProviderError::Server { status, .. } if status == s),
                "{s}"
            );
        }
        let gemini_404 =
            r#"{"error":{"code":404,"message":"models/nope is not found","status":"NOT_FOUND"}}"#;
        assert_eq!(
            c(404, gemini_404),
            ProviderError::BadRequest {
                status: 404,
                message: "NOT_FOUND: models/nope is not found".into()
            }
        );
        assert!(matches!(
            c(400, r#"{"error":{"message":"messages: bad"}}"#),
            ProviderError::BadRequest { status: 400, .. }
        ));
        assert!(matches!(c(302, ""), ProviderError::Malformed(_)));
    }

    #[test]
    fn rate_limits_quota_and_billing() {
        let e = classify(
            429,
            Some(Duration::from_secs(7)),
            r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
            Thinking::Off,
        );
        assert_eq!(
            e,
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
                message: "requests: Rate limit reached".into()
            }
        );
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(matches!(c(429, quota), ProviderError::Billing { .. }));
        let credit = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#;
        assert!(matches!(c(400, credit), ProviderError::Billing { .. }));
        // Gemini: the delay is in the body.
        let gemini = r#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure"},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
        assert_eq!(
            c(429, gemini),
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(37)),
                message: "RESOURCE_EXHAUSTED: Resource has been exhausted".into()
            }
        );
        // A header wins over the body.
        assert!(matches!(
            classify(429, Some(Duration::from_secs(2)), gemini, Thinking::Off),
            ProviderError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            c(429, "slow down"),
            ProviderError::RateLimited {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn gemini_invalid_key_is_auth_despite_400() {
        let body = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        assert!(matches!(
            c(400, body),
            ProviderError::Auth { status: 400, .. }
        ));
    }

    #[test]
    fn thinking_rejections_only_when_thinking_was_asked_for() {
        let cases = [
            r#"{"error":{"message":"Unsupported parameter: 'reasoning_effort' is not supported with this model.","type":"invalid_request_error","param":"reasoning_effort","code":"unsupported_parameter"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"thinking: Extra inputs are not permitted"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"`max_tokens` must be greater than `thinking.budget_tokens`"}}"#,
            r#"{"error":{"code":400,"message":"Thinking is not supported for this model.","status":"INVALID_ARGUMENT"}}"#,
        ];
        for body in cases {
            assert_eq!(
                classify(400, None, body, Thinking::High),
                ProviderError::ThinkingUnsupported {
                    level: Thinking::High,
                    message: error_message(serde_json::from_str(body).ok().as_ref(), body, 400),
                },
                "{body}"
            );
            assert!(
                matches!(c(400, body), ProviderError::BadRequest { .. }),
                "{body}"
            );
        }
        assert!(matches!(
            classify(
                400,
                None,
                r#"{"error":{"message":"messages: empty"}}"#,
                Thinking::Low
            ),
            ProviderError::BadRequest { .. }
        ));
    }

    #[test]
    fn messages_from_every_shape() {
        assert_eq!(
            error_message(None, "  plain text  ", 500),
            "plain text".to_string()
        );
        assert_eq!(error_message(None, "", 503), "HTTP 503 with an empty body");
        let ollama: Value = serde_json::json!({"error": "model 'x' not found"});
        assert_eq!(error_message(Some(&ollama), "", 404), "model 'x' not found");
        let long = "x".repeat(5000);
        let m = error_message(None, &long, 500);
        assert_eq!(m.chars().count(), MAX_MESSAGE + 1);
        assert!(m.ends_with('…'));
    }

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("12"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert("retry-after", HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_http_date() {
        // 1994-11-06T08:49:37Z is 784111777.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
        assert_eq!(
            parse_retry_after_value("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(30))
        );
        // In the past: retry now.
        let later = UNIX_EPOCH + Duration::from_secs(784_111_777 + 30);
        assert_eq!(
            parse_retry_after_value("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        // 2000-02-29T00:00:00Z is 951782400 (a leap day).
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(parse_http_date("Tue, 29 Foo 2000 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 00:00:00 PST"), None);
    }

    #[test]
    fn scrub_removes_the_key_everywhere() {
        let key = "sk-secret-123";
        let e = scrub(
            ProviderError::Auth {
                status: 401,
                message: format!("Incorrect API key provided: {key}."),
            },
            Some(key),
        );
        assert!(!e.to_string().contains(key), "{e}");
        let e = scrub(
            ProviderError::Connection {
                url: format!("http://h/?key={key}"),
                message: key.into(),
            },
            Some(key),
        );
        assert!(!format!("{e} {e:?}").contains(key));
        assert_eq!(
            scrub(ProviderError::Malformed("x".into()), None),
            ProviderError::Malformed("x".into())
        );
    }
}
