//! A small HTTP/1.1 client for delivering updates to a gateway's webhook, the way Telegram
//! does: one `POST` with a JSON body and, when set, `X-Telegram-Bot-Api-Secret-Token`.
//! It only ever connects to 127.0.0.1 (`localhost` included): a fake never reaches out.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where a webhook URL points: the port on 127.0.0.1, the Host header and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) port: u16,
    pub(crate) host: String,
    pub(crate) path: String,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

pub(crate) fn parse_url(url: &str) -> io::Result<Target> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        invalid(format!(
            "webhook url {url:?}: the fake delivers over plain http:// to 127.0.0.1 only"
        ))
    })?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .map_err(|_| invalid(format!("webhook url {url:?}: bad port {p:?}")))?,
        ),
        None => (authority, 80),
    };
    if host != "127.0.0.1" && !host.eq_ignore_ascii_case("localhost") {
        return Err(invalid(format!(
            "webhook url {url:?}: the fake only delivers to 127.0.0.1, not {host:?}"
        )));
    }
    Ok(Target {
        port,
        host: authority.to_owned(),
        path,
    })
}

/// How the response body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a complete chunked body; `None` while more bytes are needed.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(b, b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// POSTs `body` as JSON to `url` with the extra headers; answers the status and body.
pub(crate) async fn post_json(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<(u16, Vec<u8>)> {
    let t = parse_url(url)?;
    let mut stream = TcpStream::connect(("127.0.0.1", t.port)).await?;
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        t.path,
        t.host,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut head: Option<(usize, u16, Framing)> = None;
    loop {
        if head.is_none()
            && let Some(end) = find(&buf, b"\r\n\r\n")
        {
            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = text.split("\r\n");
            let status: u16 = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
            let mut framing = Framing::UntilClose;
            for line in lines {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                if k.trim().eq_ignore_ascii_case("content-length") {
                    framing = Framing::Length(v.trim().parse().unwrap_or(0));
                } else if k.trim().eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
                {
                    framing = Framing::Chunked;
                }
            }
            if status == 204 || status == 304 {
                framing = Framing::Length(0);
            }
            head = Some((end + 4, status, framing));
        }
        if let Some((start, status, framing)) = &head {
            let rest = &buf[*start..];
            match framing {
                Framing::Length(n) if rest.len() >= *n => {
                    return Ok((*status, rest[..*n].to_vec()));
                }
                Framing::Chunked => {
                    if let Some(body) = dechunk(rest) {
                        return Ok((*status, body));
                    }
                }
                _ => {}
            }
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return match head {
                Some((start, status, Framing::UntilClose)) => Ok((status, buf[start..].to_vec())),
                _ => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "webhook closed the connection before a whole response",
                )),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/tg/hook?x=1").unwrap(),
            Target {
                port: 8080,
                host: "127.0.0.1:8080".into(),
                path: "/tg/hook?x=1".into()
            }
        );
        assert_eq!(parse_url("http://localhost").unwrap().path, "/");
        assert_eq!(parse_url("http://localhost").unwrap().port, 80);
        assert!(parse_url("https://127.0.0.1/x").is_err());
        assert!(parse_url("http://10.0.0.1/x").is_err());
        assert!(parse_url("http://example.com/x").is_err());
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"3\r\nab").is_none());
    }
}
