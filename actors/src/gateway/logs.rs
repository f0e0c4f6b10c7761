//! `logs.tail`: reading the gateway's log file by byte cursor.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

/// The `logs.tail` result: `{file, cursor, size, lines, truncated?, reset?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsTail {
    pub file: String,
    /// Byte offset to pass as `cursor` next time.
    pub cursor: u64,
    pub size: u64,
    pub lines: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The file shrank below the given cursor (rotated or truncated): read from the start.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

/// Without a cursor, the last `limit` lines (at most `max_bytes` from the end); with a
/// cursor, the complete lines written since it, at most `limit` lines / `max_bytes`.
pub fn tail_file(
    path: &Path,
    cursor: Option<u64>,
    limit: usize,
    max_bytes: u64,
) -> std::io::Result<LogsTail> {
    let file_name = path.display().to_string();
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LogsTail {
                file: file_name,
                cursor: 0,
                size: 0,
                lines: vec![],
                truncated: false,
                reset: false,
            });
        }
        Err(e) => return Err(e),
    };
    let size = f.metadata()?.len();
    let (start, reset, from_end) = match cursor {
        Some(c) if c > size => (0, true, false),
        Some(c) => (c, false, false),
        None => (size.saturating_sub(max_bytes), false, true),
    };
    let len = (size - start).min(max_bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(len as usize);
    f.take(len).read_to_end(&mut buf)?;
    // Only complete lines: a partial last line is left for the next call.
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut body = &buf[..complete];
    let mut truncated = start + (len) < size;
    if from_end && start > 0 {
        // Starting mid-file: drop the first, probably partial, line.
        match body.iter().position(|&b| b == b'\n') {
            Some(i) => body = &body[i + 1..],
            None => body = &[],
        }
        truncated = true;
    }
    let mut lines: Vec<String> = String::from_utf8_lossy(body)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut next = start + complete as u64;
    if lines.len() > limit {
        if from_end {
            lines.drain(..lines.len() - limit);
        } else {
            // Advance the cursor only past the lines returned.
            let kept: u64 = lines[..limit].iter().map(|l| l.len() as u64 + 1).sum();
            next = start + kept;
            lines.truncate(limit);
        }
        truncated = true;
    }
    Ok(LogsTail {
        file: file_name,
        cursor: next,
        size,
        lines,
        truncated,
        reset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tails_and_follows_by_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.log");
        let missing = tail_file(&path, None, 10, 1000).unwrap();
        assert_eq!((missing.size, missing.lines.len()), (0, 0));

        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "one\ntwo\nthree").unwrap();
        write!(f, "partial").unwrap();
        let t = tail_file(&path, None, 2, 1000).unwrap();
        assert_eq!(t.lines, ["two", "three"]);
        assert!(t.truncated);
        assert_eq!(t.cursor, 14, "cursor stops before the partial line");

        writeln!(f, " done\nfour").unwrap();
        let t2 = tail_file(&path, Some(t.cursor), 10, 1000).unwrap();
        assert_eq!(t2.lines, ["partial done", "four"]);
        assert!(!t2.truncated && !t2.reset);
        let t3 = tail_file(&path, Some(t2.cursor), 10, 1000).unwrap();
        assert!(t3.lines.is_empty());

        let limited = tail_file(&path, Some(0), 2, 1000).unwrap();
        assert_eq!(limited.lines, ["one", "two"]);
        assert_eq!(limited.cursor, 8);
        assert!(limited.truncated);

        let reset = tail_file(&path, Some(10_000), 10, 1000).unwrap();
        assert!(reset.reset);
        assert_eq!(reset.lines.first().map(String::as_str), Some("one"));

        let small = tail_file(&path, None, 100, 12).unwrap();
        assert_eq!(
            small.lines,
            ["four"],
            "a window starting mid-line drops that line"
        );
    }
}
