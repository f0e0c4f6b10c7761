//! Message text as Telegram turns it into what users see: markup parsed into plain text and
//! entities (offsets and lengths in UTF-16 code units), whitespace trimmed at both ends,
//! then the emptiness and length checks. Pure functions, no I/O.

use serde_json::{Value, json};

use super::{html, markdown};

/// Telegram's limit for a message text, after entity parsing, in UTF-16 code units.
pub(crate) const MAX_TEXT_UTF16: usize = 4096;

/// One formatting entity of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entity {
    /// Telegram's entity type: `bold`, `text_link`, `pre`, ...
    pub(crate) kind: &'static str,
    pub(crate) offset: usize,
    pub(crate) length: usize,
    pub(crate) url: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) custom_emoji_id: Option<String>,
}

impl Entity {
    pub(crate) fn new(kind: &'static str, offset: usize, length: usize) -> Self {
        Self {
            kind,
            offset,
            length,
            url: None,
            language: None,
            custom_emoji_id: None,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({"type": self.kind, "offset": self.offset, "length": self.length});
        if let Some(url) = &self.url {
            v["url"] = json!(url);
        }
        if let Some(lang) = &self.language {
            v["language"] = json!(lang);
        }
        if let Some(id) = &self.custom_emoji_id {
            v["custom_emoji_id"] = json!(id);
        }
        v
    }
}

/// Text with its entities, as a parser produced it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Formatted {
    pub(crate) text: String,
    pub(crate) entities: Vec<Entity>,
}

/// What a message shows: its text and its entities as JSON objects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rendered {
    pub(crate) text: String,
    pub(crate) entities: Vec<Value>,
}

/// Why a text was refused; `description` is Telegram's, "Bad Request: ..." included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextError(pub(crate) String);

pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Parses `text` in `parse_mode` (`HTML`, `MarkdownV2`, `Markdown`, any case; `None` or ""
/// for plain text, where `entities` given by the caller are kept as they are), trims it and
/// checks it is neither empty nor longer than 4096 UTF-16 units. `too_long` is the
/// description for an over-long text (sendMessage and editMessageText word it differently).
pub(crate) fn render(
    text: &str,
    parse_mode: Option<&str>,
    entities: Option<Vec<Value>>,
    too_long: &str,
) -> Result<Rendered, TextError> {
    let mode = parse_mode.unwrap_or("").to_ascii_lowercase();
    let parsed = match mode.as_str() {
        "" => {
            let (text, entities) = trim_plain(text, entities.unwrap_or_default());
            return check(Rendered { text, entities }, too_long);
        }
        "html" => html::parse(text),
        "markdownv2" => markdown::parse_v2(text),
        "markdown" => markdown::parse_legacy(text),
        _ => return Err(TextError("Bad Request: unsupported parse_mode".into())),
    };
    let parsed =
        parsed.map_err(|e| TextError(format!("Bad Request: can't parse entities: {e}")))?;
    let trimmed = trim(parsed);
    check(
        Rendered {
            text: trimmed.text,
            entities: trimmed.entities.iter().map(Entity::to_json).collect(),
        },
        too_long,
    )
}

fn check(r: Rendered, too_long: &str) -> Result<Rendered, TextError> {
    if r.text.is_empty() {
        return Err(TextError("Bad Request: message text is empty".into()));
    }
    if utf16_len(&r.text) > MAX_TEXT_UTF16 {
        return Err(TextError(too_long.to_owned()));
    }
    Ok(r)
}

/// Leading and trailing whitespace, in UTF-16 units: (before, kept).
fn trim_bounds(text: &str) -> (usize, usize, &str) {
    let start = text.trim_start();
    let before = utf16_len(&text[..text.len() - start.len()]);
    let kept = start.trim_end();
    (before, utf16_len(kept), kept)
}

/// Trims whitespace at both ends, shifting and clipping the entities with the text and
/// dropping those left empty; entities end up ordered by offset, longer first.
pub(crate) fn trim(f: Formatted) -> Formatted {
    let (before, len, kept) = trim_bounds(&f.text);
    let mut entities: Vec<Entity> = f
        .entities
        .into_iter()
        .filter_map(|mut e| {
            let start = e.offset.saturating_sub(before).min(len);
            let end = (e.offset + e.length).saturating_sub(before).min(len);
            (end > start).then(|| {
                e.offset = start;
                e.length = end - start;
                e
            })
        })
        .collect();
    entities.sort_by(|a, b| a.offset.cmp(&b.offset).then(b.length.cmp(&a.length)));
    Formatted {
        text: kept.to_owned(),
        entities,
    }
}

/// Plain text keeps the caller's entities, shifted by the trimmed prefix.
fn trim_plain(text: &str, entities: Vec<Value>) -> (String, Vec<Value>) {
    let (before, _, kept) = trim_bounds(text);
    let entities = entities
        .into_iter()
        .map(|mut e| {
            if let Some(off) = e.get("offset").and_then(Value::as_u64) {
                e["offset"] = json!((off as usize).saturating_sub(before));
            }
            e
        })
        .collect();
    (kept.to_owned(), entities)
}

/// The entities Telegram adds by itself to a user's message: `/commands` and `@mentions`.
pub(crate) fn auto_entities(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut pos16 = 0;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_word_start = prev.is_none_or(char::is_whitespace);
        if at_word_start && (c == '/' || c == '@') {
            let rest = &text[i + 1..];
            let word_len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '@'))
                .unwrap_or(rest.len());
            let word = &rest[..word_len];
            let kind = match c {
                '/' if !word.is_empty() && !word.starts_with('@') => Some("bot_command"),
                '@' if (5..=32).contains(&word.len()) && !word.contains('@') => Some("mention"),
                _ => None,
            };
            if let Some(kind) = kind {
                // ASCII only, so bytes are UTF-16 units
                out.push(json!({"type": kind, "offset": pos16, "length": word_len + 1}));
                pos16 += word_len + 1;
                for _ in 0..word_len {
                    chars.next();
                }
                prev = word.chars().last().or(Some(c));
                continue;
            }
        }
        pos16 += c.len_utf16();
        prev = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "Bad Request: message is too long";

    #[test]
    fn plain_text_is_trimmed_and_checked() {
        let r = render("  hi  ", None, None, LONG).unwrap();
        assert_eq!(r.text, "hi");
        assert!(r.entities.is_empty());
        assert_eq!(
            render(" \n ", None, None, LONG).unwrap_err().0,
            "Bad Request: message text is empty"
        );
        assert_eq!(
            render("", Some("HTML"), None, LONG).unwrap_err().0,
            "Bad Request: message text is empty"
        );
    }

    #[test]
    fn the_limit_counts_utf16_units_after_parsing() {
        let at_limit = "a".repeat(4096);
        assert!(render(&at_limit, None, None, LONG).is_ok());
        assert_eq!(
            render(&"a".repeat(4097), None, None, LONG).unwrap_err().0,
            LONG
        );
        // 2048 emoji are 4096 UTF-16 units; one more is too many
        assert!(render(&"😀".repeat(2048), None, None, LONG).is_ok());
        assert!(render(&"😀".repeat(2049), None, None, LONG).is_err());
        // markup does not count
        let wrapped = format!("<b>{at_limit}</b>");
        assert!(render(&wrapped, Some("html"), None, LONG).is_ok());
    }

    #[test]
    fn unknown_parse_mode_is_refused() {
        assert_eq!(
            render("x", Some("Textile"), None, LONG).unwrap_err().0,
            "Bad Request: unsupported parse_mode"
        );
    }

    #[test]
    fn trimming_shifts_and_clips_entities() {
        let r = render("  <b>hi</b> <i> </i>", Some("HTML"), None, LONG).unwrap();
        assert_eq!(r.text, "hi");
        assert_eq!(
            r.entities,
            vec![json!({"type": "bold", "offset": 0, "length": 2})]
        );
    }

    #[test]
    fn commands_and_mentions_are_found() {
        assert_eq!(
            auto_entities("/start@pincer_bot now"),
            vec![json!({"type": "bot_command", "offset": 0, "length": 17})]
        );
        assert_eq!(
            auto_entities("héllo @pincer_bot /help"),
            vec![
                json!({"type": "mention", "offset": 6, "length": 11}),
                json!({"type": "bot_command", "offset": 18, "length": 5}),
            ]
        );
        assert!(auto_entities("a/b e@mail.com @ab / ").is_empty());
    }
}
