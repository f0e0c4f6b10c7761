//! The Markdown parser behind the renderers in [`super`]. [`parse_blocks`] turns lines
//! into blocks (paragraphs, headings, fenced code, quotes, list items, rules);
//! [`parse_inline`] turns the text of paragraphs, headings and items into inline nodes
//! (strong, emphasis, strike, spoiler, code, links). Pure functions, no output format:
//! what each dialect makes of the nodes is decided in [`super`]. Nothing is dropped: a
//! marker without its partner, or a fence that is never closed, stays literal text.

use std::collections::HashSet;

/// Nested quotes deeper than this are kept as text: bounds the recursion.
const MAX_QUOTE_DEPTH: usize = 8;
/// Inline nesting (emphasis in links in emphasis...) deeper than this is kept as text:
/// bounds the recursion on hostile input such as thousands of unmatched `*a`.
const MAX_INLINE_DEPTH: usize = 8;
/// A link's `[text]` or `(url)` longer than this (bytes) is not looked for: bounds
/// the scans.
const MAX_LINK_TEXT: usize = 4096;

// ---------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Block {
    Blank,
    /// Consecutive text lines, `\n`-joined: emphasis may span them.
    Para(String),
    Heading(String),
    Code {
        lang: String,
        body: String,
    },
    Quote(Vec<Block>),
    Item {
        indent: String,
        marker: Marker,
        text: String,
    },
    Rule,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Marker {
    Bullet,
    Number(String),
}

/// An opening code fence: `indent` spaces, then `len` (>= 3) of `ch`, then the info.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fence<'a> {
    pub(crate) indent: usize,
    pub(crate) ch: char,
    pub(crate) len: usize,
    pub(crate) info: &'a str,
}

/// The fence that `line` opens, if it is one. Any indentation is accepted because LLMs
/// indent fences inside list items.
pub(crate) fn fence_open(line: &str) -> Option<Fence<'_>> {
    let trimmed = line.trim_start_matches([' ', '\t']);
    let ch = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = trimmed[len..].trim();
    if ch == '`' && info.contains('`') {
        return None; // "```a``` text" is inline code, not a fence
    }
    Some(Fence {
        indent: line.len() - trimmed.len(),
        ch,
        len,
        info,
    })
}

/// The index of the line that closes `f`, searching from `from`; None when the fence
/// is never closed (it is then literal text).
pub(crate) fn fence_close(lines: &[&str], from: usize, f: &Fence<'_>) -> Option<usize> {
    (from..lines.len()).find(|&j| {
        let t = lines[j].trim();
        t.chars().count() >= f.len && t.chars().all(|c| c == f.ch)
    })
}

/// The language named by a fence's info string, if it is a plausible name (it ends up in
/// an HTML attribute for Telegram).
fn fence_lang(info: &str) -> String {
    let word = info.split_whitespace().next().unwrap_or("");
    let plausible = word.len() <= 32
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-#._".contains(c));
    if plausible {
        word.to_owned()
    } else {
        String::new()
    }
}

pub(super) fn parse_blocks(lines: &[&str], depth: usize) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            blocks.push(Block::Blank);
            i += 1;
        } else if let Some(f) = fence_open(line)
            && let Some(close) = fence_close(lines, i + 1, &f)
        {
            let body: Vec<&str> = lines[i + 1..close]
                .iter()
                .map(|l| strip_indent(l, f.indent))
                .collect();
            blocks.push(Block::Code {
                lang: fence_lang(f.info),
                body: body.join("\n"),
            });
            i = close + 1;
        } else if is_rule(line) {
            blocks.push(Block::Rule);
            i += 1;
        } else if let Some((_, text)) = heading(line) {
            blocks.push(Block::Heading(text.to_owned()));
            i += 1;
        } else if depth < MAX_QUOTE_DEPTH && quote_content(line).is_some() {
            let mut inner = Vec::new();
            while let Some(content) = lines.get(i).and_then(|l| quote_content(l)) {
                inner.push(content);
                i += 1;
            }
            blocks.push(Block::Quote(parse_blocks(&inner, depth + 1)));
        } else if let Some(item) = list_item(line) {
            blocks.push(item);
            i += 1;
        } else {
            let start = i;
            i += 1;
            while i < lines.len() && !starts_block(lines, i, depth) {
                i += 1;
            }
            blocks.push(Block::Para(lines[start..i].join("\n")));
        }
    }
    blocks
}

/// Whether line `i` ends a paragraph by starting another block.
fn starts_block(lines: &[&str], i: usize, depth: usize) -> bool {
    let line = lines[i];
    line.trim().is_empty()
        || fence_open(line).is_some_and(|f| fence_close(lines, i + 1, &f).is_some())
        || is_rule(line)
        || heading(line).is_some()
        || (depth < MAX_QUOTE_DEPTH && quote_content(line).is_some())
        || list_item(line).is_some()
}

/// Removes up to `n` leading spaces: code inside an indented fence keeps its own
/// indentation relative to the fence.
fn strip_indent(line: &str, n: usize) -> &str {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    &line[spaces.min(n)..]
}

/// Leading spaces, if there are at most three (CommonMark's limit for block markers).
fn block_indent(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    (line.len() - rest.len() <= 3).then_some(rest)
}

/// `---`, `***`, `___` (spaces allowed between).
fn is_rule(line: &str) -> bool {
    let Some(rest) = block_indent(line) else {
        return false;
    };
    let marks: Vec<char> = rest.chars().filter(|c| !matches!(c, ' ' | '\t')).collect();
    marks.len() >= 3 && matches!(marks[0], '-' | '*' | '_') && marks.iter().all(|c| *c == marks[0])
}

/// An ATX heading: level and text, the optional closing `#`s removed.
pub(super) fn heading(line: &str) -> Option<(usize, &str)> {
    let rest = block_indent(line)?;
    let level = rest.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None; // "#hashtag"
    }
    let text = after.trim();
    let without_closing = text.trim_end_matches('#');
    let text = if without_closing.is_empty() {
        ""
    } else if without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        text
    };
    Some((level, text))
}

/// The content of a `>` quote line, without the marker and one following space.
fn quote_content(line: &str) -> Option<&str> {
    let rest = block_indent(line)?.strip_prefix('>')?;
    Some(rest.strip_prefix([' ', '\t']).unwrap_or(rest))
}

/// `- x`, `* x`, `+ x`, `1. x`, `1) x`, any indentation (nesting is kept as typed).
fn list_item(line: &str) -> Option<Block> {
    let rest = line.trim_start_matches([' ', '\t']);
    let indent = line[..line.len() - rest.len()].to_owned();
    let bullet = rest.starts_with(['-', '*', '+']);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (marker, after) = if bullet {
        (Marker::Bullet, &rest[1..])
    } else if (1..=9).contains(&digits) && rest[digits..].starts_with(['.', ')']) {
        (
            Marker::Number(rest[..digits].to_owned()),
            &rest[digits + 1..],
        )
    } else {
        return None;
    };
    if !after.starts_with([' ', '\t']) {
        return None; // "**bold**", "-5", "3.14"
    }
    Some(Block::Item {
        indent,
        marker,
        text: after.trim().to_owned(),
    })
}

// ---------------------------------------------------------------------------------------
// Inline
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Inline {
    Text(String),
    Code(String),
    Span(Style, Vec<Inline>),
    Link { text: Vec<Inline>, url: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Strong,
    Em,
    Strike,
    Spoiler,
}

pub(super) fn parse_inline(s: &str) -> Vec<Inline> {
    let mut p = InlineParser::new(s);
    p.run(0, s.len(), None, 0)
        .map(|(nodes, _)| nodes)
        .unwrap_or_default()
}

/// A recursive-descent inline parser: an opening delimiter run looks ahead for its
/// closer; when there is none the marker is literal. Failed look-aheads are remembered,
/// and every look-ahead draws on a work budget proportional to the input: once it is
/// spent (thousands of unmatched `*a`, `[[[[`), look-aheads fail and the rest of the
/// text is still emitted, its markers literal. Hostile input costs O(n), not O(n²).
struct InlineParser<'a> {
    s: &'a str,
    /// (from, end, delimiter, width, depth) searches that found no closer.
    failed: HashSet<(usize, usize, u8, usize, usize)>,
    budget: usize,
}

impl<'a> InlineParser<'a> {
    fn new(s: &'a str) -> Self {
        let budget = 64 * s.len() + 4096;
        let failed = HashSet::new();
        InlineParser { s, failed, budget }
    }

    /// Takes `n` from the budget; false once it is spent.
    fn spend(&mut self, n: usize) -> bool {
        self.budget = self.budget.saturating_sub(n);
        self.budget > 0
    }
}

fn flush_text(text: &mut String, out: &mut Vec<Inline>) {
    if !text.is_empty() {
        out.push(Inline::Text(std::mem::take(text)));
    }
}

fn is_special(b: u8) -> bool {
    matches!(
        b,
        b'\\' | b'`' | b'[' | b'!' | b'<' | b'*' | b'_' | b'~' | b'|'
    )
}

fn run_len(b: &[u8], pos: usize, end: usize, c: u8) -> usize {
    b[pos..end].iter().take_while(|x| **x == c).count()
}

impl InlineParser<'_> {
    /// Parses `from..end`. With `stop`, succeeds only on reaching a closing run of that
    /// delimiter and width, returning the nodes before it and the position after it.
    fn run(
        &mut self,
        from: usize,
        end: usize,
        stop: Option<(u8, usize)>,
        depth: usize,
    ) -> Option<(Vec<Inline>, usize)> {
        let s = self.s;
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut text = String::new();
        let mut pos = from;
        while pos < end {
            if !self.spend(1) && stop.is_some() {
                return None;
            }
            let c = b[pos];
            match c {
                b'\\' if pos + 1 < end && b[pos + 1].is_ascii_punctuation() => {
                    text.push(char::from(b[pos + 1]));
                    pos += 2;
                }
                b'`' => {
                    let n = run_len(b, pos, end, b'`');
                    let close = (self.budget > 0)
                        .then(|| code_close(b, pos + n, end, n))
                        .flatten();
                    self.spend(close.map_or(end, |c| c + n) - pos);
                    if let Some(close) = close {
                        flush_text(&mut text, &mut out);
                        out.push(Inline::Code(code_content(&s[pos + n..close])));
                        pos = close + n;
                    } else {
                        text.push_str(&s[pos..pos + n]);
                        pos += n;
                    }
                }
                b'[' | b'!' => {
                    let at = if c == b'!' { pos + 1 } else { pos };
                    let link = (at < end && b[at] == b'[')
                        .then(|| self.link(at, end, depth))
                        .flatten();
                    if let Some((node, after)) = link {
                        flush_text(&mut text, &mut out);
                        out.push(node);
                        pos = after;
                    } else {
                        text.push(char::from(c));
                        pos += 1;
                    }
                }
                b'<' => {
                    if let Some((url, after)) = autolink(s, pos, end) {
                        flush_text(&mut text, &mut out);
                        let label = vec![Inline::Text(url.clone())];
                        out.push(Inline::Link { text: label, url });
                        pos = after;
                    } else {
                        text.push('<');
                        pos += 1;
                    }
                }
                b'*' | b'_' | b'~' | b'|' => {
                    let n = run_len(b, pos, end, c);
                    let paired_only = matches!(c, b'~' | b'|');
                    if paired_only && n != 2 {
                        text.push_str(&s[pos..pos + n]);
                        pos += n;
                        continue;
                    }
                    let (can_open, can_close) = flanking(s, pos, pos + n, c);
                    if let Some((sc, k)) = stop
                        && sc == c
                        && can_close
                        && n >= k
                    {
                        flush_text(&mut text, &mut out);
                        return Some((out, pos + k));
                    }
                    if can_open && depth < MAX_INLINE_DEPTH {
                        let widths: &[usize] = match n {
                            _ if paired_only => &[2],
                            1 => &[1],
                            _ => &[2, 1],
                        };
                        let found = widths.iter().find_map(|&k| {
                            self.delimited(pos + k, end, c, k, depth + 1)
                                .map(|(inner, after)| (wrap(c, k, inner), after))
                        });
                        if let Some((node, after)) = found {
                            flush_text(&mut text, &mut out);
                            out.push(node);
                            pos = after;
                            continue;
                        }
                    }
                    let literal = if paired_only { 2 } else { 1 };
                    text.push_str(&s[pos..pos + literal]);
                    pos += literal;
                }
                _ => {
                    let next = (pos + 1..end).find(|&i| is_special(b[i])).unwrap_or(end);
                    text.push_str(&s[pos..next]);
                    pos = next;
                }
            }
        }
        if stop.is_some() {
            return None;
        }
        flush_text(&mut text, &mut out);
        Some((out, pos))
    }

    /// The content of a delimiter of `c` × `k` opened just before `from`, if it closes
    /// and is not empty.
    fn delimited(
        &mut self,
        from: usize,
        end: usize,
        c: u8,
        k: usize,
        depth: usize,
    ) -> Option<(Vec<Inline>, usize)> {
        let key = (from, end, c, k, depth);
        if self.budget == 0 || self.failed.contains(&key) {
            return None;
        }
        match self.run(from, end, Some((c, k)), depth) {
            Some((inner, after)) if !inner.is_empty() => Some((inner, after)),
            _ => {
                self.failed.insert(key);
                None
            }
        }
    }

    /// `[text](url)` starting at the `[` at `at`.
    fn link(&mut self, at: usize, end: usize, depth: usize) -> Option<(Inline, usize)> {
        if depth >= MAX_INLINE_DEPTH || self.budget == 0 {
            return None;
        }
        let b = self.s.as_bytes();
        let scan_end = end.min(at + MAX_LINK_TEXT);
        let close = bracket_close(b, at, scan_end);
        self.spend(close.unwrap_or(scan_end) - at);
        let close = close?;
        if close + 1 >= end || b[close + 1] != b'(' {
            return None;
        }
        let dest_end = end.min(close + 2 + MAX_LINK_TEXT);
        let dest = destination(self.s, close + 2, dest_end);
        self.spend(dest.as_ref().map_or(dest_end, |d| d.1) - close);
        let (url, after) = dest?;
        let (text, _) = self.run(at + 1, close, None, depth + 1)?;
        Some((Inline::Link { text, url }, after))
    }
}

fn wrap(c: u8, k: usize, inner: Vec<Inline>) -> Inline {
    let style = match (c, k) {
        (b'~', _) => Style::Strike,
        (b'|', _) => Style::Spoiler,
        (_, 2) => Style::Strong,
        _ => Style::Em,
    };
    Inline::Span(style, inner)
}

/// Whether a delimiter run `start..end` of `c` may open and may close emphasis, by
/// CommonMark's flanking rules; `_` additionally may not open or close inside a word.
fn flanking(s: &str, start: usize, end: usize, c: u8) -> (bool, bool) {
    let prev = s[..start].chars().next_back();
    let next = s[end..].chars().next();
    let ws = |ch: Option<char>| ch.is_none_or(char::is_whitespace);
    let punct =
        |ch: Option<char>| ch.is_some_and(|ch| !ch.is_alphanumeric() && !ch.is_whitespace());
    let left = !ws(next) && (!punct(next) || ws(prev) || punct(prev));
    let right = !ws(prev) && (!punct(prev) || ws(next) || punct(next));
    if c == b'_' {
        (
            left && (!right || punct(prev)),
            right && (!left || punct(next)),
        )
    } else {
        (left, right)
    }
}

/// The start of the next backtick run of exactly `n` in `from..end`.
fn code_close(b: &[u8], from: usize, end: usize, n: usize) -> Option<usize> {
    let mut i = from;
    while i < end {
        if b[i] == b'`' {
            let m = run_len(b, i, end, b'`');
            if m == n {
                return Some(i);
            }
            i += m;
        } else {
            i += 1;
        }
    }
    None
}

/// CommonMark code span content: line breaks become spaces, and one space is stripped
/// from each side when both are present (so `` ` `x` ` `` can show backticks).
fn code_content(raw: &str) -> String {
    let s = raw.replace('\n', " ");
    if s.len() >= 2 && s.starts_with(' ') && s.ends_with(' ') && !s.trim().is_empty() {
        s[1..s.len() - 1].to_owned()
    } else {
        s
    }
}

/// The `]` matching the `[` at `at`, skipping escapes and code spans.
fn bracket_close(b: &[u8], at: usize, end: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    while i < end {
        match b[i] {
            b'\\' => i += 1,
            b'`' => {
                let n = run_len(b, i, end, b'`');
                if let Some(close) = code_close(b, i + n, end, n) {
                    i = close + n;
                    continue;
                }
                i += n;
                continue;
            }
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A link destination and optional title after `](`, up to the closing `)`. Balanced
/// parentheses belong to the URL (`.../Rust_(language)`).
fn destination(s: &str, from: usize, end: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < end && matches!(b[i], b' ' | b'\t' | b'\n') {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(from);
    let url = if i < end && b[i] == b'<' {
        let close = (i + 1..end).find(|&j| matches!(b[j], b'>' | b'<' | b'\n'))?;
        if b[close] != b'>' {
            return None;
        }
        let url = s[i + 1..close].replace(' ', "%20");
        i = close + 1;
        url
    } else {
        let start = i;
        let mut parens = 0usize;
        while i < end {
            match b[i] {
                b'(' => parens += 1,
                b')' if parens == 0 => break,
                b')' => parens -= 1,
                b'\\' if i + 1 < end && b[i + 1].is_ascii_punctuation() => i += 1,
                c if c.is_ascii_whitespace() => break,
                c if c.is_ascii_control() => return None,
                _ => {}
            }
            i += 1;
        }
        s[start..i].to_owned()
    };
    i = skip_ws(i);
    if i < end && matches!(b[i], b'"' | b'\'') {
        let q = b[i];
        i = (i + 1..end).find(|&j| b[j] == q)? + 1;
        i = skip_ws(i);
    }
    (i < end && b[i] == b')').then_some((url, i + 1))
}

/// `<scheme:...>` at `pos`.
fn autolink(s: &str, pos: usize, end: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let close =
        (pos + 1..end).find(|&j| matches!(b[j], b'>' | b'<') || b[j].is_ascii_whitespace())?;
    if b[close] != b'>' {
        return None;
    }
    let url = &s[pos + 1..close];
    let (scheme, rest) = url.split_once(':')?;
    let scheme_ok = (2..=32).contains(&scheme.len())
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    (scheme_ok && !rest.is_empty()).then(|| (url.to_owned(), close + 1))
}
