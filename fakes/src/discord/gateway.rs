//! The Gateway WebSocket, one task per connection: Hello, then Identify (a new session
//! and READY) or Resume (the session's missed dispatches, then RESUMED), heartbeats and
//! their ACKs, the session's dispatches as they come, and the controls the handle sends
//! (drop, close, Reconnect, Invalid Session, heartbeat request, raw frames). A connection
//! that does not heartbeat within 1.5 intervals (tokio time) is closed with 4009.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::state::{Control, OpenConn, Session, State as DiscordState};
use super::{Closed, GatewayConnection, intents};
use crate::common::Shared;
use crate::conn::Conn;

type Sh = Arc<Shared<DiscordState>>;

/// Discord's limit on a payload a client sends.
const MAX_PAYLOAD: usize = 4_096;

pub(crate) async fn upgrade(
    State(sh): State<Sh>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let uri = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let base = super::rest::gateway_url(&headers);
    ws.on_upgrade(move |socket| run(sh, socket, conn, uri, base))
}

/// What the connection does after a step.
enum Next {
    Go,
    /// Close with this code and reason (the session stays resumable unless said).
    Close(u16, &'static str),
    /// The connection is over (already closed or killed).
    End(Closed),
}

struct Connection {
    id: u64,
    sh: Sh,
    socket: WebSocket,
    session: Option<String>,
    /// The last sequence number sent on this connection.
    sent: u64,
    interval: Duration,
    deadline: Instant,
    /// `ws://<host>`, what `resume_gateway_url` is built from.
    base: String,
}

async fn run(sh: Sh, socket: WebSocket, kill: Conn, uri: String, base: String) {
    let (id, interval_ms) = sh.change(|st| {
        let id = st.gw.records.len() as u64 + 1;
        st.gw.records.push(GatewayConnection {
            id,
            uri,
            identify: None,
            resume: None,
            session_id: None,
            heartbeats: Vec::new(),
            acks: 0,
            heartbeat_timed_out: false,
            closed: None,
        });
        st.gw.open.insert(
            id,
            OpenConn {
                kill,
                controls: Default::default(),
            },
        );
        (id, st.gw.heartbeat_interval_ms)
    });
    let interval = Duration::from_millis(interval_ms);
    let mut c = Connection {
        id,
        sh: sh.clone(),
        socket,
        session: None,
        sent: 0,
        interval,
        deadline: Instant::now() + interval * 3 / 2,
        base,
    };
    let closed = c.serve(interval_ms).await;
    tracing::debug!(conn = id, ?closed, "fake discord gateway connection over");
    sh.change(|st| {
        st.gw.open.remove(&id);
        if let Some(r) = st.record(id) {
            r.closed = Some(closed.clone());
        }
        let normal = matches!(
            closed,
            Closed::ByClient {
                code: Some(1000 | 1001)
            }
        );
        for s in st.gw.sessions.values_mut() {
            if s.conn == Some(id) {
                s.conn = None;
                if normal {
                    // a clean close ends the session, as on Discord
                    s.valid = false;
                }
            }
        }
    });
}

impl Connection {
    async fn serve(&mut self, interval_ms: u64) -> Closed {
        let hello =
            json!({"op": 10, "d": {"heartbeat_interval": interval_ms}, "s": null, "t": null});
        if let Err(c) = self.send(&hello).await {
            return c;
        }
        let mut changes = self.sh.watch();
        let mut down = self.sh.shutdown.subscribe();
        loop {
            changes.borrow_and_update();
            let next = match self.flush().await {
                Next::Go => self.wait(&mut changes, &mut down).await,
                other => other,
            };
            match next {
                Next::Go => {}
                Next::Close(code, reason) => return self.close(code, reason).await,
                Next::End(c) => return c,
            }
        }
    }

    async fn wait(
        &mut self,
        changes: &mut tokio::sync::watch::Receiver<u64>,
        down: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Next {
        tokio::select! {
            frame = self.socket.recv() => match frame {
                None | Some(Err(_)) => Next::End(Closed::Dropped),
                Some(Ok(Message::Text(t))) => self.on_payload(t.as_str()).await,
                Some(Ok(Message::Binary(_))) => Next::Close(4002, "Error while decoding payload."),
                Some(Ok(Message::Close(f))) => Next::End(Closed::ByClient { code: f.map(|f| f.code) }),
                Some(Ok(_)) => Next::Go,
            },
            _ = changes.changed() => Next::Go,
            () = tokio::time::sleep_until(self.deadline) => {
                let id = self.id;
                self.sh.change(|st| {
                    if let Some(r) = st.record(id) {
                        r.heartbeat_timed_out = true;
                    }
                });
                Next::Close(4009, "Session timed out.")
            }
            () = async { let _ = down.wait_for(|d| *d).await; } => Next::Close(1001, "going away"),
        }
    }

    async fn send(&mut self, v: &Value) -> Result<(), Closed> {
        self.send_text(v.to_string()).await
    }

    async fn send_text(&mut self, text: String) -> Result<(), Closed> {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| Closed::Dropped)
    }

    async fn close(&mut self, code: u16, reason: &str) -> Closed {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.socket.send(Message::Close(Some(frame))).await;
        Closed::ByFake {
            code,
            reason: reason.to_owned(),
        }
    }

    /// Runs the controls queued for this connection, then sends the session's dispatches
    /// it has not sent yet.
    async fn flush(&mut self) -> Next {
        let (controls, events) = {
            let mut st = self.sh.lock();
            let controls: Vec<Control> = st
                .gw
                .open
                .get_mut(&self.id)
                .map(|o| o.controls.drain(..).collect())
                .unwrap_or_default();
            let events: Vec<(u64, Value)> = self
                .session
                .as_ref()
                .and_then(|s| st.gw.sessions.get(s))
                .filter(|s| s.conn == Some(self.id) && s.valid)
                .map(|s| {
                    s.log
                        .iter()
                        .filter(|(n, _)| *n > self.sent)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (controls, events)
        };
        for c in controls {
            let sent = match c {
                Control::Drop => {
                    if let Some(o) = self.sh.lock().gw.open.get(&self.id) {
                        o.kill.kill();
                    }
                    return Next::End(Closed::Dropped);
                }
                Control::Close(code, reason) => return Next::End(self.close(code, &reason).await),
                Control::Reconnect => {
                    self.send(&json!({"op": 7, "d": null, "s": null, "t": null}))
                        .await
                }
                Control::InvalidSession(resumable) => {
                    if !resumable {
                        self.invalidate();
                    }
                    self.send(&json!({"op": 9, "d": resumable, "s": null, "t": null}))
                        .await
                }
                Control::RequestHeartbeat => {
                    self.send(&json!({"op": 1, "d": null, "s": null, "t": null}))
                        .await
                }
                Control::Raw(text) => self.send_text(text).await,
            };
            if let Err(c) = sent {
                return Next::End(c);
            }
        }
        for (n, payload) in events {
            if let Err(c) = self.send(&payload).await {
                return Next::End(c);
            }
            self.sent = n;
        }
        Next::Go
    }

    fn invalidate(&mut self) {
        if let Some(s) = self.session.take() {
            self.sh.change(|st| {
                if let Some(sess) = st.gw.sessions.get_mut(&s) {
                    sess.valid = false;
                    sess.conn = None;
                }
            });
        }
    }

    async fn on_payload(&mut self, text: &str) -> Next {
        if text.len() > MAX_PAYLOAD {
            return Next::Close(4002, "Error while decoding payload.");
        }
        let Ok(p) = serde_json::from_str::<Value>(text) else {
            return Next::Close(4002, "Error while decoding payload.");
        };
        let d = p.get("d").cloned().unwrap_or(Value::Null);
        match p.get("op").and_then(Value::as_u64) {
            Some(1) => self.on_heartbeat(d).await,
            Some(2) => self.on_identify(d),
            Some(6) => self.on_resume(d).await,
            Some(3 | 4 | 8) if self.session.is_none() => Next::Close(4003, "Not authenticated."),
            Some(3 | 4 | 8) => Next::Go,
            _ => Next::Close(4001, "Unknown opcode."),
        }
    }

    async fn on_heartbeat(&mut self, d: Value) -> Next {
        self.deadline = Instant::now() + self.interval * 3 / 2;
        let id = self.id;
        let ack = self.sh.change(|st| {
            let ack = st.gw.ack_heartbeats;
            if let Some(r) = st.record(id) {
                r.heartbeats.push(d.as_u64());
                if ack {
                    r.acks += 1;
                }
            }
            ack
        });
        if ack && let Err(c) = self.send(&json!({"op": 11})).await {
            return Next::End(c);
        }
        Next::Go
    }

    fn token_ok(st: &DiscordState, d: &Value) -> bool {
        let given = d.get("token").and_then(Value::as_str).unwrap_or("");
        given.strip_prefix("Bot ").unwrap_or(given) == st.token
    }

    fn on_identify(&mut self, d: Value) -> Next {
        if self.session.is_some() {
            return Next::Close(4005, "Already authenticated.");
        }
        let id = self.id;
        let base = self.base.clone();
        let outcome = self.sh.change(|st| {
            if let Some(r) = st.record(id) {
                r.identify = Some(d.clone());
            }
            if !Self::token_ok(st, &d) {
                return Err((4004, "Authentication failed."));
            }
            let Some(wanted) = d.get("intents").and_then(Value::as_u64) else {
                return Err((4013, "Invalid intent(s)."));
            };
            if wanted & !intents::ALL != 0 {
                return Err((4013, "Invalid intent(s)."));
            }
            if wanted & intents::PRIVILEGED & !st.gw.privileged_allowed != 0 {
                return Err((4014, "Disallowed intent(s)."));
            }
            st.gw.identifies += 1;
            let session_id = format!(
                "{:032x}",
                0xfeed_0000_0000_0000u64 + st.gw.identifies * 7_919
            );
            let mut session = Session {
                intents: wanted,
                seq: 1,
                log: Vec::new(),
                valid: true,
                conn: Some(id),
            };
            let guilds: Vec<Value> = {
                let mut g: Vec<&str> = st
                    .channels
                    .values()
                    .filter_map(|c| match &c.kind {
                        super::ChannelKind::Guild { guild_id } => Some(guild_id.as_str()),
                        super::ChannelKind::Dm { .. } => None,
                    })
                    .collect();
                g.sort_unstable();
                g.dedup();
                g.into_iter()
                    .map(|id| json!({"id": id, "unavailable": true}))
                    .collect()
            };
            let ready = json!({
                "op": 0, "s": 1, "t": "READY",
                "d": {
                    "v": 10,
                    "user": st.bot.to_json(),
                    "guilds": guilds,
                    "session_id": session_id,
                    "resume_gateway_url": format!("{base}/resume"),
                    "session_type": "normal",
                    "private_channels": [],
                    "shard": d.get("shard").cloned().unwrap_or(json!([0, 1])),
                    "application": {"id": st.app_id, "flags": 0},
                },
            });
            session.log.push((1, ready));
            st.gw.sessions.insert(session_id.clone(), session);
            if let Some(r) = st.record(id) {
                r.session_id = Some(session_id.clone());
            }
            Ok(session_id)
        });
        match outcome {
            Ok(s) => {
                self.session = Some(s);
                self.sent = 0;
                Next::Go
            }
            Err((code, reason)) => Next::Close(code, reason),
        }
    }

    async fn on_resume(&mut self, d: Value) -> Next {
        if self.session.is_some() {
            return Next::Close(4005, "Already authenticated.");
        }
        let id = self.id;
        let session_id = d
            .get("session_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let outcome = self.sh.change(|st| {
            if let Some(r) = st.record(id) {
                r.resume = Some(d.clone());
            }
            if !Self::token_ok(st, &d) {
                return Err(Some((4004, "Authentication failed.")));
            }
            let Some(s) = st.gw.sessions.get_mut(&session_id).filter(|s| s.valid) else {
                return Err(None);
            };
            if seq > s.seq {
                return Err(Some((4007, "Invalid seq.")));
            }
            let previous = s.conn.replace(id);
            s.seq += 1;
            let resumed = json!({"op": 0, "s": s.seq, "t": "RESUMED", "d": {}});
            s.log.push((s.seq, resumed));
            if let Some(old) = previous.filter(|o| *o != id)
                && let Some(o) = st.gw.open.get_mut(&old)
            {
                o.controls.push_back(Control::Drop);
            }
            if let Some(r) = st.record(id) {
                r.session_id = Some(session_id.clone());
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                self.session = Some(session_id);
                self.sent = seq;
                Next::Go
            }
            Err(Some((code, reason))) => Next::Close(code, reason),
            Err(None) => {
                match self
                    .send(&json!({"op": 9, "d": false, "s": null, "t": null}))
                    .await
                {
                    Ok(()) => Next::Go,
                    Err(c) => Next::End(c),
                }
            }
        }
    }
}
