//! The fan-out load tool: how long a driver's command takes to reach every
//! participant of a large session, and what an idle participant costs the
//! server in memory.
//!
//! It starts the real `syncreel` binary as a child process (so that its
//! RSS is the server's alone), and for each room size N runs, on a fresh
//! server each time:
//!
//! 1. create a session and join the host, who drives;
//! 2. read the server's RSS, join N viewers over real WebSockets (bounded
//!    concurrency, a timeout per connection), let the server settle, and
//!    read the RSS again: the difference over N is the cost of one idle
//!    connection;
//! 3. have the host send K seeks, one at a time and about 100 ms apart,
//!    each to a distinct frame. Every viewer stamps the `transport` message
//!    carrying that frame as it comes off its socket, on the same monotonic
//!    clock the host stamped the send with, so latency is receive minus
//!    send for every (command, viewer).
//!
//! A fresh server per run keeps one run's freed-but-retained heap out of the
//! next run's RSS baseline. The tool and the server share the machine's
//! cores and talk over loopback, so the latencies include the tool's own
//! scheduling and parsing; the output says so.
//!
//! Build the server first: `cargo build --release && cargo bench --bench
//! fanout`. Environment:
//! - `SYNCREEL_BIN`: the server binary (default `target/release/syncreel`).
//! - `FANOUT_N`: room sizes, comma-separated (default `100,1000,5000`).
//! - `FANOUT_COMMANDS`: seeks per run (default 50).
//! - `FANOUT_RUNS`: runs per room size (default 3).
//! - `FANOUT_GAP_MS`: spacing of the seeks, send to send (default 100).
//! - `FANOUT_REPORT_MS`: when set, every viewer also sends a `frameReport`
//!   this often, as the web client does once a second; unset, viewers are
//!   idle and only listen.
//! - `FANOUT_CLIENT_THREADS`: this tool's tokio workers (default 2).
//! - `FANOUT_NODES`: cluster nodes (default 1: a single server). With 2 or
//!   more, each run starts a throwaway NATS and PostgreSQL
//!   (scripts/cluster/) and that many `syncreel serve --cluster` nodes;
//!   the session runs on the first, its host joins there, and viewer `i`
//!   joins node `i mod FANOUT_NODES`, so the others relay their viewers to
//!   the owner (gateways). RSS and CPU are then summed over the nodes, and
//!   the server's own histogram is the owner's (a relayed copy is
//!   "written" when it is handed to NATS).
//!
//! Besides the server's count of copies written before `execute_at`, every
//! viewer's receipt is put on the owner's clock (one NTP-style estimate
//! from the host's pings, min round trip of 20) and counted as on time if
//! it came before the seek's `execute_at`: "viewer on time %", the share
//! that could be shown at the scheduled instant.
//!
//! Every wait is bounded: a connection that does not join within its
//! timeout is counted as failed, and a command that does not reach every
//! joined viewer within its timeout is counted as missing, never waited on
//! forever.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Connections in the middle of their handshake at once.
const CONNECT_CONCURRENCY: usize = 200;
/// How long one viewer may take to connect and be welcomed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole join phase may take, whatever N is.
const JOIN_PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server gets to start and print its address.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before the "after" RSS is read, so that join bursts, presence
/// batches and allocator churn are over.
const SETTLE: Duration = Duration::from_secs(2);
/// RSS readings taken after settling; their median is reported.
const RSS_SAMPLES: usize = 5;
const RSS_SAMPLE_GAP: Duration = Duration::from_millis(200);
/// Spacing between seeks, send to send, unless `FANOUT_GAP_MS` says.
const COMMAND_GAP_MS: usize = 100;
/// How long one seek may take to reach every viewer before the tool moves on.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Seeks go to `FIRST_FRAME + i`, so each one's frame names it.
const FIRST_FRAME: i64 = 1_000;
/// How long the viewers get to hang up at the end of a run.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and a minutes-long load test is no unit test.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("fanout: skipped outside `cargo bench --bench fanout`");
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("fanout: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("fanout: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run_all(&settings) => outcome,
            // Returning drops the running server's guard, which kills it.
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fanout: {err}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    bin: PathBuf,
    sizes: Vec<usize>,
    commands: usize,
    runs: usize,
    gap: Duration,
    /// How often each viewer sends a frame report; `None`: never.
    report_every: Option<Duration>,
    client_threads: usize,
    /// 1: one server; more: a cluster of that many nodes.
    nodes: usize,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: usize| -> Result<usize, String> {
            match var(name) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name}={text} is not a positive integer")),
            }
        };
        let sizes = match var("FANOUT_N") {
            None => vec![100, 1_000, 5_000],
            Some(text) => text
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("FANOUT_N: {n:?} is not a positive integer"))
                })
                .collect::<Result<_, _>>()?,
        };
        let bin = var("SYNCREEL_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/syncreel"),
            PathBuf::from,
        );
        if !bin.is_file() {
            return Err(format!(
                "no server binary at {}; run `cargo build --release` first or set SYNCREEL_BIN",
                bin.display()
            ));
        }
        Ok(Settings {
            bin,
            sizes,
            commands: number("FANOUT_COMMANDS", 50)?,
            runs: number("FANOUT_RUNS", 3)?,
            gap: Duration::from_millis(number("FANOUT_GAP_MS", COMMAND_GAP_MS)? as u64),
            report_every: match var("FANOUT_REPORT_MS") {
                None => None,
                Some(_) => Some(Duration::from_millis(number("FANOUT_REPORT_MS", 0)? as u64)),
            },
            client_threads: number("FANOUT_CLIENT_THREADS", 2)?,
            nodes: number("FANOUT_NODES", 1)?,
        })
    }
}

async fn run_all(settings: &Settings) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# SyncReel fan-out");
    println!();
    println!(
        "server: {}; room sizes {:?}; {} seeks per run, {} ms apart; {} runs per size",
        settings.bin.display(),
        settings.sizes,
        settings.commands,
        settings.gap.as_millis(),
        settings.runs,
    );
    if settings.nodes > 1 {
        println!(
            "cluster: {} nodes on one NATS and one PostgreSQL; the session on node 1, viewers \
             spread evenly over the nodes",
            settings.nodes
        );
    }
    match settings.report_every {
        None => {
            println!("viewers: idle, listening only (set FANOUT_REPORT_MS to make them report)")
        }
        Some(every) => println!(
            "viewers: each sends a frameReport every {} ms, as the web client does",
            every.as_millis()
        ),
    }
    println!(
        "NOTE: this tool and the server share this machine's {cores} cores and talk over \
         loopback; latencies include the tool's own scheduling and JSON parsing \
         ({} client worker threads).",
        settings.client_threads
    );
    println!();
    println!("{}", RunStats::HEADER);
    println!("{}", RunStats::RULE);
    let mut all = Vec::new();
    for &n in &settings.sizes {
        let mut runs = Vec::new();
        for run in 1..=settings.runs {
            let stats = one_run(settings, n, run).await?;
            println!("{}", stats.row(&format!("run {run}")));
            runs.push(stats);
        }
        all.push((n, runs));
    }
    println!();
    println!("## Medians over runs");
    println!();
    println!("{}", RunStats::HEADER);
    println!("{}", RunStats::RULE);
    for (_, runs) in &all {
        println!("{}", RunStats::median(runs).row("median"));
    }
    println!();
    println!(
        "Latency: seek sent by the host to its transport message read by a viewer, over every \
         (seek, viewer). Last: the slowest viewer of each seek. RSS/conn: server VmRSS growth \
         from before the viewers joined to after they settled, over the viewers that joined. \
         CPU µs/msg: each process's CPU time over the seek phase per delivered seek (on \
         loopback the receiving kernel work runs in the sender's context). srv queue→write: \
         the server's own syncreel_fanout_latency_seconds histogram over the seek phase; \
         viewer on time: the share of viewers' receipts that came before the seek's \
         execute_at by the owner's clock (estimated from the host's pings; clock RTT is the \
         round trip of the ping used, the estimate is right within half of it). \
         srv on time: the share of seek deliveries the server wrote to their socket before \
         the seek's execute_at (syncreel_transport_on_time_total against _late_total). \
         presence/viewer/s: presence messages each viewer received per second of the seek \
         phase; host kB/s: what the driving host received per second of it. Other CPU: \
         the machine's CPU used by neither process during the seek phase, as a share of all \
         cores (noise from elsewhere); steal: taken by the hypervisor. Resyncs: deliveries that came in a snapshot after a queue overflow; late: \
         deliveries after their seek's {}s wait. Medians are taken column by column.",
        COMMAND_TIMEOUT.as_secs()
    );
    Ok(())
}

/// One fresh server, one session, N viewers, K seeks.
async fn one_run(settings: &Settings, n: usize, run: usize) -> Result<RunStats, String> {
    // Fresh NATS and PostgreSQL per run: a record left by the last run
    // would have the new nodes restore its sessions.
    let backends = (settings.nodes > 1).then(|| {
        (
            common::nats::NatsServer::start(),
            common::postgres::Postgres::start(),
        )
    });
    let mut servers = Vec::new();
    for node in 0..settings.nodes {
        let cluster = backends
            .as_ref()
            .map(|(nats, pg)| (nats.url.as_str(), pg.url.as_str()));
        servers.push(ServerProcess::start(
            &settings.bin,
            &format!("{n}-{run}-{node}"),
            cluster.map(|(nats, pg)| (nats, pg, format!("node-{node}"))),
        )?);
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.pid).collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let addr = addrs[0];
    let tokens = create_session(addr).await?;

    let mut host = join(addr, &tokens.host, "driver")
        .await
        .map_err(|e| format!("the host could not join: {e}"))?;
    // The seat is granted just after the welcome; seeks before it would be
    // refused, so wait for the control event that names this host.
    let host_id = host.welcome["you"]
        .as_u64()
        .ok_or("welcome without `you`")?;
    if host.welcome["state"]["control"]["driver"].as_u64() != Some(host_id) {
        wait_for(&mut host.socket, |m| {
            m["type"] == "control" && m["driver"].as_u64() == Some(host_id)
        })
        .await
        .map_err(|e| format!("the host never got the driver's seat: {e}"))?;
    }
    let clock = OwnerClock::estimate(&mut host.socket).await?;
    let (mut host_tx, host_rx) = host.socket.split();
    let host_inbox = Arc::new(HostInbox::default());
    let drain = tokio::spawn(drain_host(host_rx, host_inbox.clone()));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = settled_rss_of(&pids).await?;

    // Join the viewers. Each task joins under a permit, reports, then
    // stays on its socket stamping deliveries until told to stop.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (delivered_tx, mut delivered_rx) = mpsc::unbounded_channel::<Delivery>();
    let presence_seen = Arc::new(AtomicUsize::new(0));
    let reports_from = Instant::now();
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut viewers = JoinSet::new();
    for i in 0..n {
        let permits = permits.clone();
        let joined_tx = joined_tx.clone();
        let viewer = Viewer {
            delivered: delivered_tx.clone(),
            stop: stop_rx.clone(),
            presence_seen: presence_seen.clone(),
            // Spread the reports evenly over one period, as independent
            // browsers would be.
            reports: settings.report_every.map(|every| {
                let offset = every.mul_f64(i as f64 / n as f64);
                (reports_from + every + offset, every)
            }),
        };
        let token = tokens.viewer.clone();
        let addr = addrs[i % addrs.len()];
        viewers.spawn(async move {
            let permit = permits.acquire_owned().await.expect("never closed");
            let attempt =
                tokio::time::timeout(CONNECT_TIMEOUT, join(addr, &token, &format!("v{i}")))
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()));
            drop(permit);
            match attempt {
                Ok(client) => {
                    let _ = joined_tx.send(Ok(()));
                    viewer.watch(client.socket).await;
                }
                Err(err) => {
                    let _ = joined_tx.send(Err(err));
                }
            }
        });
    }
    drop((joined_tx, delivered_tx));
    let join_started = Instant::now();
    let (mut joined, mut failures) = (0usize, Vec::new());
    let join_deadline = tokio::time::Instant::now() + JOIN_PHASE_TIMEOUT;
    while joined + failures.len() < n {
        match tokio::time::timeout_at(join_deadline, joined_rx.recv()).await {
            Ok(Some(Ok(()))) => joined += 1,
            Ok(Some(Err(err))) => failures.push(err),
            Ok(None) | Err(_) => break,
        }
    }
    let join_secs = join_started.elapsed().as_secs_f64();
    let unaccounted = n - joined - failures.len();
    if !failures.is_empty() || unaccounted > 0 {
        failures.sort();
        failures.dedup();
        eprintln!(
            "N={n} run {run}: {joined} of {n} viewers joined ({unaccounted} still pending at the \
             deadline); errors: {:?}",
            failures.iter().take(5).collect::<Vec<_>>()
        );
    }

    tokio::time::sleep(SETTLE).await;
    let rss_after = settled_rss_of(&pids).await?;

    // The seeks, one in flight at a time. CPU time and the server's own
    // fan-out histogram are read around them, so that the cost of one
    // delivery can be split between the server and this tool.
    let machine_before = MachineTicks::read()?;
    let cpu_before = (cpu_time_of(&pids), cpu_time(std::process::id()));
    let presence_before = presence_seen.load(Relaxed);
    let host_bytes_before = host_inbox.bytes.load(Relaxed);
    let seeks_started = Instant::now();
    let histogram_before = fanout_histogram(addr).await?;
    let tally = seek_phase(settings, &mut host_tx, &mut delivered_rx, joined, clock).await?;
    let cpu_after = (cpu_time_of(&pids), cpu_time(std::process::id()));
    let machine = MachineTicks::read()?.since(&machine_before);
    let seek_secs = seeks_started.elapsed().as_secs_f64();
    let presence_rate =
        (presence_seen.load(Relaxed) - presence_before) as f64 / joined.max(1) as f64 / seek_secs;
    let host_kb_per_sec =
        (host_inbox.bytes.load(Relaxed) - host_bytes_before) as f64 / 1e3 / seek_secs;
    let histogram_after = fanout_histogram(addr).await?;

    let _ = stop_tx.send(true);
    let teardown = tokio::time::timeout(TEARDOWN_TIMEOUT, async {
        while viewers.join_next().await.is_some() {}
    })
    .await;
    if teardown.is_err() {
        viewers.abort_all();
    }
    drain.abort();
    drop(host_tx);
    drop(servers);
    drop(backends);

    let errors = host_inbox.errors.load(Relaxed);
    if errors > 0 {
        eprintln!("N={n} run {run}: the host received {errors} error messages");
    }
    let (server_cpu, tool_cpu) = (
        cpu_after.0?.saturating_sub(cpu_before.0?),
        cpu_after.1?.saturating_sub(cpu_before.1?),
    );
    let capacity = machine.total().as_secs_f64();
    let others = machine.busy.saturating_sub(server_cpu + tool_cpu);
    Ok(RunStats::new(Measured {
        n,
        joined,
        join_secs,
        rss_before,
        rss_after,
        tally,
        server_cpu,
        tool_cpu,
        other_load: others.as_secs_f64() / capacity,
        steal: machine.steal.as_secs_f64() / capacity,
        server_fanout: histogram_after.since(&histogram_before),
        presence_rate,
        host_kb_per_sec,
    }))
}

/// The host sends the seeks, one in flight at a time: the next goes when
/// every joined viewer has the last (or its wait is over) and the gap since
/// the last send has passed.
async fn seek_phase(
    settings: &Settings,
    host: &mut futures_util::stream::SplitSink<Socket, Message>,
    delivered: &mut mpsc::UnboundedReceiver<Delivery>,
    joined: usize,
    clock: OwnerClock,
) -> Result<Tally, String> {
    let mut tally = Tally::new(settings.commands, joined, clock);
    for i in 0..settings.commands {
        let frame = FIRST_FRAME + i as i64;
        let at = Instant::now();
        tally.sent_at[i] = Some(at);
        host.send(Message::text(
            json!({"type": "seek", "frame": frame}).to_string(),
        ))
        .await
        .map_err(|e| format!("the host could not send seek {i}: {e}"))?;
        let deadline = at + COMMAND_TIMEOUT;
        while tally.latencies[i].len() < joined {
            match tokio::time::timeout_at(deadline.into(), delivered.recv()).await {
                Ok(Some(delivery)) => tally.record(&delivery, i),
                Ok(None) | Err(_) => break,
            }
        }
        tokio::time::sleep_until((at + settings.gap).into()).await;
    }
    // Anything still queued arrived after its seek's wait was over.
    while let Ok(delivery) = delivered.try_recv() {
        tally.record(&delivery, usize::MAX);
    }
    Ok(tally)
}

/// Deliveries sorted by command.
struct Tally {
    /// Per command, one latency per viewer that received it.
    latencies: Vec<Vec<Duration>>,
    sent_at: Vec<Option<Instant>>,
    /// Deliveries that came in a resync snapshot.
    resyncs: usize,
    /// Deliveries that came after their command's wait was over.
    late: usize,
    clock: OwnerClock,
    /// Deliveries carrying an `execute_at`, and those of them received
    /// before it by the owner's clock.
    scheduled: usize,
    before_execute_at: usize,
}

impl Tally {
    fn new(commands: usize, viewers: usize, clock: OwnerClock) -> Tally {
        Tally {
            latencies: vec![Vec::with_capacity(viewers); commands],
            sent_at: vec![None; commands],
            resyncs: 0,
            late: 0,
            clock,
            scheduled: 0,
            before_execute_at: 0,
        }
    }

    /// Files a delivery under the seek whose frame it carries; `current` is
    /// the seek being waited for.
    fn record(&mut self, delivery: &Delivery, current: usize) {
        let Some(k) = usize::try_from(delivery.frame - FIRST_FRAME)
            .ok()
            .filter(|k| *k < self.latencies.len())
        else {
            return;
        };
        let Some(sent) = self.sent_at[k] else {
            return;
        };
        self.resyncs += usize::from(delivery.via_snapshot);
        self.late += usize::from(k != current);
        if let Some(execute_at) = delivery.execute_at {
            self.scheduled += 1;
            self.before_execute_at +=
                usize::from(self.clock.owner_micros(delivery.at) < execute_at);
        }
        self.latencies[k].push(delivery.at.saturating_duration_since(sent));
    }
}

/// One viewer's receipt of one seek.
struct Delivery {
    frame: i64,
    at: Instant,
    /// The owner's `executeAt` for the change (none in a snapshot).
    execute_at: Option<i64>,
    /// It came inside a resync snapshot: the viewer's queue had overflowed.
    via_snapshot: bool,
}

/// Just enough of a server message to recognise a delivery.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Incoming {
    #[serde(rename_all = "camelCase")]
    Transport {
        transport: Anchor,
        execute_at: Option<i64>,
    },
    Snapshot {
        state: Snapshot,
    },
    Presence,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Anchor {
    anchor_frame: i64,
}

#[derive(Deserialize)]
struct Snapshot {
    transport: Anchor,
}

/// What a viewer task needs once it has joined.
struct Viewer {
    delivered: mpsc::UnboundedSender<Delivery>,
    stop: watch::Receiver<bool>,
    /// Presence messages received, across all viewers.
    presence_seen: Arc<AtomicUsize>,
    /// When to send the first frame report, and how often after it.
    reports: Option<(Instant, Duration)>,
}

impl Viewer {
    /// Stamps every transport change (and resync snapshot) as it comes off
    /// the socket and skips everything else, sending frame reports if asked.
    async fn watch(mut self, mut socket: Socket) {
        let mut ticker = self.reports.map(|(first, every)| {
            let mut ticker = tokio::time::interval_at(first.into(), every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        loop {
            let frame = tokio::select! {
                biased;
                frame = socket.next() => frame,
                _ = self.stop.changed() => break,
                _ = async { ticker.as_mut().expect("guarded").tick().await },
                    if ticker.is_some() =>
                {
                    let report = r#"{"type":"frameReport","frame":0,"atUs":0}"#;
                    if socket.send(Message::text(report)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let at = Instant::now();
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            };
            let (frame, execute_at, via_snapshot) = match serde_json::from_str::<Incoming>(&text) {
                Ok(Incoming::Transport {
                    transport,
                    execute_at,
                }) => (transport.anchor_frame, execute_at, false),
                Ok(Incoming::Snapshot { state }) => (state.transport.anchor_frame, None, true),
                Ok(Incoming::Presence) => {
                    self.presence_seen.fetch_add(1, Relaxed);
                    continue;
                }
                Ok(Incoming::Other) | Err(_) => continue,
            };
            let _ = self.delivered.send(Delivery {
                frame,
                at,
                execute_at,
                via_snapshot,
            });
        }
        // Hang up politely, but do not wait long for a server that may be gone.
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
    }
}

/// What the host's socket brought, counted as it is drained.
#[derive(Default)]
struct HostInbox {
    errors: AtomicUsize,
    /// Text bytes: staff get every participant's presence in large rooms.
    bytes: AtomicUsize,
}

/// Keeps the host's socket drained, counting what arrives.
async fn drain_host(mut rx: futures_util::stream::SplitStream<Socket>, inbox: Arc<HostInbox>) {
    while let Some(Ok(message)) = rx.next().await {
        if let Message::Text(text) = message {
            inbox.bytes.fetch_add(text.len(), Relaxed);
            if text.starts_with(r#"{"type":"error""#) {
                inbox.errors.fetch_add(1, Relaxed);
            }
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Client {
    socket: Socket,
    welcome: Value,
}

/// Connects, says hello and waits for the welcome.
async fn join(addr: SocketAddr, token: &str, name: &str) -> Result<Client, String> {
    // tungstenite's 128 KiB default read buffer would cost this process
    // 640 MB at 5,000 viewers; their messages are a few hundred bytes.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), Some(config), true)
            .await
            .map_err(|e| format!("connect: {e}"))?;
    let hello = json!({"type": "hello", "protocol": 1, "token": token, "name": name});
    socket
        .send(Message::text(hello.to_string()))
        .await
        .map_err(|e| format!("hello: {e}"))?;
    let welcome = wait_for(&mut socket, |m| {
        m["type"] == "welcome" || m["type"] == "error"
    })
    .await?;
    if welcome["type"] == "error" {
        return Err(format!("refused: {}", welcome["code"]));
    }
    Ok(Client { socket, welcome })
}

/// Reads messages until one matches, for at most [`CONNECT_TIMEOUT`].
async fn wait_for(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| "timed out waiting for the server".to_string())?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
                if wanted(&value) {
                    return Ok(value);
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("closed".into()),
        }
    }
}

struct Tokens {
    host: String,
    viewer: String,
}

/// `POST /api/sessions` for a 24 fps session long enough for every seek.
async fn create_session(addr: SocketAddr) -> Result<Tokens, String> {
    let body = json!({"title": "fanout", "fps": "24", "durationFrames": 100_000});
    let (status, bytes) = http(addr, "POST", "/api/sessions", Some(body)).await?;
    if status != hyper::StatusCode::CREATED {
        return Err(format!(
            "POST /api/sessions answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    let created: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let token = |role: &str| {
        created["links"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["role"] == role))
            .and_then(|l| l["token"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("no {role} link in {created}"))
    };
    Ok(Tokens {
        host: token("host")?,
        viewer: token("viewer")?,
    })
}

/// One HTTP/1.1 request on a fresh connection.
/// The operator token the bench's server is started with.
const BENCH_OPERATOR: &str = "bench-operator-token";

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot reach the server: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {BENCH_OPERATOR}"),
            )
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, bytes))
    };
    tokio::time::timeout(START_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{method} {path} timed out"))?
        .map_err(|e| format!("{method} {path}: {e}"))
}

/// The server's `syncreel_fanout_latency_seconds` histogram: time from a
/// broadcast leaving the session task to its write on each socket.
#[derive(Clone, Default)]
struct Histogram {
    /// (upper bound in seconds, cumulative count), in order.
    buckets: Vec<(f64, u64)>,
    sum_secs: f64,
    count: u64,
    /// Copies of a driver's transport change written before its
    /// `execute_at`, and after it (`syncreel_transport_*_total`).
    on_time: u64,
    late: u64,
}

impl Histogram {
    /// What was observed between `earlier` and `self`.
    fn since(&self, earlier: &Histogram) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|((le, now), (_, then))| (*le, now.saturating_sub(*then)))
                .collect(),
            sum_secs: self.sum_secs - earlier.sum_secs,
            count: self.count.saturating_sub(earlier.count),
            on_time: self.on_time.saturating_sub(earlier.on_time),
            late: self.late.saturating_sub(earlier.late),
        }
    }

    /// The share of transport copies written before their `execute_at`.
    fn on_time_pct(&self) -> f64 {
        let all = self.on_time + self.late;
        if all == 0 {
            f64::NAN
        } else {
            self.on_time as f64 * 100.0 / all as f64
        }
    }

    fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum_secs / self.count as f64 * 1e3
        }
    }

    /// The upper bound of the bucket holding the 99th percentile.
    fn p99_bound_ms(&self) -> f64 {
        let wanted = (self.count as f64 * 0.99).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= wanted)
            .map_or(f64::INFINITY, |(le, _)| le * 1e3)
    }
}

async fn fanout_histogram(addr: SocketAddr) -> Result<Histogram, String> {
    let (status, bytes) = http(addr, "GET", "/metrics", None).await?;
    if !status.is_success() {
        return Err(format!("GET /metrics answered {status}"));
    }
    let text = String::from_utf8_lossy(&bytes);
    let name = "syncreel_fanout_latency_seconds";
    let mut histogram = Histogram::default();
    for line in text.lines() {
        let counter = |prefix: &str| {
            line.strip_prefix(prefix)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(v) = counter("syncreel_transport_on_time_total ") {
            histogram.on_time = v;
        }
        if let Some(v) = counter("syncreel_transport_late_total ") {
            histogram.late = v;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some((key, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        if let Some(le) = key
            .strip_prefix("_bucket{le=\"")
            .and_then(|k| k.strip_suffix("\"}"))
        {
            // +Inf is the total, which `_count` already gives.
            if let (Ok(le), Ok(count)) = (le.parse::<f64>(), value.parse::<u64>()) {
                if le.is_finite() {
                    histogram.buckets.push((le, count));
                }
            }
        } else if key == "_sum" {
            histogram.sum_secs = value.parse().unwrap_or(f64::NAN);
        } else if key == "_count" {
            histogram.count = value.parse().unwrap_or(0);
        }
    }
    Ok(histogram)
}

/// The server as a child process. Dropping it kills the process, including
/// on a panic or an early return, and removes its data directory.
struct ServerProcess {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    data_dir: PathBuf,
}

impl ServerProcess {
    /// `cluster`: (NATS URL, PostgreSQL URL, node id) for a cluster node.
    fn start(
        bin: &std::path::Path,
        label: &str,
        cluster: Option<(&str, &str, String)>,
    ) -> Result<ServerProcess, String> {
        let data_dir =
            std::env::temp_dir().join(format!("syncreel-fanout-{}-{label}", std::process::id()));
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .env("SYNCREEL_LIMITS__MAX_PARTICIPANTS", "11000")
            .env("SYNCREEL_LIMITS__MAX_CONNECTIONS", "20000")
            // Every simulated participant comes from 127.0.0.1, and joining
            // thousands takes longer than a person's hello deadline.
            .env("SYNCREEL_LIMITS__MAX_CONNECTIONS_PER_IP", "30000")
            .env("SYNCREEL_LIMITS__HELLO_TIMEOUT_MS", "600000")
            .env("SYNCREEL_SERVER__ADMIN_TOKEN", BENCH_OPERATOR)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((nats, pg, node)) = cluster {
            command
                .args(["--cluster", nats, "--store", pg])
                .env("SYNCREEL_CLUSTER__NODE_ID", node)
                // The bench says where the session runs.
                .env("SYNCREEL_CLUSTER__PLACE_SESSIONS", "false");
        }
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "syncreel=warn");
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout is piped");
        // Build the guard before waiting, so that a server that never
        // answers is still killed.
        let mut server = ServerProcess {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
        };
        // A thread reads the address, then keeps draining stdout so that
        // the server can never block on a full pipe.
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.trim().strip_prefix("listening on http://") {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(rest.to_string());
                    }
                }
            }
        });
        let shown = addr_rx
            .recv_timeout(START_TIMEOUT)
            .map_err(|_| "the server did not print `listening on http://…`".to_string())?;
        server.addr = shown
            .parse()
            .map_err(|e| format!("bad listening address {shown:?}: {e}"))?;
        Ok(server)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The server's resident set, in bytes.
fn rss_bytes(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS line in /proc/<pid>/status".into())
}

/// CPU time a process has had so far, summed over its live threads, from
/// the scheduler's own nanosecond account (`/proc/<pid>/task/*/schedstat`).
/// On loopback the kernel's receive path runs in the sender's context, so
/// this includes delivering into the peer's socket (unless the kernel is
/// built with `CONFIG_IRQ_TIME_ACCOUNTING`, which books softirqs apart).
fn cpu_time(pid: u32) -> Result<Duration, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        // A thread may exit between listing and reading; skip it.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(Duration::from_nanos(nanos))
}

/// The machine-wide CPU account from the first line of `/proc/stat`.
struct MachineTicks {
    busy: Duration,
    idle: Duration,
    steal: Duration,
}

impl MachineTicks {
    /// `/proc/stat` counts in USER_HZ, which Linux fixes at 100 per second.
    fn ticks(n: u64) -> Duration {
        Duration::from_millis(n * 10)
    }

    fn read() -> Result<MachineTicks, String> {
        let stat = std::fs::read_to_string("/proc/stat")
            .map_err(|e| format!("cannot read /proc/stat: {e}"))?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // user nice system idle iowait irq softirq steal ...
        let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = ticks[..] else {
            return Err("unexpected first line in /proc/stat".into());
        };
        Ok(MachineTicks {
            busy: Self::ticks(user + nice + system + irq + softirq),
            idle: Self::ticks(idle + iowait),
            steal: Self::ticks(steal),
        })
    }

    fn since(&self, earlier: &MachineTicks) -> MachineTicks {
        MachineTicks {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    fn total(&self) -> Duration {
        self.busy + self.idle + self.steal
    }
}

/// The summed RSS of several processes (the nodes of a cluster).
async fn settled_rss_of(pids: &[u32]) -> Result<u64, String> {
    let mut sum = 0;
    for pid in pids {
        sum += settled_rss(*pid).await?;
    }
    Ok(sum)
}

/// The summed CPU time of several processes.
fn cpu_time_of(pids: &[u32]) -> Result<Duration, String> {
    pids.iter().map(|pid| cpu_time(*pid)).sum()
}

/// This tool's monotonic clock put on the owner's server clock: one
/// NTP-style estimate, from the ping with the shortest round trip.
#[derive(Clone, Copy)]
struct OwnerClock {
    epoch: Instant,
    /// Owner µs minus this tool's µs since `epoch`.
    offset_us: i64,
    /// The round trip of the ping the estimate came from: the offset is
    /// right within half of it.
    rtt_us: i64,
}

impl OwnerClock {
    const PINGS: u32 = 20;

    async fn estimate(socket: &mut Socket) -> Result<OwnerClock, String> {
        let epoch = Instant::now();
        let mut best: Option<(i64, i64)> = None;
        for id in 0..Self::PINGS {
            let t0 = epoch.elapsed().as_micros() as i64;
            let ping = json!({"type": "ping", "id": id, "t0": t0});
            socket
                .send(Message::text(ping.to_string()))
                .await
                .map_err(|e| format!("ping: {e}"))?;
            let pong = wait_for(socket, |m| m["type"] == "pong" && m["id"] == id).await?;
            let t3 = epoch.elapsed().as_micros() as i64;
            let (Some(t1), Some(t2)) = (pong["t1"].as_i64(), pong["t2"].as_i64()) else {
                return Err(format!("a pong without t1/t2: {pong}"));
            };
            let rtt = (t3 - t0) - (t2 - t1);
            let offset = ((t1 - t0) + (t2 - t3)) / 2;
            if best.is_none_or(|(_, r)| rtt < r) {
                best = Some((offset, rtt));
            }
        }
        let (offset_us, rtt_us) = best.ok_or("no pong")?;
        Ok(OwnerClock {
            epoch,
            offset_us,
            rtt_us,
        })
    }

    fn owner_micros(&self, at: Instant) -> i64 {
        at.saturating_duration_since(self.epoch).as_micros() as i64 + self.offset_us
    }
}

/// The median of a few RSS readings a little apart, so that one reading
/// taken mid-allocation does not decide the figure.
async fn settled_rss(pid: u32) -> Result<u64, String> {
    let mut samples = Vec::with_capacity(RSS_SAMPLES);
    for i in 0..RSS_SAMPLES {
        if i > 0 {
            tokio::time::sleep(RSS_SAMPLE_GAP).await;
        }
        samples.push(rss_bytes(pid)?);
    }
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}

/// What one run measured, before any statistics.
struct Measured {
    n: usize,
    joined: usize,
    join_secs: f64,
    rss_before: u64,
    rss_after: u64,
    tally: Tally,
    /// CPU time over the seek phase.
    server_cpu: Duration,
    tool_cpu: Duration,
    /// Shares of the machine's CPU capacity over the seek phase used by
    /// other processes, and stolen by the hypervisor.
    other_load: f64,
    steal: f64,
    /// The server's own histogram over the seek phase.
    server_fanout: Histogram,
    /// Presence messages per viewer per second over the seek phase.
    presence_rate: f64,
    /// What the host received over the seek phase, kB per second.
    host_kb_per_sec: f64,
}

/// One run's figures. Latencies are in milliseconds.
#[derive(Clone, Copy)]
struct RunStats {
    n: usize,
    joined: usize,
    join_secs: f64,
    rss_before_mb: f64,
    rss_after_mb: f64,
    rss_per_conn: f64,
    samples: usize,
    missing: usize,
    p50: f64,
    p99: f64,
    max: f64,
    last_p50: f64,
    last_p99: f64,
    /// CPU microseconds per delivery, server and tool.
    server_us: f64,
    tool_us: f64,
    /// Queue-to-socket time inside the server: mean, and the bucket bound
    /// holding its 99th percentile.
    server_mean: f64,
    server_p99_bound: f64,
    /// Percent of transport copies the server wrote before `execute_at`.
    on_time_pct: f64,
    /// Percent of viewers' receipts before `execute_at` by the owner's
    /// clock, and the round trip that clock estimate came from.
    viewer_on_time_pct: f64,
    clock_rtt_ms: f64,
    presence_rate: f64,
    host_kb_per_sec: f64,
    /// Percent of the machine's CPU, as in [`Measured`].
    other_pct: f64,
    steal_pct: f64,
    resyncs: usize,
    late: usize,
}

impl RunStats {
    const HEADER: &'static str = "| run | N | joined | join s | RSS before MB | RSS after MB | \
        RSS/conn B | samples | missing | p50 ms | p99 ms | max ms | last p50 ms | last p99 ms | \
        srv CPU µs/msg | tool CPU µs/msg | srv queue→write mean ms | srv queue→write p99 ≤ ms | \
        srv on time % | viewer on time % | clock RTT ms | presence/viewer/s | host kB/s | other CPU % | steal % | resyncs | late |";
    const RULE: &'static str =
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|";

    fn new(m: Measured) -> RunStats {
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        let latencies = &m.tally.latencies;
        let mut all: Vec<f64> = latencies.iter().flatten().map(ms).collect();
        all.sort_by(f64::total_cmp);
        // The slowest viewer of each seek that reached anyone.
        let mut last: Vec<f64> = latencies
            .iter()
            .filter_map(|per| per.iter().max().map(ms))
            .collect();
        last.sort_by(f64::total_cmp);
        let expected = latencies.len() * m.joined;
        let growth = m.rss_after.saturating_sub(m.rss_before) as f64;
        let per_delivery = |cpu: Duration| {
            if all.is_empty() {
                f64::NAN
            } else {
                cpu.as_secs_f64() * 1e6 / all.len() as f64
            }
        };
        RunStats {
            n: m.n,
            joined: m.joined,
            join_secs: m.join_secs,
            rss_before_mb: m.rss_before as f64 / 1e6,
            rss_after_mb: m.rss_after as f64 / 1e6,
            rss_per_conn: if m.joined == 0 {
                f64::NAN
            } else {
                growth / m.joined as f64
            },
            samples: all.len(),
            missing: expected.saturating_sub(all.len()),
            p50: percentile(&all, 0.50),
            p99: percentile(&all, 0.99),
            max: all.last().copied().unwrap_or(f64::NAN),
            last_p50: percentile(&last, 0.50),
            last_p99: percentile(&last, 0.99),
            server_us: per_delivery(m.server_cpu),
            tool_us: per_delivery(m.tool_cpu),
            server_mean: m.server_fanout.mean_ms(),
            server_p99_bound: m.server_fanout.p99_bound_ms(),
            on_time_pct: m.server_fanout.on_time_pct(),
            viewer_on_time_pct: if m.tally.scheduled == 0 {
                f64::NAN
            } else {
                m.tally.before_execute_at as f64 * 100.0 / m.tally.scheduled as f64
            },
            clock_rtt_ms: m.tally.clock.rtt_us as f64 / 1e3,
            presence_rate: m.presence_rate,
            host_kb_per_sec: m.host_kb_per_sec,
            other_pct: m.other_load * 100.0,
            steal_pct: m.steal * 100.0,
            resyncs: m.tally.resyncs,
            late: m.tally.late,
        }
    }

    /// Each figure's median over the runs, taken figure by figure (the
    /// upper median for an even count).
    fn median(runs: &[RunStats]) -> RunStats {
        fn median_of(runs: &[RunStats], f: impl Fn(&RunStats) -> f64) -> f64 {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        }
        let of = |f: fn(&RunStats) -> f64| median_of(runs, f);
        let count = |f: fn(&RunStats) -> usize| median_of(runs, |r| f(r) as f64) as usize;
        RunStats {
            n: runs[0].n,
            joined: count(|r| r.joined),
            join_secs: of(|r| r.join_secs),
            rss_before_mb: of(|r| r.rss_before_mb),
            rss_after_mb: of(|r| r.rss_after_mb),
            rss_per_conn: of(|r| r.rss_per_conn),
            samples: count(|r| r.samples),
            missing: count(|r| r.missing),
            p50: of(|r| r.p50),
            p99: of(|r| r.p99),
            max: of(|r| r.max),
            last_p50: of(|r| r.last_p50),
            last_p99: of(|r| r.last_p99),
            server_us: of(|r| r.server_us),
            tool_us: of(|r| r.tool_us),
            server_mean: of(|r| r.server_mean),
            server_p99_bound: of(|r| r.server_p99_bound),
            on_time_pct: of(|r| r.on_time_pct),
            viewer_on_time_pct: of(|r| r.viewer_on_time_pct),
            clock_rtt_ms: of(|r| r.clock_rtt_ms),
            presence_rate: of(|r| r.presence_rate),
            host_kb_per_sec: of(|r| r.host_kb_per_sec),
            other_pct: of(|r| r.other_pct),
            steal_pct: of(|r| r.steal_pct),
            resyncs: count(|r| r.resyncs),
            late: count(|r| r.late),
        }
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {:.2} | {:.2} | {:.2} \
             | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} | {} | {:.2} | {:.2} | {:.3} | {:.1} | {:.0} | {:.0} | {:.0} | {} | {} |",
            self.n,
            self.joined,
            self.join_secs,
            self.rss_before_mb,
            self.rss_after_mb,
            self.rss_per_conn,
            self.samples,
            self.missing,
            self.p50,
            self.p99,
            self.max,
            self.last_p50,
            self.last_p99,
            self.server_us,
            self.tool_us,
            self.server_mean,
            self.server_p99_bound,
            self.on_time_pct,
            self.viewer_on_time_pct,
            self.clock_rtt_ms,
            self.presence_rate,
            self.host_kb_per_sec,
            self.other_pct,
            self.steal_pct,
            self.resyncs,
            self.late,
        )
    }
}

/// Nearest-rank percentile of sorted values; NaN when there are none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
