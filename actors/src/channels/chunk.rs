//! Splits a rendered reply into messages that fit a platform's size limit, each of which
//! renders correctly on its own. Pure functions; the channel actors call [`chunk_for`]
//! on the output of [`super::format::render`].
//!
//! Where a message is cut, in order of preference: a blank line (paragraph), a line
//! break, a sentence end (`. `, `! `, `? `, or `。！？`), a space, and only then anywhere
//! (never inside a character, an HTML tag or an HTML entity). Within the best kind of
//! cut available, the last one that fits is taken, so messages are as full as they can
//! be without breaking anything better.
//!
//! Code blocks (```` ``` ```` fences, Telegram's `<pre>`), inline `<code>` and links
//! `<a>` are kept whole when they fit in one message. A longer one is cut inside, and
//! the cut closes what is open and reopens it in the next message: a fence gets its
//! closing ```` ``` ```` and is re-fenced with its language; HTML gets closing tags and
//! the same opening tags (attributes included) again.
//!
//! Lengths: [`chunk`] counts `char`s (Discord, Slack and Twilio count characters).
//! [`chunk_html`] counts UTF-16 code units of the markup, tags and entities included:
//! Telegram counts UTF-16 units of the text *after* removing tags and decoding
//! entities, which is never more, so a chunk under the limit this way is always under
//! Telegram's. Markup-heavy replies make a few more messages than strictly needed, which
//! is the price of never having one refused. Callers wanting a further safety margin
//! pass a smaller limit.

use super::format::{Platform, fence_close, fence_open, limit, normalize_newlines};

/// Splits Markdown-like text (Discord, Slack, SMS) into pieces of at most `limit`
/// characters. Empty input gives no pieces; whitespace-only pieces are dropped. A limit
/// of 0 is taken as 1.
pub fn chunk(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let src = normalize_newlines(text);
    let toks = markdown_tokens(&src, limit);
    Packer::new(&src, toks, Measure::Chars, limit).pack()
}

/// Splits Telegram HTML into pieces of at most `limit` UTF-16 units of markup, never
/// leaving a tag open: tags open at a cut are closed at the end of the piece and
/// reopened at the start of the next. A limit too small for the tags open at some point
/// plus one character cannot be honoured; pieces there may exceed it rather than lose
/// text or loop.
pub fn chunk_html(html: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let src = normalize_newlines(html);
    let toks = html_tokens(&src);
    Packer::new(&src, toks, Measure::Utf16, limit).pack()
}

/// A rendered reply cut for platform `p`: Telegram HTML by [`chunk_html`], the others
/// by [`chunk`] at the platform's [`limit`]. The web UI has none: one message, as is.
pub fn chunk_for(p: Platform, rendered: &str) -> Vec<String> {
    match p {
        Platform::Telegram => chunk_html(rendered, limit(p)),
        Platform::Web if rendered.trim().is_empty() => Vec::new(),
        Platform::Web => vec![rendered.to_owned()],
        _ => chunk(rendered, limit(p)),
    }
}

/// How a platform counts a message's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Chars,
    Utf16,
}

impl Measure {
    fn of(self, s: &str) -> usize {
        match self {
            Measure::Chars => s.chars().count(),
            Measure::Utf16 => s.encode_utf16().count(),
        }
    }
}

/// Something that is open at a point of the text and must be closed at a cut and
/// reopened after it: an HTML element or a code fence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    name: String,
    reopen: String,
    close: String,
    /// Kept whole when it fits in one piece.
    atom: bool,
    /// Starts a block: cutting just before it is as good as at a line break.
    block: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// One character of text.
    Char(char),
    /// Visible text that must not be cut (an HTML entity, a void tag).
    Opaque,
    Open(Frame),
    Close {
        name: String,
        block: bool,
    },
}

/// A piece of the source: `start..end` bytes, costing `cost` units.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tok {
    start: usize,
    end: usize,
    cost: usize,
    kind: Kind,
}

/// Where a cut is made, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Paragraph = 0,
    Line = 1,
    Sentence = 2,
    Word = 3,
    Hard = 4,
}

fn is_ws_tok(t: &Tok) -> bool {
    matches!(t.kind, Kind::Char(c) if c.is_whitespace())
}

/// Markdown as characters, with each closed code fence as an open/close pair. A fence
/// whose own lines leave no room in `limit` stays plain text (it could not be re-fenced),
/// as does a fence that is never closed.
fn markdown_tokens(src: &str, limit: usize) -> Vec<Tok> {
    let lines: Vec<&str> = src.split('\n').collect();
    let offsets: Vec<usize> = lines
        .iter()
        .scan(0usize, |at, l| {
            let start = *at;
            *at += l.len() + 1;
            Some(start)
        })
        .collect();
    // Byte ranges of fence markers (the line without its indentation), as tokens.
    let mut marks: Vec<(usize, usize, Kind)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(f) = fence_open(lines[i])
            && let Some(close) = fence_close(&lines, i + 1, &f)
        {
            let open_text = lines[i].trim();
            let close_text = lines[close].trim();
            let marker: String = std::iter::repeat_n(f.ch, f.len).collect();
            let frame = Frame {
                name: "fence".to_owned(),
                reopen: format!("{open_text}\n"),
                close: format!("\n{marker}"),
                atom: true,
                block: true,
            };
            let overhead = frame.reopen.chars().count() + frame.close.chars().count();
            if overhead < limit {
                let at = offsets[i] + (lines[i].len() - lines[i].trim_start().len());
                marks.push((at, at + open_text.len(), Kind::Open(frame)));
                let at = offsets[close] + (lines[close].len() - lines[close].trim_start().len());
                let kind = Kind::Close {
                    name: "fence".to_owned(),
                    block: true,
                };
                marks.push((at, at + close_text.len(), kind));
            }
            i = close + 1;
        } else {
            i += 1;
        }
    }
    let mut toks = Vec::with_capacity(src.len());
    let mut marks = marks.into_iter().peekable();
    let mut chars = src.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if let Some((start, end, _)) = marks.peek()
            && *start == at
        {
            let end = *end;
            if let Some((start, _, kind)) = marks.next() {
                let cost = src[start..end].chars().count();
                toks.push(Tok {
                    start,
                    end,
                    cost,
                    kind,
                });
            }
            while chars.peek().is_some_and(|&(i, _)| i < end) {
                chars.next();
            }
            continue;
        }
        toks.push(Tok {
            start: at,
            end: at + c.len_utf8(),
            cost: 1,
            kind: Kind::Char(c),
        });
        chars.next();
    }
    toks
}

/// Telegram HTML as characters, entities and tags. Text that only looks like markup (a
/// `<` that starts no tag) is kept as characters.
fn html_tokens(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut toks = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let (end, kind) = match b[i] {
            b'<' => html_tag(src, i),
            b'&' => html_entity(src, i).map(|end| (end, Kind::Opaque)),
            _ => None,
        }
        .unwrap_or_else(|| {
            let c = src[i..].chars().next().unwrap_or('\u{fffd}');
            (i + c.len_utf8(), Kind::Char(c))
        });
        let end = end.min(src.len());
        toks.push(Tok {
            start: i,
            end,
            cost: Measure::Utf16.of(&src[i..end]),
            kind,
        });
        i = end;
    }
    toks
}

/// The tag starting at the `<` at `i`: `<name ...>`, `</name>` or `<name/>`.
fn html_tag(src: &str, i: usize) -> Option<(usize, Kind)> {
    let b = src.as_bytes();
    let closing = b.get(i + 1) == Some(&b'/');
    let name_at = (i + 1 + usize::from(closing)).min(b.len());
    let name_len = b[name_at..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
        .count();
    if name_len == 0 || !b[name_at].is_ascii_alphabetic() {
        return None;
    }
    let mut quote = None;
    let mut j = name_at + name_len;
    while j < b.len() {
        match (quote, b[j]) {
            (None, b'>') => break,
            (None, b'<') => return None,
            (None, q @ (b'"' | b'\'')) => quote = Some(q),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        j += 1;
    }
    if j >= b.len() {
        return None;
    }
    let end = j + 1;
    let name = src[name_at..name_at + name_len].to_ascii_lowercase();
    let block = matches!(name.as_str(), "pre" | "blockquote");
    let kind = if closing {
        Kind::Close { name, block }
    } else if b[j - 1] == b'/' {
        Kind::Opaque
    } else {
        Kind::Open(Frame {
            close: format!("</{name}>"),
            reopen: src[i..end].to_owned(),
            atom: matches!(name.as_str(), "pre" | "code" | "a"),
            block,
            name,
        })
    };
    Some((end, kind))
}

/// The end of the entity (`&amp;`, `&#128512;`) starting at `i`.
fn html_entity(src: &str, i: usize) -> Option<usize> {
    let b = src.as_bytes();
    let body = (i + 1 + usize::from(b.get(i + 1) == Some(&b'#'))).min(b.len());
    let len = b[body..]
        .iter()
        .take(32)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    (len > 0 && b.get(body + len) == Some(&b';')).then_some(body + len + 1)
}

/// Greedy packing of tokens into pieces. Everything it needs about a point of the text
/// is precomputed: what is open there costs the same wherever a piece starts, because
/// every piece reopens all of it.
struct Packer<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    limit: usize,
    /// `prefix[j]`: cost of tokens `..j`.
    prefix: Vec<usize>,
    /// Cost of reopening, and of closing, what is open just before token `j`.
    open_cost: Vec<usize>,
    close_cost: Vec<usize>,
    /// Cutting just before token `j` would split an atom that fits in one piece.
    in_atom: Vec<bool>,
}

impl<'a> Packer<'a> {
    fn new(src: &'a str, toks: Vec<Tok>, measure: Measure, limit: usize) -> Self {
        let n = toks.len();
        let mut prefix = Vec::with_capacity(n + 1);
        let mut open_cost = Vec::with_capacity(n + 1);
        let mut close_cost = Vec::with_capacity(n + 1);
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let (mut total, mut open, mut close) = (0usize, 0usize, 0usize);
        for (j, t) in toks.iter().enumerate() {
            prefix.push(total);
            open_cost.push(open);
            close_cost.push(close);
            total += t.cost;
            match &t.kind {
                Kind::Open(f) => {
                    stack.push(j);
                    open += measure.of(&f.reopen);
                    close += measure.of(&f.close);
                }
                Kind::Close { name, .. } => {
                    for o in pop_to(&toks, &mut stack, name) {
                        if let Kind::Open(f) = &toks[o].kind {
                            open -= measure.of(&f.reopen);
                            close -= measure.of(&f.close);
                            pairs.push((o, j));
                        }
                    }
                }
                _ => {}
            }
        }
        prefix.push(total);
        open_cost.push(open);
        close_cost.push(close);
        let mut in_atom = vec![false; n + 1];
        for (o, c) in pairs {
            let atom = matches!(&toks[o].kind, Kind::Open(f) if f.atom);
            let whole = open_cost[o] + prefix[c + 1] - prefix[o] + close_cost[c + 1];
            if atom && whole <= limit {
                in_atom[o + 1..=c].iter_mut().for_each(|x| *x = true);
            }
        }
        Packer {
            src,
            toks,
            limit,
            prefix,
            open_cost,
            close_cost,
            in_atom,
        }
    }

    /// Cost of a piece made of tokens `i..j`, reopening and closing included.
    fn cost(&self, i: usize, j: usize) -> usize {
        self.open_cost[i] + self.prefix[j] - self.prefix[i] + self.close_cost[j]
    }

    fn pack(&self) -> Vec<String> {
        let n = self.toks.len();
        let mut pieces = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut i = 0;
        loop {
            i = self.skip_leading(i, &mut stack);
            if i >= n {
                break;
            }
            let j = if self.cost(i, n) <= self.limit {
                n
            } else {
                self.best_cut(i)
            };
            if let Some(piece) = self.emit(i, j, &mut stack) {
                pieces.push(piece);
            }
            i = j;
        }
        pieces
    }

    /// Skips the whitespace a cut leaves at the start of a piece (keeping the
    /// indentation of its first line) and closing tags of elements that would otherwise
    /// be reopened only to be closed at once.
    fn skip_leading(&self, mut i: usize, stack: &mut Vec<usize>) -> usize {
        loop {
            let mut k = i;
            let mut after_newline = None;
            while k < self.toks.len() && is_ws_tok(&self.toks[k]) {
                if self.toks[k].kind == Kind::Char('\n') {
                    after_newline = Some(k + 1);
                }
                k += 1;
            }
            let closes_top = match (self.toks.get(k).map(|t| &t.kind), stack.last()) {
                (Some(Kind::Close { name, .. }), Some(&top)) => {
                    matches!(&self.toks[top].kind, Kind::Open(f) if &f.name == name)
                }
                _ => false,
            };
            if closes_top {
                stack.pop();
                i = k + 1;
                continue;
            }
            return if k >= self.toks.len() {
                k
            } else {
                after_newline.unwrap_or(k)
            };
        }
    }

    /// Where to end the piece starting at `i`: the best kind of cut that fits, the last
    /// of its kind. When nothing fits (a limit below the open tags' cost), one token, so
    /// that packing always advances.
    fn best_cut(&self, i: usize) -> usize {
        let mut best: [Option<usize>; 5] = [None; 5];
        let mut j = i + 1;
        while j < self.toks.len()
            && self.open_cost[i] + self.prefix[j] - self.prefix[i] <= self.limit
        {
            if !self.in_atom[j] && self.cost(i, j) <= self.limit {
                best[self.level(j) as usize] = Some(j);
            }
            j += 1;
        }
        best.iter().find_map(|b| *b).unwrap_or(i + 1)
    }

    /// How good a cut just before token `j` is.
    fn level(&self, j: usize) -> Level {
        let prev = j.checked_sub(1).map(|p| &self.toks[p].kind);
        match &self.toks[j].kind {
            Kind::Char('\n') if self.blank_line_follows(j) => Level::Paragraph,
            Kind::Char('\n') => Level::Line,
            Kind::Char(c) if c.is_whitespace() => match prev {
                Some(Kind::Char('.' | '!' | '?' | '…')) => Level::Sentence,
                _ => Level::Word,
            },
            Kind::Open(f) if f.block => Level::Line,
            _ => match prev {
                Some(Kind::Close { block: true, .. }) => Level::Line,
                Some(Kind::Char('。' | '！' | '？')) => Level::Sentence,
                _ => Level::Hard,
            },
        }
    }

    /// Whether the line after the newline at `j` is blank.
    fn blank_line_follows(&self, j: usize) -> bool {
        self.toks[j + 1..]
            .iter()
            .take_while(|t| is_ws_tok(t))
            .any(|t| t.kind == Kind::Char('\n'))
    }

    /// The piece made of tokens `i..j`: reopened frames, the source, trailing
    /// whitespace and just-opened frames removed, then the closing of what is open.
    /// Updates `stack` to what is open at `j`. None when it has no visible text.
    fn emit(&self, i: usize, j: usize, stack: &mut Vec<usize>) -> Option<String> {
        let mut s = String::new();
        // (open token, where its opening starts and ends in `s`)
        let mut open: Vec<(usize, usize, usize)> = Vec::new();
        for &o in stack.iter() {
            if let Kind::Open(f) = &self.toks[o].kind {
                let at = s.len();
                s.push_str(&f.reopen);
                open.push((o, at, s.len()));
            }
        }
        let mut visible = false;
        for (k, t) in self.toks[i..j].iter().enumerate() {
            let at = s.len();
            s.push_str(&self.src[t.start..t.end]);
            match &t.kind {
                Kind::Open(_) => {
                    stack.push(i + k);
                    open.push((i + k, at, s.len()));
                }
                Kind::Close { name, .. } => {
                    for o in pop_to(&self.toks, stack, name) {
                        open.retain(|e| e.0 != o);
                    }
                }
                Kind::Char(c) => visible |= !c.is_whitespace(),
                Kind::Opaque => visible = true,
            }
        }
        loop {
            s.truncate(s.trim_end().len());
            match open.last() {
                Some(&(_, at, end)) if end == s.len() => {
                    s.truncate(at);
                    open.pop();
                }
                _ => break,
            }
        }
        for &(o, _, _) in open.iter().rev() {
            if let Kind::Open(f) = &self.toks[o].kind {
                s.push_str(&f.close);
            }
        }
        visible.then_some(s)
    }
}

/// Closes `name`: pops the stack down to its innermost open token of that name (closing
/// what is inside it too), returning the popped tokens. A close with no open is ignored.
fn pop_to(toks: &[Tok], stack: &mut Vec<usize>, name: &str) -> Vec<usize> {
    let is_named = |o: &usize| matches!(&toks[*o].kind, Kind::Open(f) if f.name == name);
    match stack.iter().rposition(is_named) {
        Some(at) => stack.split_off(at),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so property tests need no crate and
    /// fail the same way every time.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len())]
        }
    }

    const WORDS: &[&str] = &[
        "the",
        "agent",
        "replied",
        "snake_case",
        "ünïcode",
        "🦀",
        "日本語",
        "a<b",
        "x&y",
        "supercalifragilisticexpialidocious",
        "é",
        "👍🏽",
        "ok",
    ];

    fn prose(g: &mut Gen, words: usize) -> String {
        let mut s = String::new();
        for w in 0..words {
            if w > 0 {
                s.push_str(g.pick(&[" ", " ", " ", ". ", "! ", "? ", "\n", "\n\n", ", "]));
            }
            s.push_str(g.pick(WORDS));
        }
        s
    }

    /// Prose and code blocks; also returns each code block, from its fence on.
    fn markdown(g: &mut Gen) -> (String, Vec<String>) {
        let mut s = String::new();
        let mut blocks = Vec::new();
        for _ in 0..1 + g.below(6) {
            if g.below(3) == 0 {
                let block_start = s.len();
                let lines = 1 + g.below(12);
                s.push_str(g.pick(&["```rs\n", "```\n", "  ```py\n"]));
                for _ in 0..lines {
                    let indent = g.below(3);
                    s.push_str(&"    ".repeat(indent));
                    let words = 1 + g.below(8);
                    s.push_str(&prose(g, words).replace('\n', " "));
                    s.push('\n');
                }
                s.push_str("```\n");
                blocks.push(s[block_start..].trim().to_owned());
            } else {
                let words = 1 + g.below(60);
                s.push_str(&prose(g, words));
                s.push('\n');
            }
        }
        (s, blocks)
    }

    fn squash(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    /// The text without fence lines: what re-fencing must preserve.
    fn unfenced(s: &str) -> String {
        let lines: Vec<&str> = s
            .lines()
            .filter(|l| !l.trim_start().starts_with("```"))
            .collect();
        squash(&lines.join("\n"))
    }

    #[test]
    fn chunk_cases() {
        let cases: &[(&str, usize, &[&str])] = &[
            ("", 10, &[]),
            ("   \n\n  ", 10, &[]),
            ("short", 10, &["short"]),
            ("one two three", 8, &["one two", "three"]),
            ("para one\n\npara two", 15, &["para one", "para two"]),
            ("line a\nline b\n\nc", 14, &["line a\nline b", "c"]),
            ("aa bb\ncc dd", 8, &["aa bb", "cc dd"]),
            ("First one. Second one", 15, &["First one.", "Second one"]),
            ("Wow! Yes? No.", 6, &["Wow!", "Yes?", "No."]),
            ("abcdefghij", 4, &["abcd", "efgh", "ij"]),
            ("🦀🦀🦀🦀🦀", 2, &["🦀🦀", "🦀🦀", "🦀"]),
            ("日本語。次の文", 5, &["日本語。", "次の文"]),
            ("a\r\nb", 10, &["a\nb"]),
            ("x\n  indented more", 12, &["x", "  indented", "more"]),
            (
                "text\n```\ncode line\n```\nafter",
                20,
                &["text", "```\ncode line\n```", "after"],
            ),
            (
                "```rs\nlet a = 1;\nlet b = 2;\nlet c = 3;\n```",
                31,
                &[
                    "```rs\nlet a = 1;\nlet b = 2;\n```",
                    "```rs\nlet c = 3;\n```",
                ],
            ),
            (
                "```\nunclosed fence stays text",
                12,
                &["```", "unclosed", "fence stays", "text"],
            ),
        ];
        for (text, limit, want) in cases {
            let got = chunk(text, *limit);
            assert_eq!(&got, want, "chunk({text:?}, {limit})");
        }
    }

    #[test]
    fn chunk_html_cases() {
        let cases: &[(&str, usize, &[&str])] = &[
            ("", 10, &[]),
            ("<b></b>", 10, &[]),
            (
                "<b>bold words here</b>",
                16,
                &["<b>bold</b>", "<b>words</b>", "<b>here</b>"],
            ),
            ("a &amp; b", 7, &["a &amp;", "b"]),
            ("&amp;&amp;&amp;", 10, &["&amp;&amp;", "&amp;"]),
            ("<i>x</i> y z", 10, &["<i>x</i> y", "z"]),
            (
                "<a href=\"https://e.com/?a&amp;b\">a link</a> after",
                45,
                &["<a href=\"https://e.com/?a&amp;b\">a link</a>", "after"],
            ),
            (
                "intro text\n<pre>line one\nline two</pre>",
                30,
                &["intro text", "<pre>line one\nline two</pre>"],
            ),
            (
                "<pre><code class=\"language-rs\">aaaa\nbbbb\ncccc</code></pre>",
                53,
                &[
                    "<pre><code class=\"language-rs\">aaaa\nbbbb</code></pre>",
                    "<pre><code class=\"language-rs\">cccc</code></pre>",
                ],
            ),
            (
                "<blockquote>one two\nthree</blockquote>",
                32,
                &[
                    "<blockquote>one two</blockquote>",
                    "<blockquote>three</blockquote>",
                ],
            ),
            ("a < b", 3, &["a <", "b"]),
            ("🦀🦀🦀", 4, &["🦀🦀", "🦀"]),
            ("<b>x </b>y", 8, &["<b>x</b>", "y"]),
        ];
        for (html, limit, want) in cases {
            let got = chunk_html(html, *limit);
            assert_eq!(&got, want, "chunk_html({html:?}, {limit})");
        }
    }

    #[test]
    fn platform_limits_apply() {
        let long = "word ".repeat(1000);
        let cases = [
            (Platform::Discord, 2000),
            (Platform::Sms, 1600),
            (Platform::Telegram, 4096),
        ];
        for (p, lim) in cases {
            let pieces = chunk_for(p, &long);
            assert!(pieces.len() > 1, "{p:?}");
            assert!(pieces.iter().all(|c| c.chars().count() <= lim), "{p:?}");
        }
        assert_eq!(chunk_for(Platform::Web, "a\r\nb"), ["a\r\nb"]);
        assert!(chunk_for(Platform::Web, " \n ").is_empty());
        assert_eq!(chunk_for(Platform::Slack, &long).len(), 1);
    }

    /// Every piece fits, none is blank, code blocks that fit stay whole, and together
    /// the pieces give back the text (modulo whitespace at cuts and the fences added
    /// when a code block is cut).
    #[test]
    fn chunk_preserves_text_on_generated_inputs() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let (text, blocks) = markdown(&mut g);
            let limit = 20 + g.below(200);
            let pieces = chunk(&text, limit);
            for p in &pieces {
                assert!(p.chars().count() <= limit, "round {round}: {p:?} > {limit}");
                assert!(!p.trim().is_empty(), "round {round}: blank piece");
                let fences = p
                    .lines()
                    .filter(|l| l.trim_start().starts_with("```"))
                    .count();
                assert_eq!(fences % 2, 0, "round {round}: unbalanced fence in {p:?}");
            }
            for b in blocks.iter().filter(|b| b.chars().count() <= limit) {
                assert!(
                    pieces.iter().any(|p| p.contains(b.as_str())),
                    "round {round}: block {b:?} fits in {limit} but was cut: {pieces:?}"
                );
            }
            assert_eq!(
                unfenced(&pieces.join("\n")),
                unfenced(&text),
                "round {round}, limit {limit}: {text:?} -> {pieces:?}"
            );
        }
    }

    /// Plain text without code: the pieces are exactly the text, cut at whitespace.
    #[test]
    fn chunk_of_prose_loses_nothing() {
        let mut g = Gen(42);
        for _ in 0..300 {
            let words = 1 + g.below(120);
            let text = prose(&mut g, words);
            let limit = 1 + g.below(80);
            let pieces = chunk(&text, limit);
            assert!(pieces.iter().all(|p| p.chars().count() <= limit));
            assert_eq!(squash(&pieces.concat()), squash(&text));
        }
    }

    fn strip_tags(s: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in s.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                _ if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    /// Tags in a piece are balanced: every piece is valid on its own.
    fn assert_balanced(piece: &str) {
        let mut stack: Vec<String> = Vec::new();
        for part in piece.split('<').skip(1) {
            let tag = part.split('>').next().unwrap_or("");
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if tag.starts_with('/') {
                assert_eq!(stack.pop(), Some(name), "{piece:?}");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?} in {piece:?}");
    }

    /// Prose as Telegram HTML text: `&` and `<` escaped.
    fn escaped_prose(g: &mut Gen, max_words: usize) -> String {
        let words = 1 + g.below(max_words);
        prose(g, words).replace('&', "&amp;").replace('<', "&lt;")
    }

    fn html(g: &mut Gen, depth: usize) -> String {
        let mut s = String::new();
        for _ in 0..1 + g.below(5) {
            // As `format` writes it: <pre> only at the top, no link inside a link.
            let choice = match depth {
                0 => g.below(6),
                1 | 2 => [0, 1, 2, 5][g.below(4)],
                _ => 0,
            };
            let part = match choice {
                0 => escaped_prose(g, 30),
                1 => format!("<b>{}</b>", html(g, depth + 1)),
                2 => format!("<i>{} </i>", html(g, depth + 1)),
                3 => {
                    let q = g.below(99);
                    let text = html(g, depth + 1);
                    format!("<a href=\"https://e.com/?q={q}&amp;r\">{text}</a>")
                }
                4 => format!(
                    "\n<pre><code class=\"language-rs\">{}</code></pre>\n",
                    escaped_prose(g, 40)
                ),
                _ => format!("<blockquote>{}</blockquote>\n", html(g, depth + 1)),
            };
            s.push_str(&part);
        }
        s
    }

    #[test]
    fn chunk_html_preserves_text_and_balance_on_generated_inputs() {
        let mut g = Gen(7);
        for round in 0..400 {
            let text = html(&mut g, 0);
            let limit = 120 + g.below(300);
            let pieces = chunk_html(&text, limit);
            for p in &pieces {
                assert!(
                    p.encode_utf16().count() <= limit,
                    "round {round}: {p:?} > {limit}"
                );
                assert_balanced(p);
            }
            assert_eq!(
                squash(&strip_tags(&pieces.concat())),
                squash(&strip_tags(&text)),
                "round {round}"
            );
        }
    }

    /// The way channels use it: render for Telegram, then cut.
    #[test]
    fn rendered_telegram_reply_cuts_into_valid_messages() {
        let code: String = (0..400)
            .map(|i| format!("let v{i} = a < b && c > d;\n"))
            .collect();
        let md = format!(
            "# Report\n\n{}\n\n```rust\n{code}```\n\n> **done** 🎉 {}",
            "Some *prose* with [a link](https://e.com/?a&b). ".repeat(120),
            "quoted words ".repeat(400)
        );
        let html = crate::channels::format::render(Platform::Telegram, &md);
        let pieces = chunk_for(Platform::Telegram, &html);
        assert!(pieces.len() >= 4, "{}", pieces.len());
        for p in &pieces {
            assert!(p.encode_utf16().count() <= 4096);
            assert_balanced(p);
        }
        let last_code: Vec<&String> = pieces.iter().filter(|p| p.contains("v399 ")).collect();
        assert_eq!(last_code.len(), 1);
        assert!(last_code[0].starts_with("<pre><code class=\"language-rust\">"));
        assert_eq!(
            squash(&strip_tags(&pieces.concat())),
            squash(&strip_tags(&html))
        );
    }

    /// Random soup of markers, brackets, fences, CRLF and multi-byte text: rendering for
    /// every platform and cutting never panics, and Telegram pieces stay balanced.
    #[test]
    fn render_and_chunk_survive_marker_soup() {
        let alphabet = [
            "*",
            "**",
            "_",
            "__",
            "~~",
            "||",
            "`",
            "```",
            "[",
            "](",
            ")",
            "(",
            "<",
            ">",
            "&",
            "\\",
            "#",
            "# ",
            "> ",
            "- ",
            "1. ",
            "\n",
            "\r\n",
            "\n\n",
            " ",
            "a",
            "word",
            "é",
            "🦀",
            "日本",
            "https://e.com/?a&b",
            "<https://x.y>",
            "\t",
            "!",
        ];
        let mut g = Gen(99);
        for _ in 0..1000 {
            let len = g.below(40);
            let md: String = (0..len)
                .map(|_| alphabet[g.below(alphabet.len())])
                .collect();
            for p in [
                Platform::Telegram,
                Platform::Slack,
                Platform::Discord,
                Platform::Sms,
            ] {
                let out = crate::channels::format::render(p, &md);
                let limit = 8 + g.below(60);
                let pieces = match p {
                    Platform::Telegram => chunk_html(&out, limit + 60),
                    _ => chunk(&out, limit),
                };
                if p == Platform::Telegram {
                    assert_balanced(&out);
                    pieces.iter().for_each(|piece| assert_balanced(piece));
                }
            }
        }
    }

    #[test]
    fn tiny_limits_terminate_and_keep_text() {
        let html = "<a href=\"https://example.com/long\">link text</a>";
        let pieces = chunk_html(html, 5);
        assert_eq!(squash(&strip_tags(&pieces.concat())), "linktext");
        assert_eq!(chunk("abc", 0), ["a", "b", "c"]);
        let fenced = "```python\nprint(1)\n```";
        let pieces = chunk(fenced, 8);
        assert_eq!(squash(&pieces.concat()), squash(fenced));
        assert!(pieces.iter().all(|p| p.chars().count() <= 8));
    }
}
