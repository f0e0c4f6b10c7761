//! `web_fetch {url, maxChars?}`: an HTTP GET of an http(s) URL, returned as text.
//!
//! Parameters from OpenClaw (`docs/tools/web-fetch.md` in openclaw/openclaw): `url`
//! (http/https only), `maxChars` (output cut to this many characters, clamped to 50,000,
//! OpenClaw's `maxCharsCap` default). OpenClaw's `extractMode` (`markdown`|`text`) is
//! accepted; both give the same crude text here (tags, scripts and styles removed, entities
//! decoded, blank runs collapsed) since there is no Readability.
//!
//! Limits: the body is read only up to `Limits::fetch_max_bytes` (the output says it was
//! cut), the whole fetch (connect, redirects, body) within `Limits::fetch_timeout`, at most
//! 3 redirects (OpenClaw's `maxRedirects`), each checked again. Like OpenClaw, loopback,
//! private, link-local and other internal addresses are refused, for IP literals and for
//! every address a name resolves to (the resolver only hands reqwest the checked addresses),
//! unless `Limits::fetch_allow_private` is set.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::args::Args;
use super::{Risk, Tool, ToolContext, ToolOutput, boxed, schema};
use crate::agent::model::ToolSpec;

/// The largest `maxChars` (OpenClaw's `tools.web.fetch.maxCharsCap` default).
pub const MAX_CHARS_CAP: usize = 50_000;
/// Redirects followed (OpenClaw's `tools.web.fetch.maxRedirects` default).
pub const MAX_REDIRECTS: usize = 3;

pub struct WebFetch;

impl Tool for WebFetch {
    fn name(&self) -> &'static str {
        "web_fetch"
    }
    fn group(&self) -> &'static str {
        "group:web"
    }
    fn risk(&self) -> Risk {
        Risk::High
    }
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "web_fetch".into(),
            description: "Fetch an http(s) URL and return its text (HTML stripped).".into(),
            parameters: schema(
                json!({"url": {"type": "string"}, "maxChars": {"type": "integer"}}),
                &["url"],
            ),
        }
    }
    fn call(&self, ctx: ToolContext, args: Value) -> BoxFuture<'static, ToolOutput> {
        boxed("web_fetch", fetch(ctx, args))
    }
}

async fn fetch(ctx: ToolContext, args: Value) -> ToolOutput {
    let parsed = (|| {
        let a = Args::new("web_fetch", &args)?;
        let mode = a.opt_str("extractMode")?;
        if let Some(m) = mode
            && m != "text"
            && m != "markdown"
        {
            return Err(format!(
                "web_fetch: `extractMode` must be \"text\" or \"markdown\", got {m:?}"
            ));
        }
        Ok::<_, String>((a.str("url")?.trim().to_owned(), a.opt_u64("maxChars")?))
    })();
    let (url, max_chars) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutput::error(e),
    };
    let url = match reqwest::Url::parse(&url) {
        Ok(u) => u,
        Err(e) => return ToolOutput::error(format!("web_fetch: {url:?} is not a URL: {e}")),
    };
    let allow_private = ctx.limits.fetch_allow_private;
    if let Err(e) = check_url(&url, allow_private) {
        return ToolOutput::error(format!("web_fetch: {e}"));
    }
    let max_chars = max_chars.map_or(MAX_CHARS_CAP, |m| (m as usize).clamp(1, MAX_CHARS_CAP));
    let limit = ctx.limits.fetch_timeout;
    match tokio::time::timeout(limit, get(&ctx, url.clone())).await {
        Err(_) => ToolOutput::error(format!(
            "web_fetch: {url} did not answer within {:.1}s",
            limit.as_secs_f64()
        )),
        Ok(Err(e)) => ToolOutput::error(format!("web_fetch: {e}")),
        Ok(Ok(page)) => render(page, max_chars, ctx.limits.max_output_bytes),
    }
}

/// A fetched page.
struct Page {
    url: String,
    status: u16,
    content_type: String,
    body: Vec<u8>,
    /// The body was cut at `fetch_max_bytes`.
    cut: bool,
}

/// Only http(s), and no internal IP literal unless allowed.
fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "only http and https URLs can be fetched, not {other}:"
            ));
        }
    }
    let host = url.host_str().ok_or_else(|| format!("{url} has no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip: Option<IpAddr> = bare.parse().ok().or_else(|| {
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        (name == "localhost" || name.ends_with(".localhost"))
            .then_some(IpAddr::from([127, 0, 0, 1]))
    });
    match ip {
        Some(ip) if !allow_private && is_internal(ip) => Err(format!(
            "{url} points at an internal address ({ip}); only public hosts can be fetched"
        )),
        _ => Ok(()),
    }
}

/// Loopback, private, link-local, CGNAT, unspecified, multicast, documentation and other
/// non-public ranges.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
        }
    }
}

/// Resolves names like the system does, then drops internal addresses (unless allowed), so
/// a public name cannot lead reqwest to a private address.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow_private || !is_internal(a.ip()))
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves only to internal addresses; only public hosts can be fetched"
                )
                .into();
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn client(ctx: &ToolContext) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let allow_private = ctx.limits.fetch_allow_private;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match check_url(attempt.url(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(format!("redirect refused: {e}")),
        }
    });
    reqwest::Client::builder()
        // OpenClaw ignores proxy variables unless `useTrustedEnvProxy`; a proxy would also
        // bypass the address checks.
        .no_proxy()
        .redirect(policy)
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .connect_timeout(ctx.limits.fetch_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("could not build an HTTP client: {e}"))
}

async fn get(ctx: &ToolContext, url: reqwest::Url) -> Result<Page, String> {
    let client = client(ctx)?;
    let response = client
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "text/html, text/*;q=0.9, */*;q=0.5",
        )
        .send()
        .await
        .map_err(|e| describe(&url, &e))?;
    let status = response.status().as_u16();
    let final_url = response.url().to_string();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let max = ctx.limits.fetch_max_bytes;
    let mut body = Vec::new();
    let mut cut = false;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| describe(&url, &e))?;
        let room = max - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            cut = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Page {
        url: final_url,
        status,
        content_type,
        body,
        cut,
    })
}

/// An error with its causes (reqwest's own message is often just "error sending request").
fn describe(url: &reqwest::Url, e: &reqwest::Error) -> String {
    let mut msg = format!("fetching {url} failed: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

fn render(page: Page, max_chars: usize, max_bytes: usize) -> ToolOutput {
    let ct = page.content_type.to_ascii_lowercase();
    let textual = ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript");
    if !textual {
        return ToolOutput::error(format!(
            "web_fetch: {} is {} ({} bytes), not text",
            page.url,
            page.content_type,
            page.body.len()
        ));
    }
    let raw = String::from_utf8_lossy(&page.body);
    let html = ct.contains("html") || (ct.is_empty() && raw.trim_start().starts_with('<'));
    let text = if html {
        html_to_text(&raw)
    } else {
        raw.into_owned()
    };
    let total_chars = text.chars().count();
    let mut shown: String = text.chars().take(max_chars).collect();
    let mut notes = Vec::new();
    if page.cut {
        notes.push(format!(
            "the body was cut at {} bytes (the size limit)",
            page.body.len()
        ));
    }
    if total_chars > max_chars {
        notes.push(format!(
            "showing {max_chars} of {total_chars} characters ({} more cut)",
            total_chars - max_chars
        ));
    }
    shown = super::cap_text(shown, max_bytes);
    let mut out = format!("URL: {}\nStatus: {}\n\n{shown}", page.url, page.status);
    if !notes.is_empty() {
        out.push_str(&format!("\n\n[{}]", notes.join("; ")));
    }
    if page.status >= 400 {
        ToolOutput::error(out)
    } else {
        ToolOutput::ok(out)
    }
}

/// Crude HTML to text: drop `script`/`style`/`noscript`/`svg` contents and all tags, break
/// lines at block tags, decode common entities, collapse whitespace.
pub(crate) fn html_to_text(html: &str) -> String {
    const SKIP: [&str; 4] = ["script", "style", "noscript", "svg"];
    const BLOCK: [&str; 19] = [
        "p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "title", "section",
        "article", "header", "footer", "pre", "table", "ul",
    ];
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = rest[1..end.saturating_sub(1).max(1)]
                .trim_start_matches('/')
                .split(|c: char| c.is_whitespace() || c == '/' || c == '>')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            i += end;
            if !rest.starts_with("</") && SKIP.contains(&tag.as_str()) {
                let close = format!("</{tag}");
                i = lower[i..].find(&close).map_or(html.len(), |p| {
                    let after = i + p;
                    after
                        + lower[after..]
                            .find('>')
                            .map_or(lower.len() - after, |e| e + 1)
                });
            } else if BLOCK.contains(&tag.as_str()) {
                out.push('\n');
            } else {
                out.push(' ');
            }
            continue;
        }
        let next = rest.find('<').unwrap_or(rest.len());
        out.push_str(&decode_entities(&rest[..next]));
        i += next;
    }
    let mut text = String::new();
    for line in out.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_stripped_to_text() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
                    <h1>Hello &amp; welcome</h1><script>alert('x<y')</script><p>One&nbsp;two \
                    <b>three</b></p><!-- hidden --><ul><li>a&#39;s</li><li>&#x263A;</li></ul></body></html>";
        assert_eq!(
            html_to_text(html),
            "T\nHello & welcome\nOne two three\na's\n\u{263A}\n"
        );
        assert_eq!(decode_entities("a &bogus; b & c"), "a &bogus; b & c");
    }

    #[test]
    fn internal_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_addresses_unless_allowed() {
        use reqwest::dns::Resolve;
        let name = || "localhost".parse::<reqwest::dns::Name>().ok().unwrap();
        let refused = CheckedResolver {
            allow_private: false,
        }
        .resolve(name())
        .await;
        let e = refused.err().unwrap().to_string();
        assert!(e.contains("only to internal addresses"), "{e}");
        let allowed = CheckedResolver {
            allow_private: true,
        }
        .resolve(name())
        .await
        .ok()
        .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn urls_are_checked_for_scheme_and_internal_hosts() {
        let check = |u: &str, allow| check_url(&reqwest::Url::parse(u).unwrap(), allow);
        assert!(
            check("file:///etc/passwd", true)
                .unwrap_err()
                .contains("only http and https")
        );
        assert!(check("ftp://example.com/", true).is_err());
        assert!(
            check("http://127.0.0.1:8080/", false)
                .unwrap_err()
                .contains("internal address")
        );
        assert!(check("http://localhost/", false).is_err());
        assert!(check("http://[::1]/", false).is_err());
        assert!(check("http://127.0.0.1:8080/", true).is_ok());
        assert!(check("https://example.com/", false).is_ok());
    }
}
