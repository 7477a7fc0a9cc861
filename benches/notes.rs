//! Sustained notes: many authors write notes into one session while a
//! driver moves the playhead, and the benchmark measures how long a note
//! takes to be acknowledged and whether the notes slow the room's control
//! fan-out. Every note is committed to SQLite (`synchronous = FULL`) before
//! its `noteAck` and broadcast to every participant, so this exercises the
//! record's batching writer and the room's fan-out together.
//!
//! Two modes (`NOTES_MODE`):
//!
//! - `open` (the default) answers the issue's question, "sustained notes
//!   per second from 50 clients, with p99 acknowledgement latency, with the
//!   session's control fan-out p99 unaffected". Each run is a fresh
//!   session with a host (the driver), `NOTES_VIEWERS` viewers and
//!   `NOTES_CLIENTS` authors (reviewer links), and two phases of
//!   `NOTES_SECS` each, A then B, so the runs interleave A B A B …:
//!   - in both phases the host sends a seek every `NOTES_SEEK_MS`, each to
//!     its own frame, and every viewer and author stamps the `transport`
//!     message carrying that frame as it comes off its socket: fan-out
//!     latency is that stamp minus the host's send, as in
//!     `benches/fanout.rs`, over every (seek, receiver);
//!   - in phase B the authors also write notes at a fixed total rate of
//!     `NOTES_RATE` a second, each on its own schedule (author i sends
//!     every `NOTES_CLIENTS / NOTES_RATE` seconds, offset by i /
//!     `NOTES_RATE`, so sends are evenly spread, never in lockstep). The
//!     schedule does not wait for acknowledgements (open loop), and
//!     latency runs from the *scheduled* send time to the `noteAck`, so a
//!     send that goes out late (the tool or the socket was busy) is
//!     charged for its lateness instead of silently thinning the load
//!     (no coordinated omission).
//! - `closed` is the earlier maximum-throughput probe: each author keeps
//!   `NOTES_WINDOW` notes in flight for `NOTES_SECS` and sends the next as
//!   soon as one is acknowledged, so latency includes queueing.
//!
//! Run: `cargo bench --bench notes`. Environment (defaults in brackets):
//! `NOTES_STORE` [sqlite; `postgres` starts a throwaway PostgreSQL from
//! scripts/cluster/ and records there, whose server's own CPU is not in
//! the figures], `NOTES_MODE` [open], `NOTES_CLIENTS` [50], `NOTES_RATE` [2000],
//! `NOTES_VIEWERS` [20], `NOTES_SECS` [5], `NOTES_RUNS` [3],
//! `NOTES_SEEK_MS` [100], `NOTES_WINDOW` [4, closed mode only],
//! `NOTES_QUEUE` [the server's default in open mode, 4096 in closed mode]:
//! the per-connection outbound queue.
//!
//! The server runs in this process, on its own two-worker tokio runtime
//! (threads `srv-rt`), beside the tool's own two-worker runtime (threads
//! `tool-rt`), all on the machine's cores. Per-thread CPU time is read from
//! `/proc/self/task/*/schedstat`, so each phase reports what the server's
//! workers, the record's writer thread (`syncreel-store`) and the tool
//! used. The server's per-connection rate limit (30 messages/s by
//! default) is lifted, because it would otherwise cap 50 authors at 1,500 notes/s
//! before the record is even reached. Every wait is bounded: a join, a
//! phase, and the drain of late acknowledgements and deliveries after it.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::{Client, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Thread names, so that CPU time can be told apart per thread group.
const SERVER_THREADS: &str = "srv-rt";
const TOOL_THREADS: &str = "tool-rt";
const STORE_THREAD: &str = "syncreel-store";
/// How long one participant may take to connect and be welcomed.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Quiet time after everyone joined, so that join presence is over.
const SETTLE: Duration = Duration::from_secs(1);
/// Quiet time between phase A and phase B.
const PHASE_GAP: Duration = Duration::from_millis(500);
/// How long after phase B late acknowledgements and deliveries still count.
const DRAIN: Duration = Duration::from_secs(5);
/// Seeks go to `FIRST_FRAME + i`, so each one's frame names it.
const FIRST_FRAME: i64 = 1_000;
/// The benchmark session's length in frames (`TestServer::create_session`).
const SESSION_FRAMES: i64 = 14_400;
/// The issue's target: at least this many notes a second…
const TARGET_RATE: f64 = 2_000.0;
/// …each acknowledged within this many milliseconds at the 99th percentile.
const TARGET_P99_MS: f64 = 20.0;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and a load test is no unit test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("notes benchmark: run with `cargo bench --bench notes`");
        return;
    }
    let settings = Settings::from_env();
    let runtime = |name: &'static str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    let server_rt = runtime(SERVER_THREADS);
    let tool_rt = runtime(TOOL_THREADS);
    // Started from the server's runtime, so that its accept loop, its
    // connections and its session tasks all run there.
    let queue = settings.queue;
    // The record in a throwaway PostgreSQL (scripts/cluster/postgres.sh)
    // instead of SQLite: what a cluster's nodes write to.
    let postgres =
        (std::env::var("NOTES_STORE").as_deref() == Ok("postgres")).then(Postgres::start);
    let store = postgres.as_ref().map(|pg| pg.url.clone());
    let server = server_rt.block_on(TestServer::start_with(|c| {
        if let Some(url) = store {
            c.server.store = url;
        }
        c.limits.messages_per_second = 1_000_000;
        c.limits.message_burst = 1_000_000;
        if let Some(queue) = queue {
            c.limits.outbound_queue = queue;
        }
    }));
    tool_rt.block_on(async {
        match settings.mode {
            Mode::Open => open_loop(&server, &settings).await,
            Mode::Closed => closed_loop(&server, &settings).await,
        }
        server.shutdown().await;
    });
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Open,
    Closed,
}

struct Settings {
    mode: Mode,
    clients: usize,
    viewers: usize,
    rate: f64,
    secs: u64,
    runs: usize,
    seek_gap: Duration,
    window: usize,
    /// The server's per-connection outbound queue; `None`: its default.
    queue: Option<usize>,
}

impl Settings {
    fn from_env() -> Settings {
        fn env_usize(name: &str, default: usize) -> usize {
            match std::env::var(name) {
                Err(_) => default,
                Ok(text) => text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| panic!("{name}={text} is not a positive integer")),
            }
        }
        let mode = match std::env::var("NOTES_MODE").as_deref() {
            Err(_) | Ok("open") => Mode::Open,
            Ok("closed") => Mode::Closed,
            Ok(other) => panic!("NOTES_MODE={other}: expected open or closed"),
        };
        let queue = match (std::env::var("NOTES_QUEUE").is_ok(), mode) {
            (true, _) => Some(env_usize("NOTES_QUEUE", 1)),
            (false, Mode::Open) => None,
            (false, Mode::Closed) => Some(4096),
        };
        Settings {
            mode,
            clients: env_usize("NOTES_CLIENTS", 50),
            viewers: env_usize("NOTES_VIEWERS", 20),
            rate: env_usize("NOTES_RATE", 2_000) as f64,
            secs: env_usize("NOTES_SECS", 5) as u64,
            runs: env_usize("NOTES_RUNS", 3),
            seek_gap: Duration::from_millis(env_usize("NOTES_SEEK_MS", 100) as u64),
            window: env_usize("NOTES_WINDOW", 4),
            queue,
        }
    }
}

// ---------------------------------------------------------------------
// Open loop: fixed-rate notes, and control fan-out with and without them.
// ---------------------------------------------------------------------

async fn open_loop(server: &TestServer, s: &Settings) {
    let phase = Duration::from_secs(s.secs);
    let seeks_per_phase = (phase.as_micros() / s.seek_gap.as_micros().max(1)) as usize;
    assert!(
        FIRST_FRAME + 2 * seeks_per_phase as i64 <= SESSION_FRAMES,
        "too many seeks for the session's {SESSION_FRAMES} frames"
    );
    println!(
        "notes (open loop): {} authors writing {} notes/s in total ({:.1} ms apart each, evenly \
         spread), {} viewers and a driving host; per run, phase A ({} s, seeks only) then phase \
         B ({} s, seeks and notes); a seek every {} ms; {} runs; outbound queue {}",
        s.clients,
        s.rate,
        s.clients as f64 / s.rate * 1e3,
        s.viewers,
        s.secs,
        s.secs,
        s.seek_gap.as_millis(),
        s.runs,
        s.queue
            .map_or("server default".to_string(), |q| q.to_string()),
    );
    println!(
        "server in process on its own 2 worker threads, the tool on 2 more, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut runs = Vec::new();
    for _ in 0..s.runs {
        runs.push(open_run(server, s, phase, seeks_per_phase).await);
    }

    println!();
    println!("## Notes (phase B of each run)");
    println!();
    println!("{}", NoteStats::HEADER);
    println!("{}", NoteStats::RULE);
    for (i, r) in runs.iter().enumerate() {
        println!("{}", r.notes.row(&format!("{}", i + 1)));
    }
    let notes: Vec<NoteStats> = runs.iter().map(|r| r.notes).collect();
    let median_notes = NoteStats::median(&notes);
    println!("{}", median_notes.row("median"));

    println!();
    println!("## Control fan-out, seek → `transport` at each viewer and author");
    println!();
    println!("{}", FanoutStats::HEADER);
    println!("{}", FanoutStats::RULE);
    for (i, r) in runs.iter().enumerate() {
        println!("{}", r.quiet.row(&format!("{} A", i + 1)));
        println!("{}", r.loaded.row(&format!("{} B", i + 1)));
    }
    let quiet: Vec<FanoutStats> = runs.iter().map(|r| r.quiet).collect();
    let loaded: Vec<FanoutStats> = runs.iter().map(|r| r.loaded).collect();
    let (a, b) = (FanoutStats::median(&quiet), FanoutStats::median(&loaded));
    println!("{}", a.row("median A"));
    println!("{}", b.row("median B"));
    println!();
    println!(
        "fan-out B/A (medians over runs): p50 {:.2}×, p95 {:.2}×, p99 {:.2}×, last-receiver p99 \
         {:.2}×",
        b.p50 / a.p50,
        b.p95 / a.p95,
        b.p99 / a.p99,
        b.last_p99 / a.last_p99
    );
    println!(
        "verdict: {:.0} notes/s at ack p99 {:.1} ms against the target of ≥ {TARGET_RATE} \
         notes/s at p99 ≤ {TARGET_P99_MS} ms: {}; fan-out p99 {:.2} ms without notes, {:.2} ms \
         with them",
        median_notes.rate,
        median_notes.p99,
        if median_notes.rate >= TARGET_RATE && median_notes.p99 <= TARGET_P99_MS {
            "met"
        } else {
            "not met"
        },
        a.p99,
        b.p99
    );
    println!(
        "Latency columns in ms. notes/s: notes acknowledged over the phase's length \
         (the schedule never waits, so falling behind shows as latency). Ack: scheduled send → \
         noteAck; 'from send' starts at the actual send instead, and 'send late' is how far \
         behind schedule the tool sent (p99). CPU: share of \
         one core over the phase, by thread group; other: the rest of the machine (other \
         processes), % of all cores. srv q→w: the server's own mean from queueing a session \
         event to writing it on a socket (its fan-out histogram)."
    );
}

/// What one run measured.
struct RunFigures {
    notes: NoteStats,
    quiet: FanoutStats,
    loaded: FanoutStats,
}

/// When a phase starts and ends.
struct Window {
    start: Instant,
    end: Instant,
}

async fn open_run(
    server: &TestServer,
    s: &Settings,
    phase: Duration,
    seeks_per_phase: usize,
) -> RunFigures {
    // A fresh room per run: authors of the last run linger as disconnected
    // participants (they may resume), which is not what is measured.
    let session = server.create_session().await;
    let host = join(server.addr, &session.host, "Driver").await;
    let mut receivers = Vec::new();
    for i in 0..s.viewers {
        receivers.push((
            None,
            join(server.addr, &session.viewer, &format!("Viewer {i}")).await,
        ));
    }
    for i in 0..s.clients {
        let socket = join(server.addr, &session.reviewer, &format!("Author {i}")).await;
        receivers.push((Some(i), socket));
    }

    let settled = Instant::now() + SETTLE;
    let a = Window {
        start: settled,
        end: settled + phase,
    };
    let b = Window {
        start: a.end + PHASE_GAP,
        end: a.end + PHASE_GAP + phase,
    };
    let deadline = b.end + DRAIN;
    // Each seek sits in the middle of its slot, clear of the phase edges.
    let seeks: Vec<Instant> = [&a, &b]
        .iter()
        .flat_map(|w| {
            (0..seeks_per_phase).map(|k| w.start + s.seek_gap * k as u32 + s.seek_gap / 2)
        })
        .collect();
    let last_frame = FIRST_FRAME + seeks.len() as i64 - 1;
    let period = Duration::from_secs_f64(s.clients as f64 / s.rate);
    let notes_each = (phase.as_secs_f64() * s.rate / s.clients as f64).round() as usize;

    let (stop_tx, stop) = watch::channel(false);
    let driver = tokio::spawn(drive(host, seeks, stop, deadline));
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|(author, socket)| {
            let plan = Plan {
                author: author.map(|id| AuthorPlan {
                    id,
                    first: b.start + period.mul_f64(id as f64 / s.clients as f64),
                    period,
                    count: notes_each,
                }),
                last_frame,
                deadline,
            };
            tokio::spawn(participant(socket, plan))
        })
        .collect();

    let mut marks = Vec::new();
    for at in [a.start, a.end, b.start, b.end] {
        tokio::time::sleep_until(at.into()).await;
        marks.push(Sample::take(server.addr).await);
    }
    let mut received = Vec::new();
    for task in tasks {
        received.push(task.await.expect("participant task"));
    }
    let _ = stop_tx.send(true);
    let sent = driver.await.expect("driver task");

    let (quiet_range, loaded_range) = (0..seeks_per_phase, seeks_per_phase..2 * seeks_per_phase);
    RunFigures {
        notes: NoteStats::new(&received, &b, &marks[2], &marks[3]),
        quiet: FanoutStats::new(&received, &sent, quiet_range, &marks[0], &marks[1]),
        loaded: FanoutStats::new(&received, &sent, loaded_range, &marks[2], &marks[3]),
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects (with `TCP_NODELAY`, as browsers do), says hello and waits
/// for the welcome.
async fn join(addr: SocketAddr, token: &str, name: &str) -> Socket {
    let joined = tokio::time::timeout(JOIN_TIMEOUT, async {
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true)
                .await
                .expect("websocket connects");
        let hello = json!({"type": "hello", "protocol": 1, "token": token, "name": name});
        socket
            .send(Message::text(hello.to_string()))
            .await
            .expect("hello");
        while let Some(frame) = socket.next().await {
            if let Message::Text(text) = frame.expect("socket ok") {
                let msg: Value = serde_json::from_str(&text).expect("JSON");
                match msg["type"].as_str() {
                    Some("welcome") => return socket,
                    Some("error") => panic!("{name} refused: {msg}"),
                    _ => {}
                }
            }
        }
        panic!("{name}: the server closed before its welcome")
    })
    .await;
    joined.unwrap_or_else(|_| panic!("{name} not welcomed within {JOIN_TIMEOUT:?}"))
}

/// The host's part: a seek at each planned instant, the server's answers
/// drained meanwhile. Returns when each seek was sent.
async fn drive(
    mut socket: Socket,
    plan: Vec<Instant>,
    mut stop: watch::Receiver<bool>,
    deadline: Instant,
) -> Vec<Option<Instant>> {
    let mut sent = vec![None; plan.len()];
    let mut next = 0;
    let wake = tokio::time::sleep_until(plan.first().copied().unwrap_or(deadline).into());
    tokio::pin!(wake);
    // Bounded by the deadline and the stop signal.
    while Instant::now() < deadline && !*stop.borrow() {
        tokio::select! {
            biased;
            () = &mut wake => {
                if next < plan.len() {
                    let frame = FIRST_FRAME + next as i64;
                    sent[next] = Some(Instant::now());
                    let seek = format!(r#"{{"type":"seek","frame":{frame}}}"#);
                    socket.send(Message::text(seek)).await.expect("seek sent");
                    next += 1;
                }
                let at = plan.get(next).copied().unwrap_or(deadline);
                wake.as_mut().reset(at.into());
            }
            _ = stop.changed() => {}
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    assert!(!text.starts_with(r#"{"type":"error""#), "the host was refused: {text}");
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => panic!("the server dropped the host"),
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
    sent
}

/// What one viewer or author is to do.
struct Plan {
    author: Option<AuthorPlan>,
    /// The frame of the last seek; once it arrives, no more are due.
    last_frame: i64,
    deadline: Instant,
}

/// An author's note schedule: `count` notes, `period` apart from `first`.
struct AuthorPlan {
    id: usize,
    first: Instant,
    period: Duration,
    count: usize,
}

impl AuthorPlan {
    fn due(&self, seq: usize) -> Instant {
        self.first + self.period * seq as u32
    }
}

/// What a participant saw.
#[derive(Default)]
struct Received {
    /// Seeks that reached it: (frame, when it came off the socket, whether
    /// inside a resync snapshot).
    transports: Vec<(i64, Instant, bool)>,
    /// An author's notes, by sequence number: (scheduled, sent, acknowledged).
    notes: Vec<(Instant, Instant, Option<Instant>)>,
    /// `noteRefused` and `error` messages.
    refused: usize,
}

/// Just enough of a `transport` or `snapshot` to name its seek.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Moved {
    Transport { transport: Anchor },
    Snapshot { state: State },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Anchor {
    anchor_frame: i64,
}

#[derive(Deserialize)]
struct State {
    transport: Anchor,
}

#[derive(Deserialize)]
struct Ack {
    key: String,
}

/// A viewer or author: stamps every transport change as it comes off the
/// socket, and an author also sends its notes on schedule and stamps their
/// acknowledgements. Everything else (2,000 note broadcasts a second) is
/// recognised by its first bytes and skipped unparsed, so the tool spends
/// its CPU on the socket rather than on JSON. Ends once everything due has
/// arrived, or at the deadline.
async fn participant(mut socket: Socket, plan: Plan) -> Received {
    let mut got = Received::default();
    let count = plan.author.as_ref().map_or(0, |a| a.count);
    let mut acked = 0;
    let mut seen_last = false;
    let next_wake = |got: &Received| match &plan.author {
        Some(author) if got.notes.len() < count => author.due(got.notes.len()),
        _ => plan.deadline,
    };
    let wake = tokio::time::sleep_until(next_wake(&got).into());
    tokio::pin!(wake);
    loop {
        // Every note now due goes out at once: a send the tool could not
        // make on time keeps its scheduled instant.
        if let Some(author) = &plan.author {
            let before = got.notes.len();
            while got.notes.len() < count && author.due(got.notes.len()) <= Instant::now() {
                let seq = got.notes.len();
                let note = format!(
                    r#"{{"type":"note","key":"a{}n{seq}","frame":{},"text":"bench note"}}"#,
                    author.id,
                    seq % 1000
                );
                socket.send(Message::text(note)).await.expect("note sent");
                got.notes.push((author.due(seq), Instant::now(), None));
            }
            if got.notes.len() != before {
                wake.as_mut().reset(next_wake(&got).into());
            }
        }
        if (acked == count && seen_last) || Instant::now() >= plan.deadline {
            break;
        }
        let frame = tokio::select! {
            biased;
            () = &mut wake => continue,
            frame = socket.next() => frame,
        };
        let at = Instant::now();
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => panic!("the server dropped a participant"),
        };
        let text = text.as_str();
        if text.starts_with(r#"{"type":"noteAck""#) {
            let ack: Ack = serde_json::from_str(text).expect("noteAck");
            let seq = ack
                .key
                .rsplit_once('n')
                .and_then(|(_, n)| n.parse::<usize>().ok());
            if let Some(note) = seq.and_then(|seq| got.notes.get_mut(seq)) {
                if note.2.is_none() {
                    note.2 = Some(at);
                    acked += 1;
                }
            }
        } else if text.starts_with(r#"{"type":"transport""#)
            || text.starts_with(r#"{"type":"snapshot""#)
        {
            let (frame, via_snapshot) = match serde_json::from_str(text).expect("transport") {
                Moved::Transport { transport } => (transport.anchor_frame, false),
                Moved::Snapshot { state } => (state.transport.anchor_frame, true),
            };
            seen_last |= frame == plan.last_frame;
            got.transports.push((frame, at, via_snapshot));
        } else if text.starts_with(r#"{"type":"noteRefused""#)
            || text.starts_with(r#"{"type":"error""#)
        {
            got.refused += 1;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
    got
}

/// Phase B's notes. Latencies in ms.
#[derive(Clone, Copy)]
struct NoteStats {
    scheduled: usize,
    acked: usize,
    refused: usize,
    /// Acknowledged notes over the phase's length. Every note is sent
    /// within the phase, and the schedule never waits for acknowledgements,
    /// so a server that falls behind shows as growing latency (and past the
    /// drain, as notes never acknowledged), not as a lower rate.
    rate: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    /// p99 of send → noteAck, and of how late the tool sent.
    p99_from_send: f64,
    late_p99: f64,
    cpu: Cpu,
}

impl NoteStats {
    const HEADER: &'static str =
        "| run | notes | acked | refused | notes/s | ack p50 | p95 | p99 | \
        max | p99 from send | send late p99 | CPU srv / store / tool % | other % |";
    const RULE: &'static str = "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--|--:|";

    fn new(received: &[Received], b: &Window, start: &Sample, end: &Sample) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut from_schedule = Vec::new();
        let mut from_send = Vec::new();
        let mut late = Vec::new();
        let mut scheduled = 0;
        for (due, sent, acked) in received.iter().flat_map(|r| &r.notes) {
            scheduled += 1;
            late.push(ms(sent.saturating_duration_since(*due)));
            if let Some(at) = acked {
                from_schedule.push(ms(at.saturating_duration_since(*due)));
                from_send.push(ms(at.saturating_duration_since(*sent)));
            }
        }
        for v in [&mut from_schedule, &mut from_send, &mut late] {
            v.sort_by(f64::total_cmp);
        }
        let acked = from_schedule.len();
        NoteStats {
            scheduled,
            acked,
            refused: received.iter().map(|r| r.refused).sum(),
            rate: acked as f64 / b.end.duration_since(b.start).as_secs_f64(),
            p50: percentile(&from_schedule, 0.50),
            p95: percentile(&from_schedule, 0.95),
            p99: percentile(&from_schedule, 0.99),
            max: from_schedule.last().copied().unwrap_or(f64::NAN),
            p99_from_send: percentile(&from_send, 0.99),
            late_p99: percentile(&late, 0.99),
            cpu: end.since(start),
        }
    }

    fn median(runs: &[NoteStats]) -> NoteStats {
        let of = |f: fn(&NoteStats) -> f64| median(runs.iter().map(f));
        NoteStats {
            scheduled: of(|r| r.scheduled as f64) as usize,
            acked: of(|r| r.acked as f64) as usize,
            refused: of(|r| r.refused as f64) as usize,
            rate: of(|r| r.rate),
            p50: of(|r| r.p50),
            p95: of(|r| r.p95),
            p99: of(|r| r.p99),
            max: of(|r| r.max),
            p99_from_send: of(|r| r.p99_from_send),
            late_p99: of(|r| r.late_p99),
            cpu: Cpu::median(runs.iter().map(|r| &r.cpu)),
        }
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            self.scheduled,
            self.acked,
            self.refused,
            self.rate,
            self.p50,
            self.p95,
            self.p99,
            self.max,
            self.p99_from_send,
            self.late_p99,
            self.cpu.columns(),
        )
    }
}

/// One phase's control fan-out. Latencies in ms.
#[derive(Clone, Copy)]
struct FanoutStats {
    seeks: usize,
    deliveries: usize,
    /// (seek, receiver) pairs that never arrived before the deadline.
    missing: usize,
    /// Deliveries that came inside a resync snapshot.
    resynced: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    /// p99 over seeks of the slowest receiver of each.
    last_p99: f64,
    /// The server's own queue → socket-write mean for session events.
    server_mean: f64,
    /// Connections the server found lagging (queue full) during the phase.
    lagged: u64,
    cpu: Cpu,
}

impl FanoutStats {
    const HEADER: &'static str = "| run | phase | seeks | deliveries | missing | via snapshot | \
        p50 | p95 | p99 | max | last p99 | srv q→w mean | lagged | CPU srv / store / tool % | \
        other % |";
    const RULE: &'static str = "|--:|--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--|--:|";

    fn new(
        received: &[Received],
        sent: &[Option<Instant>],
        seeks: std::ops::Range<usize>,
        start: &Sample,
        end: &Sample,
    ) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut all = Vec::new();
        let mut slowest: HashMap<usize, f64> = HashMap::new();
        let mut resynced = 0;
        for r in received {
            // One delivery per seek per receiver: a seek seen again (in a
            // later snapshot) counts once, at its first arrival.
            let mut seen = std::collections::HashSet::new();
            for (frame, at, via_snapshot) in &r.transports {
                let Some(k) = usize::try_from(frame - FIRST_FRAME)
                    .ok()
                    .filter(|k| seeks.contains(k))
                else {
                    continue;
                };
                let Some(sent_at) = sent[k] else { continue };
                if !seen.insert(k) {
                    continue;
                }
                let latency = ms(at.saturating_duration_since(sent_at));
                resynced += usize::from(*via_snapshot);
                all.push(latency);
                let worst = slowest.entry(k).or_insert(0.0);
                *worst = worst.max(latency);
            }
        }
        all.sort_by(f64::total_cmp);
        let mut last: Vec<f64> = slowest.into_values().collect();
        last.sort_by(f64::total_cmp);
        let sent_count = seeks.clone().filter(|k| sent[*k].is_some()).count();
        let phase = end.since(start);
        FanoutStats {
            seeks: sent_count,
            deliveries: all.len(),
            missing: (sent_count * received.len()).saturating_sub(all.len()),
            resynced,
            p50: percentile(&all, 0.50),
            p95: percentile(&all, 0.95),
            p99: percentile(&all, 0.99),
            max: all.last().copied().unwrap_or(f64::NAN),
            last_p99: percentile(&last, 0.99),
            server_mean: phase.server_mean_ms,
            lagged: phase.lagged,
            cpu: phase,
        }
    }

    fn median(runs: &[FanoutStats]) -> FanoutStats {
        let of = |f: fn(&FanoutStats) -> f64| median(runs.iter().map(f));
        FanoutStats {
            seeks: of(|r| r.seeks as f64) as usize,
            deliveries: of(|r| r.deliveries as f64) as usize,
            missing: of(|r| r.missing as f64) as usize,
            resynced: of(|r| r.resynced as f64) as usize,
            p50: of(|r| r.p50),
            p95: of(|r| r.p95),
            p99: of(|r| r.p99),
            max: of(|r| r.max),
            last_p99: of(|r| r.last_p99),
            server_mean: of(|r| r.server_mean),
            lagged: of(|r| r.lagged as f64) as u64,
            cpu: Cpu::median(runs.iter().map(|r| &r.cpu)),
        }
    }

    fn row(&self, label: &str) -> String {
        let (run, phase) = label.rsplit_once(' ').unwrap_or((label, ""));
        format!(
            "| {run} | {phase} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} \
             | {} | {} |",
            self.seeks,
            self.deliveries,
            self.missing,
            self.resynced,
            self.p50,
            self.p95,
            self.p99,
            self.max,
            self.last_p99,
            self.server_mean,
            self.lagged,
            self.cpu.columns(),
        )
    }
}

/// CPU over a phase, in shares of one core (server workers, the record's
/// writer, the tool) and of the whole machine (other processes), plus the
/// server's own counters over the same span.
#[derive(Clone, Copy)]
struct Cpu {
    server: f64,
    store: f64,
    tool: f64,
    other: f64,
    server_mean_ms: f64,
    lagged: u64,
}

impl Cpu {
    fn columns(&self) -> String {
        format!(
            "{:.0} / {:.0} / {:.0} | {:.0}",
            self.server * 100.0,
            self.store * 100.0,
            self.tool * 100.0,
            self.other * 100.0
        )
    }

    fn median<'a>(all: impl Iterator<Item = &'a Cpu> + Clone) -> Cpu {
        let of = |f: fn(&Cpu) -> f64| median(all.clone().map(f));
        Cpu {
            server: of(|c| c.server),
            store: of(|c| c.store),
            tool: of(|c| c.tool),
            other: of(|c| c.other),
            server_mean_ms: of(|c| c.server_mean_ms),
            lagged: of(|c| c.lagged as f64) as u64,
        }
    }
}

/// Counters read at a phase's edge.
struct Sample {
    at: Instant,
    /// Nanoseconds of CPU per thread group: server, store, tool, and this
    /// whole process.
    threads: [u64; 4],
    /// Machine-wide busy and total time from `/proc/stat`, in ticks.
    machine: (u64, u64),
    /// The server's fan-out histogram: sum (s) and count; lagged count.
    fanout: (f64, u64),
    lagged: u64,
}

impl Sample {
    async fn take(addr: SocketAddr) -> Sample {
        let metrics = match common::request(addr, "GET", "/metrics", None, None).await {
            (200, Value::String(text)) => text,
            (status, body) => panic!("GET /metrics answered {status}: {body}"),
        };
        let value = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Sample {
            at: Instant::now(),
            threads: thread_cpu(),
            machine: machine_ticks(),
            fanout: (
                value("syncreel_fanout_latency_seconds_sum"),
                value("syncreel_fanout_latency_seconds_count") as u64,
            ),
            lagged: value("syncreel_slow_consumer_resyncs_total") as u64,
        }
    }

    fn since(&self, earlier: &Sample) -> Cpu {
        let span = self.at.duration_since(earlier.at).as_nanos().max(1) as f64;
        let share = |i: usize| self.threads[i].saturating_sub(earlier.threads[i]) as f64 / span;
        let busy = self.machine.0.saturating_sub(earlier.machine.0) as f64;
        let total = self.machine.1.saturating_sub(earlier.machine.1).max(1) as f64;
        // /proc/stat ticks are 10 ms; this process's share of all cores
        // comes off the machine's busy share to leave the other processes.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let other = (busy / total - share(3) / cores).max(0.0);
        let count = self.fanout.1.saturating_sub(earlier.fanout.1);
        Cpu {
            server: share(0),
            store: share(1),
            tool: share(2),
            other,
            server_mean_ms: if count == 0 {
                f64::NAN
            } else {
                (self.fanout.0 - earlier.fanout.0) / count as f64 * 1e3
            },
            lagged: self.lagged.saturating_sub(earlier.lagged),
        }
    }
}

/// CPU nanoseconds so far of this process's threads, grouped by name:
/// server runtime, record writer, tool runtime, and all threads.
fn thread_cpu() -> [u64; 4] {
    let mut groups = [0u64; 4];
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return groups;
    };
    for task in tasks.flatten() {
        let path = task.path();
        // A thread may exit between listing and reading; skip it.
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        let nanos = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let name = comm.trim();
        if name.starts_with(SERVER_THREADS) {
            groups[0] += nanos;
        } else if name.starts_with(STORE_THREAD) {
            groups[1] += nanos;
        } else if name.starts_with(TOOL_THREADS) {
            groups[2] += nanos;
        }
        groups[3] += nanos;
    }
    groups
}

/// (busy, total) ticks of the whole machine from the first line of
/// `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
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
        return (0, 0);
    };
    let busy = user + nice + system + irq + softirq;
    (busy, busy + idle + iowait + steal)
}

/// Nearest-rank percentile of sorted values; NaN when there are none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median (the upper one for an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------
// Closed loop: as many notes as acknowledgements allow.
// ---------------------------------------------------------------------

/// One author's run: acknowledgement latencies in ms.
async fn author(
    mut client: Client,
    id: usize,
    run: usize,
    window: usize,
    until: Instant,
) -> Vec<f64> {
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut next = 0usize;
    // Bounded by the deadline: each turn sends or reads one message.
    while Instant::now() < until {
        if sent.len() < window {
            let key = format!("r{run}-a{id}-{next}");
            next += 1;
            sent.insert(key.clone(), Instant::now());
            client
                .send(json!({"type": "note", "key": key, "frame": (next % 1000) as i64, "text": "bench note"}))
                .await;
            continue;
        }
        let msg = client.next().await;
        if msg["type"] == "noteAck" {
            if let Some(at) = msg["key"].as_str().and_then(|k| sent.remove(k)) {
                latencies.push(at.elapsed().as_secs_f64() * 1000.0);
            }
        } else if msg["type"] == "noteRefused" || msg["type"] == "error" {
            panic!("refused: {msg}");
        }
    }
    latencies
}

async fn closed_loop(server: &TestServer, s: &Settings) {
    let (clients, window, secs, runs) = (s.clients, s.window, s.secs, s.runs);
    println!(
        "notes (closed loop): {clients} authors, {window} in flight each, {secs} s per run, \
         {runs} runs; server in process on its own 2 worker threads, the tool on 2 more"
    );
    println!("| run | notes acked | notes/s | ack p50 ms | p95 ms | p99 ms | max ms |");
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    let mut rates = Vec::new();
    let mut p99s = Vec::new();
    for run in 0..runs {
        // A room per run: the last run's authors linger as disconnected
        // participants (they may resume), which is not what is measured.
        let session = server.create_session().await;
        let mut joined = Vec::new();
        for i in 0..clients {
            joined.push(Client::join(server.addr, &session.reviewer, &format!("Author {i}")).await);
        }
        let started = Instant::now();
        let until = started + Duration::from_secs(secs);
        let tasks: Vec<_> = joined
            .into_iter()
            .enumerate()
            .map(|(i, c)| tokio::spawn(author(c, i, run, window, until)))
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("author task"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort_by(f64::total_cmp);
        let rate = all.len() as f64 / elapsed;
        let p99 = percentile(&all, 0.99);
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            run + 1,
            all.len(),
            rate,
            percentile(&all, 0.50),
            percentile(&all, 0.95),
            p99,
            all.last().copied().unwrap_or(f64::NAN)
        );
        rates.push(rate);
        p99s.push(p99);
    }
    println!(
        "median of runs: {:.0} notes/s, ack p99 {:.1} ms (closed loop: throughput, with queueing \
         in the latency)",
        median(rates.into_iter()),
        median(p99s.into_iter())
    );
}
