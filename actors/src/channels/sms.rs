//! SMS through Twilio's REST API (reqwest; no Twilio SDK): replies are created with the
//! Messages API, inbound messages arrive as webhooks on the gateway port.
//!
//! Config (`channels.sms`, or per account under `accounts`):
//! - `accountSid` (or env `TWILIO_ACCOUNT_SID`) and `authToken` (or env
//!   `TWILIO_AUTH_TOKEN`): the REST API's Basic auth, and the key webhooks are signed with;
//! - `fromNumber`: the account's number replies are sent from (E.164, `+1415...`);
//! - `apiBaseUrl` (default `https://api.twilio.com`): how tests reach a fake;
//! - `webhookUrl`: the public URL Twilio posts to (`https://host/channels/sms`), which
//!   signatures are computed over; without it, `http://<Host header><path>` (right when
//!   Twilio reaches the gateway directly, wrong behind a TLS-terminating proxy: set it);
//! - `statusCallbackUrl` (optional): passed to Twilio as each message's `StatusCallback`;
//!   the status callbacks Twilio then posts to the webhook are logged, not routed.
//!
//! The webhook (`POST /channels/sms`, `/channels/sms/<account>`) checks
//! `X-Twilio-Signature` (base64 of HMAC-SHA1 under the auth token of the URL followed by
//! every parameter's name and value, sorted by name) in constant time and answers 403
//! when it does not match; a signed message is acknowledged (200, empty TwiML) only once
//! [`Inbound::accept`] made it durable; otherwise 500, and Twilio posts it again (the
//! redelivery is dropped as seen by its `MessageSid`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::Value;
use tracing::{debug, info, warn};

use super::actor::{
    Accepted, Adapter, ChannelCtx, Inbound, ReceiveError, SendError, WebhookRequest,
    WebhookResponse,
};
use super::config::AccountConfig;
use super::format::Platform;
use super::types::{ChannelOrigin, InboundMessage, MediaRef};
use crate::session::keys::PeerKind;

/// What a webhook is answered with when no SMS is to be sent back through TwiML.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

const DEFAULT_API: &str = "https://api.twilio.com";

/// How long one REST call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn build(cfg: &AccountConfig, _ctx: &ChannelCtx) -> Result<Arc<dyn Adapter>, String> {
    Ok(Arc::new(Sms::new(cfg)?))
}

/// One Twilio account (one sending number).
pub struct Sms {
    key: String,
    account: String,
    account_sid: String,
    auth_token: String,
    from: String,
    base: String,
    webhook_url: Option<String>,
    status_callback: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The auth token is a secret: never shown.
        f.debug_struct("Sms")
            .field("key", &self.key)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .field("base", &self.base)
            .field("webhook_url", &self.webhook_url)
            .finish_non_exhaustive()
    }
}

impl Sms {
    pub fn new(cfg: &AccountConfig) -> Result<Sms, String> {
        let key = cfg.key();
        let at = |k: &str| {
            if cfg.account == "default" {
                format!("channels.{}.{k}", cfg.channel)
            } else {
                format!("channels.{}.accounts.{}.{k}", cfg.channel, cfg.account)
            }
        };
        let account_sid = cfg
            .secret("accountSid", "TWILIO_ACCOUNT_SID")
            .ok_or_else(|| {
                format!(
                    "{key}: no Twilio account; set {} (AC..., from the Twilio console) or TWILIO_ACCOUNT_SID",
                    at("accountSid")
                )
            })?;
        let auth_token = cfg
            .secret("authToken", "TWILIO_AUTH_TOKEN")
            .ok_or_else(|| {
                format!(
                    "{key}: no Twilio auth token; set {} or TWILIO_AUTH_TOKEN",
                    at("authToken")
                )
            })?;
        let from = cfg.str("fromNumber").map(str::to_owned).ok_or_else(|| {
            format!(
                "{key}: no number to send from; set {} (E.164, like +14155550100)",
                at("fromNumber")
            )
        })?;
        let base = cfg
            .str("apiBaseUrl")
            .unwrap_or(DEFAULT_API)
            .trim_end_matches('/')
            .to_owned();
        for (name, url) in [
            ("apiBaseUrl", Some(base.as_str())),
            ("webhookUrl", cfg.str("webhookUrl")),
            ("statusCallbackUrl", cfg.str("statusCallbackUrl")),
        ] {
            if let Some(u) = url
                && reqwest::Url::parse(u).is_err()
            {
                return Err(format!("{key}: {} {u:?} is not a URL", at(name)));
            }
        }
        Ok(Sms {
            key,
            account: cfg.account.clone(),
            account_sid,
            auth_token,
            from,
            base,
            webhook_url: cfg.str("webhookUrl").map(str::to_owned),
            status_callback: cfg.str("statusCallbackUrl").map(str::to_owned),
            http: crate::agent::providers::http_client(),
        })
    }

    fn account_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}", self.base, self.account_sid)
    }

    /// The URL Twilio signed: `webhookUrl`, else rebuilt from the request.
    fn signed_url(&self, req: &WebhookRequest) -> Option<String> {
        if let Some(u) = &self.webhook_url {
            return Some(u.clone());
        }
        let host = req
            .header("x-forwarded-host")
            .or_else(|| req.header("host"))?;
        let scheme = req
            .header("x-forwarded-proto")
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        Some(format!("{scheme}://{host}{}", req.uri))
    }

    /// `Ok` when the request carries Twilio's signature for it; why not otherwise.
    fn verify(&self, req: &WebhookRequest, params: &[(String, String)]) -> Result<(), String> {
        let Some(given) = req.header("x-twilio-signature") else {
            return Err("no X-Twilio-Signature".into());
        };
        let Some(url) = self.signed_url(req) else {
            return Err("no Host header to rebuild the signed URL from".into());
        };
        let expected = signature(&self.auth_token, &url, params);
        if constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(format!("X-Twilio-Signature does not match (for {url})"))
        }
    }

    /// Twilio's inbound message form as an [`InboundMessage`].
    fn normalise(&self, params: &[(String, String)]) -> Option<InboundMessage> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let from = get("From").filter(|f| !f.is_empty())?;
        let sid = get("MessageSid")
            .or_else(|| get("SmsMessageSid"))
            .or_else(|| get("SmsSid"))
            .filter(|s| !s.is_empty())?;
        let n: usize = get("NumMedia").and_then(|n| n.parse().ok()).unwrap_or(0);
        let media: Vec<MediaRef> = (0..n.min(10))
            .filter_map(|i| {
                let url = get(&format!("MediaUrl{i}"))?;
                let mime = get(&format!("MediaContentType{i}")).map(str::to_owned);
                let kind = match mime.as_deref().and_then(|m| m.split('/').next()) {
                    Some("image") => "image",
                    Some("video") => "video",
                    Some("audio") => "audio",
                    _ => "document",
                };
                Some(MediaRef {
                    kind: kind.into(),
                    id: url.to_owned(),
                    name: None,
                    mime,
                    size: None,
                })
            })
            .collect();
        let text = get("Body").unwrap_or_default().to_owned();
        if text.trim().is_empty() && media.is_empty() {
            return None;
        }
        Some(InboundMessage {
            channel: "sms".into(),
            account: self.account.clone(),
            peer_kind: PeerKind::Dm,
            chat_id: from.to_owned(),
            sender_id: from.to_owned(),
            sender_name: String::new(),
            text,
            media,
            reply_to: None,
            thread: None,
            timestamp_ms: crate::gateway::now_ms(),
            message_id: sid.to_owned(),
            mentioned: false,
            guild_id: None,
            team_id: None,
        })
    }

    async fn handle(&self, req: &WebhookRequest, inbound: &Inbound) -> WebhookResponse {
        let params = parse_form(&req.body);
        if let Err(why) = self.verify(req, &params) {
            warn!(channel = %self.key, uri = %req.uri, reason = %why, "webhook refused: not signed by Twilio");
            return WebhookResponse::text(403, "invalid Twilio signature");
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let Some(status) = get("MessageStatus")
            && get("Body").is_none()
        {
            info!(
                channel = %self.key,
                sid = get("MessageSid").unwrap_or_default(),
                status,
                to = get("To").unwrap_or_default(),
                error_code = get("ErrorCode").unwrap_or_default(),
                "sms status"
            );
            return twiml();
        }
        let Some(msg) = self.normalise(&params) else {
            debug!(channel = %self.key, "webhook without a message (no From, MessageSid or content)");
            return twiml();
        };
        match inbound.accept(msg).await {
            Ok(Accepted::Dropped(why)) => {
                debug!(channel = %self.key, why, "sms dropped");
                twiml()
            }
            Ok(_) => twiml(),
            Err(e) => {
                // Not acknowledged: Twilio posts it again, and what was taken in is
                // dropped as seen.
                warn!(channel = %self.key, error = %e, "could not take an SMS in; Twilio will retry");
                WebhookResponse::text(500, "could not take the message in; retry")
            }
        }
    }

    async fn create(&self, to: &ChannelOrigin, text: &str) -> Result<String, SendError> {
        let mut form: Vec<(&str, &str)> =
            vec![("To", &to.to), ("From", &self.from), ("Body", text)];
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb));
        }
        let resp = self
            .http
            .post(format!("{}/Messages.json", self.account_url()))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("Twilio unreachable: {e}")))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = resp.text().await.unwrap_or_default();
        match status {
            200..=299 => match serde_json::from_str::<Value>(&body) {
                Ok(v) => Ok(v["sid"].as_str().unwrap_or_default().to_owned()),
                Err(e) => {
                    // Twilio took the message: sending it again would send it twice.
                    warn!(channel = %self.key, error = %e, "Twilio accepted an SMS with an unreadable answer");
                    Ok(String::new())
                }
            },
            429 => Err(SendError::RetryAfter(Duration::from_secs(
                retry_after.unwrap_or(1).max(1),
            ))),
            500..=599 => Err(SendError::Transient(format!(
                "Twilio answered {status}: {}",
                api_error(&body)
            ))),
            _ => Err(SendError::Permanent(format!(
                "Twilio refused the SMS to {} (HTTP {status}): {}",
                to.to,
                api_error(&body)
            ))),
        }
    }

    /// Checks the credentials with a fetch of a message that does not exist: 404 means
    /// Twilio knows the account, 401 that it refuses the pair.
    async fn check(&self) -> Result<(), ReceiveError> {
        let resp = self
            .http
            .get(format!(
                "{}/Messages/SM00000000000000000000000000000000.json",
                self.account_url()
            ))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| ReceiveError::Transient(format!("Twilio unreachable: {e}")))?;
        match resp.status().as_u16() {
            401 | 403 => Err(ReceiveError::Permanent(format!(
                "Twilio refused the credentials ({}); check channels.sms.accountSid and channels.sms.authToken",
                api_error(&resp.text().await.unwrap_or_default())
            ))),
            s if s >= 500 || s == 429 => {
                Err(ReceiveError::Transient(format!("Twilio answered {s}")))
            }
            _ => Ok(()),
        }
    }
}

impl Adapter for Sms {
    fn platform(&self) -> Platform {
        Platform::Sms
    }

    fn connect(&self) -> BoxFuture<'_, Result<String, ReceiveError>> {
        async move {
            self.check().await?;
            Ok(format!("SMS from {}", self.from))
        }
        .boxed()
    }

    fn receive(self: Arc<Self>, _inbound: Inbound) -> Option<BoxFuture<'static, ReceiveError>> {
        None
    }

    fn send<'a>(
        &'a self,
        to: &'a ChannelOrigin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        self.create(to, text).boxed()
    }

    fn webhook<'a>(
        &'a self,
        req: &'a WebhookRequest,
        inbound: &'a Inbound,
    ) -> BoxFuture<'a, WebhookResponse> {
        self.handle(req, inbound).boxed()
    }
}

fn twiml() -> WebhookResponse {
    WebhookResponse {
        status: 200,
        content_type: "text/xml",
        body: EMPTY_TWIML.as_bytes().to_vec(),
    }
}

/// Twilio's error body (`{code, message, more_info, status}`) as `code: message`.
fn api_error(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v.get("message").is_some() || v.get("code").is_some() => {
            let code = v["code"]
                .as_u64()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into());
            format!(
                "error {code}: {}",
                v["message"].as_str().unwrap_or_default()
            )
        }
        _ => body.chars().take(200).collect(),
    }
}

/// The `X-Twilio-Signature` of a POST of `params` to `url`: base64 of HMAC-SHA1 under the
/// auth token of the URL followed by each parameter's name and value, sorted by name.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    base64(&hmac_sha1(auth_token.as_bytes(), data.as_bytes()))
}

/// Equal, in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An `application/x-www-form-urlencoded` body as its pairs, in order.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// HMAC-SHA1 (RFC 2104), which Twilio signs webhooks with.
fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202.
        assert_eq!(
            hex(&hmac_sha1(&[0x0b; 20], b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(&hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn base64_pads_like_the_standard_alphabet() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn signatures_agree_with_the_fake_twilio() {
        let params: Vec<(String, String)> = [
            ("Body", "héllo & <b>x</b>+1"),
            ("From", "+14155550100"),
            ("MessageSid", "SM123"),
            ("To", "+15005550006"),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "http://127.0.0.1:1234/channels/sms?x=1";
        assert_eq!(
            signature("tok", url, &params),
            pincer_fakes::twilio::signature("tok", url, &params)
        );
        // Twilio's documented example.
        let p: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &p),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn forms_decode_plus_and_percent_escapes() {
        let f = parse_form(b"Body=h%C3%A9llo+world%21&From=%2B1415&Empty=&Bad=%zz%4&Flag");
        assert_eq!(
            f,
            [
                ("Body".to_owned(), "héllo world!".to_owned()),
                ("From".to_owned(), "+1415".to_owned()),
                ("Empty".to_owned(), String::new()),
                ("Bad".to_owned(), "%zz%4".to_owned()),
                ("Flag".to_owned(), String::new()),
            ]
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn api_errors_show_code_and_message() {
        assert_eq!(
            api_error(r#"{"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}"#),
            "error 21211: Invalid 'To' Phone Number"
        );
        assert_eq!(api_error("oops"), "oops");
    }
}
