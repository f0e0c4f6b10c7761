//! OpenClaw's (Codex's) patch envelope, the format of OpenClaw's `apply_patch` `input`
//! (`docs/tools/apply-patch.md` in openclaw/openclaw):
//!
//! ```text
//! *** Begin Patch
//! *** Add File: path/to/new.txt
//! +line 1
//! *** Update File: src/app.ts
//! *** Move to: src/renamed.ts        (optional, right after the Update header)
//! @@ optional line to find first
//!  context line
//! -old line
//! +new line
//! *** End of File                    (optional: the chunk ends at the end of the file)
//! *** Delete File: obsolete.txt
//! *** End Patch
//! ```
//!
//! A chunk's old lines (context and `-` lines) are searched for from where the previous
//! chunk ended: exactly first, then ignoring trailing whitespace, then ignoring surrounding
//! whitespace (Codex's `seek_sequence`). A chunk with no old lines inserts its `+` lines
//! after its `@@` line, or at the end of the file when it has none.

use super::{Body, Change, ChangeKind};

pub(super) const BEGIN: &str = "*** Begin Patch";
const END: &str = "*** End Patch";
const ADD: &str = "*** Add File: ";
const DELETE: &str = "*** Delete File: ";
const UPDATE: &str = "*** Update File: ";
const MOVE: &str = "*** Move to: ";
const EOF: &str = "*** End of File";

/// One `@@` chunk of an Update.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Chunk {
    /// The text after `@@`: a line to find before looking for the old lines.
    context: Option<String>,
    old: Vec<String>,
    new: Vec<String>,
    at_eof: bool,
}

pub(super) fn parse(input: &str) -> Result<Vec<Change>, String> {
    let text = input.replace("\r\n", "\n");
    let lines: Vec<&str> = text.trim().lines().collect();
    if lines.first().map(|l| l.trim()) != Some(BEGIN) {
        return Err(format!("the patch must start with `{BEGIN}`"));
    }
    if lines.last().map(|l| l.trim()) != Some(END) {
        return Err(format!("the patch must end with `{END}`"));
    }
    let body = &lines[1..lines.len() - 1];
    let mut changes = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let line = body[i];
        let lineno = i + 2;
        if let Some(path) = line.strip_prefix(ADD) {
            i += 1;
            let mut content = String::new();
            while i < body.len() && !body[i].starts_with("*** ") {
                let Some(added) = body[i].strip_prefix('+') else {
                    return Err(format!(
                        "line {}: every line of an added file starts with `+`, got {:?}",
                        i + 2,
                        body[i]
                    ));
                };
                content.push_str(added);
                content.push('\n');
                i += 1;
            }
            changes.push(Change {
                path: path.trim().to_owned(),
                kind: ChangeKind::Add(content),
            });
        } else if let Some(path) = line.strip_prefix(DELETE) {
            i += 1;
            changes.push(Change {
                path: path.trim().to_owned(),
                kind: ChangeKind::Delete { verify: None },
            });
        } else if let Some(path) = line.strip_prefix(UPDATE) {
            let path = path.trim().to_owned();
            i += 1;
            let mut move_to = None;
            if let Some(to) = body.get(i).and_then(|l| l.strip_prefix(MOVE)) {
                move_to = Some(to.trim().to_owned());
                i += 1;
            }
            let (chunks, next) = parse_chunks(body, i, &path)?;
            i = next;
            changes.push(Change {
                path,
                kind: ChangeKind::Update {
                    move_to,
                    body: Body::Envelope(chunks),
                },
            });
        } else if line.trim().is_empty() {
            i += 1;
        } else {
            return Err(format!(
                "line {lineno}: expected `*** Add File:`, `*** Update File:` or `*** Delete \
                 File:`, got {line:?}"
            ));
        }
    }
    if changes.is_empty() {
        return Err("the patch changes no files".into());
    }
    Ok(changes)
}

/// The chunks of one Update, from `body[start]` to the next file header.
fn parse_chunks(body: &[&str], start: usize, path: &str) -> Result<(Vec<Chunk>, usize), String> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut i = start;
    while i < body.len() {
        let line = body[i];
        if line.starts_with("*** ") && line.trim() != EOF {
            break;
        }
        if line.trim() == EOF {
            match chunks.last_mut() {
                Some(c) => c.at_eof = true,
                None => return Err(format!("line {}: `{EOF}` before any change", i + 2)),
            }
        } else if let Some(rest) = line.strip_prefix("@@") {
            let context = rest.trim();
            chunks.push(Chunk {
                context: (!context.is_empty()).then(|| context.to_owned()),
                ..Chunk::default()
            });
        } else {
            if chunks.is_empty() || chunks.last().is_some_and(|c| c.at_eof) {
                chunks.push(Chunk::default());
            }
            let chunk = chunks.last_mut().expect("pushed above");
            if let Some(l) = line.strip_prefix('+') {
                chunk.new.push(l.to_owned());
            } else if let Some(l) = line.strip_prefix('-') {
                chunk.old.push(l.to_owned());
            } else if let Some(l) = line.strip_prefix(' ') {
                chunk.old.push(l.to_owned());
                chunk.new.push(l.to_owned());
            } else if line.is_empty() {
                chunk.old.push(String::new());
                chunk.new.push(String::new());
            } else {
                return Err(format!(
                    "line {}: in `{UPDATE}{path}`, a changed line starts with ` `, `-` or `+`, \
                     got {line:?}",
                    i + 2
                ));
            }
        }
        i += 1;
    }
    chunks.retain(|c| !(c.old.is_empty() && c.new.is_empty()));
    if chunks.is_empty() {
        return Err(format!("`{UPDATE}{path}` has no changes"));
    }
    Ok((chunks, i))
}

/// Apply `chunks` to `old`; the result always ends with a newline.
pub(super) fn apply(chunks: &[Chunk], old: &str) -> Result<String, String> {
    let mut lines: Vec<String> = old.split('\n').map(str::to_owned).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let mut replacements: Vec<(usize, usize, &[String])> = Vec::new();
    let mut cursor = 0;
    for (n, chunk) in chunks.iter().enumerate() {
        if let Some(context) = &chunk.context {
            let at =
                seek(&lines, std::slice::from_ref(context), cursor, false).ok_or_else(|| {
                    format!(
                        "chunk {}: the `@@ {context}` line is not in the file",
                        n + 1
                    )
                })?;
            cursor = at + 1;
        }
        if chunk.old.is_empty() {
            let at = if chunk.context.is_some() {
                cursor
            } else {
                lines.len()
            };
            replacements.push((at, 0, &chunk.new));
            continue;
        }
        let mut old_lines: &[String] = &chunk.old;
        let mut new_lines: &[String] = &chunk.new;
        let mut found = seek(&lines, old_lines, cursor, chunk.at_eof);
        if found.is_none() && old_lines.last().is_some_and(String::is_empty) {
            // A trailing blank line in the chunk that the file does not have.
            old_lines = &old_lines[..old_lines.len() - 1];
            if new_lines.last().is_some_and(String::is_empty) {
                new_lines = &new_lines[..new_lines.len() - 1];
            }
            found = seek(&lines, old_lines, cursor, chunk.at_eof);
        }
        let at = found.ok_or_else(|| {
            let shown: Vec<&str> = chunk.old.iter().take(5).map(String::as_str).collect();
            format!(
                "chunk {}: these lines are not in the file (read it and copy them exactly):\n{}",
                n + 1,
                shown.join("\n")
            )
        })?;
        replacements.push((at, old_lines.len(), new_lines));
        cursor = at + old_lines.len();
    }
    for (at, len, new) in replacements.into_iter().rev() {
        lines.splice(at..at + len, new.iter().cloned());
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}

/// Where `pattern` occurs in `lines` at or after `start` (from the end when `eof`), trying
/// exact, trailing-whitespace-insensitive, then whitespace-insensitive comparison.
fn seek(lines: &[String], pattern: &[String], start: usize, eof: bool) -> Option<usize> {
    if pattern.is_empty() {
        return Some(start);
    }
    if pattern.len() > lines.len() {
        return None;
    }
    let last = lines.len() - pattern.len();
    let from = if eof { last } else { start };
    let passes: [fn(&str, &str) -> bool; 3] = [
        |a, b| a == b,
        |a, b| a.trim_end() == b.trim_end(),
        |a, b| a.trim() == b.trim(),
    ];
    passes.iter().find_map(|eq| {
        (from..=last).find(|&i| {
            pattern
                .iter()
                .zip(&lines[i..])
                .all(|(p, l)| eq(l.as_str(), p.as_str()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update_chunks(patch: &str) -> Vec<Chunk> {
        let mut changes = parse(patch).unwrap();
        match changes.remove(0).kind {
            ChangeKind::Update {
                body: Body::Envelope(chunks),
                ..
            } => chunks,
            _ => panic!("not an update"),
        }
    }

    #[test]
    fn parses_all_operations() {
        let changes = parse(
            "*** Begin Patch\n*** Add File: new.txt\n+a\n+b\n*** Delete File: old.txt\n\
             *** Update File: src/x.rs\n*** Move to: src/y.rs\n@@ fn main\n-old\n+new\n\
             *** End of File\n*** End Patch\n",
        )
        .unwrap();
        assert_eq!(changes.len(), 3);
        assert!(matches!(&changes[0].kind, ChangeKind::Add(c) if c == "a\nb\n"));
        assert_eq!(changes[0].path, "new.txt");
        assert!(matches!(
            changes[1].kind,
            ChangeKind::Delete { verify: None }
        ));
        match &changes[2].kind {
            ChangeKind::Update {
                move_to,
                body: Body::Envelope(chunks),
            } => {
                assert_eq!(move_to.as_deref(), Some("src/y.rs"));
                assert_eq!(
                    chunks[0],
                    Chunk {
                        context: Some("fn main".into()),
                        old: vec!["old".into()],
                        new: vec!["new".into()],
                        at_eof: true,
                    }
                );
            }
            _ => panic!("not an update"),
        }
    }

    #[test]
    fn rejects_malformed_envelopes() {
        assert!(
            parse("*** Update File: x\n")
                .err()
                .unwrap()
                .contains("must start")
        );
        assert!(
            parse("*** Begin Patch\n*** Add File: x\n+a\n")
                .err()
                .unwrap()
                .contains("must end")
        );
        let e = parse("*** Begin Patch\nhello\n*** End Patch")
            .err()
            .unwrap();
        assert!(
            e.contains("line 2") && e.contains("expected `*** Add File:`"),
            "{e}"
        );
        let e = parse("*** Begin Patch\n*** Update File: x\n*** End Patch")
            .err()
            .unwrap();
        assert!(e.contains("has no changes"), "{e}");
    }

    #[test]
    fn applies_chunks_in_order_with_context_and_whitespace_tolerance() {
        let chunks = update_chunks(
            "*** Begin Patch\n*** Update File: f\n@@ fn b\n-    x = 1   \n+    x = 2\n@@\n-end\n+END\n*** End Patch",
        );
        let old = "fn a\n    x = 1\nfn b\n    x = 1\nend\n";
        assert_eq!(
            apply(&chunks, old).unwrap(),
            "fn a\n    x = 1\nfn b\n    x = 2\nEND\n"
        );
        let chunks = update_chunks("*** Begin Patch\n*** Update File: f\n-nope\n+x\n*** End Patch");
        let e = apply(&chunks, old).err().unwrap();
        assert!(e.contains("chunk 1") && e.contains("nope"), "{e}");
    }

    #[test]
    fn pure_insertions_go_after_the_context_line_or_at_the_end() {
        let chunks =
            update_chunks("*** Begin Patch\n*** Update File: f\n@@ a\n+inserted\n*** End Patch");
        assert_eq!(apply(&chunks, "a\nb\n").unwrap(), "a\ninserted\nb\n");
        let chunks = update_chunks("*** Begin Patch\n*** Update File: f\n@@\n+tail\n*** End Patch");
        assert_eq!(apply(&chunks, "a\nb").unwrap(), "a\nb\ntail\n");
    }
}
