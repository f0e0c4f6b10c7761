//! A small incremental parser for server-sent events (the WHATWG `text/event-stream`
//! format) over a byte stream that may be split anywhere: inside a line, inside a UTF-8
//! sequence, between the CR and LF of a CRLF.
//!
//! Supported: `event:` and `data:` fields, multi-line data (joined with `\n`), comments
//! (lines starting with `:`), LF / CRLF / CR line endings, a leading byte-order mark, a
//! field without a colon. `id:` and `retry:` are read and ignored (no provider uses them).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `"message"` when the event had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// A line longer than this is refused instead of buffered without bound.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The stream sent a line longer than [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of the line being read (no terminator).
    line: Vec<u8>,
    /// The last byte seen was a CR: an LF right after it belongs to the same terminator.
    after_cr: bool,
    /// The first line has been seen (a byte-order mark is only stripped there).
    first_line_done: bool,
    event: String,
    data: String,
    /// At least one `data` field since the last dispatch.
    has_data: bool,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk; complete events are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), LineTooLong> {
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    if self.line.len() + rest.len() > MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.line.extend_from_slice(rest);
                    break;
                }
                Some(i) => {
                    if self.line.len() + i > MAX_LINE {
                        return Err(LineTooLong);
                    }
                    self.line.extend_from_slice(&rest[..i]);
                    let cr = rest[i] == b'\r';
                    rest = &rest[i + 1..];
                    self.end_line(out);
                    if cr {
                        match rest.first() {
                            None => self.after_cr = true,
                            Some(b'\n') => rest = &rest[1..],
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The byte stream ended. A last line without a terminator is dropped (the stream was
    /// cut inside it); complete `data` lines still waiting for their blank line are
    /// dispatched, since some servers omit the final blank line.
    pub fn finish(&mut self) -> Option<Event> {
        self.line.clear();
        self.after_cr = false;
        self.dispatch()
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        let mut line: &[u8] = &self.line;
        if !self.first_line_done {
            self.first_line_done = true;
            if let Some(stripped) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = stripped;
            }
        }
        if line.is_empty() {
            self.line.clear();
            if let Some(ev) = self.dispatch() {
                out.push(ev);
            }
            return;
        }
        if line[0] == b':' {
            self.line.clear();
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
                self.has_data = true;
            }
            _ => {}
        }
        self.line.clear();
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        Some(Event {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).unwrap();
        }
        out.extend(p.finish());
        out
    }

    fn ev(event: &str, data: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
        }
    }

    /// Parses `input` whole, then split at every single offset and at every pair of
    /// offsets, then byte by byte: always the same events.
    fn assert_split_invariant(input: &[u8], expected: &[Event]) {
        assert_eq!(parse_chunks(&[input]), expected, "whole");
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(parse_chunks(&[a, b]), expected, "split at {i}");
        }
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got = parse_chunks(&[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, expected, "split at {i} and {j}");
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes), expected, "byte by byte");
    }

    #[test]
    fn events_data_comments_and_multiline_at_every_split() {
        let input = b": a comment\n\
            event: message_start\n\
            data: {\"a\":1}\n\
            \n\
            data: line one\n\
            data: line two\n\
            \n\
            :ping\n\
            event:content_block_delta\n\
            data:{\"t\":\"h\xC3\xA9llo\"}\n\
            \n";
        assert_split_invariant(
            input,
            &[
                ev("message_start", "{\"a\":1}"),
                ev("message", "line one\nline two"),
                ev("content_block_delta", "{\"t\":\"h\u{e9}llo\"}"),
            ],
        );
    }

    #[test]
    fn crlf_and_lone_cr_line_endings_at_every_split() {
        let input = b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\rdata: x\r\ndata: y\n\r\n";
        assert_split_invariant(
            input,
            &[ev("a", "1"), ev("message", "2"), ev("message", "x\ny")],
        );
    }

    #[test]
    fn openai_style_stream_at_every_split() {
        let input = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
            data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
            data: [DONE]\n\n";
        assert_split_invariant(
            input,
            &[
                ev(
                    "message",
                    "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}",
                ),
                ev(
                    "message",
                    "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}",
                ),
                ev("message", "[DONE]"),
            ],
        );
    }

    #[test]
    fn value_spaces_empty_data_and_fields_without_colon() {
        // Only one leading space is removed; `data` alone is an empty data line; unknown
        // fields, `id` and `retry` are ignored; an event with no data is not dispatched
        // and its type does not leak into the next one.
        let input = b"data:  two spaces\n\n\
            data\n\n\
            id: 7\nretry: 100\nfoo: bar\n\n\
            event: lonely\n\n\
            data: after\n\n";
        assert_split_invariant(
            input,
            &[
                ev("message", " two spaces"),
                ev("message", ""),
                ev("message", "after"),
            ],
        );
    }

    #[test]
    fn byte_order_mark_is_stripped_once() {
        let input = b"\xEF\xBB\xBFdata: x\n\n";
        assert_split_invariant(input, &[ev("message", "x")]);
        // A BOM later in the stream is not special: the field name is then unknown.
        assert_eq!(
            parse_chunks(&[b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"]),
            vec![ev("message", "a")]
        );
    }

    #[test]
    fn end_of_stream_keeps_complete_lines_and_drops_a_cut_line() {
        // Complete data lines without the final blank line: dispatched at the end.
        assert_eq!(
            parse_chunks(&[b"data: [DONE]\n"]),
            vec![ev("message", "[DONE]")]
        );
        // A line cut before its terminator: dropped, as the spec says.
        assert_eq!(
            parse_chunks(&[b"data: ok\n\ndata: {\"cut"]),
            vec![ev("message", "ok")]
        );
        // A dangling CR at the very end still terminates its line.
        assert_eq!(parse_chunks(&[b"data: z\r"]), vec![ev("message", "z")]);
        assert_eq!(parse_chunks(&[b""]), vec![]);
    }

    #[test]
    fn a_line_beyond_the_limit_is_refused() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        let big = vec![b'a'; MAX_LINE / 2 + 1];
        p.push(&big, &mut out).unwrap();
        assert_eq!(p.push(&big, &mut out), Err(LineTooLong));
        let mut p = Parser::new();
        let mut line = vec![b'a'; MAX_LINE + 1];
        line.push(b'\n');
        assert_eq!(p.push(&line, &mut out), Err(LineTooLong));
    }
}
