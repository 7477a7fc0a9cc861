//! `syncreel upload`: sends a file as the next version of an item, and a
//! run cut short (the process killed mid-way) is resumed by running the
//! same command again.

mod common;
#[path = "support/tus.rs"]
mod tus;

use std::process::{Command, Stdio};
use std::time::Instant;

use common::{TestServer, OPERATOR};
use tus::{files_under, padded_clip, sha256_file};

const MB: u64 = 1 << 20;
const BIN: &str = env!("CARGO_BIN_EXE_syncreel");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_prints_the_version_and_a_rerun_resumes_where_a_killed_one_stopped() {
    let dir = std::env::temp_dir().join(format!("syncreel-upload-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = padded_clip(&dir, "Shot 010 v3.mov", 96 * MB, 5);
    let root = media.clone();
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        c.uploads.reserve_free_bytes = 0;
    })
    .await;
    let url = format!("http://{}", server.addr);
    let state = dir.join("state");
    let (file2, url2, state2) = (file.clone(), url.clone(), state.clone());
    let command = move || {
        let (file, url, state) = (&file2, &url2, &state2);
        let mut c = Command::new(BIN);
        c.arg("upload")
            .arg(file)
            .args(["--server", url, "--item", "Shot 010", "--chunk-mib", "4"])
            .env("SYNCREEL_TOKEN", OPERATOR)
            .env("SYNCREEL_UPLOAD_STATE", state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };

    // The first run is killed once the server holds some of the file.
    let mut first = command().spawn().unwrap();
    let staged = server.data_dir.join("uploads");
    let deadline = Instant::now() + common::WAIT;
    let held = loop {
        let held: u64 = files_under(&staged)
            .iter()
            .filter(|f| f.ends_with("/data"))
            .map(|f| std::fs::metadata(staged.join(f)).map_or(0, |m| m.len()))
            .sum();
        if held >= 16 * MB {
            break held;
        }
        assert!(
            Instant::now() < deadline,
            "the first run sends part of the file"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run is still going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(held < 96 * MB);
    assert!(
        files_under(&media).is_empty(),
        "nothing in the media root yet"
    );

    let rerun = command.clone();
    let again = tokio::task::spawn_blocking(move || rerun().output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stdout}\n{stderr}");
    let resumed_at: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("resuming at byte "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("the rerun resumes: {stderr}"))
        .parse()
        .unwrap();
    assert!(
        resumed_at >= 16 * MB,
        "resumed at {resumed_at}, not from zero"
    );
    let original = sha256_file(&file);
    assert!(stdout.starts_with("Shot 010 v1 uploads/"), "{stdout}");
    assert!(stdout.trim_end().ends_with(&original), "{stdout}");
    let stored = files_under(&media);
    assert_eq!(stored.len(), 1);
    assert_eq!(sha256_file(&media.join(&stored[0])), original);
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "nothing left to resume"
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
