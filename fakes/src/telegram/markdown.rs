//! Telegram's `parse_mode=MarkdownV2` and legacy `Markdown`, following TDLib's
//! `parse_markdown_v2` / `parse_markdown` (the Bot API's parsers), error texts included:
//!
//! * V2: `*bold* _italic_ __underline__ ~strike~ ||spoiler|| [text](url)
//!   ![emoji](tg://emoji?id=N) `code` ```lang\npre```` and `>` / `**>` blockquotes at line
//!   starts; every other `_*[]()~`>#+-=|{}.!` must be escaped with `\` ("Character '.' is
//!   reserved and must be escaped with the preceding '\\'"); in code only `` ` `` and `\`
//!   are special; an entity left open is "Can't find end of Bold entity at byte offset N".
//! * legacy: `*bold* _italic_ `code` ```pre``` [text](url)`, no nesting, `\` escapes
//!   `_*`[`; "Can't find end of the entity starting at byte offset N".

use super::text::{Entity, Formatted};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    Code,
    Pre,
    TextUrl,
    CustomEmoji,
}

impl Kind {
    /// The name TDLib prints in its errors.
    fn name(self) -> &'static str {
        match self {
            Kind::Bold => "Bold",
            Kind::Italic => "Italic",
            Kind::Underline => "Underline",
            Kind::Strikethrough => "Strikethrough",
            Kind::Spoiler => "Spoiler",
            Kind::Code => "Code",
            Kind::Pre => "Pre",
            Kind::TextUrl => "TextUrl",
            Kind::CustomEmoji => "CustomEmoji",
        }
    }

    fn entity_type(self) -> &'static str {
        match self {
            Kind::Bold => "bold",
            Kind::Italic => "italic",
            Kind::Underline => "underline",
            Kind::Strikethrough => "strikethrough",
            Kind::Spoiler => "spoiler",
            Kind::Code => "code",
            Kind::Pre => "pre",
            Kind::TextUrl => "text_link",
            Kind::CustomEmoji => "custom_emoji",
        }
    }
}

struct Open {
    kind: Kind,
    start16: usize,
    byte: usize,
    language: Option<String>,
}

const RESERVED: &str = "_*[]()~`>#+-=|{}.!";

fn reserved(c: u8) -> String {
    format!(
        "Character '{}' is reserved and must be escaped with the preceding '\\'",
        c as char
    )
}

/// An open blockquote: where it started and whether it is expandable.
struct Quote {
    start16: usize,
    expandable: bool,
}

/// Parses MarkdownV2 into plain text and entities, or TDLib's error description.
pub(crate) fn parse_v2(src: &str) -> Result<Formatted, String> {
    let b = src.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut out = Formatted::default();
    let mut pos16 = 0usize;
    let mut stack: Vec<Open> = Vec::new();
    let mut quote: Option<Quote> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let in_code = matches!(stack.last(), Some(o) if matches!(o.kind, Kind::Code | Kind::Pre));
        // blockquotes: lines starting with `>` (or `**>` for an expandable one)
        if !in_code && (i == 0 || b[i - 1] == b'\n') {
            let marker = if c == b'>' {
                Some((1, false))
            } else if src[i..].starts_with("**>") {
                Some((3, true))
            } else {
                None
            };
            match (marker, &quote) {
                (Some((len, expandable)), None) => {
                    quote = Some(Quote {
                        start16: pos16,
                        expandable,
                    });
                    i += len;
                    continue;
                }
                (Some((len, _)), Some(_)) => {
                    i += len;
                    continue;
                }
                (None, Some(_)) => {
                    // the quote ended with the line before; its newline is not part of it
                    close_quote(&mut quote, pos16.saturating_sub(1), &mut out.entities);
                }
                (None, None) => {}
            }
        }
        if c == b'\\' && (1..=126).contains(&at(i + 1)) {
            out.text.push(at(i + 1) as char);
            pos16 += 1;
            i += 2;
            continue;
        }
        let special = if in_code {
            c == b'`'
        } else {
            RESERVED.as_bytes().contains(&c)
        };
        if !special {
            let ch = src[i..].chars().next().unwrap_or_default();
            out.text.push(ch);
            pos16 += ch.len_utf16();
            i += ch.len_utf8();
            continue;
        }
        let ends_top = stack.last().is_some_and(|o| match o.kind {
            Kind::Bold => c == b'*',
            Kind::Italic => c == b'_' && at(i + 1) != b'_',
            Kind::Underline => c == b'_' && at(i + 1) == b'_',
            Kind::Strikethrough => c == b'~',
            Kind::Spoiler => c == b'|' && at(i + 1) == b'|',
            Kind::Code => c == b'`',
            Kind::Pre => src[i..].starts_with("```"),
            Kind::TextUrl | Kind::CustomEmoji => c == b']',
        });
        if ends_top {
            let open = stack.pop().unwrap_or_else(|| unreachable!("checked above"));
            i = close_v2(src, i, open, pos16, &mut out.entities)?;
            continue;
        }
        // the `||` that ends an expandable blockquote's last line
        if c == b'|'
            && at(i + 1) == b'|'
            && quote.as_ref().is_some_and(|q| q.expandable)
            && matches!(at(i + 2), b'\n' | 0)
        {
            i += 2;
            continue;
        }
        let byte = i;
        let mut language = None;
        let kind = match c {
            b'_' if at(i + 1) == b'_' => {
                i += 1;
                Kind::Underline
            }
            b'_' => Kind::Italic,
            b'*' => Kind::Bold,
            b'~' => Kind::Strikethrough,
            b'|' if at(i + 1) == b'|' => {
                i += 1;
                Kind::Spoiler
            }
            b'[' => Kind::TextUrl,
            b'!' if at(i + 1) == b'[' => {
                i += 1;
                Kind::CustomEmoji
            }
            b'`' if src[i..].starts_with("```") => {
                i += 3;
                let lang_end = src[i..]
                    .find(|ch: char| ch.is_whitespace() || ch == '`')
                    .map_or(b.len(), |n| i + n);
                if lang_end > i && lang_end < b.len() && b[lang_end] != b'`' {
                    language = Some(src[i..lang_end].to_owned());
                    i = lang_end;
                }
                // one newline right after the opening fence is not content
                if at(i) == b'\n' || at(i) == b'\r' {
                    i += if matches!(at(i + 1), b'\n' | b'\r') && at(i) != at(i + 1) {
                        2
                    } else {
                        1
                    };
                }
                i -= 1;
                Kind::Pre
            }
            b'`' => Kind::Code,
            _ => return Err(reserved(c)),
        };
        stack.push(Open {
            kind,
            start16: pos16,
            byte,
            language,
        });
        i += 1;
    }
    if let Some(open) = stack.pop() {
        return Err(format!(
            "Can't find end of {} entity at byte offset {}",
            open.kind.name(),
            open.byte
        ));
    }
    close_quote(&mut quote, pos16, &mut out.entities);
    Ok(out)
}

fn close_quote(quote: &mut Option<Quote>, end16: usize, entities: &mut Vec<Entity>) {
    if let Some(q) = quote.take()
        && end16 > q.start16
    {
        let kind = if q.expandable {
            "expandable_blockquote"
        } else {
            "blockquote"
        };
        entities.push(Entity::new(kind, q.start16, end16 - q.start16));
    }
}

/// Closes `open` at the delimiter at `i`; returns the index after the delimiter (and, for
/// links, after the `(url)`).
fn close_v2(
    src: &str,
    mut i: usize,
    open: Open,
    pos16: usize,
    entities: &mut Vec<Entity>,
) -> Result<usize, String> {
    let b = src.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut url = None;
    match open.kind {
        Kind::TextUrl | Kind::CustomEmoji if at(i + 1) == b'(' => {
            let url_begin = i + 1;
            i += 2;
            let mut u = String::new();
            while i < b.len() && b[i] != b')' {
                if b[i] == b'\\' && (1..=126).contains(&at(i + 1)) {
                    u.push(at(i + 1) as char);
                    i += 2;
                    continue;
                }
                let ch = src[i..].chars().next().unwrap_or_default();
                u.push(ch);
                i += ch.len_utf8();
            }
            if at(i) != b')' {
                return Err(format!(
                    "Can't find end of a URL at byte offset {url_begin}"
                ));
            }
            url = Some(u);
        }
        Kind::CustomEmoji => {
            return Err("Custom emoji entity must contain a tg://emoji URL".into());
        }
        Kind::Underline | Kind::Spoiler => i += 1,
        Kind::Pre => i += 2,
        _ => {}
    }
    let length = pos16 - open.start16;
    if length > 0 {
        let mut e = Entity::new(open.kind.entity_type(), open.start16, length);
        match open.kind {
            Kind::TextUrl => {
                // `[text]` without a URL links nothing
                match url {
                    Some(u) if !u.is_empty() => e.url = Some(u),
                    _ => return Ok(i + 1),
                }
            }
            Kind::CustomEmoji => {
                let id = url
                    .as_deref()
                    .and_then(|u| u.strip_prefix("tg://emoji?id="))
                    .filter(|id| !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()));
                match id {
                    Some(id) => e.custom_emoji_id = Some(id.to_owned()),
                    None => return Err("Custom emoji entity must contain a tg://emoji URL".into()),
                }
            }
            Kind::Pre => e.language = open.language,
            _ => {}
        }
        entities.push(e);
    }
    Ok(i + 1)
}

/// Parses legacy Markdown into plain text and entities, or TDLib's error description.
pub(crate) fn parse_legacy(src: &str) -> Result<Formatted, String> {
    let b = src.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut out = Formatted::default();
    let mut pos16 = 0usize;
    let mut i = 0;
    let push = |out: &mut Formatted, pos16: &mut usize, i: &mut usize| {
        let ch = src[*i..].chars().next().unwrap_or_default();
        out.text.push(ch);
        *pos16 += ch.len_utf16();
        *i += ch.len_utf8();
    };
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && matches!(at(i + 1), b'_' | b'*' | b'`' | b'[') {
            out.text.push(at(i + 1) as char);
            pos16 += 1;
            i += 2;
            continue;
        }
        if !matches!(c, b'_' | b'*' | b'`' | b'[') {
            push(&mut out, &mut pos16, &mut i);
            continue;
        }
        let begin = i;
        let start16 = pos16;
        let end_char = if c == b'[' { b']' } else { c };
        i += 1;
        let is_pre = c == b'`' && src[i..].starts_with("``");
        let mut language = None;
        if is_pre {
            i += 2;
            let lang_end = src[i..]
                .find(|ch: char| ch.is_whitespace() || ch == '`')
                .map_or(b.len(), |n| i + n);
            if lang_end > i && lang_end < b.len() && b[lang_end] != b'`' {
                language = Some(src[i..lang_end].to_owned());
                i = lang_end;
            }
        }
        while i < b.len() && (b[i] != end_char || (is_pre && !src[i..].starts_with("```"))) {
            push(&mut out, &mut pos16, &mut i);
        }
        if i >= b.len() {
            return Err(format!(
                "Can't find end of the entity starting at byte offset {begin}"
            ));
        }
        let length = pos16 - start16;
        let mut entity = match c {
            b'_' => Entity::new("italic", start16, length),
            b'*' => Entity::new("bold", start16, length),
            b'`' if is_pre => {
                let mut e = Entity::new("pre", start16, length);
                e.language = language;
                e
            }
            b'`' => Entity::new("code", start16, length),
            _ => Entity::new("text_link", start16, length),
        };
        if c == b'[' {
            let mut url = String::new();
            if at(i + 1) == b'(' {
                i += 2;
                while i < b.len() && b[i] != b')' {
                    let ch = src[i..].chars().next().unwrap_or_default();
                    url.push(ch);
                    i += ch.len_utf8();
                }
            }
            entity.url = (!url.is_empty()).then_some(url);
        }
        if is_pre {
            i += 2;
        }
        i += 1;
        if length > 0 && (c != b'[' || entity.url.is_some()) {
            out.entities.push(entity);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(f: &Formatted) -> Vec<(&'static str, usize, usize)> {
        f.entities
            .iter()
            .map(|e| (e.kind, e.offset, e.length))
            .collect()
    }

    #[test]
    fn v2_entities_nest_and_escape() {
        let f = parse_v2(r"*bold _it_* __u__ ~s~ ||sp|| 1\.5\!").unwrap();
        assert_eq!(f.text, "bold it u s sp 1.5!");
        assert_eq!(
            kinds(&f),
            vec![
                ("italic", 5, 2),
                ("bold", 0, 7),
                ("underline", 8, 1),
                ("strikethrough", 10, 1),
                ("spoiler", 12, 2)
            ]
        );
        let f = parse_v2(
            r"[a \] link](https://x.test/a\)b) `co.de` ```rust
fn x() {}```",
        )
        .unwrap();
        assert_eq!(f.text, "a ] link co.de fn x() {}");
        assert_eq!(f.entities[0].url.as_deref(), Some("https://x.test/a)b"));
        assert_eq!(kinds(&f)[1], ("code", 9, 5));
        assert_eq!(f.entities[2].kind, "pre");
        assert_eq!(f.entities[2].language.as_deref(), Some("rust"));
        let f = parse_v2("![👍](tg://emoji?id=5368324170671202286)").unwrap();
        assert_eq!(
            f.entities[0].custom_emoji_id.as_deref(),
            Some("5368324170671202286")
        );
    }

    #[test]
    fn v2_blockquotes_start_at_line_starts() {
        let f = parse_v2(">one\n>two\nafter").unwrap();
        assert_eq!(f.text, "one\ntwo\nafter");
        assert_eq!(kinds(&f), vec![("blockquote", 0, 7)]);
        let f = parse_v2("**>a\n>b||").unwrap();
        assert_eq!(f.text, "a\nb");
        assert_eq!(kinds(&f), vec![("expandable_blockquote", 0, 3)]);
    }

    #[test]
    fn v2_errors_are_tdlibs() {
        assert_eq!(
            parse_v2("Done. Next").unwrap_err(),
            "Character '.' is reserved and must be escaped with the preceding '\\'"
        );
        assert_eq!(
            parse_v2("a-b").unwrap_err(),
            "Character '-' is reserved and must be escaped with the preceding '\\'"
        );
        assert_eq!(
            parse_v2("x *bold").unwrap_err(),
            "Can't find end of Bold entity at byte offset 2"
        );
        assert_eq!(
            parse_v2("_a *b_ c*").unwrap_err(),
            "Can't find end of Bold entity at byte offset 8"
        );
        assert_eq!(
            parse_v2("[a](http://x").unwrap_err(),
            "Can't find end of a URL at byte offset 3"
        );
        // inside code only ` and \ are special
        assert_eq!(parse_v2("`a.b-c`").unwrap().text, "a.b-c");
    }

    #[test]
    fn legacy_markdown() {
        let f = parse_legacy("*b* _i_ `c` [l](https://x.test) 1.5 \\*").unwrap();
        assert_eq!(f.text, "b i c l 1.5 *");
        assert_eq!(
            kinds(&f),
            vec![
                ("bold", 0, 1),
                ("italic", 2, 1),
                ("code", 4, 1),
                ("text_link", 6, 1)
            ]
        );
        assert_eq!(f.entities[3].url.as_deref(), Some("https://x.test"));
        let f = parse_legacy("```py\nx = 1```").unwrap();
        assert_eq!(f.text, "\nx = 1");
        assert_eq!(f.entities[0].language.as_deref(), Some("py"));
        assert_eq!(
            parse_legacy("snake_case").unwrap_err(),
            "Can't find end of the entity starting at byte offset 5"
        );
    }
}
