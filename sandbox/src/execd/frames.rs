//! execd's frames (pure): encoding requests, decoding answers; the protocol is described
//! in the parent module and at the top of `execd/execd.c`.

use bytes::Bytes;

use crate::exec::{ExecRequest, OutputKind};

/// The largest frame accepted from execd.
const MAX_FRAME: usize = 64 << 20;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// Killed at its deadline.
    pub timed_out: bool,
    /// Killed on request ([`ProcessControl::kill`](super::ProcessControl::kill), or its
    /// handle dropped).
    pub killed: bool,
    /// Output bytes dropped over the request's `max_output`.
    pub dropped: u64,
}

impl ExitStatus {
    /// The code a shell would report: the exit code, or 128 + the signal.
    pub fn shell_code(&self) -> Option<i64> {
        match (self.code, self.signal) {
            (Some(c), _) => Some(i64::from(c)),
            (None, Some(s)) => Some(128 + i64::from(s)),
            (None, None) => None,
        }
    }
}

/// What execd says about one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        pid: u32,
    },
    Output(OutputKind, Bytes),
    Exited(ExitStatus),
    /// It did not start (or execd went away, or its handle stopped listening): the
    /// message says why; nothing follows.
    Failed(String),
}

/// One frame from execd.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame {
    Hello { version: u32, pid: u32 },
    Cmd(u32, Event),
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn frame(kind: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&(5 + payload.len() as u32).to_le_bytes());
    f.push(kind);
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// The `R` frame for a request.
pub(super) fn run_frame(
    id: u32,
    req: &ExecRequest,
    token: &str,
    stdin: bool,
    max_output: u64,
) -> Vec<u8> {
    let mut p = Vec::new();
    let ms = req.timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u32;
    p.extend_from_slice(&ms.to_le_bytes());
    p.push(u8::from(stdin));
    p.extend_from_slice(&max_output.to_le_bytes());
    put_str(&mut p, token);
    put_str(&mut p, req.workdir.as_deref().unwrap_or(""));
    p.extend_from_slice(&(req.cmd.len() as u32).to_le_bytes());
    for a in &req.cmd {
        put_str(&mut p, a);
    }
    p.extend_from_slice(&(req.env.len() as u32).to_le_bytes());
    for (k, v) in &req.env {
        put_str(&mut p, &format!("{k}={v}"));
    }
    frame(b'R', id, &p)
}

/// Reassembles execd's stdout into frames.
#[derive(Default)]
pub(super) struct Decoder {
    pub(super) buf: Vec<u8>,
}

impl Decoder {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed, `Err` when the stream
    /// is not execd's protocol (then the buffer holds what came, for the message).
    pub(super) fn next(&mut self) -> Result<Option<Frame>, String> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
        if !(5..=MAX_FRAME).contains(&len) {
            return Err(format!("bad frame length {len}"));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
        let (kind, id, p) = (body[0], u32_at(&body, 1), &body[5..]);
        let need = |n: usize| match p.len() >= n {
            true => Ok(()),
            false => Err(format!("short `{}` frame", kind as char)),
        };
        let event = match kind {
            b'H' => {
                need(8)?;
                return Ok(Some(Frame::Hello {
                    version: u32_at(p, 0),
                    pid: u32_at(p, 4),
                }));
            }
            b'S' => {
                need(4)?;
                Event::Started { pid: u32_at(p, 0) }
            }
            b'O' => Event::Output(OutputKind::Stdout, Bytes::copy_from_slice(p)),
            b'E' => Event::Output(OutputKind::Stderr, Bytes::copy_from_slice(p)),
            b'X' => {
                need(14)?;
                let value = u32_at(p, 1) as i32;
                let signaled = p[0] == 1;
                Event::Exited(ExitStatus {
                    code: (!signaled).then_some(value),
                    signal: signaled.then_some(value),
                    timed_out: p[5] & 1 != 0,
                    killed: p[5] & 2 != 0,
                    dropped: u64::from_le_bytes(p[6..14].try_into().expect("8 bytes")),
                })
            }
            b'F' => Event::Failed(String::from_utf8_lossy(p).into_owned()),
            other => return Err(format!("unknown frame type {other:#04x}")),
        };
        Ok(Some(Frame::Cmd(id, event)))
    }
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::PROTOCOL_VERSION;
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        // One byte at a time: frames split anywhere reassemble.
        for b in bytes {
            d.push(&[*b]);
            while let Some(f) = d.next().unwrap() {
                out.push(f);
            }
        }
        out
    }

    #[test]
    fn frames_decode_across_chunk_boundaries() {
        let mut x = vec![1u8];
        x.extend_from_slice(&9i32.to_le_bytes());
        x.push(3);
        x.extend_from_slice(&7u64.to_le_bytes());
        let mut hello = PROTOCOL_VERSION.to_le_bytes().to_vec();
        hello.extend_from_slice(&42u32.to_le_bytes());
        let stream = [
            frame(b'H', 0, &hello),
            frame(b'S', 5, &77u32.to_le_bytes()),
            frame(b'O', 5, b"out"),
            frame(b'E', 5, b""),
            frame(b'X', 5, &x),
            frame(b'F', 6, b"fork: no"),
        ]
        .concat();
        assert_eq!(
            decode_all(&stream),
            vec![
                Frame::Hello {
                    version: PROTOCOL_VERSION,
                    pid: 42
                },
                Frame::Cmd(5, Event::Started { pid: 77 }),
                Frame::Cmd(
                    5,
                    Event::Output(OutputKind::Stdout, Bytes::from_static(b"out"))
                ),
                Frame::Cmd(5, Event::Output(OutputKind::Stderr, Bytes::new())),
                Frame::Cmd(
                    5,
                    Event::Exited(ExitStatus {
                        code: None,
                        signal: Some(9),
                        timed_out: true,
                        killed: true,
                        dropped: 7
                    })
                ),
                Frame::Cmd(6, Event::Failed("fork: no".into())),
            ]
        );
    }

    #[test]
    fn what_is_not_a_frame_is_an_error_not_a_hang() {
        let mut d = Decoder::default();
        d.push(b"OCI runtime exec failed: no such file");
        assert!(d.next().unwrap_err().contains("bad frame length"));
        let mut d = Decoder::default();
        d.push(&frame(b'Z', 1, b""));
        assert!(d.next().unwrap_err().contains("unknown frame type"));
        let mut d = Decoder::default();
        d.push(&frame(b'X', 1, b"short"));
        assert!(d.next().unwrap_err().contains("short"));
    }

    #[test]
    fn run_frames_carry_the_request() {
        let req = ExecRequest {
            workdir: Some("/w".into()),
            env: vec![("A".into(), "b c".into())],
            timeout: Duration::from_millis(1500),
            ..ExecRequest::new(["sh", "-c", "x"])
        };
        let f = run_frame(3, &req, "tok", true, 10);
        assert_eq!(u32_at(&f, 0) as usize, f.len() - 4);
        assert_eq!((f[4], u32_at(&f, 5)), (b'R', 3));
        let p = &f[9..];
        assert_eq!(u32_at(p, 0), 1500);
        assert_eq!(p[4], 1);
        assert_eq!(u64::from_le_bytes(p[5..13].try_into().unwrap()), 10);
        let mut rest = &p[13..];
        let mut strs = Vec::new();
        let take = |n: &mut &[u8]| {
            let l = u32_at(n, 0) as usize;
            let s = String::from_utf8(n[4..4 + l].to_vec()).unwrap();
            *n = &n[4 + l..];
            s
        };
        strs.push(take(&mut rest));
        strs.push(take(&mut rest));
        assert_eq!(strs, ["tok", "/w"]);
        assert_eq!(u32_at(rest, 0), 3);
        rest = &rest[4..];
        let argv: Vec<String> = (0..3).map(|_| take(&mut rest)).collect();
        assert_eq!(argv, ["sh", "-c", "x"]);
        assert_eq!(u32_at(rest, 0), 1);
        rest = &rest[4..];
        assert_eq!(take(&mut rest), "A=b c");
        assert!(rest.is_empty());
    }

    #[test]
    fn shell_codes_follow_the_shell() {
        let exit = |code, signal| ExitStatus {
            code,
            signal,
            timed_out: false,
            killed: false,
            dropped: 0,
        };
        assert_eq!(exit(Some(3), None).shell_code(), Some(3));
        assert_eq!(exit(None, Some(9)).shell_code(), Some(137));
    }
}
