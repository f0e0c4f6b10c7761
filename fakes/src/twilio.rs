//! A fake Twilio on 127.0.0.1 for tests of Pincer's SMS channel: the Messages REST API the
//! gateway sends through, the status callbacks Twilio makes afterwards, and inbound SMS
//! webhooks, all signed with `X-Twilio-Signature` as Twilio signs them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use pincer_fakes::twilio::{FakeTwilio, Fault};
//! let tw = FakeTwilio::start("AC00000000000000000000000000000001", "auth-token").await;
//! let base = tw.api_url(); // in place of https://api.twilio.com
//! tw.set_sms_url("http://127.0.0.1:18789/sms/inbound");
//! let delivered = tw.send_sms("+14155550100", "hello").await?;
//! assert_eq!(delivered.reply.as_ref().map(|r| r.status), Ok(200));
//! tw.fail_next("messages.create", Fault::RateLimited { retry_after_secs: 2 });
//! let sent = tw.wait_sent(1, std::time::Duration::from_secs(5)).await.unwrap();
//! assert_eq!(sent[0].to, "+14155550100");
//! # Ok(()) }
//! ```
//!
//! # REST API
//! HTTP Basic auth `AccountSid:AuthToken` on every route but media; a wrong pair is 401
//! `{"code": 20003, "message": "Authenticate", ..}`, another account's path 404 (20404).
//!
//! * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`, `From`,
//!   `Body`, `StatusCallback`, `MediaUrl`: 201 with the Message resource (`sid` `SM…`,
//!   `status` `queued`, `to`, `from`, `body`, `num_segments`, `date_created`, `uri`, ...).
//!   Checked as Twilio does: `To` missing (21604), not E.164 or the magic `+15005550001`
//!   (21211), `From` missing (21603) or not one of the account's numbers (21606, see
//!   [`FakeTwilio::add_number`]; `+15005550006` is always one), `To` = `From` (21266), no
//!   body nor media (21602), body over 1,600 characters (21617).
//! * `GET .../Messages/{Sid}.json`: the message as it stands (its status follows the
//!   callbacks).
//! * `GET .../Messages/{Sid}/Media/{MediaSid}`: the bytes of an inbound message's media.
//!
//! Errors are `{code, message, more_info, status}`. Faults by endpoint name
//! (`messages.create`, `messages.fetch`, `media`, `*`): `RateLimited` is 429 (20429) with
//! `Retry-After`, `ServerError(n)` that status, `InvalidToken` 401 (20003), `Drop` closes
//! the connection, `Malformed` is 201 with cut-off JSON.
//!
//! # Status callbacks
//! After a create with `StatusCallback`, the fake POSTs the statuses of the [`Outcome`] set
//! ([`FakeTwilio::set_outcome`]; `queued`, `sent`, `delivered` by default) to it in order:
//! `MessageSid`, `MessageStatus`, `SmsStatus`, `To`, `From`, `AccountSid`, `ApiVersion` and
//! `ErrorCode` for failures, signed.
//!
//! # Inbound SMS
//! [`FakeTwilio::send_sms`] and [`FakeTwilio::send_inbound`] POST Twilio's form (`From`,
//! `To`, `Body`, `MessageSid`, `AccountSid`, `NumMedia`, `MediaUrl0`, ...) to the number's
//! webhook ([`FakeTwilio::set_sms_url`]) with `X-Twilio-Signature` = base64 of the
//! HMAC-SHA1, under the auth token, of the full URL followed by each parameter's name and
//! value sorted by name ([`signature`]); a [`Signing`] other than `Valid` forges it. The
//! `<Message>`s of a TwiML answer are read back.

mod api;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use crate::common::{self, Clock, Faults, Running, hmac_sha1};

pub use crate::common::{Fault, HttpReply, WaitTimeout};

/// The number every fake account owns (Twilio's magic valid `From` for test credentials).
pub const DEFAULT_NUMBER: &str = "+15005550006";

/// The `X-Twilio-Signature` of a POST of `params` to `url`: base64 of HMAC-SHA1 under the
/// auth token of the URL followed by every parameter's name and value, sorted by name
/// (then value).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    base64::engine::general_purpose::STANDARD
        .encode(hmac_sha1(auth_token.as_bytes(), data.as_bytes()))
}

/// How an inbound webhook is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Signing {
    /// As Twilio signs: the auth token over the URL posted to.
    Valid,
    /// With another auth token.
    WrongToken,
    /// Without `X-Twilio-Signature`.
    Unsigned,
    /// With the right token over another URL (as when a proxy rewrites it).
    ForUrl(String),
}

/// What becomes of a sent message, as its status callbacks tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// `queued`, `sent`, `delivered`.
    Delivered,
    /// `queued`, `failed` with this `ErrorCode` (e.g. 30008).
    Failed { error_code: u32 },
    /// `queued`, `sent`, `undelivered` with this `ErrorCode` (e.g. 30003).
    Undelivered { error_code: u32 },
    /// No callbacks at all.
    NoCallbacks,
}

/// A message created through the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentSms {
    pub sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub status_callback: Option<String>,
    pub media_urls: Vec<String>,
    /// `queued`, then as the callbacks went.
    pub status: String,
    /// Unix time.
    pub date_created: i64,
    pub error_code: Option<u32>,
}

/// One REST call as the fake received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedCall {
    /// `messages.create`, `messages.fetch` or `media`.
    pub endpoint: String,
    /// The account in the path.
    pub account_sid: String,
    /// The form parameters (or path ids) as a JSON object of strings.
    pub params: Value,
    pub auth_ok: bool,
    pub fault: Option<Fault>,
}

/// A status callback the fake made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusCallback {
    pub message_sid: String,
    pub status: String,
    pub url: String,
    pub params: Vec<(String, String)>,
    pub reply: Result<HttpReply, String>,
}

/// An inbound message to send to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    pub from: String,
    /// The account's number it was sent to; the first one if `None`.
    pub to: Option<String>,
    pub body: String,
    /// Attached media (an MMS): content type and bytes, served by the fake.
    pub media: Vec<(String, Vec<u8>)>,
}

impl InboundSms {
    pub fn new(from: &str, body: &str) -> Self {
        Self {
            from: from.to_owned(),
            to: None,
            body: body.to_owned(),
            media: Vec::new(),
        }
    }

    pub fn with_media(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.media.push((content_type.to_owned(), bytes));
        self
    }
}

/// An inbound webhook the fake made, with what came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundDelivery {
    pub message_sid: String,
    pub url: String,
    /// The form parameters, in the order sent.
    pub params: Vec<(String, String)>,
    pub signing: Signing,
    pub reply: Result<HttpReply, String>,
    /// The text of each `<Message>` in a TwiML answer.
    pub twiml_messages: Vec<String>,
}

pub(crate) struct TwilioState {
    pub(crate) account_sid: String,
    pub(crate) auth_token: String,
    pub(crate) clock: Clock,
    pub(crate) numbers: Vec<String>,
    next_sid: u64,
    pub(crate) outcome: Outcome,
    pub(crate) sms_url: Option<String>,
    /// Inbound media by (message sid, media sid): content type and bytes.
    pub(crate) media: HashMap<(String, String), (String, Vec<u8>)>,
    pub(crate) faults: Faults,
    pub(crate) calls: Vec<RecordedCall>,
    pub(crate) sent: Vec<SentSms>,
    pub(crate) callbacks: Vec<StatusCallback>,
    pub(crate) inbound: Vec<InboundDelivery>,
}

impl TwilioState {
    /// A new sid with this prefix: 32 hex digits after it, as Twilio's.
    pub(crate) fn next_sid(&mut self, prefix: &str) -> String {
        self.next_sid += 1;
        format!("{prefix}{:032x}", 0x5eed_0000_0000u64 + self.next_sid)
    }

    /// The Message resource as the REST API returns it.
    pub(crate) fn message_json(&self, m: &SentSms) -> Value {
        let uri = format!(
            "/2010-04-01/Accounts/{}/Messages/{}",
            self.account_sid, m.sid
        );
        let date = rfc2822(m.date_created);
        let sent = (m.status != "queued").then(|| date.clone());
        json!({
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": m.body,
            "date_created": date,
            "date_sent": sent,
            "date_updated": rfc2822(self.clock.now()),
            "direction": "outbound-api",
            "error_code": m.error_code,
            "error_message": null,
            "from": m.from,
            "messaging_service_sid": null,
            "num_media": m.media_urls.len().to_string(),
            "num_segments": segments(&m.body).to_string(),
            "price": null,
            "price_unit": "USD",
            "sid": m.sid,
            "status": m.status,
            "subresource_uris": {"media": format!("{uri}/Media.json")},
            "to": m.to,
            "uri": format!("{uri}.json"),
        })
    }
}

/// How many SMS segments a body takes: 160 GSM characters (153 each when split), 70 for
/// anything else (67 each when split).
fn segments(body: &str) -> usize {
    let n = body.chars().count();
    let gsm = body
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control() || c == '\n');
    let (single, multi) = if gsm { (160, 153) } else { (70, 67) };
    if n <= single { 1 } else { n.div_ceil(multi) }
}

/// `Thu, 24 Aug 2023 05:01:45 +0000`, as Twilio writes dates.
fn rfc2822(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = common::civil(unix);
    format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} +0000",
        DAYS[wd as usize],
        MONTHS[mo as usize - 1]
    )
}

/// The text of each `<Message>` of a TwiML document (its `<Body>` if it has one).
fn twiml_messages(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Message") {
        rest = &rest[start + "<Message".len()..];
        let Some(gt) = rest.find('>') else { break };
        if rest[..gt].ends_with('/') {
            rest = &rest[gt + 1..];
            continue;
        }
        let inner_start = gt + 1;
        let Some(end) = rest.find("</Message>") else {
            break;
        };
        let mut inner = &rest[inner_start..end];
        if let (Some(b), Some(e)) = (inner.find("<Body>"), inner.find("</Body>")) {
            inner = &inner[b + "<Body>".len()..e];
        }
        out.push(
            inner
                .trim()
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &rest[end + "</Message>".len()..];
    }
    out
}

/// A running fake Twilio; dropping it stops it too (without waiting).
pub struct FakeTwilio {
    account_sid: String,
    auth_token: String,
    run: Running<TwilioState>,
}

impl FakeTwilio {
    /// Starts a fake for this account on 127.0.0.1 (a free port); returns once it listens.
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound.
    pub async fn start(account_sid: &str, auth_token: &str) -> FakeTwilio {
        let state = TwilioState {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            clock: Clock::start(),
            numbers: vec![DEFAULT_NUMBER.to_owned()],
            next_sid: 0,
            outcome: Outcome::Delivered,
            sms_url: None,
            media: HashMap::new(),
            faults: Faults::default(),
            calls: Vec::new(),
            sent: Vec::new(),
            callbacks: Vec::new(),
            inbound: Vec::new(),
        };
        let run = Running::start("twilio", state, api::router).await;
        FakeTwilio {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            run,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.run.addr
    }

    /// `http://127.0.0.1:PORT`, in place of `https://api.twilio.com`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.run.addr)
    }

    /// The create-message URL for this account.
    pub fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_url(),
            self.account_sid
        )
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.auth_token
    }

    /// The account's first number ([`DEFAULT_NUMBER`]).
    pub fn phone_number(&self) -> String {
        self.run.shared.lock().numbers[0].clone()
    }

    /// Gives the account another number it may send from.
    pub fn add_number(&self, number: &str) {
        self.run
            .shared
            .change(|st| st.numbers.push(number.to_owned()));
    }

    /// The webhook inbound messages are POSTed to (http://127.0.0.1).
    pub fn set_sms_url(&self, url: &str) {
        self.run
            .shared
            .change(|st| st.sms_url = Some(url.to_owned()));
    }

    /// What becomes of messages created from now on.
    pub fn set_outcome(&self, outcome: Outcome) {
        self.run.shared.change(|st| st.outcome = outcome);
    }

    /// An SMS from `from` to the account's first number, POSTed to the webhook, signed.
    pub async fn send_sms(&self, from: &str, body: &str) -> std::io::Result<InboundDelivery> {
        self.send_inbound(InboundSms::new(from, body), Signing::Valid)
            .await
    }

    /// An inbound message POSTed to the webhook with this signing.
    pub async fn send_inbound(
        &self,
        sms: InboundSms,
        signing: Signing,
    ) -> std::io::Result<InboundDelivery> {
        let base = self.api_url();
        let (url, params) = self.run.shared.change(|st| {
            let url = st.sms_url.clone().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "fake twilio: no SMS webhook set (set_sms_url)",
                )
            })?;
            let prefix = if sms.media.is_empty() { "SM" } else { "MM" };
            let sid = st.next_sid(prefix);
            let to = sms.to.clone().unwrap_or_else(|| st.numbers[0].clone());
            let mut p: Vec<(String, String)> = Vec::new();
            let mut add = |k: &str, v: &str| p.push((k.to_owned(), v.to_owned()));
            add("ToCountry", "US");
            add("ToState", "CA");
            add("SmsMessageSid", &sid);
            add("NumMedia", &sms.media.len().to_string());
            add("ToCity", "");
            add("FromZip", "");
            add("SmsSid", &sid);
            add("FromState", "");
            add("SmsStatus", "received");
            add("FromCity", "");
            add("Body", &sms.body);
            add("FromCountry", "");
            add("To", &to);
            add("ToZip", "");
            add("NumSegments", &segments(&sms.body).to_string());
            add("MessageSid", &sid);
            add("AccountSid", &st.account_sid);
            add("From", &sms.from);
            add("ApiVersion", "2010-04-01");
            for (i, (ct, bytes)) in sms.media.iter().enumerate() {
                let media_sid = st.next_sid("ME");
                let media_url = format!(
                    "{base}/2010-04-01/Accounts/{}/Messages/{sid}/Media/{media_sid}",
                    st.account_sid
                );
                p.push((format!("MediaContentType{i}"), ct.clone()));
                p.push((format!("MediaUrl{i}"), media_url));
                st.media
                    .insert((sid.clone(), media_sid), (ct.clone(), bytes.clone()));
            }
            Ok::<_, std::io::Error>((url, p))
        })?;
        let reply = self.post_signed(&url, &params, &signing).await;
        let twiml = reply
            .as_ref()
            .map(|r| twiml_messages(&r.body))
            .unwrap_or_default();
        let d = InboundDelivery {
            message_sid: params
                .iter()
                .find(|(k, _)| k == "MessageSid")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            url,
            params,
            signing,
            reply,
            twiml_messages: twiml,
        };
        self.run.shared.change(|st| st.inbound.push(d.clone()));
        Ok(d)
    }

    /// POSTs any form to `url` with this signing (for malformed or replayed webhooks).
    pub async fn post_form(
        &self,
        url: &str,
        params: &[(String, String)],
        signing: &Signing,
    ) -> Result<HttpReply, String> {
        self.post_signed(url, params, signing).await
    }

    async fn post_signed(
        &self,
        url: &str,
        params: &[(String, String)],
        signing: &Signing,
    ) -> Result<HttpReply, String> {
        let mut headers = vec![
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("User-Agent".to_owned(), "TwilioProxy/1.1".to_owned()),
        ];
        let sig = match signing {
            Signing::Valid => Some(signature(&self.auth_token, url, params)),
            Signing::WrongToken => Some(signature(&format!("{}x", self.auth_token), url, params)),
            Signing::ForUrl(other) => Some(signature(&self.auth_token, other, params)),
            Signing::Unsigned => None,
        };
        if let Some(s) = sig {
            headers.push(("X-Twilio-Signature".to_owned(), s));
        }
        common::post(url, &headers, common::form_encode(params).into_bytes())
            .await
            .map_err(|e| e.to_string())
    }

    /// The next call of `endpoint` (`messages.create`, `messages.fetch`, `media`; `*` for
    /// any) gets `fault`.
    pub fn fail_next(&self, endpoint: &str, fault: Fault) {
        self.fail_times(endpoint, fault, 1);
    }

    /// The next `times` calls of `endpoint` get `fault`.
    pub fn fail_times(&self, endpoint: &str, fault: Fault, times: usize) {
        self.run
            .shared
            .change(|st| st.faults.add(endpoint, fault, times));
    }

    /// Every message created, in order, with its current status.
    pub fn sent(&self) -> Vec<SentSms> {
        self.run.shared.lock().sent.clone()
    }

    /// Every REST call, refused and faulted ones included, in order.
    pub fn requests(&self) -> Vec<RecordedCall> {
        self.run.shared.lock().calls.clone()
    }

    /// Every status callback made, in order.
    pub fn status_callbacks(&self) -> Vec<StatusCallback> {
        self.run.shared.lock().callbacks.clone()
    }

    /// Every inbound webhook made, in order.
    pub fn inbound_deliveries(&self) -> Vec<InboundDelivery> {
        self.run.shared.lock().inbound.clone()
    }

    /// Waits (tokio time) until at least `n` messages were created.
    pub async fn wait_sent(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SentSms>, WaitTimeout> {
        self.run
            .shared
            .wait_for("messages sent", n, timeout, |st| st.sent.clone())
            .await
    }

    /// Waits (tokio time) until at least `n` status callbacks were made (answered or not).
    pub async fn wait_status_callbacks(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<StatusCallback>, WaitTimeout> {
        self.run
            .shared
            .wait_for("status callbacks", n, timeout, |st| st.callbacks.clone())
            .await
    }

    /// Waits (tokio time) until `endpoint` was called at least `n` times.
    pub async fn wait_calls(
        &self,
        endpoint: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedCall>, WaitTimeout> {
        self.run
            .shared
            .wait_for("calls", n, timeout, |st| {
                st.calls
                    .iter()
                    .filter(|c| c.endpoint == endpoint)
                    .cloned()
                    .collect()
            })
            .await
    }

    /// Stops accepting and waits for open connections to finish.
    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}

impl std::fmt::Debug for FakeTwilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTwilio")
            .field("addr", &self.run.addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn signature_matches_twilios_documented_example() {
        // The vector of Twilio's request-validation docs and helper libraries.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = p(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(
            signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn dates_segments_and_twiml() {
        assert_eq!(rfc2822(1_692_853_305), "Thu, 24 Aug 2023 05:01:45 +0000");
        assert_eq!(segments("hi"), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"é".repeat(71)), 2);
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hi &amp; bye</Message><Message to="+1"><Body>two</Body></Message><Message/></Response>"#;
        assert_eq!(twiml_messages(xml), ["Hi & bye", "two"]);
        assert!(twiml_messages("<Response/>").is_empty());
    }
}
