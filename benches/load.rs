//! The gateway load tool: start-up time, idle memory, `health` throughput and shutdown of
//! a real `pincer gateway` process, driven over loopback WebSockets.
//!
//! ```text
//! cargo bench --bench load                      # all measurements, defaults below
//! cargo bench --bench load -- --secs 10 --conns 1,100 --inflight 1,32 --starts 20
//! ```
//! Every run uses a fresh temporary state directory and a random port on 127.0.0.1; the
//! load stops by itself after `--secs` per scenario. Results print as a Markdown table
//! for docs/PERFORMANCE.md.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use pincer::client::{CallOptions, Session, Ws};
use pincer_actors::protocol::ConnectAuth;

use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "load-test-token-0123456789abcdef";

struct Opts {
    secs: u64,
    conns: Vec<usize>,
    inflight: Vec<usize>,
    starts: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        secs: 5,
        conns: vec![1, 100],
        inflight: vec![1, 32],
        starts: 20,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let list = |s: &str| {
        s.split(',')
            .map(|x| x.trim().parse().expect("a number"))
            .collect::<Vec<usize>>()
    };
    while i < args.len() {
        match args[i].as_str() {
            "--secs" => o.secs = args[i + 1].parse().expect("--secs N"),
            "--conns" => o.conns = list(&args[i + 1]),
            "--inflight" => o.inflight = list(&args[i + 1]),
            "--starts" => o.starts = args[i + 1].parse().expect("--starts N"),
            // cargo bench passes --bench; ignore anything else it adds
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

struct Gateway {
    child: Child,
    addr: String,
    _home: tempfile::TempDir,
}

impl Gateway {
    /// Starts `pincer gateway --port 0` and returns once it printed its address, with
    /// the time that took.
    fn start() -> (Self, Duration) {
        let home = tempfile::tempdir().expect("temp dir");
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pincer"))
            .args(["gateway", "--port", "0", "--log-level", "warn"])
            .env("PINCER_HOME", home.path())
            .env("PINCER_GATEWAY_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pincer");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("gateway exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.split("listening on ws://").nth(1) {
                break rest.split(['/', ' ']).next().expect("address").to_owned();
            }
        };
        let elapsed = started.elapsed();
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (
            Self {
                child,
                addr,
                _home: home,
            },
            elapsed,
        )
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM, then the time until exit and the exit code.
    fn stop(mut self) -> (Duration, Option<i32>) {
        let started = Instant::now();
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().expect("wait");
        (started.elapsed(), status.code())
    }
}

async fn connect(addr: &str) -> Ws {
    let opts = CallOptions {
        url: format!("ws://{addr}/"),
        auth: ConnectAuth {
            token: Some(TOKEN.into()),
            ..Default::default()
        },
        timeout: Duration::from_secs(10),
        scopes: None,
    };
    Session::connect(&opts)
        .await
        .expect("handshake")
        .into_inner()
}

/// Sends `health` requests keeping `inflight` outstanding until `stop`; counts responses.
async fn drive(mut ws: Ws, inflight: usize, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let req = Message::Text(r#"{"type":"req","id":"h","method":"health"}"#.into());
    let mut outstanding = 0;
    loop {
        // Queue the whole window, then write it with one flush, as a pipelining client would.
        let mut queued = false;
        while outstanding < inflight && !stop.load(Ordering::Relaxed) {
            ws.feed(req.clone()).await.unwrap();
            outstanding += 1;
            queued = true;
        }
        if queued {
            ws.flush().await.unwrap();
        }
        if outstanding == 0 {
            break;
        }
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if t.as_str().starts_with(r#"{"type":"res""#) {
                    outstanding -= 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Ok(_)) => {}
            _ => panic!("connection lost under load"),
        }
    }
}

fn main() {
    let opts = parse_opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "## pincer gateway load run ({} cores)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    let mut starts = Vec::new();
    let mut rss = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..opts.starts {
        let (gw, t) = Gateway::start();
        starts.push(t);
        std::thread::sleep(Duration::from_millis(300));
        rss.push(gw.rss_kib());
        let (stop, code) = gw.stop();
        assert_eq!(code, Some(0), "gateway exit code on SIGTERM");
        stops.push(stop);
    }
    starts.sort();
    rss.sort();
    stops.sort();
    let p = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!("| measurement | median | p90 | min | max |\n|---|---|---|---|---|");
    println!(
        "| start-up to listening ({} runs) | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        starts.len(),
        ms(p(&starts, 0.5)),
        ms(p(&starts, 0.9)),
        ms(starts[0]),
        ms(*starts.last().unwrap())
    );
    println!(
        "| idle RSS 300 ms after start | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        rss[rss.len() / 2] as f64 / 1024.0,
        rss[(rss.len() - 1) * 9 / 10] as f64 / 1024.0,
        rss[0] as f64 / 1024.0,
        *rss.last().unwrap() as f64 / 1024.0
    );
    println!(
        "| SIGTERM to exit 0 | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        ms(p(&stops, 0.5)),
        ms(p(&stops, 0.9)),
        ms(stops[0]),
        ms(*stops.last().unwrap())
    );

    println!(
        "\n| connections | in flight per connection | health round trips/s | RSS after |\n|---|---|---|---|"
    );
    for &conns in &opts.conns {
        for &inflight in &opts.inflight {
            let (gw, _) = Gateway::start();
            let rate = rt.block_on(async {
                let mut sockets = Vec::new();
                for _ in 0..conns {
                    sockets.push(connect(&gw.addr).await);
                }
                let stop = Arc::new(AtomicBool::new(false));
                let done = Arc::new(AtomicU64::new(0));
                let started = Instant::now();
                let tasks: Vec<_> = sockets
                    .into_iter()
                    .map(|ws| tokio::spawn(drive(ws, inflight, stop.clone(), done.clone())))
                    .collect();
                tokio::time::sleep(Duration::from_secs(opts.secs)).await;
                stop.store(true, Ordering::Relaxed);
                for t in tasks {
                    t.await.unwrap();
                }
                done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
            });
            let rss_after = gw.rss_kib();
            let (_, code) = gw.stop();
            assert_eq!(code, Some(0));
            println!(
                "| {conns} | {inflight} | {rate:.0} | {:.1} MiB |",
                rss_after as f64 / 1024.0
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
