//! Where each key of a JSON5 document is: a small scanner that maps dotted key paths to
//! their line and column and to the byte range of their value. `json5` parses values but
//! keeps no positions, and a config error must name the line.

use std::collections::HashMap;

/// Position of one key and its value in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// 1-based line and column of the key.
    pub line: usize,
    pub col: usize,
    /// Byte range of the value (for in-place edits and redaction).
    pub value_start: usize,
    pub value_end: usize,
}

/// Dotted path (`gateway.auth.token`, arrays as `agents.list.0`) -> span.
pub type Spans = HashMap<String, Span>;

/// Scans `src`; returns what it could map even when the text has syntax errors (those are
/// reported by the real parser).
pub fn scan(src: &str) -> Spans {
    let mut s = Scanner {
        src: src.as_bytes(),
        pos: 0,
        line: 1,
        col: 1,
        spans: HashMap::new(),
    };
    s.skip_ws();
    s.value(String::new());
    s.spans
}

struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    col: usize,
    spans: Spans,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            // Count characters, not UTF-8 continuation bytes.
            self.col += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_whitespace() => {
                    self.bump();
                }
                Some(b'/') if self.src.get(self.pos + 1) == Some(&b'/') => {
                    while let Some(c) = self.bump() {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'/') if self.src.get(self.pos + 1) == Some(&b'*') => {
                    self.bump();
                    self.bump();
                    while self.peek().is_some()
                        && !(self.peek() == Some(b'*') && self.src.get(self.pos + 1) == Some(&b'/'))
                    {
                        self.bump();
                    }
                    self.bump();
                    self.bump();
                }
                // Non-breaking space and BOM, which JSON5 treats as white space.
                Some(0xC2) if self.src.get(self.pos + 1) == Some(&0xA0) => {
                    self.bump();
                    self.bump();
                }
                Some(0xEF) if self.src.get(self.pos + 1..self.pos + 3) == Some(&[0xBB, 0xBF]) => {
                    self.pos += 3;
                }
                _ => return,
            }
        }
    }

    fn string(&mut self) -> String {
        let quote = self.bump().unwrap_or(b'"');
        let start = self.pos;
        let mut out = Vec::new();
        while let Some(c) = self.bump() {
            if c == quote {
                break;
            }
            if c == b'\\' {
                if let Some(e) = self.bump() {
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                continue;
            }
            out.push(c);
        }
        let _ = start;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                self.bump();
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    /// Skips one value, recording the keys inside it under `path`.
    fn value(&mut self, path: String) {
        match self.peek() {
            Some(b'{') => self.object(path),
            Some(b'[') => self.array(path),
            Some(b'"') | Some(b'\'') => {
                self.string();
            }
            Some(_) => {
                // number, literal, or anything else up to a delimiter
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() || c == b'/' {
                        break;
                    }
                    self.bump();
                }
            }
            None => {}
        }
    }

    /// Moves to the next member of an object or array: skips white space and commas;
    /// `false` at the closing `close` (consumed) or at the end of the text.
    fn next_item(&mut self, close: u8) -> bool {
        loop {
            self.skip_ws();
            match self.peek() {
                None => return false,
                Some(c) if c == close => {
                    self.bump();
                    return false;
                }
                Some(b',') => {
                    self.bump();
                }
                _ => return true,
            }
        }
    }

    fn object(&mut self, path: String) {
        self.bump(); // {
        while self.next_item(b'}') {
            let (line, col) = (self.line, self.col);
            let key = match self.peek() {
                Some(b'"') | Some(b'\'') => self.string(),
                _ => {
                    let k = self.ident();
                    if k.is_empty() {
                        // Not a key: skip a character so a broken document cannot loop.
                        self.bump();
                        continue;
                    }
                    k
                }
            };
            self.skip_ws();
            if self.peek() == Some(b':') {
                self.bump();
            }
            self.skip_ws();
            let child = if path.is_empty() {
                key
            } else {
                format!("{path}.{key}")
            };
            let value_start = self.pos;
            self.value(child.clone());
            let value_end = self.pos;
            self.spans.insert(
                child,
                Span {
                    line,
                    col,
                    value_start,
                    value_end,
                },
            );
            self.skip_ws();
        }
    }

    fn array(&mut self, path: String) {
        self.bump(); // [
        let mut index = 0;
        while self.next_item(b']') {
            let (line, col) = (self.line, self.col);
            let child = format!("{path}.{index}");
            let value_start = self.pos;
            let before = self.pos;
            self.value(child.clone());
            if self.pos == before {
                self.bump();
            }
            self.spans.insert(
                child,
                Span {
                    line,
                    col,
                    value_start,
                    value_end: self.pos,
                },
            );
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_to_lines_through_comments_and_quotes() {
        let src = "// Pincer config\n{\n  gateway: {\n    /* the port */ port: 18789,\n    'bind': \"loopback\",\n    auth: { token: \"s3cret\" },\n  },\n  agents: { list: [ { id: 'main' }, {id: \"b\"} ] },\n}\n";
        let spans = scan(src);
        let at = |k: &str| spans.get(k).map(|s| (s.line, s.col));
        assert_eq!(at("gateway"), Some((3, 3)));
        assert_eq!(at("gateway.port"), Some((4, 20)));
        assert_eq!(at("gateway.bind"), Some((5, 5)));
        assert_eq!(at("gateway.auth.token"), Some((6, 13)));
        assert_eq!(at("agents.list.0.id"), Some((8, 23)));
        assert_eq!(at("agents.list.1.id"), Some((8, 38)));
        let token = spans["gateway.auth.token"];
        assert_eq!(&src[token.value_start..token.value_end], "\"s3cret\"");
        let port = spans["gateway.port"];
        assert_eq!(&src[port.value_start..port.value_end], "18789");
    }

    #[test]
    fn survives_broken_documents() {
        for src in [
            "{",
            "{a:",
            "{a: [1, 2",
            "}}}",
            "{'unterminated",
            "{a: 1 /* open",
        ] {
            let _ = scan(src);
        }
        assert_eq!(scan("{a: {b: 1}}")["a.b"].line, 1);
    }
}
