//! A gateway on 127.0.0.1:0 and a minimal WebSocket client speaking the real wire format.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pincer_actors::gateway::{
    AuthPolicy, CallContext, GatewayActor, GatewayArgs, GatewayInfo, GatewayListener, GatewayMsg,
    GatewaySettings, MemoryConnector, MethodRegistry, Metrics, memory_transport, methods,
};
use pincer_actors::protocol::{MSGPACK_SUBPROTOCOL, scopes};
use ractor::ActorRef;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "test-token-0123456789";

pub struct TestGateway {
    pub addr: SocketAddr,
    /// Set for in-memory gateways: how clients reach them.
    pub connector: Option<MemoryConnector>,
    pub gateway: ActorRef<GatewayMsg>,
    pub handle: tokio::task::JoinHandle<()>,
    pub metrics: Metrics,
    /// How many times the test method `test.effect` really ran.
    pub effects: Arc<AtomicUsize>,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(GatewaySettings::default(), AuthPolicy::Token(TOKEN.into())).await
    }

    pub async fn start_with(settings: GatewaySettings, auth: AuthPolicy) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener.into(), None, settings, auth).await
    }

    /// A gateway reached through in-memory streams: no kernel between client and gateway,
    /// so tests under paused tokio time see every byte without real time passing.
    pub async fn start_in_memory(settings: GatewaySettings) -> Self {
        let (listener, connector) = memory_transport("127.0.0.1:1".parse().unwrap());
        Self::start_on(
            GatewayListener::Memory(listener),
            Some(connector),
            settings,
            AuthPolicy::Token(TOKEN.into()),
        )
        .await
    }

    async fn start_on(
        listener: GatewayListener,
        connector: Option<MemoryConnector>,
        settings: GatewaySettings,
        auth: AuthPolicy,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let info = GatewayInfo::default();
        let mut registry = MethodRegistry::new();
        methods::register(&mut registry, &info, methods::default_health(info.clone()));
        let effects = Arc::new(AtomicUsize::new(0));
        let counter = effects.clone();
        registry.side_effecting(
            "test.effect",
            scopes::WRITE,
            move |_c: CallContext, p: Value| {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(json!({"run": n, "params": p}))
                }
            },
        );
        registry.method(
            "test.admin",
            scopes::ADMIN,
            |_c: CallContext, _p: Value| async { Ok(json!({"admin": true})) },
        );
        let metrics = Metrics::new();
        let args = GatewayArgs {
            listener,
            settings,
            info,
            auth,
            registry: Arc::new(registry),
            metrics: metrics.clone(),
            health: None,
            routes: None,
        };
        let (gateway, handle) = GatewayActor::start(args, None).await.unwrap();
        Self {
            addr,
            connector,
            gateway,
            handle,
            metrics,
            effects,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub async fn client(&self) -> Client {
        match &self.connector {
            Some(c) => Client::open_memory(c).await,
            None => Client::open(&self.url(), false).await,
        }
    }

    /// A client that has completed the handshake with the right token.
    pub async fn connected(&self) -> Client {
        let mut c = self.client().await;
        let hello = c.connect(connect_params(3, 4, Some(TOKEN), None)).await;
        assert_eq!(hello["ok"], true, "handshake failed: {hello}");
        c
    }

    pub async fn stop(self) {
        self.gateway.stop(None);
        self.handle.await.unwrap();
    }

    /// A raw HTTP/1.1 GET; returns (status line, body).
    pub async fn http_get(&self, path: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_owned(), body.to_owned())
    }
}

pub fn connect_params(min: u32, max: u32, token: Option<&str>, scopes: Option<Vec<&str>>) -> Value {
    let mut p = json!({
        "minProtocol": min,
        "maxProtocol": max,
        "client": {"id": "test", "version": "0.0.1", "platform": "linux", "mode": "test"},
    });
    if let Some(t) = token {
        p["auth"] = json!({"token": t});
    }
    if let Some(s) = scopes {
        p["scopes"] = json!(s);
    }
    p
}

/// Either transport, so one client type serves TCP and in-memory gateways.
pub type ClientIo = tokio_util_either::Io;

pub mod tokio_util_either {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
    use tokio_tungstenite::MaybeTlsStream;

    pub enum Io {
        Tcp(MaybeTlsStream<tokio::net::TcpStream>),
        Memory(DuplexStream),
    }

    impl AsyncRead for Io {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                Io::Memory(s) => Pin::new(s).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for Io {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            match self.get_mut() {
                Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                Io::Memory(s) => Pin::new(s).poll_write(cx, buf),
            }
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                Io::Tcp(s) => Pin::new(s).poll_flush(cx),
                Io::Memory(s) => Pin::new(s).poll_flush(cx),
            }
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                Io::Memory(s) => Pin::new(s).poll_shutdown(cx),
            }
        }
    }
}

pub struct Client {
    pub ws: WebSocketStream<ClientIo>,
    pub msgpack: bool,
    next_id: u64,
    /// Events received while waiting for a response.
    pub events: Vec<Value>,
}

/// What came off the socket.
#[derive(Debug)]
pub enum Got {
    Frame(Value),
    Closed(Option<CloseFrame>),
}

impl Client {
    pub async fn open(url: &str, msgpack: bool) -> Self {
        let mut req = url.into_client_request().unwrap();
        if msgpack {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                MSGPACK_SUBPROTOCOL.parse().unwrap(),
            );
        }
        let tcp = TcpStream::connect(req.uri().authority().unwrap().as_str())
            .await
            .unwrap();
        tcp.set_nodelay(true).unwrap();
        let io = ClientIo::Tcp(MaybeTlsStream::Plain(tcp));
        let (ws, resp) = tokio_tungstenite::client_async(req, io).await.unwrap();
        if msgpack {
            assert_eq!(
                resp.headers().get("Sec-WebSocket-Protocol").unwrap(),
                MSGPACK_SUBPROTOCOL
            );
        }
        Self {
            ws,
            msgpack,
            next_id: 0,
            events: Vec::new(),
        }
    }

    pub async fn open_memory(connector: &MemoryConnector) -> Self {
        let io = ClientIo::Memory(connector.connect().await.expect("gateway accepts"));
        let (ws, _) = tokio_tungstenite::client_async("ws://127.0.0.1:1/", io)
            .await
            .unwrap();
        Self {
            ws,
            msgpack: false,
            next_id: 0,
            events: Vec::new(),
        }
    }

    pub async fn send_value(&mut self, v: &Value) {
        let msg = if self.msgpack {
            Message::Binary(rmp_serde::to_vec_named(v).unwrap().into())
        } else {
            Message::Text(v.to_string().into())
        };
        self.ws.send(msg).await.unwrap();
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// Next frame or close, failing the test after 5 s (of tokio time) of silence.
    pub async fn recv(&mut self) -> Got {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("no frame from the gateway within 5 s")
    }

    pub async fn recv_within(&mut self, d: Duration) -> Option<Got> {
        let next = tokio::time::timeout(d, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return Got::Frame(serde_json::from_str(&t).unwrap());
                    }
                    Some(Ok(Message::Binary(b))) => {
                        return Got::Frame(rmp_serde::from_slice(&b).unwrap());
                    }
                    Some(Ok(Message::Close(f))) => return Got::Closed(f),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Got::Closed(None),
                }
            }
        })
        .await;
        next.ok()
    }

    pub async fn frame(&mut self) -> Value {
        match self.recv().await {
            Got::Frame(v) => v,
            Got::Closed(f) => panic!("socket closed: {f:?}"),
        }
    }

    /// Expects the socket to close; returns (code, reason).
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.recv().await {
                Got::Frame(_) => continue,
                Got::Closed(Some(f)) => return (f.code.into(), f.reason.to_string()),
                Got::Closed(None) => return (1006, String::new()),
            }
        }
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let mut frame = json!({"type": "req", "id": id, "method": method});
        if !params.is_null() {
            frame["params"] = params;
        }
        self.send_value(&frame).await;
        self.response_to(&id).await
    }

    pub async fn response_to(&mut self, id: &str) -> Value {
        loop {
            let v = self.frame().await;
            if v["type"] == "res" && v["id"] == id {
                return v;
            }
            assert_eq!(v["type"], "event", "unexpected frame {v}");
            self.events.push(v);
        }
    }

    /// Reads the challenge, sends `connect`, returns the response frame.
    pub async fn connect(&mut self, params: Value) -> Value {
        let challenge = self.frame().await;
        assert_eq!(challenge["event"], "connect.challenge", "{challenge}");
        self.request("connect", params).await
    }
}
