//! An upload survives a `kill -9` of the server mid-chunk: the restarted
//! server resumes it from the bytes actually on disk (less a checksummed
//! chunk it never verified), and the file that lands is the original,
//! byte for byte.

mod common;
#[path = "support/process.rs"]
mod process;
#[path = "support/tus.rs"]
mod tus;

use std::time::Instant;

use hyper::body::Bytes;
use process::Process;
use tokio::io::AsyncWriteExt;
use tus::{checksum_header, files_under, padded_clip, sha256_file, Tus};

const MB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_chunk_resumes_from_the_bytes_on_disk() {
    let data = std::env::temp_dir().join(format!("syncreel-upload-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(data.join("media")).unwrap();
    let file = padded_clip(&data, "take.mov", 48 * MB, 9);
    let original = sha256_file(&file);
    let bytes = std::fs::read(&file).unwrap();
    let env = [("SYNCREEL_UPLOADS__RESERVE_FREE_BYTES", "0")];
    let mut server = Process::start_with(&data, &env);
    let tus = Tus::new(server.addr, Some(common::OPERATOR));
    let upload = tus
        .created(
            48 * MB,
            &[
                ("filename", "take.mov"),
                ("item", "Shot 040"),
                ("sha256", &original),
            ],
        )
        .await;
    let id = upload.rsplit('/').next().unwrap().to_string();
    let staged = data.join("uploads").join(&id).join("data");
    let first = &bytes[..(8 * MB) as usize];
    let sent = tus
        .patch(
            &upload,
            0,
            Bytes::copy_from_slice(first),
            Some(&checksum_header(first)),
        )
        .await;
    assert_eq!(sent.offset(), 8 * MB);

    // A 40 MB chunk of which 24 MB go out, and the connection stays open:
    // the server is mid-write when it dies.
    let writer = patch_and_hold(
        server.addr,
        &upload,
        8 * MB,
        40 * MB,
        None,
        &bytes[(8 * MB) as usize..(32 * MB) as usize],
    );
    wait_for_size(&staged, 24 * MB).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    writer.abort();
    let on_disk = std::fs::metadata(&staged).unwrap().len();
    assert!(on_disk > 8 * MB && on_disk <= 32 * MB, "{on_disk}");
    assert!(
        files_under(&data.join("media")).is_empty(),
        "nothing in the media root"
    );

    // Again, with a chunk that carries its checksum: bytes of a chunk the
    // server never verified do not count after the crash.
    let mut server = Process::start_with(&data, &env);
    let sum = checksum_header(&bytes[on_disk as usize..(on_disk + 12 * MB) as usize]);
    let writer = patch_and_hold(
        server.addr,
        &upload,
        on_disk,
        12 * MB,
        Some(sum),
        &bytes[on_disk as usize..(on_disk + 10 * MB) as usize],
    );
    wait_for_size(&staged, on_disk + 4 * MB).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    writer.abort();
    assert!(std::fs::metadata(&staged).unwrap().len() > on_disk);

    let server = Process::start_with(&data, &env);
    let tus = Tus::new(server.addr, Some(common::OPERATOR));
    let head = tus.head(&upload).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.offset(), on_disk, "resumes from what the disk holds");
    let last = tus
        .send_file(&upload, &file, on_disk, (16 * MB) as usize)
        .await;
    assert_eq!(last.header("syncreel-version-number").as_deref(), Some("1"));
    let done = tus.get(&upload).await.body;
    let stored = data
        .join("media")
        .join(done["version"]["media"].as_str().unwrap());
    assert_eq!(sha256_file(&stored), original);
    assert_eq!(files_under(&data.join("media")).len(), 1);
    assert!(!staged.exists(), "no bytes left staged");
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// Starts a PATCH at `offset` announcing `announced` bytes, sends `sent`,
/// and holds the connection open (until the task is aborted).
fn patch_and_hold(
    addr: std::net::SocketAddr,
    path: &str,
    offset: u64,
    announced: u64,
    checksum: Option<String>,
    sent: &[u8],
) -> tokio::task::JoinHandle<()> {
    let checksum = checksum
        .map(|c| format!("upload-checksum: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         tus-resumable: 1.0.0\r\ncontent-type: application/offset+octet-stream\r\n\
         upload-offset: {offset}\r\ncontent-length: {announced}\r\n{checksum}\r\n",
        common::OPERATOR,
    );
    let body = Bytes::copy_from_slice(sent);
    tokio::spawn(async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(&body).await;
        std::future::pending::<()>().await;
    })
}

/// Bounded polling of the disk until the staged data holds `size` bytes.
async fn wait_for_size(path: &std::path::Path, size: u64) {
    let deadline = Instant::now() + common::WAIT;
    while std::fs::metadata(path).unwrap().len() < size {
        assert!(Instant::now() < deadline, "the server writes the chunk");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
