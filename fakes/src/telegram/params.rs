//! A Bot API call's parameters, wherever they came from: the query string, then a JSON,
//! `application/x-www-form-urlencoded` or `multipart/form-data` body (body values win).
//! Form and query values arrive as strings; the getters read a number, a boolean or a JSON
//! object from either a typed JSON value or its string form, as the Bot API does.

use serde_json::{Map, Value};

use super::ApiError;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Params(pub(crate) Map<String, Value>);

impl Params {
    /// Reads the parameters of one request. An unreadable body is a 400 in Telegram's shape.
    pub(crate) fn from_request(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Params, ApiError> {
        let mut map = Map::new();
        if let Some(q) = query {
            for (k, v) in parse_urlencoded(q.as_bytes()) {
                map.insert(k, Value::String(v));
            }
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let body_is_blank = body.iter().all(u8::is_ascii_whitespace);
        if body_is_blank {
            return Ok(Params(map));
        }
        if ct.starts_with("application/json") {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => map.extend(obj),
                _ => return Err(ApiError::bad("can't parse JSON object")),
            }
        } else if ct.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in parse_urlencoded(body) {
                map.insert(k, Value::String(v));
            }
        } else if ct.starts_with("multipart/form-data") {
            let boundary = ct_param(content_type.unwrap_or(""), "boundary")
                .ok_or_else(|| ApiError::bad("can't parse multipart/form-data body"))?;
            for (k, v) in parse_multipart(body, &boundary)
                .ok_or_else(|| ApiError::bad("can't parse multipart/form-data body"))?
            {
                map.insert(k, v);
            }
        }
        Ok(Params(map))
    }

    pub(crate) fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| !v.is_null())
    }

    /// A string parameter; numbers and booleans are given in their JSON text.
    pub(crate) fn str(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// An integer parameter, as a JSON number or a decimal string; `Err` if present but not
    /// an integer.
    pub(crate) fn i64(&self, name: &str) -> Result<Option<i64>, ()> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
            Some(_) => Err(()),
        }
    }

    /// A boolean parameter: `true`/`false` as JSON or text (`"1"`/`"0"` too).
    pub(crate) fn bool(&self, name: &str) -> bool {
        match self.0.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1"),
            Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
            _ => false,
        }
    }

    /// A JSON-serialized parameter (`reply_markup`, `reply_parameters`, ...): the value
    /// itself, or the JSON a string holds. `Err` if a string does not hold JSON.
    pub(crate) fn json(&self, name: &str) -> Result<Option<Value>, ()> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s).map(Some).map_err(|_| ()),
            Some(v) => Ok(Some(v.clone())),
        }
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=x%20y` into pairs; a key without `=` gets an empty value.
pub(crate) fn parse_urlencoded(s: &[u8]) -> Vec<(String, String)> {
    s.split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let eq = pair.iter().position(|&c| c == b'=');
            let (k, v) = match eq {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A parameter of a header value: `boundary` of `multipart/form-data; boundary=xyz`.
fn ct_param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The fields of a `multipart/form-data` body: text fields as strings, file fields as
/// `{"filename", "content_type", "size"}` (the bytes are not kept).
fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, Value)>> {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut pos = find(body, delim.as_bytes(), 0)? + delim.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(out);
        }
        pos += 2; // CRLF after the delimiter
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        let content_start = head_end + 4;
        let next = find(body, format!("\r\n{delim}").as_bytes(), content_start)?;
        let content = &body[content_start..next];
        let mut name = None;
        let mut filename = None;
        let mut part_type = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = ct_param(v, "name");
                filename = ct_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(v.trim().to_owned());
            }
        }
        if let Some(name) = name {
            let value = match filename {
                Some(f) => serde_json::json!({
                    "filename": f,
                    "content_type": part_type,
                    "size": content.len(),
                }),
                None => Value::String(String::from_utf8_lossy(content).into_owned()),
            };
            out.push((name, value));
        }
        pos = next + 2 + delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_form_and_json_merge_with_the_body_winning() {
        let p = Params::from_request(
            Some("chat_id=1&text=from%20query"),
            Some("application/json"),
            br#"{"text": "from body", "reply_markup": {"inline_keyboard": []}}"#,
        )
        .unwrap();
        assert_eq!(p.i64("chat_id"), Ok(Some(1)));
        assert_eq!(p.str("text").as_deref(), Some("from body"));
        assert_eq!(
            p.json("reply_markup"),
            Ok(Some(json!({"inline_keyboard": []})))
        );

        let p = Params::from_request(
            None,
            Some("application/x-www-form-urlencoded"),
            b"chat_id=-100123&text=a+b%26c&disable_notification=true&reply_markup=%7B%22a%22%3A1%7D",
        )
        .unwrap();
        assert_eq!(p.i64("chat_id"), Ok(Some(-100123)));
        assert_eq!(p.str("text").as_deref(), Some("a b&c"));
        assert!(p.bool("disable_notification"));
        assert_eq!(p.json("reply_markup"), Ok(Some(json!({"a": 1}))));
        assert_eq!(p.i64("text"), Err(()));
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_refused() {
        let err = Params::from_request(None, Some("application/json"), b"{nope").unwrap_err();
        assert_eq!(err.code, 400);
        assert!(Params::from_request(None, Some("application/json"), b"").is_ok());
    }

    #[test]
    fn multipart_text_and_file_fields() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a.txt\"\r\n\
Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        let p =
            Params::from_request(None, Some("multipart/form-data; boundary=XyZ"), body).unwrap();
        assert_eq!(p.i64("chat_id"), Ok(Some(42)));
        assert_eq!(
            p.0["document"],
            json!({"filename": "a.txt", "content_type": "text/plain", "size": 5})
        );
    }
}
