//! `syncreel upload FILE --server URL --item NAME`: a tus client for the
//! terminal. It declares the file's SHA-256, sends checksummed chunks with
//! a progress bar, rides out dropped connections by asking the server
//! where to go on, and remembers the upload's URL so that running the same
//! command again resumes instead of starting over.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use sha2::{Digest, Sha256};

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The media file to send.
    pub file: PathBuf,
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    pub server: String,
    /// The media item the file is the next version of; defaults to the
    /// file's name without its extension.
    #[arg(long)]
    pub item: Option<String>,
    /// Upload into this session (needs its host link's token).
    #[arg(long)]
    pub session: Option<String>,
    /// The operator token, or a host link's token with --session; without
    /// it, the one in ./data/operator-token.
    #[arg(long, env = "SYNCREEL_TOKEN")]
    pub token: Option<String>,
    /// Bytes per request, in MiB: what a dropped connection can cost.
    #[arg(long, default_value_t = 16)]
    pub chunk_mib: u64,
    /// Where unfinished uploads' URLs are kept between runs; defaults to
    /// ~/.cache/syncreel/uploads.
    #[arg(long, env = "SYNCREEL_UPLOAD_STATE")]
    pub state_dir: Option<PathBuf>,
}

/// Failed requests in a row before the command gives up (the state stays:
/// run it again to resume).
const RETRIES: u32 = 6;

pub async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let base = args.server.trim_end_matches('/').to_string();
    let Some(authority) = base.strip_prefix("http://").map(str::to_string) else {
        bail!("--server must be an http:// URL");
    };
    let token = args.token.clone().or_else(|| {
        std::fs::read_to_string(Path::new("data").join(crate::operator::TOKEN_FILE))
            .ok()
            .map(|t| t.trim().to_string())
    });
    let file = args
        .file
        .canonicalize()
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let meta = std::fs::metadata(&file)?;
    let length = meta.len();
    let chunk = args.chunk_mib.clamp(1, 1024) << 20;
    let client = Client { authority, token };
    let state = state_path(&args, &base, &file, &meta)?;
    let filename = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let remembered = std::fs::read_to_string(&state).ok();
    let mut resumed = None;
    if let Some(path) = remembered.as_deref().map(str::trim) {
        let head = client.send("HEAD", path, &[], Bytes::new()).await?;
        match head.status {
            200 => resumed = Some((path.to_string(), offset_of(&head)?)),
            404 | 410 => eprintln!("the earlier upload is gone from the server; starting again"),
            _ => bail!("the server answered {} for the earlier upload", head.status),
        }
    }
    let (path, mut offset) = match resumed {
        Some((path, offset)) => {
            eprintln!("resuming at byte {offset} of {length}");
            (path, offset)
        }
        None => {
            eprintln!("hashing {} ({length} bytes)…", file.display());
            let sha256 = hash_file(&file)?;
            let mut pairs = vec![("filename", filename.as_str()), ("sha256", sha256.as_str())];
            if let Some(item) = &args.item {
                pairs.push(("item", item));
            }
            if let Some(session) = &args.session {
                pairs.push(("session", session));
            }
            let metadata = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k} {}",
                        base64::engine::general_purpose::STANDARD.encode(v)
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            let length_text = length.to_string();
            let made = client
                .send(
                    "POST",
                    "/api/uploads",
                    &[
                        ("upload-length", &length_text),
                        ("upload-metadata", &metadata),
                    ],
                    Bytes::new(),
                )
                .await?;
            if made.status != 201 {
                bail!("the server refused the upload: {}", made.error());
            }
            let location = made.header("location").context("no Location")?;
            let path = path_of(&location);
            if let Some(dir) = state.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&state, &path)?;
            (path, 0)
        }
    };

    let mut reader = std::fs::File::open(&file)?;
    let started = Instant::now();
    let first = offset;
    let mut failures = 0;
    let mut last = None;
    // Bounded: each turn sends a chunk or spends one of RETRIES.
    while offset < length || last.is_none() {
        let size = chunk.min(length - offset) as usize;
        let mut buf = vec![0u8; size];
        reader.seek(SeekFrom::Start(offset))?;
        reader.read_exact(&mut buf)?;
        let sum = format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&buf))
        );
        let offset_text = offset.to_string();
        let sent = client
            .send(
                "PATCH",
                &path,
                &[
                    ("content-type", "application/offset+octet-stream"),
                    ("upload-offset", &offset_text),
                    ("upload-checksum", &sum),
                ],
                Bytes::from(buf),
            )
            .await;
        match sent {
            Ok(answer) if answer.status == 204 => {
                failures = 0;
                offset = offset_of(&answer)?;
                progress(offset - first, length - first, started.elapsed());
                if offset == length {
                    last = Some(answer);
                }
            }
            // Where the server is matters more than where we think it is.
            Ok(answer) if answer.retryable() => {
                failures += 1;
                if failures > RETRIES {
                    bail!("the server keeps refusing: {}", answer.error());
                }
                offset = settle(&client, &path, failures).await?;
            }
            Ok(answer) => {
                // Refused for what the file is: starting again would not help.
                let _ = std::fs::remove_file(&state);
                eprintln!();
                bail!("the server refused the upload: {}", answer.error());
            }
            Err(err) => {
                failures += 1;
                if failures > RETRIES {
                    return Err(err
                        .context("the connection keeps failing; run the command again to resume"));
                }
                eprintln!("\nconnection lost ({err}); asking the server where to resume");
                offset = settle(&client, &path, failures).await?;
            }
        }
    }
    let _ = std::fs::remove_file(&state);
    let status = client.send("GET", &path, &[], Bytes::new()).await?;
    let body: serde_json::Value = serde_json::from_slice(&status.body).unwrap_or_default();
    let version = &body["version"];
    let note = if body["duplicate"] == true {
        " (these bytes were already there: nothing new stored)"
    } else {
        ""
    };
    println!(
        "{} v{} {} {}{note}",
        version["item"].as_str().unwrap_or_default(),
        version["number"],
        version["media"].as_str().unwrap_or_default(),
        version["checksum"].as_str().unwrap_or_default(),
    );
    Ok(())
}

/// Waits a little (longer after each failure), then asks the server for
/// the offset.
async fn settle(client: &Client, path: &str, failures: u32) -> anyhow::Result<u64> {
    tokio::time::sleep(Duration::from_millis(250 << failures.min(5))).await;
    let head = client.send("HEAD", path, &[], Bytes::new()).await?;
    match head.status {
        200 => offset_of(&head),
        status => bail!("the server answered {status} for the upload"),
    }
}

fn progress(done: u64, total: u64, elapsed: Duration) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let left = (total - done) as f64 / rate.max(1.0);
    eprint!(
        "\rupload [{}{}] {:>5.1}%  {:>7.1} MB/s  {:>5.0} s left",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        100.0 * done as f64 / total.max(1) as f64,
        rate / 1e6,
        left
    );
    if done == total {
        eprintln!();
    }
}

/// Where this file's upload to this server is remembered: one file per
/// (server, path, size, mtime, item, session), so an edited file starts
/// over.
fn state_path(
    args: &UploadArgs,
    base: &str,
    file: &Path,
    meta: &std::fs::Metadata,
) -> anyhow::Result<PathBuf> {
    let dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set: give --state-dir")?;
            PathBuf::from(home).join(".cache/syncreel/uploads")
        }
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = format!(
        "{base}\0{}\0{}\0{mtime}\0{:?}\0{:?}",
        file.display(),
        meta.len(),
        args.item,
        args.session
    );
    Ok(dir.join(crate::uploads::tus::hex(&Sha256::digest(key.as_bytes()))))
}

fn hash_file(path: &Path) -> anyhow::Result<String> {
    Ok(crate::media::checksum(path)?.0)
}

fn offset_of(answer: &Answer) -> anyhow::Result<u64> {
    answer
        .header("upload-offset")
        .and_then(|o| o.parse().ok())
        .context("the server sent no Upload-Offset")
}

fn path_of(location: &str) -> String {
    let rest = location
        .split_once("://")
        .map_or(location, |(_, rest)| rest);
    rest.find('/')
        .map_or_else(|| "/".into(), |at| rest[at..].to_string())
}

struct Client {
    authority: String,
    token: Option<String>,
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// A refusal that asking the server where it stands and going on can
    /// get past: a stale offset, a busy upload, a chunk damaged on the
    /// way, a record briefly unavailable.
    fn retryable(&self) -> bool {
        let body: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let code = body["error"]["code"].as_str().unwrap_or_default();
        matches!(
            code,
            "offset_mismatch" | "upload_locked" | "checksum_mismatch" | "store" | "interrupted"
        ) || (self.status >= 500 && self.status != 507)
    }

    /// The refusal's `code: message`, or the status.
    fn error(&self) -> String {
        let body: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        match (
            body["error"]["code"].as_str(),
            body["error"]["message"].as_str(),
        ) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => format!("HTTP {}", self.status),
        }
    }
}

impl Client {
    /// One request on its own connection (a dropped one costs nothing
    /// but itself), with the tus version and the bearer.
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("cannot reach {}", self.authority))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header("tus-resumable", crate::uploads::tus::VERSION);
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender.send_request(request.body(Full::new(body))?).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
