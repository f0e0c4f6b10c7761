//! What the Slack, Twilio and Discord fakes share: state behind one mutex with a version
//! counter that `wait_*` calls watch, serving a router on 127.0.0.1, the faults and their
//! queues, the signing primitives, Unix time that moves on in tokio time, and a small HTTP
//! client for webhooks that only ever connects to 127.0.0.1.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::conn::{Conn, KillableListener};

/// A fault the next call(s) of an endpoint get instead of their answer; each fake renders
/// it in its platform's shape (see the fake's module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Fault {
    /// 429 with the platform's rate-limit body and a `Retry-After` of this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// That HTTP status with the platform's error body.
    ServerError(u16),
    /// The connection closes without a response.
    Drop,
    /// 200 with a body that is not valid JSON (cut off mid-object).
    Malformed,
    /// The platform's answer to a revoked or wrong token.
    InvalidToken,
}

/// Faults waiting for their endpoint, by name; `*` is for any endpoint.
#[derive(Debug, Default)]
pub(crate) struct Faults(HashMap<String, VecDeque<Fault>>);

impl Faults {
    pub(crate) fn add(&mut self, endpoint: &str, fault: Fault, times: usize) {
        let q = self.0.entry(endpoint.to_ascii_lowercase()).or_default();
        q.extend(std::iter::repeat_n(fault, times));
    }

    /// The fault waiting for this endpoint, else one waiting for any (`*`).
    pub(crate) fn take(&mut self, endpoint: &str) -> Option<Fault> {
        for key in [endpoint.to_ascii_lowercase().as_str(), "*"] {
            if let Some(f) = self.0.get_mut(key).and_then(VecDeque::pop_front) {
                return Some(f);
            }
        }
        None
    }
}

/// A `wait_*` call ran out of time: how many it wanted and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    pub fake: &'static str,
    pub what: &'static str,
    pub wanted: usize,
    pub got: usize,
    pub after: Duration,
}

impl std::fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fake {}: {} of {} {} after {:?}",
            self.fake, self.got, self.wanted, self.what, self.after
        )
    }
}

impl std::error::Error for WaitTimeout {}

/// State shared by a fake's handle and its handlers.
pub(crate) struct Shared<S> {
    state: Mutex<S>,
    /// Bumped after every change; watchers re-check what they wait for.
    version: watch::Sender<u64>,
    /// `true` once shutdown has begun.
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) name: &'static str,
}

impl<S> Shared<S> {
    pub(crate) fn new(name: &'static str, state: S) -> Self {
        Self {
            state: Mutex::new(state),
            version: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            name,
        }
    }

    /// The state; a panic while holding it leaves nothing half-done that matters for a
    /// fake, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state and wakes every watcher.
    pub(crate) fn change<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        let out = f(&mut self.lock());
        self.version.send_modify(|v| *v += 1);
        out
    }

    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Waits (tokio time) until `read` answers at least `n` items; answers them all.
    pub(crate) async fn wait_for<T>(
        &self,
        what: &'static str,
        n: usize,
        timeout: Duration,
        read: impl Fn(&S) -> Vec<T>,
    ) -> Result<Vec<T>, WaitTimeout> {
        let mut changes = self.watch();
        let deadline = Instant::now() + timeout;
        loop {
            let got = read(&self.lock());
            if got.len() >= n {
                return Ok(got);
            }
            let late = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(late, Ok(Ok(()))) {
                return Err(WaitTimeout {
                    fake: self.name,
                    what,
                    wanted: n,
                    got: got.len(),
                    after: timeout,
                });
            }
        }
    }
}

/// Binds 127.0.0.1:0 and serves `app` (handlers reach their [`Conn`] through
/// `ConnectInfo`) until `shutdown` turns `true`.
///
/// # Panics
/// If 127.0.0.1 cannot be bound: a test cannot go on without its fake.
async fn serve(
    name: &'static str,
    app: Router,
    shutdown: &watch::Sender<bool>,
) -> (SocketAddr, JoinHandle<()>) {
    let inner = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|e| panic!("fake {name}: bind 127.0.0.1:0: {e}"));
    let addr = inner
        .local_addr()
        .unwrap_or_else(|e| panic!("fake {name}: local address: {e}"));
    let mut down = shutdown.subscribe();
    let serve = axum::serve(
        KillableListener { inner, name },
        app.into_make_service_with_connect_info::<Conn>(),
    )
    .with_graceful_shutdown(async move {
        let _ = down.wait_for(|d| *d).await;
    });
    let task = tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::warn!(fake = name, error = %e, "fake stopped with an error");
        }
    });
    tracing::debug!(fake = name, %addr, "fake listening");
    (addr, task)
}

/// A fake's server: where it listens, its state, and its task. Dropping it begins the
/// shutdown (without waiting); [`Running::shutdown`] waits for open connections too.
pub(crate) struct Running<S> {
    pub(crate) addr: SocketAddr,
    pub(crate) shared: Arc<Shared<S>>,
    task: Option<JoinHandle<()>>,
}

impl<S: Send + 'static> Running<S> {
    /// Serves the router `app` builds on the shared state on 127.0.0.1 (a free port).
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound: a test cannot go on without its fake.
    pub(crate) async fn start(
        name: &'static str,
        state: S,
        app: impl FnOnce(Arc<Shared<S>>) -> Router,
    ) -> Self {
        let shared = Arc::new(Shared::new(name, state));
        let (addr, task) = serve(name, app(shared.clone()), &shared.shutdown).await;
        Self {
            addr,
            shared,
            task: Some(task),
        }
    }

    pub(crate) async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl<S> Drop for Running<S> {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// The answer of a `Drop` fault: the connection is killed, so nothing of it is written.
pub(crate) fn dropped(conn: &Conn) -> Response {
    conn.kill();
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// The answer of a `Malformed` fault: a JSON body cut off mid-object.
pub(crate) fn cut_off(status: StatusCode, partial_json: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], partial_json).into_response()
}

/// Unix time in seconds: read from the wall clock once, when a fake starts, then moved on
/// with tokio time (so paused-time tests see dates move as their clock does).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch_ms: i64,
    started: Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            epoch_ms,
            started: Instant::now(),
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.epoch_ms + self.started.elapsed().as_millis() as i64
    }

    pub(crate) fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The civil date and time of a Unix time: (year, month 1-12, day, hour, minute, second,
/// weekday 0 = Sunday). Howard Hinnant's days-from-civil algorithm, inverted.
pub(crate) fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7) as u32;
    (
        year,
        month,
        day,
        secs / 3_600,
        secs / 60 % 60,
        secs % 60,
        weekday,
    )
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `data` under `key`.
pub(crate) fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `application/x-www-form-urlencoded` pairs, in order; `None` if it does not parse.
pub(crate) fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body).ok()
}

/// Encodes pairs as `application/x-www-form-urlencoded`.
pub(crate) fn form_encode(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// What a webhook answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpReply {
    pub status: u16,
    /// Header names in lowercase, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The port of an `http://127.0.0.1` or `http://localhost` URL; anything else is refused
/// before connecting: a fake never reaches out.
pub(crate) fn loopback_port(uri: &Uri) -> io::Result<u16> {
    if uri.scheme_str() != Some("http") {
        return Err(invalid(format!(
            "{uri}: a fake delivers over plain http:// to 127.0.0.1 only"
        )));
    }
    let host = uri.host().unwrap_or_default();
    if host != "127.0.0.1" && !host.eq_ignore_ascii_case("localhost") {
        return Err(invalid(format!(
            "{uri}: a fake only delivers to 127.0.0.1, not {host:?}"
        )));
    }
    Ok(uri.port_u16().unwrap_or(80))
}

/// POSTs `body` to `url` (http://127.0.0.1 only) with these headers (`Content-Type`
/// included) over a fresh HTTP/1.1 connection; answers the status, headers and body.
pub(crate) async fn post(
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> io::Result<HttpReply> {
    let uri: Uri = url
        .parse()
        .map_err(|e| invalid(format!("webhook url {url:?}: {e}")))?;
    let port = loopback_port(&uri)?;
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    let driver = tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req =
        Request::post(path).header("host", uri.authority().map_or("127.0.0.1", |a| a.as_str()));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(axum::body::Bytes::from(body)))
        .map_err(|e| invalid(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(io::Error::other)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    driver.abort();
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0, 4));
        // 2023-08-24T05:01:45Z, a Thursday
        assert_eq!(civil(1_692_853_305), (2023, 8, 24, 5, 1, 45, 4));
        // 2024-02-29T23:59:59Z, a Thursday
        assert_eq!(civil(1_709_251_199), (2024, 2, 29, 23, 59, 59, 4));
    }

    #[test]
    fn faults_wait_for_their_endpoint_then_any() {
        let mut f = Faults::default();
        f.add("*", Fault::Drop, 1);
        f.add("chat.postMessage", Fault::Malformed, 2);
        assert_eq!(f.take("CHAT.POSTMESSAGE"), Some(Fault::Malformed));
        assert_eq!(f.take("chat.postmessage"), Some(Fault::Malformed));
        assert_eq!(f.take("auth.test"), Some(Fault::Drop));
        assert_eq!(f.take("chat.postMessage"), None);
    }

    #[test]
    fn only_loopback_urls() {
        let ok: Uri = "http://127.0.0.1:8080/x?y=1".parse().unwrap();
        assert_eq!(loopback_port(&ok).unwrap(), 8080);
        let local: Uri = "http://localhost/x".parse().unwrap();
        assert_eq!(loopback_port(&local).unwrap(), 80);
        for bad in [
            "https://127.0.0.1/x",
            "http://10.0.0.1/x",
            "http://example.com/",
        ] {
            assert!(loopback_port(&bad.parse().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn hmacs_match_rfc_4231_and_2202() {
        // RFC 4231 test case 2, RFC 2202 test case 2
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
