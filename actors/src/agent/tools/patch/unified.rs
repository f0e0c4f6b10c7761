//! Unified diffs (`diff -u`, `git diff`), one or several files: split into one section per
//! file by following each hunk header's line counts (a `--- ` line inside a hunk is a
//! removed line, not the next file), then each section is parsed and applied by `diffy`.

use super::{Body, Change, ChangeKind};

/// Parse `input` into one change per file.
pub(super) fn parse(input: &str) -> Result<Vec<Change>, String> {
    let mut changes = Vec::new();
    for (n, section) in split(input)?.into_iter().enumerate() {
        changes.push(parse_section(n + 1, section)?);
    }
    if changes.is_empty() {
        return Err(
            "the diff has no file sections (expected `--- a/path`, `+++ b/path`, `@@ ... @@` \
             hunks)"
                .into(),
        );
    }
    Ok(changes)
}

/// Split a multi-file diff into per-file sections, each starting at its `---` line.
fn split(input: &str) -> Result<Vec<String>, String> {
    let mut normalized = input.replace("\r\n", "\n");
    if !normalized.ends_with('\n') {
        normalized.push('\n');
    }
    let mut sections: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let (mut old_left, mut new_left) = (0usize, 0usize);
    let mut pending_plus = false;
    for (i, line) in normalized.split_inclusive('\n').enumerate() {
        if old_left > 0 || new_left > 0 {
            let body = current.as_mut().expect("inside a hunk there is a section");
            match line.as_bytes()[0] {
                b' ' | b'\n' => {
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                }
                b'-' => old_left = old_left.saturating_sub(1),
                b'+' => new_left = new_left.saturating_sub(1),
                b'\\' => {}
                _ => {
                    return Err(format!(
                        "line {}: the hunk ends early (its header promised {old_left} more old \
                         and {new_left} more new lines); fix the `@@ -a,b +c,d @@` counts",
                        i + 1
                    ));
                }
            }
            body.push_str(line);
            continue;
        }
        if line.starts_with("\\") {
            // "\ No newline at end of file" right after a hunk's last line.
            if let Some(body) = current.as_mut() {
                body.push_str(line);
            }
            continue;
        }
        if line.starts_with("--- ") {
            sections.extend(current.take());
            current = Some(line.to_owned());
            pending_plus = true;
            continue;
        }
        if pending_plus && line.starts_with("+++ ") {
            current
                .as_mut()
                .expect("`+++` follows `---`")
                .push_str(line);
            pending_plus = false;
            continue;
        }
        if line.starts_with("@@ ") {
            let Some(body) = current.as_mut() else {
                return Err(format!(
                    "line {}: a hunk without a file header; start each file with `--- a/path` \
                     and `+++ b/path`",
                    i + 1
                ));
            };
            let (old, new) = hunk_counts(line)
                .ok_or_else(|| format!("line {}: cannot read the hunk header {line:?}", i + 1))?;
            old_left = old;
            new_left = new;
            body.push_str(line);
            continue;
        }
        // Anything else (`diff --git`, `index`, mode lines, commentary) is preamble.
        pending_plus = false;
    }
    if old_left > 0 || new_left > 0 {
        return Err(format!(
            "the last hunk is short by {old_left} old and {new_left} new lines; fix the \
             `@@ -a,b +c,d @@` counts"
        ));
    }
    sections.extend(current);
    Ok(sections)
}

/// The old and new line counts of a `@@ -a[,b] +c[,d] @@` header.
fn hunk_counts(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let count = |r: &str| match r.split_once(',') {
        Some((_, n)) => n.parse().ok(),
        None => r.parse::<usize>().ok().map(|_| 1),
    };
    Some((count(old)?, count(new)?))
}

fn parse_section(n: usize, section: String) -> Result<Change, String> {
    let patch = diffy::Patch::from_str(&section).map_err(|e| format!("file section {n}: {e}"))?;
    let name = |p: Option<&str>, prefix: &str| {
        p.map(str::trim)
            .filter(|p| *p != "/dev/null")
            .map(|p| p.strip_prefix(prefix).unwrap_or(p).to_owned())
    };
    let original = name(patch.original(), "a/");
    let modified = name(patch.modified(), "b/");
    let kind = match (&original, &modified) {
        (None, None) => return Err(format!("file section {n}: no file name in `---`/`+++`")),
        (None, Some(path)) => ChangeKind::Add(
            diffy::apply("", &patch)
                .map_err(|e| format!("{path}: the new-file hunks do not apply ({e})"))?,
        ),
        (Some(_), None) => ChangeKind::Delete {
            verify: Some(Body::Unified(Hunks(section.clone()))),
        },
        (Some(from), Some(to)) => ChangeKind::Update {
            move_to: (from != to).then(|| to.clone()),
            body: Body::Unified(Hunks(section.clone())),
        },
    };
    let path = original.or(modified).expect("one name is set");
    Ok(Change { path, kind })
}

/// One file's section of a unified diff.
pub(super) struct Hunks(pub(super) String);

impl Hunks {
    pub(super) fn apply(&self, old: &str) -> Result<String, String> {
        let patch = diffy::Patch::from_str(&self.0).map_err(|e| e.to_string())?;
        diffy::apply(old, &patch).map_err(|e| {
            format!("{e}: its context or removed lines are not in the file; read the file and redo the diff")
        })
    }
}
