//! A small tus 1.0 client for the upload tests, on the harness's HTTP
//! helpers, plus a PATCH that dies mid-body and the media files the tests
//! send.

#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use hyper::body::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::common::{request_raw, WAIT};

const TUS: (&str, &str) = ("tus-resumable", "1.0.0");

/// One server and one credential.
#[derive(Clone)]
pub struct Tus {
    pub addr: SocketAddr,
    pub bearer: Option<String>,
}

/// An answer: status, headers, JSON body (`Null` when empty).
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn offset(&self) -> u64 {
        self.header("upload-offset")
            .expect("Upload-Offset")
            .parse()
            .unwrap()
    }

    /// The error code of a refusal.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

fn answer((status, headers, bytes): (u16, hyper::HeaderMap, Bytes)) -> Answer {
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// `Upload-Metadata` for these pairs.
pub fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}",
                base64::engine::general_purpose::STANDARD.encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `Upload-Checksum` of these bytes.
pub fn checksum_header(bytes: &[u8]) -> String {
    format!(
        "sha256 {}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
    )
}

impl Tus {
    pub fn new(addr: SocketAddr, bearer: Option<&str>) -> Tus {
        Tus {
            addr,
            bearer: bearer.map(str::to_string),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Answer {
        answer(
            request_raw(
                self.addr,
                method,
                path,
                self.bearer.as_deref(),
                headers,
                body,
            )
            .await,
        )
    }

    /// POST: the upload's path on success (from `Location`).
    pub async fn create(&self, length: u64, meta: &[(&str, &str)]) -> Answer {
        let length = length.to_string();
        let meta = metadata(meta);
        self.send(
            "POST",
            "/api/uploads",
            &[TUS, ("upload-length", &length), ("upload-metadata", &meta)],
            Bytes::new(),
        )
        .await
    }

    /// POST that must succeed: the upload's path.
    pub async fn created(&self, length: u64, meta: &[(&str, &str)]) -> String {
        let made = self.create(length, meta).await;
        assert_eq!(made.status, 201, "{}", made.body);
        path_of(&made.header("location").expect("Location"))
    }

    pub async fn head(&self, path: &str) -> Answer {
        self.send("HEAD", path, &[TUS], Bytes::new()).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], Bytes::new()).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, &[TUS], Bytes::new()).await
    }

    /// PATCH `bytes` at `offset`, with `checksum` as `Upload-Checksum`.
    pub async fn patch(
        &self,
        path: &str,
        offset: u64,
        bytes: Bytes,
        checksum: Option<&str>,
    ) -> Answer {
        let offset = offset.to_string();
        let mut headers = vec![
            TUS,
            ("content-type", "application/offset+octet-stream"),
            ("upload-offset", offset.as_str()),
        ];
        if let Some(sum) = checksum {
            headers.push(("upload-checksum", sum));
        }
        self.send("PATCH", path, &headers, bytes).await
    }

    /// Sends `file` from `from` to its end in chunks of `chunk` bytes, each
    /// with its checksum; the last answer.
    pub async fn send_file(&self, path: &str, file: &Path, from: u64, chunk: usize) -> Answer {
        let mut f = std::fs::File::open(file).unwrap();
        let length = f.metadata().unwrap().len();
        f.seek(SeekFrom::Start(from)).unwrap();
        let mut offset = from;
        // Bounded by the file's length over the chunk size.
        loop {
            let mut buf = vec![0u8; chunk.min((length - offset) as usize)];
            f.read_exact(&mut buf).unwrap();
            let sum = checksum_header(&buf);
            let sent = self.patch(path, offset, Bytes::from(buf), Some(&sum)).await;
            assert_eq!(sent.status, 204, "PATCH at {offset}: {}", sent.body);
            offset = sent.offset();
            if offset == length {
                return sent;
            }
        }
    }

    /// Starts a PATCH at `offset` that announces `announced` bytes, sends
    /// `sent` of them, and closes the connection: a network that drops.
    pub async fn patch_then_drop(&self, path: &str, offset: u64, announced: u64, sent: &[u8]) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let auth = self
            .bearer
            .as_deref()
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "PATCH {path} HTTP/1.1\r\nhost: {}\r\n{auth}tus-resumable: 1.0.0\r\n\
             content-type: application/offset+octet-stream\r\nupload-offset: {offset}\r\n\
             content-length: {announced}\r\n\r\n",
            self.addr
        );
        tokio::time::timeout(WAIT, async {
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(sent).await.unwrap();
            stream.flush().await.unwrap();
            // A FIN, not a reset: every byte sent arrives first.
            stream.shutdown().await.unwrap();
        })
        .await
        .expect("the server reads the body");
        drop(stream);
    }
}

/// The path of a `Location` URL.
pub fn path_of(location: &str) -> String {
    let rest = location
        .split_once("://")
        .map_or(location, |(_, rest)| rest);
    rest[rest.find('/').expect("a path")..].to_string()
}

/// SHA-256 (hex) of a file.
pub fn sha256_file(path: &Path) -> String {
    syncreel::media::checksum(path).unwrap().0
}

/// A real clip (a short MOV GStreamer decodes) padded to `size` bytes with
/// a top-level `free` atom of pseudo-random bytes, which QuickTime readers
/// skip: a big upload that probes like any camera file. `seed` makes
/// different bytes.
pub fn padded_clip(dir: &Path, name: &str, size: u64, seed: u64) -> PathBuf {
    let clip = dir.join(format!("{name}.base.mov"));
    let spec = syncreel::media::demo_clip::DemoClipSpec {
        width: 320,
        height: 180,
        frames: 24,
        gop: 12,
        ..Default::default()
    };
    syncreel::media::demo_clip::ensure(&clip, &spec).unwrap();
    let out = dir.join(name);
    std::fs::copy(&clip, &out).unwrap();
    let base = std::fs::metadata(&out).unwrap().len();
    assert!(size > base + 8, "{size} holds the clip ({base} bytes)");
    let pad = size - base;
    let mut file = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    file.write_all(&(pad as u32).to_be_bytes()).unwrap();
    file.write_all(b"free").unwrap();
    let mut left = pad - 8;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; 1 << 20];
    // Bounded by `size`.
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    file.sync_all().unwrap();
    out
}

/// Every file under `dir`, as paths relative to it (nothing if it is
/// missing).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().into());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
