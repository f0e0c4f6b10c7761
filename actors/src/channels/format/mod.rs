//! Turns the agent's reply, written in the Markdown LLMs produce, into each chat
//! platform's dialect: Telegram's `parse_mode=HTML`, Slack's mrkdwn, Discord's Markdown
//! and plain text for SMS. Pure functions, no I/O; the channel actors call [`render`]
//! and then [`super::chunk`] to fit the platform's [`limit`].
//!
//! The reply is read in two passes: lines become blocks (paragraphs, headings, fenced
//! code, quotes, list items, rules), then the text of paragraphs, headings and items
//! becomes inline nodes (strong, emphasis, strike, spoiler, code, links). Both passes
//! follow CommonMark where it matters for LLM output (delimiter flanking, so
//! `snake_case_name` stays as typed; code spans bind tighter than emphasis) and are
//! forgiving everywhere else: a marker without its partner, or a fence that is never
//! closed, is kept as literal text. Nothing the agent wrote is dropped, and a reply the
//! platform would reject (an unescaped `<` for Telegram, say) is never produced.
//!
//! ```text
//! Markdown        Telegram HTML              Slack mrkdwn     SMS
//! **b**           <b>b</b>                   *b*              b
//! *i* / _i_       <i>i</i>                   _i_              i
//! ~~s~~           <s>s</s>                   ~s~              s
//! ||x||           <tg-spoiler>x</tg-spoiler> ||x||            ||x||
//! `c`             <code>c</code>             `c`              c
//! ```rs fence     <pre><code class=..>       ``` fence        the code
//! [t](u)          <a href="u">t</a>          <u|t>            t (u)
//! # Title         <b>Title</b>               *Title*          Title
//! - item          • item                     • item           - item
//! > quote         <blockquote>               > quote          > quote
//! ```

mod markdown;

use markdown::{Block, Inline, Marker, Style, heading, parse_blocks, parse_inline};
pub(super) use markdown::{fence_close, fence_open};

/// Where a reply is going: decides its dialect ([`render`]) and its size ([`limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Telegram,
    Slack,
    Discord,
    Sms,
    Web,
}

/// The reply `md` in platform `p`'s dialect. The web UI renders Markdown itself, so it
/// gets the reply untouched.
pub fn render(p: Platform, md: &str) -> String {
    match p {
        Platform::Telegram => telegram_html(md),
        Platform::Slack => slack_mrkdwn(md),
        Platform::Discord => discord_markdown(md),
        Platform::Sms => plain_text(md),
        Platform::Web => md.to_owned(),
    }
}

/// The most characters one message may carry on platform `p`: Telegram's 4096 (counted
/// by Telegram in UTF-16 units after parsing entities, see [`super::chunk::chunk_html`]),
/// Discord's 2000, Twilio's 1600 for one (multi-segment) SMS, Slack's 40000 (beyond
/// which Slack truncates). The web UI streams and has no limit.
pub fn limit(p: Platform) -> usize {
    match p {
        Platform::Telegram => 4096,
        Platform::Discord => 2000,
        Platform::Sms => 1600,
        Platform::Slack => 40_000,
        Platform::Web => usize::MAX,
    }
}

/// Telegram Bot API `parse_mode=HTML`: only the tags Telegram knows, and `&`, `<`, `>`
/// escaped everywhere else, because Telegram rejects the whole message otherwise.
pub fn telegram_html(md: &str) -> String {
    render_markdown(md, Flavor::Telegram)
}

/// Slack mrkdwn: single-marker emphasis, `<url|text>` links and `&`, `<`, `>` escaped,
/// which also keeps the agent from writing `<!channel>` pings or `<@U..>` mentions.
pub fn slack_mrkdwn(md: &str) -> String {
    render_markdown(md, Flavor::Slack)
}

/// Discord renders Markdown itself, so the reply passes through; only headings deeper
/// than `###`, which Discord shows as literal `####`, become bold lines. Fenced code is
/// never touched.
pub fn discord_markdown(md: &str) -> String {
    let text = normalize_newlines(md);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if let Some(f) = fence_open(lines[i])
            && let Some(close) = fence_close(&lines, i + 1, &f)
        {
            out.extend(lines[i..=close].iter().map(|l| (*l).to_owned()));
            i = close + 1;
            continue;
        }
        out.push(discord_line(lines[i]));
        i += 1;
    }
    out.join("\n")
}

/// Plain text for SMS: markers removed, links as `text (url)`, code without fences,
/// list bullets as `- `. Only GSM-7 characters are added (no `•`), so an ASCII reply
/// does not fall back to UCS-2 and its 70-character segments.
pub fn plain_text(md: &str) -> String {
    render_markdown(md, Flavor::Plain)
}

/// The dialects that are rebuilt from parsed blocks (Discord keeps the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Telegram,
    Slack,
    Plain,
}

fn render_markdown(md: &str, flavor: Flavor) -> String {
    let text = normalize_newlines(md);
    let lines: Vec<&str> = text.split('\n').collect();
    render_blocks(&parse_blocks(&lines, 0), flavor)
}

/// Windows (`\r\n`) and old Mac (`\r`) line endings become `\n`, so every later step
/// deals with one kind of line break.
pub(super) fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

// ---------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------

fn render_blocks(blocks: &[Block], f: Flavor) -> String {
    let lines: Vec<String> = blocks.iter().map(|b| render_block(b, f)).collect();
    lines.join("\n")
}

fn render_block(block: &Block, f: Flavor) -> String {
    match block {
        Block::Blank => String::new(),
        Block::Para(text) => inline(text, f, Ctx::default()),
        Block::Heading(text) => {
            let ctx = Ctx {
                in_bold: true,
                ..Ctx::default()
            };
            let inner = inline(text, f, ctx);
            match f {
                _ if inner.trim().is_empty() => inner,
                Flavor::Telegram => format!("<b>{inner}</b>"),
                Flavor::Slack => format!("*{inner}*"),
                Flavor::Plain => inner,
            }
        }
        Block::Code { lang, body } => code_block(lang, body, f),
        Block::Quote(inner) => quote(inner, f),
        Block::Item {
            indent,
            marker,
            text,
        } => {
            let mark = match (marker, f) {
                (Marker::Number(n), _) => format!("{n}. "),
                (Marker::Bullet, Flavor::Plain) => "- ".to_owned(),
                (Marker::Bullet, _) => "• ".to_owned(),
            };
            format!("{indent}{mark}{}", inline(text, f, Ctx::default()))
        }
        Block::Rule => match f {
            Flavor::Plain => "---".to_owned(),
            _ => "———".to_owned(),
        },
    }
}

fn code_block(lang: &str, body: &str, f: Flavor) -> String {
    if body.trim().is_empty() {
        return String::new(); // an empty <pre> is an empty entity Telegram may refuse
    }
    match f {
        Flavor::Telegram if lang.is_empty() => format!("<pre>{}</pre>", escape_html(body)),
        Flavor::Telegram => format!(
            "<pre><code class=\"language-{lang}\">{}</code></pre>",
            escape_html(body)
        ),
        Flavor::Slack => format!("```\n{}\n```", escape_html(body)),
        Flavor::Plain => body.to_owned(),
    }
}

/// Telegram cannot nest blockquotes and its rules for `<pre>` inside one are unclear: a
/// quote is emitted as runs of `<blockquote>` with its code blocks between them, inner
/// quotes flattened into it. The other dialects prefix each line.
fn quote(inner: &[Block], f: Flavor) -> String {
    if f != Flavor::Telegram {
        let body = render_blocks(inner, f);
        let lines: Vec<String> = body
            .split('\n')
            .map(|l| {
                if l.is_empty() {
                    ">".to_owned()
                } else {
                    format!("> {l}")
                }
            })
            .collect();
        return lines.join("\n");
    }
    let mut parts: Vec<String> = Vec::new();
    let mut run: Vec<Block> = Vec::new();
    let flush = |run: &mut Vec<Block>, parts: &mut Vec<String>| {
        let body = render_blocks(run, f);
        if !body.trim().is_empty() {
            parts.push(format!(
                "<blockquote>{}</blockquote>",
                body.trim_matches('\n')
            ));
        }
        run.clear();
    };
    for b in flatten_quotes(inner) {
        if let Block::Code { lang, body } = &b {
            flush(&mut run, &mut parts);
            parts.push(code_block(lang, body, f));
        } else {
            run.push(b);
        }
    }
    flush(&mut run, &mut parts);
    parts.join("\n")
}

/// The blocks of a quote with the blocks of its inner quotes in their place.
fn flatten_quotes(blocks: &[Block]) -> Vec<Block> {
    blocks
        .iter()
        .flat_map(|b| match b {
            Block::Quote(inner) => flatten_quotes(inner),
            other => vec![other.clone()],
        })
        .collect()
}

/// Lines Discord shows as typed, except headings deeper than `###`.
fn discord_line(line: &str) -> String {
    match heading(line) {
        Some((level, text)) if level > 3 && !text.is_empty() => {
            if text.starts_with("**") && text.ends_with("**") && text.len() > 4 {
                text.to_owned()
            } else {
                format!("**{text}**")
            }
        }
        _ => line.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Inline
// ---------------------------------------------------------------------------------------

/// The markers around a span of `style` in flavor `f`. Slack and SMS have no spoilers:
/// the markers stay, so the intent stays visible.
fn marks(style: Style, f: Flavor) -> (&'static str, &'static str) {
    match (style, f) {
        (Style::Strong, Flavor::Telegram) => ("<b>", "</b>"),
        (Style::Em, Flavor::Telegram) => ("<i>", "</i>"),
        (Style::Strike, Flavor::Telegram) => ("<s>", "</s>"),
        (Style::Spoiler, Flavor::Telegram) => ("<tg-spoiler>", "</tg-spoiler>"),
        (Style::Strong, Flavor::Slack) => ("*", "*"),
        (Style::Em, Flavor::Slack) => ("_", "_"),
        (Style::Strike, Flavor::Slack) => ("~", "~"),
        (Style::Spoiler, _) => ("||", "||"),
        (_, Flavor::Plain) => ("", ""),
    }
}

/// Where inline nodes are being written: headings are already bold, and Telegram links
/// cannot contain `<code>` nor other links.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    in_bold: bool,
    in_link: bool,
}

fn inline(text: &str, f: Flavor, ctx: Ctx) -> String {
    let mut out = String::new();
    write_nodes(&parse_inline(text), f, ctx, &mut out);
    out
}

/// Whether a URL may become a real link: absolute, and of a scheme chat apps open
/// (no `javascript:`); anything else is shown as text.
fn linkable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://", "mailto:", "tg://", "ftp://"]
        .iter()
        .any(|p| lower.starts_with(p) && lower.len() > p.len())
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

fn escape_attr(s: &str) -> String {
    escape_html(s).replace('"', "&quot;")
}

/// A URL inside Slack's `<url|text>`: `&` as an entity, the delimiters percent-encoded.
fn slack_url(url: &str) -> String {
    url.replace('&', "&amp;")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C")
}

fn push_text(t: &str, f: Flavor, out: &mut String) {
    match f {
        Flavor::Telegram | Flavor::Slack => out.push_str(&escape_html(t)),
        Flavor::Plain => out.push_str(t),
    }
}

fn write_nodes(nodes: &[Inline], f: Flavor, ctx: Ctx, out: &mut String) {
    for node in nodes {
        match node {
            Inline::Text(t) => push_text(t, f, out),
            Inline::Code(c) => match f {
                Flavor::Telegram if ctx.in_link => push_text(c, f, out),
                Flavor::Telegram => {
                    out.push_str("<code>");
                    push_text(c, f, out);
                    out.push_str("</code>");
                }
                Flavor::Slack => {
                    out.push('`');
                    push_text(c, f, out);
                    out.push('`');
                }
                Flavor::Plain => out.push_str(c),
            },
            Inline::Span(Style::Strong, inner) if ctx.in_bold => write_nodes(inner, f, ctx, out),
            Inline::Span(style, inner) => {
                let (open, close) = marks(*style, f);
                let in_bold = ctx.in_bold || *style == Style::Strong;
                out.push_str(open);
                write_nodes(inner, f, Ctx { in_bold, ..ctx }, out);
                out.push_str(close);
            }
            Inline::Link { text, url } => write_link(text, url, f, ctx, out),
        }
    }
}

/// The text of inline nodes without any markup (Slack link labels, SMS).
fn plain_of(nodes: &[Inline]) -> String {
    let mut out = String::new();
    write_nodes(nodes, Flavor::Plain, Ctx::default(), &mut out);
    out
}

fn write_link(text: &[Inline], url: &str, f: Flavor, ctx: Ctx, out: &mut String) {
    let label = plain_of(text);
    if url.is_empty() {
        return write_nodes(text, f, ctx, out);
    }
    let as_text = f == Flavor::Plain || !linkable(url) || (f == Flavor::Telegram && ctx.in_link);
    if as_text {
        if label.trim().is_empty() || label == url {
            push_text(url, f, out);
        } else {
            write_nodes(text, f, ctx, out);
            out.push_str(" (");
            push_text(url, f, out);
            out.push(')');
        }
        return;
    }
    match f {
        Flavor::Telegram => {
            out.push_str(&format!("<a href=\"{}\">", escape_attr(url)));
            if label.trim().is_empty() {
                push_text(url, f, out);
            } else {
                let ctx = Ctx {
                    in_link: true,
                    ..ctx
                };
                write_nodes(text, f, ctx, out);
            }
            out.push_str("</a>");
        }
        Flavor::Slack if label.trim().is_empty() || label == url => {
            out.push_str(&format!("<{}>", slack_url(url)));
        }
        Flavor::Slack => {
            out.push_str(&format!("<{}|{}>", slack_url(url), escape_html(&label)));
        }
        Flavor::Plain => {} // handled above as text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&str) -> String, cases: &[(&str, &str)]) {
        for (input, want) in cases {
            assert_eq!(&f(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn telegram_inline() {
        check(
            telegram_html,
            &[
                ("**bold**", "<b>bold</b>"),
                ("__bold__", "<b>bold</b>"),
                ("*it* and _it_", "<i>it</i> and <i>it</i>"),
                ("~~gone~~", "<s>gone</s>"),
                ("||secret||", "<tg-spoiler>secret</tg-spoiler>"),
                ("`x`", "<code>x</code>"),
                ("***both***", "<b><i>both</i></b>"),
                ("**bold *it* bold**", "<b>bold <i>it</i> bold</b>"),
                ("*it **bold** it*", "<i>it <b>bold</b> it</i>"),
                ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
                (
                    "`a < b && c > d`",
                    "<code>a &lt; b &amp;&amp; c &gt; d</code>",
                ),
                ("`**not bold**`", "<code>**not bold**</code>"),
                ("``a ` b``", "<code>a ` b</code>"),
                ("snake_case_name", "snake_case_name"),
                ("__init__ is bold", "<b>init</b> is bold"),
                ("2 * 3 * 4", "2 * 3 * 4"),
                ("\\*not it\\*", "*not it*"),
                ("héllo **wörld** 🦀", "héllo <b>wörld</b> 🦀"),
                ("**🦀**🦀", "<b>🦀</b>🦀"),
                ("a || b || c", "a || b || c"),
                ("~5 min, ~~~", "~5 min, ~~~"),
            ],
        );
    }

    #[test]
    fn unmatched_markers_stay_literal() {
        check(
            telegram_html,
            &[
                ("a * b", "a * b"),
                ("**open", "**open"),
                ("**open *it*", "**open <i>it</i>"),
                ("*a", "*a"),
                ("a*", "a*"),
                ("`unclosed", "`unclosed"),
                ("``x`", "``x`"),
                ("[text](no close", "[text](no close"),
                ("[text] (not a link)", "[text] (not a link)"),
                ("a **** b", "a **** b"),
                ("~~", "~~"),
                ("![", "!["),
                ("<", "&lt;"),
                ("<b>", "&lt;b&gt;"),
                ("x\\", "x\\"),
            ],
        );
    }

    #[test]
    fn telegram_links() {
        check(
            telegram_html,
            &[
                (
                    "[docs](https://e.com/a?b=1&c=2)",
                    "<a href=\"https://e.com/a?b=1&amp;c=2\">docs</a>",
                ),
                (
                    "[Rust](https://en.wikipedia.org/wiki/Rust_(programming_language))",
                    "<a href=\"https://en.wikipedia.org/wiki/Rust_(programming_language)\">Rust</a>",
                ),
                (
                    "see [**b**](https://e.com \"title\").",
                    "see <a href=\"https://e.com\"><b>b</b></a>.",
                ),
                (
                    "[`code`](https://e.com)",
                    "<a href=\"https://e.com\">code</a>",
                ),
                (
                    "<https://e.com/?a&b>",
                    "<a href=\"https://e.com/?a&amp;b\">https://e.com/?a&amp;b</a>",
                ),
                (
                    "[q](https://e.com/\"x)",
                    "<a href=\"https://e.com/&quot;x\">q</a>",
                ),
                ("[rel](./file.md)", "rel (./file.md)"),
                ("[bad](javascript:alert(1))", "bad (javascript:alert(1))"),
                (
                    "![alt](https://e.com/i.png)",
                    "<a href=\"https://e.com/i.png\">alt</a>",
                ),
                (
                    "[](https://e.com)",
                    "<a href=\"https://e.com\">https://e.com</a>",
                ),
                ("[empty]()", "empty"),
                ("*[a*](https://e.com)", "*<a href=\"https://e.com\">a*</a>"),
            ],
        );
    }

    #[test]
    fn telegram_blocks() {
        check(
            telegram_html,
            &[
                ("# Title", "<b>Title</b>"),
                ("### **Already** bold ###", "<b>Already bold</b>"),
                ("#hashtag", "#hashtag"),
                ("- one\n- two", "• one\n• two"),
                ("* one\n  * nested", "• one\n  • nested"),
                ("1. first\n2) second", "1. first\n2. second"),
                (
                    "> quoted **b**\n> more",
                    "<blockquote>quoted <b>b</b>\nmore</blockquote>",
                ),
                ("> outer\n>> inner", "<blockquote>outer\ninner</blockquote>"),
                ("---", "———"),
                ("a\r\nb\r\n\r\nc", "a\nb\n\nc"),
                ("**a\nb**", "<b>a\nb</b>"),
                (
                    "```python\nif a < b and c > d:\n    print('**x**')\n```",
                    "<pre><code class=\"language-python\">if a &lt; b and c &gt; d:\n    print('**x**')</code></pre>",
                ),
                ("```\nplain & simple\n```", "<pre>plain &amp; simple</pre>"),
                ("```bad\"lang\nx\n```", "<pre>x</pre>"),
                ("```\n```", ""),
                (
                    "- item\n  ```sh\n  ls -la\n  ```",
                    "• item\n<pre><code class=\"language-sh\">ls -la</code></pre>",
                ),
                (
                    "> see\n> ```\n> x<y\n> ```\n> done",
                    "<blockquote>see</blockquote>\n<pre>x&lt;y</pre>\n<blockquote>done</blockquote>",
                ),
                (
                    "> a\n> > ```\n> > b\n> > ```",
                    "<blockquote>a</blockquote>\n<pre>b</pre>",
                ),
            ],
        );
    }

    #[test]
    fn unterminated_fence_is_literal_text() {
        check(
            telegram_html,
            &[
                ("```rust\nlet a = b < c;", "```rust\nlet a = b &lt; c;"),
                ("```\n**x**", "```\n<b>x</b>"),
            ],
        );
        check(discord_markdown, &[("```\n#### deep", "```\n**deep**")]);
    }

    #[test]
    fn slack() {
        check(
            slack_mrkdwn,
            &[
                ("**bold** *it* ~~s~~ `c`", "*bold* _it_ ~s~ `c`"),
                ("***both***", "*_both_*"),
                ("# Head **b**", "*Head b*"),
                ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
                ("`a<b`", "`a&lt;b`"),
                ("<!channel> hi", "&lt;!channel&gt; hi"),
                (
                    "[Docs & more](https://e.com/?a=1&b=2|3)",
                    "<https://e.com/?a=1&amp;b=2%7C3|Docs &amp; more>",
                ),
                ("[**b** x](https://e.com)", "<https://e.com|b x>"),
                ("<https://e.com>", "<https://e.com>"),
                (
                    "```rust\nfn f() -> u8 {}\n```",
                    "```\nfn f() -&gt; u8 {}\n```",
                ),
                ("- a\n1. b", "• a\n1. b"),
                ("> q\n>\n> r", "> q\n>\n> r"),
                ("snake_case_name", "snake_case_name"),
                ("||s||", "||s||"),
            ],
        );
    }

    #[test]
    fn discord() {
        check(
            discord_markdown,
            &[
                ("# one\n## two\n### three", "# one\n## two\n### three"),
                ("#### four", "**four**"),
                ("###### **six**", "**six**"),
                (
                    "**b** *i* __u__ ~~s~~ ||sp|| [l](https://e.com)",
                    "**b** *i* __u__ ~~s~~ ||sp|| [l](https://e.com)",
                ),
                (
                    "```md\n#### not a heading\n```",
                    "```md\n#### not a heading\n```",
                ),
                ("a < b && c > d", "a < b && c > d"),
                ("x\r\ny", "x\ny"),
            ],
        );
    }

    #[test]
    fn plain() {
        check(
            plain_text,
            &[
                ("**bold** and *it* and ~~s~~", "bold and it and s"),
                ("# Title", "Title"),
                ("[docs](https://e.com/a?b&c)", "docs (https://e.com/a?b&c)"),
                ("<https://e.com>", "https://e.com"),
                ("[https://e.com](https://e.com)", "https://e.com"),
                ("```sh\necho **hi** <b>\n```", "echo **hi** <b>"),
                ("`a < b`", "a < b"),
                ("* one\n* two\n3. three", "- one\n- two\n3. three"),
                ("> q", "> q"),
                ("***", "---"),
                ("snake_case_name costs 5*3", "snake_case_name costs 5*3"),
                ("ünïcödé **🚀 launch**", "ünïcödé 🚀 launch"),
                ("\\_lit\\_", "_lit_"),
            ],
        );
    }

    #[test]
    fn platforms_route_to_their_dialect() {
        let md = "**a** < b";
        let cases = [
            (Platform::Telegram, "<b>a</b> &lt; b", 4096),
            (Platform::Slack, "*a* &lt; b", 40_000),
            (Platform::Discord, "**a** < b", 2000),
            (Platform::Sms, "a < b", 1600),
            (Platform::Web, "**a** < b", usize::MAX),
        ];
        for (p, want, lim) in cases {
            assert_eq!(render(p, md), want, "{p:?}");
            assert_eq!(limit(p), lim, "{p:?}");
        }
        assert_eq!(
            render(Platform::Web, "a\r\nb"),
            "a\r\nb",
            "web is untouched"
        );
    }

    /// Every character of the input survives in some form: nothing is swallowed.
    #[test]
    fn no_text_is_lost_on_hostile_input() {
        let inputs = [
            "*a *b *c *d *e *f *g *h *i *j *k *l *m *n *o *p *q *r *s *t *u",
            "[[[[[[[[[[((((((((]]]]]]]]",
            "``````````",
            "_*_*_*_*_*_*_*_*_*_*_*",
            "> > > > > > > > > > > > > deep",
            "|| ~~ ** __ `` [] () <>",
        ];
        for input in inputs {
            let out = plain_text(input);
            let letters = |s: &str| {
                s.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
            };
            assert_eq!(letters(&out), letters(input), "input: {input:?}");
            let html = telegram_html(input);
            assert!(!html.contains("<<"), "{html}");
        }
        let long = "*a ".repeat(5000);
        assert_eq!(
            plain_text(&long),
            long,
            "5000 unmatched openers stay literal"
        );
    }

    /// The Telegram output only ever contains the tags Telegram accepts, balanced.
    #[test]
    fn telegram_output_is_balanced() {
        let allowed = [
            "b",
            "i",
            "s",
            "code",
            "pre",
            "a",
            "blockquote",
            "tg-spoiler",
        ];
        let inputs = [
            "**a *b* [c `d`](https://x.y)** ~~e~~ ||f||\n> g\n```rs\nh<i>\n```",
            "# **x** _y_\n- [z](https://q.r) `<t>`",
            "***a** b*",
        ];
        for input in inputs {
            let html = telegram_html(input);
            let mut stack: Vec<String> = Vec::new();
            for part in html.split('<').skip(1) {
                let tag = part.split('>').next().unwrap_or("");
                let name: String = tag
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                assert!(allowed.contains(&name.as_str()), "tag {tag:?} in {html}");
                if tag.starts_with('/') {
                    assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "{html}");
                } else {
                    stack.push(name);
                }
            }
            assert!(stack.is_empty(), "unclosed {stack:?} in {html}");
        }
    }
}
