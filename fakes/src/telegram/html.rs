//! Telegram's `parse_mode=HTML`, checked the way the Bot API does (its parser is TDLib's
//! `parse_html`; error texts and byte offsets follow it):
//!
//! * tags: `b strong i em u ins s strike del code pre a tg-spoiler span blockquote
//!   tg-emoji`; `span` needs `class="tg-spoiler"`, `tg-emoji` needs `emoji-id`; anything
//!   else is "Unsupported start tag";
//! * every start tag closed, in order ("Unmatched end tag", "Can't find end tag
//!   corresponding to start tag");
//! * entities: `&lt; &gt; &amp; &quot;` and numeric ones only.
//!
//! One deliberate difference: TDLib lets a bare `&` or `>` through as text, but the Bot API
//! documentation says they "must be replaced" by entities, so this parser refuses them
//! (wording of its own, in the same style). A formatter that passes here is right for both.

use super::text::{Entity, Formatted};

const TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
];

/// A start tag waiting for its end tag.
struct Open {
    tag: String,
    /// Where its content starts in the output, in UTF-16 units.
    start: usize,
    /// `href` of `a`, `class` of `code`/`span`, `emoji-id` of `tg-emoji`.
    arg: Option<String>,
    expandable: bool,
    /// For `pre`: the language a nested `<code class="language-x">` gave it.
    language: Option<String>,
}

/// Plain text and entities of an HTML-formatted text, or TDLib's error description
/// (without the "Bad Request: can't parse entities: " prefix).
pub(crate) fn parse(src: &str) -> Result<Formatted, String> {
    let b = src.as_bytes();
    let mut out = Formatted::default();
    let mut pos16 = 0usize;
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'&' => {
                let (ch, used) = decode_entity(&src[i..]).ok_or_else(|| bad_amp(&src[i..], i))?;
                out.text.push(ch);
                pos16 += ch.len_utf16();
                i += used;
            }
            b'>' => return Err(format!("Unescaped \">\" at byte offset {i}")),
            b'<' if b.get(i + 1) == Some(&b'/') => {
                let Some(close) = src[i..].find('>') else {
                    return Err(format!("Unclosed end tag at byte offset {i}"));
                };
                let name = src[i + 2..i + close].trim().to_ascii_lowercase();
                let Some(open) = stack.pop() else {
                    return Err(format!("Unexpected end tag at byte offset {i}"));
                };
                if open.tag != name {
                    return Err(format!(
                        "Unmatched end tag at byte offset {i}, expected \"</{}>\", found \"</{name}>\"",
                        open.tag
                    ));
                }
                finish(open, pos16, &mut stack, &mut out.entities);
                i += close + 1;
            }
            b'<' => {
                let (open, next) = start_tag(src, i, pos16)?;
                stack.push(open);
                i = next;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or_default();
                out.text.push(ch);
                pos16 += ch.len_utf16();
                i += ch.len_utf8();
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.tag
        ));
    }
    Ok(out)
}

fn bad_amp(rest: &str, at: usize) -> String {
    let name_len = rest[1..]
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len() - 1);
    if name_len > 0 && rest[1 + name_len..].starts_with(';') {
        format!(
            "Unsupported HTML entity \"{}\" at byte offset {at}",
            &rest[..name_len + 2]
        )
    } else {
        format!("Unescaped \"&\" at byte offset {at}")
    }
}

/// Decodes the entity `s` starts with: the character and the bytes it took.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    for (name, ch) in [
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&amp;", '&'),
        ("&quot;", '"'),
    ] {
        if s.starts_with(name) {
            return Some((ch, name.len()));
        }
    }
    let rest = s.strip_prefix("&#")?;
    let end = rest.find(';')?;
    let digits = &rest[..end];
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    let ch = char::from_u32(code).filter(|&c| c != '\0')?;
    Some((ch, end + 3))
}

/// Decodes the entities of an attribute value; a stray `&` stays as it is there.
fn decode_attr(v: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        if v.as_bytes()[i] == b'&'
            && let Some((ch, used)) = decode_entity(&v[i..])
        {
            out.push(ch);
            i += used;
            continue;
        }
        let ch = v[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Parses the start tag at `begin`: the open tag and the index after its `>`.
fn start_tag(src: &str, begin: usize, pos16: usize) -> Result<(Open, usize), String> {
    let b = src.as_bytes();
    let is_name = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    let mut j = begin + 1;
    while j < b.len() && is_name(b[j]) {
        j += 1;
    }
    let tag = src[begin + 1..j].to_ascii_lowercase();
    if !TAGS.contains(&tag.as_str()) {
        return Err(format!(
            "Unsupported start tag \"{tag}\" at byte offset {begin}"
        ));
    }
    let mut attrs: Vec<(String, String)> = Vec::new();
    loop {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        match b.get(j) {
            None => return Err(format!("Unclosed start tag at byte offset {begin}")),
            Some(b'>') => {
                j += 1;
                break;
            }
            Some(_) => {}
        }
        let name_start = j;
        while j < b.len() && (is_name(b[j]) || b[j] == b'_') {
            j += 1;
        }
        if j == name_start {
            return Err(format!(
                "Empty attribute name in the tag \"{tag}\" at byte offset {begin}"
            ));
        }
        let name = src[name_start..j].to_ascii_lowercase();
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            attrs.push((name, String::new()));
            continue;
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let value = match b.get(j) {
            Some(&q) if q == b'"' || q == b'\'' => {
                let Some(len) = src[j + 1..].find(q as char) else {
                    return Err(format!("Unclosed start tag at byte offset {begin}"));
                };
                let v = &src[j + 1..j + 1 + len];
                j += len + 2;
                v
            }
            _ => {
                let start = j;
                while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                    j += 1;
                }
                &src[start..j]
            }
        };
        attrs.push((name, decode_attr(value)));
    }
    let attr = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let arg = match tag.as_str() {
        "a" => attr("href"),
        "code" => attr("class"),
        "span" => {
            if attr("class").as_deref() != Some("tg-spoiler") {
                return Err(format!(
                    "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
                ));
            }
            None
        }
        "tg-emoji" => match attr("emoji-id") {
            Some(id) if !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()) => Some(id),
            _ => {
                return Err(format!(
                    "Tag \"tg-emoji\" must have attribute \"emoji-id\" at byte offset {begin}"
                ));
            }
        },
        _ => None,
    };
    let open = Open {
        expandable: tag == "blockquote" && attr("expandable").is_some(),
        tag,
        start: pos16,
        arg,
        language: None,
    };
    Ok((open, j))
}

/// Turns a closed tag into its entity (or, for `<pre><code class="language-x">`, into the
/// language of the enclosing `pre`).
fn finish(open: Open, end: usize, stack: &mut [Open], entities: &mut Vec<Entity>) {
    let length = end - open.start;
    let kind = match open.tag.as_str() {
        "b" | "strong" => "bold",
        "i" | "em" => "italic",
        "u" | "ins" => "underline",
        "s" | "strike" | "del" => "strikethrough",
        "tg-spoiler" | "span" => "spoiler",
        "blockquote" if open.expandable => "expandable_blockquote",
        "blockquote" => "blockquote",
        "tg-emoji" => "custom_emoji",
        "a" => "text_link",
        "pre" => "pre",
        _ => "code",
    };
    let language = open
        .arg
        .as_deref()
        .and_then(|c| c.strip_prefix("language-"))
        .filter(|l| !l.is_empty());
    if kind == "code"
        && let (Some(lang), Some(parent)) = (language, stack.last_mut())
        && parent.tag == "pre"
    {
        parent.language = Some(lang.to_owned());
        return;
    }
    if length == 0 {
        return;
    }
    let mut e = Entity::new(kind, open.start, length);
    match kind {
        "text_link" => match open.arg.filter(|u| !u.is_empty()) {
            Some(url) => e.url = Some(url),
            // `<a>` without href links nothing
            None => return,
        },
        "pre" => e.language = open.language,
        "custom_emoji" => e.custom_emoji_id = open.arg,
        _ => {}
    }
    entities.push(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities(src: &str) -> Vec<(&'static str, usize, usize)> {
        parse(src)
            .unwrap()
            .entities
            .iter()
            .map(|e| (e.kind, e.offset, e.length))
            .collect()
    }

    #[test]
    fn tags_become_entities_with_utf16_offsets() {
        let f = parse("<b>bold <i>both</i></b> 😀 <u>u</u>").unwrap();
        assert_eq!(f.text, "bold both 😀 u");
        let got: Vec<_> = f
            .entities
            .iter()
            .map(|e| (e.kind, e.offset, e.length))
            .collect();
        // the emoji is two UTF-16 units
        assert_eq!(
            got,
            vec![("italic", 5, 4), ("bold", 0, 9), ("underline", 13, 1)]
        );
        for (tag, kind) in [
            ("strong", "bold"),
            ("em", "italic"),
            ("ins", "underline"),
            ("s", "strikethrough"),
            ("strike", "strikethrough"),
            ("del", "strikethrough"),
            ("tg-spoiler", "spoiler"),
            ("code", "code"),
            ("pre", "pre"),
            ("blockquote", "blockquote"),
        ] {
            assert_eq!(
                entities(&format!("<{tag}>x</{tag}>")),
                vec![(kind, 0, 1)],
                "{tag}"
            );
        }
        assert_eq!(
            entities(r#"<span class="tg-spoiler">x</span>"#),
            vec![("spoiler", 0, 1)]
        );
        assert_eq!(
            entities("<blockquote expandable>x</blockquote>"),
            vec![("expandable_blockquote", 0, 1)]
        );
    }

    #[test]
    fn links_languages_and_custom_emoji_carry_their_argument() {
        let f = parse(r#"<a href="https://x.test/?a=1&amp;b=2">x</a>"#).unwrap();
        assert_eq!(
            f.entities[0].url.as_deref(),
            Some("https://x.test/?a=1&b=2")
        );
        let f = parse(r#"<pre><code class="language-rust">fn</code></pre>"#).unwrap();
        assert_eq!(f.text, "fn");
        assert_eq!(f.entities.len(), 1);
        assert_eq!(f.entities[0].kind, "pre");
        assert_eq!(f.entities[0].language.as_deref(), Some("rust"));
        let f = parse(r#"<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>"#).unwrap();
        assert_eq!(
            f.entities[0].custom_emoji_id.as_deref(),
            Some("5368324170671202286")
        );
    }

    #[test]
    fn entities_decode() {
        let f = parse("a &lt;b&gt; &amp; &quot;c&quot; &#65;&#x42;").unwrap();
        assert_eq!(f.text, "a <b> & \"c\" AB");
        assert!(f.entities.is_empty());
    }

    #[test]
    fn errors_name_the_problem_and_its_byte_offset() {
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(
            err("hi <br>"),
            "Unsupported start tag \"br\" at byte offset 3"
        );
        assert_eq!(err("1 < 2"), "Unsupported start tag \"\" at byte offset 2");
        assert_eq!(
            err("<b>x</i>"),
            "Unmatched end tag at byte offset 4, expected \"</b>\", found \"</i>\""
        );
        assert_eq!(
            err("<b><i>x</b></i>"),
            "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\""
        );
        assert_eq!(
            err("<b>x"),
            "Can't find end tag corresponding to start tag \"b\""
        );
        assert_eq!(err("x</b>"), "Unexpected end tag at byte offset 1");
        assert_eq!(err("<b"), "Unclosed start tag at byte offset 0");
        assert_eq!(err("<b>x</b"), "Unclosed end tag at byte offset 4");
        assert_eq!(
            err("<span>x</span>"),
            "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0"
        );
        assert_eq!(err("AT&T"), "Unescaped \"&\" at byte offset 2");
        assert_eq!(
            err("a&nbsp;b"),
            "Unsupported HTML entity \"&nbsp;\" at byte offset 1"
        );
        assert_eq!(err("a > b"), "Unescaped \">\" at byte offset 2");
        assert_eq!(err("é<x>"), "Unsupported start tag \"x\" at byte offset 2");
    }

    #[test]
    fn empty_and_hrefless_tags_make_no_entity() {
        assert!(entities("<b></b>x").is_empty());
        assert!(entities("<a>x</a>").is_empty());
    }
}
