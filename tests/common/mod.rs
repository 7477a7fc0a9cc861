//! Test harness: the real server on an ephemeral port, a small HTTP
//! client, and WebSocket participants that speak the wire protocol.

#![allow(dead_code)]

pub mod hooks;
pub mod line;
pub mod nats;
pub mod node;
pub mod postgres;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};
use syncreel::config::Config;
use syncreel::server::Server;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// The most [`Client::expect_where`] waits in all, however many other
/// messages arrive meanwhile.
pub const EXPECT_WAIT: Duration = Duration::from_secs(30);

pub struct TestServer {
    /// Where its review record lives.
    pub data_dir: std::path::PathBuf,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The operator token of every test server (and of test processes).
pub const OPERATOR: &str = "test-operator-token";

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::default();
        config.server.bind = "127.0.0.1:0".parse().unwrap();
        config.server.web_root = concat!(env!("CARGO_MANIFEST_DIR"), "/web-client").into();
        // Each server its own record, so tests never see each other's
        // sessions.
        config.server.data_dir = std::env::temp_dir().join(format!(
            "syncreel-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        config.server.admin_token = OPERATOR.into();
        tweak(&mut config);
        let data_dir = config.server.data_dir.clone();
        let server = Server::bind(config).await.expect("bind");
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            data_dir,
            stop: Some(stop),
            task,
        }
    }

    /// A server whose media root is `root`.
    pub async fn with_media(root: &std::path::Path) -> TestServer {
        let root = root.to_path_buf();
        TestServer::start_with(move |c| c.media.root = root).await
    }

    /// A server that streams the media under `root` at 640×360 and
    /// `kbps`, small enough for the tests' own decoders. In VP8, which is
    /// what the test viewer (`support/viewer.rs`) decodes.
    pub async fn streaming(root: std::path::PathBuf, kbps: u32) -> TestServer {
        TestServer::streaming_with(root, kbps, |_| {}).await
    }

    /// As [`streaming`](Self::streaming), with more changes to the config.
    pub async fn streaming_with(
        root: std::path::PathBuf,
        kbps: u32,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        TestServer::start_with(move |c| {
            c.media.root = root;
            c.media.codec = "vp8".into();
            c.media.stream_width = 640;
            c.media.stream_height = 360;
            c.media.bitrate_kbps = kbps;
            tweak(c);
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and waits for it to finish shutting down.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("server stops within the wait")
            .expect("server task")
            .expect("server result");
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        request(self.addr, method, path, bearer, body).await
    }

    /// Creates a 24 fps session starting at 01:00:00:00 and returns it with
    /// its host, reviewer and viewer tokens.
    pub async fn create_session(&self) -> CreatedSession {
        let (status, body) = self
            .request(
                "POST",
                "/api/sessions",
                Some(OPERATOR),
                Some(json!({"title": "Reel 1", "fps": "24", "durationFrames": 14400, "startTimecode": "01:00:00:00"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        CreatedSession::from_body(body)
    }

    /// Creates a session with this request body (201 expected).
    pub async fn create_session_with(&self, request: Value) -> CreatedSession {
        let (status, body) = self
            .request("POST", "/api/sessions", Some(OPERATOR), Some(request))
            .await;
        assert_eq!(status, 201, "{body}");
        CreatedSession::from_body(body)
    }
}

/// The token of the link for `role` in a created session's body.
pub fn token(body: &Value, role: &str) -> String {
    body["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == role)
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

impl CreatedSession {
    pub fn from_body(body: Value) -> CreatedSession {
        CreatedSession {
            id: body["session"]["id"].as_str().unwrap().to_string(),
            host: token(&body, "host"),
            reviewer: token(&body, "reviewer"),
            viewer: token(&body, "viewer"),
            body,
        }
    }
}

pub struct CreatedSession {
    pub id: String,
    pub host: String,
    pub reviewer: String,
    pub viewer: String,
    pub body: Value,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A participant connected over a real WebSocket.
pub struct Client {
    socket: Socket,
    pub welcome: Value,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("websocket connects");
        Client {
            socket,
            welcome: Value::Null,
        }
    }

    /// Connects with a fixed socket receive buffer of `bytes` (the kernel
    /// doubles it), which also stops the kernel growing it: a reader that
    /// does not read then fills the server's queue for it at a known
    /// point, not at whatever the buffer has grown to (up to
    /// `net.ipv4.tcp_rmem`'s 32 MiB here). Not tiny: a 4 KiB buffer makes
    /// loopback TCP back off its retransmits and stall.
    pub async fn connect_with_receive_buffer(addr: SocketAddr, bytes: u32) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("tcp connects");
        let (socket, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("websocket connects");
        Client {
            socket,
            welcome: Value::Null,
        }
    }

    /// Connects and joins; panics unless a welcome comes back.
    pub async fn join(addr: SocketAddr, token: &str, name: &str) -> Client {
        let mut client = Client::connect(addr).await;
        client.hello(token, name, None).await;
        client.welcome = client.expect("welcome").await;
        client
    }

    pub async fn hello(&mut self, token: &str, name: &str, resume: Option<&str>) {
        let mut hello = json!({"type": "hello", "protocol": 1, "token": token, "name": name});
        if let Some(resume) = resume {
            hello["resume"] = json!(resume);
        }
        self.send(hello).await;
    }

    pub fn id(&self) -> u64 {
        self.welcome["you"].as_u64().expect("joined")
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON message, whatever it is.
    pub async fn next(&mut self) -> Value {
        self.next_before(tokio::time::Instant::now() + WAIT).await
    }

    /// The next JSON message, which must come before `deadline`.
    async fn next_before(&mut self, deadline: tokio::time::Instant) -> Value {
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a message within the wait")
                .expect("socket open")
                .expect("socket ok");
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("server sends JSON")
                }
                Message::Close(frame) => panic!("server closed the connection: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next JSON message, or `None` once the connection is gone (the
    /// server died, say) or nothing came within the wait.
    pub async fn try_next(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Sends, reporting failure instead of panicking.
    pub async fn try_send(&mut self, value: Value) -> bool {
        self.socket
            .send(Message::text(value.to_string()))
            .await
            .is_ok()
    }

    /// Skips messages until one of type `kind` arrives.
    pub async fn expect(&mut self, kind: &str) -> Value {
        self.expect_where(|m| m["type"] == kind).await
    }

    /// Skips messages until one matches, within [`EXPECT_WAIT`] in all:
    /// messages that keep coming (presence, say) must not keep a test
    /// waiting for one that never does.
    pub async fn expect_where(&mut self, what: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + EXPECT_WAIT;
        loop {
            let msg = self
                .next_before(deadline.min(tokio::time::Instant::now() + WAIT))
                .await;
            if what(&msg) {
                return msg;
            }
        }
    }

    /// Skips to the next error and returns its code.
    pub async fn expect_error(&mut self) -> Value {
        self.expect("error").await
    }

    /// Waits for the server to close this connection.
    pub async fn expect_closed(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("closed within the wait")
            {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Round-trips a ping: proves the connection is open and served.
    pub async fn ping(&mut self, id: u32) -> Value {
        self.send(json!({"type": "ping", "id": id, "t0": 0})).await;
        self.expect_where(|m| m["type"] == "pong" && m["id"] == id)
            .await
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    /// Drops the TCP connection without a close handshake, like a crash.
    pub fn drop_connection(self) {
        drop(self.socket);
    }
}

impl TestServer {
    /// One unlabelled value from `/metrics`; panics if it is not there.
    pub async fn metric(&self, name: &str) -> i64 {
        metric(self.addr, name).await
    }

    /// Polls `/healthz` until the open connection count is `n`. Connection
    /// teardown happens on the server's own tasks after the socket closes,
    /// so there is no message to wait for; the poll is bounded by [`WAIT`].
    pub async fn wait_for_connections(&self, n: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, health) = self.request("GET", "/healthz", None, None).await;
            if health["connections"].as_i64() == Some(n) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "connections stayed at {}",
                health["connections"]
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (NEXT.fetch_add(1, Ordering::Relaxed) << 32) | nanos
}

/// The `transport` of a `transport` message (or of a snapshot's state),
/// as the core's type.
pub fn transport_of(msg: &Value) -> syncreel::clock::Transport {
    use syncreel::clock::{ServerTime, Speed, Transport};
    let t = &msg["transport"];
    Transport {
        playing: t["playing"].as_bool().unwrap(),
        speed: Speed::new(t["speed"].as_f64().unwrap() as i32, 1).unwrap_or(Speed::NORMAL),
        ..Transport::paused_at(
            t["anchorFrame"].as_i64().unwrap(),
            ServerTime::from_micros(t["anchorTime"].as_i64().unwrap()),
        )
    }
}

/// A gauge or counter from `/metrics` of the server at `addr`.
pub async fn metric(addr: SocketAddr, name: &str) -> i64 {
    let (_, _, body) = request_with(addr, "GET", "/metrics", None, &[], String::new()).await;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e:?}"))
}

/// The frame code burned into an RGB picture (`w`×`h`, 3 bytes a pixel),
/// read from its luma as the server's `framecode` reads a plane.
pub fn frame_code_rgb(rgb: &[u8], w: usize, h: usize) -> Option<u32> {
    let luma: Vec<u8> = rgb
        .chunks_exact(3)
        .map(|p| ((u32::from(p[0]) * 77 + u32::from(p[1]) * 150 + u32::from(p[2]) * 29) >> 8) as u8)
        .collect();
    let layout = syncreel::framecode::PlaneLayout {
        width: w,
        height: h,
        stride: w,
    };
    syncreel::framecode::read(&luma, layout)
}

/// An HTTP request to a server at `addr`: (status, JSON body).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, bytes) = request_bytes(addr, method, path, bearer, body).await;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, value)
}

/// An HTTP request: (status, content type, body bytes as they came).
pub async fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Bytes) {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, headers, bytes) = request_with(addr, method, path, bearer, &[], payload).await;
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, bytes)
}

/// An HTTP request with extra headers: (status, response headers, body).
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    payload: String,
) -> (u16, hyper::HeaderMap, Bytes) {
    let mut all = vec![("content-type", "application/json")];
    all.extend(
        headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type")),
    );
    if let Some(given) = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        all[0] = *given;
    }
    request_raw(addr, method, path, bearer, &all, Bytes::from(payload)).await
}

/// An HTTP request with these headers only (besides `host` and the
/// bearer) and a body of bytes: (status, response headers, body).
pub async fn request_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    payload: Bytes,
) -> (u16, hyper::HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        req = req.header("host", addr.to_string());
    }
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender
        .send_request(req.body(Full::new(payload)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

/// A small filesystem of its own for one test's files, so the test can fill
/// it up without touching the machine's disk. Unmounted when dropped, even
/// if the test fails.
pub struct SmallDisk {
    pub path: std::path::PathBuf,
}

impl SmallDisk {
    pub fn mount(size: &str) -> SmallDisk {
        let path = std::env::temp_dir().join(format!(
            "syncreel-full-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this fault test mounts a tmpfs and needs root (make test runs as root in CI)"
        );
        SmallDisk { path }
    }

    /// Writes a file until the filesystem has no room left.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0xA5u8; 64 * 1024];
        // Bounded by the filesystem's size: tmpfs refuses at its limit.
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(err) if err.raw_os_error() == Some(28) => break, // ENOSPC
                Err(err) => panic!("filling the small disk: {err}"),
            }
        }
        let _ = file.flush();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A PNG as RGB bytes, width and height.
pub fn decode_png(png: &[u8]) -> (Vec<u8>, usize, usize) {
    let (values, w, h) = decode_png16(png);
    // The top byte of a 16-bit channel is its 8-bit value.
    let rgb = values.into_iter().map(|v| (v >> 8) as u8).collect();
    (rgb, w, h)
}

/// An RGB PNG of 8 or 16 bits a channel, every value scaled to 16 bits
/// (an 8-bit `v` becomes `v × 257`, as PNG's own rule has it).
pub fn decode_png16(png: &[u8]) -> (Vec<u16>, usize, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut out = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut out).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    out.truncate(info.buffer_size());
    let values = match info.bit_depth {
        png::BitDepth::Eight => out.iter().map(|&v| u16::from(v) * 257).collect(),
        png::BitDepth::Sixteen => out
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect(),
        other => panic!("a still of {other:?} bits"),
    };
    (values, info.width as usize, info.height as usize)
}

/// The bit depth of a PNG's channels.
pub fn png_depth(png: &[u8]) -> png::BitDepth {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.read_info().unwrap().info().bit_depth
}
