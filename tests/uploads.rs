//! Resumable uploads (`/api/uploads`, tus 1.0) against the real server: a
//! 200 MB file survives a dropped connection and lands whole; a version
//! stack grows by upload; a duplicate is not stored twice; every refusal
//! is typed and leaves nothing behind.

mod common;
#[path = "support/tus.rs"]
mod tus;

use std::path::PathBuf;
use std::time::Instant;

use common::{token, SmallDisk, TestServer, OPERATOR};
use hyper::body::Bytes;
use serde_json::json;
use tus::{checksum_header, files_under, padded_clip, sha256_file, Tus};

const MB: u64 = 1 << 20;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("syncreel-uploads-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server whose media root is `media/` under its data dir.
async fn server_with(
    tweak: impl FnOnce(&mut syncreel::config::Config) + Send + 'static,
) -> (TestServer, PathBuf) {
    // Its own directory, not one under a shared `scratch`: tests run in
    // parallel in one process, and `scratch` empties its directory first.
    let media = scratch(&format!("media-{}", rand::random::<u64>()));
    let root = media.clone();
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        c.uploads.reserve_free_bytes = 0;
        tweak(c);
    })
    .await;
    (server, media)
}

fn staged(server: &TestServer) -> Vec<String> {
    files_under(&server.data_dir.join("uploads"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_upload_survives_a_dropped_connection_and_lands_whole_never_partial() {
    let dir = scratch("big");
    let file = padded_clip(&dir, "Shot 010 v1.mov", 200 * MB, 1);
    let original = sha256_file(&file);
    let (server, media) = server_with(|_| {}).await;
    let tus = Tus::new(server.addr, Some(OPERATOR));
    let started = Instant::now();

    let upload = tus
        .created(
            200 * MB,
            &[
                ("filename", "Shot 010 v1.mov"),
                ("item", "Shot 010"),
                ("sha256", &original),
            ],
        )
        .await;
    // The first 64 MB in checksummed chunks.
    let bytes = std::fs::read(&file).unwrap();
    let mut offset = 0u64;
    for _ in 0..2 {
        let chunk = &bytes[offset as usize..(offset + 32 * MB) as usize];
        let sent = tus
            .patch(
                &upload,
                offset,
                Bytes::copy_from_slice(chunk),
                Some(&checksum_header(chunk)),
            )
            .await;
        assert_eq!(sent.status, 204, "{}", sent.body);
        offset = sent.offset();
        assert!(
            files_under(&media).is_empty(),
            "nothing in the media root mid-upload"
        );
    }
    assert_eq!(offset, 64 * MB);
    // The network drops 10 MB into a 32 MB chunk: what arrived is kept.
    let partial = &bytes[offset as usize..(offset + 10 * MB) as usize];
    tus.patch_then_drop(&upload, offset, 32 * MB, partial).await;
    let head = tus.head(&upload).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.offset(),
        74 * MB,
        "resumes from the last byte that arrived"
    );
    assert_eq!(head.header("upload-length").as_deref(), Some("209715200"));
    assert_eq!(head.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        files_under(&media).is_empty(),
        "nothing in the media root mid-upload"
    );
    // A client that resends from where it thinks it was is told where it is.
    let stale = tus
        .patch(&upload, offset, Bytes::from_static(b"x"), None)
        .await;
    assert_eq!((stale.status, stale.code()), (409, "offset_mismatch"));

    let last = tus
        .send_file(&upload, &file, head.offset(), 32 * MB as usize)
        .await;
    assert_eq!(last.offset(), 200 * MB);
    assert_eq!(last.header("syncreel-version-number").as_deref(), Some("1"));
    let elapsed = started.elapsed();
    let status = tus.get(&upload).await.body;
    assert_eq!(status["state"], "done");
    assert_eq!(status["version"]["item"], "Shot 010");
    assert_eq!(status["version"]["number"], 1);
    assert_eq!(status["version"]["checksum"], original.as_str());
    let stored = media.join(status["version"]["media"].as_str().unwrap());
    assert_eq!(
        sha256_file(&stored),
        original,
        "the stored file is the original"
    );
    assert_eq!(
        files_under(&media),
        vec![status["version"]["media"].as_str().unwrap().to_string()]
    );
    let id = upload.rsplit('/').next().unwrap();
    assert_eq!(
        staged(&server),
        vec![format!("{id}/done"), format!("{id}/info")],
        "no bytes left staged"
    );
    eprintln!("200 MB uploaded (with a drop and a resume) in {elapsed:?}");

    // The same bytes again, for the same item: the same version, one file.
    let again = tus
        .created(200 * MB, &[("filename", "copy.mov"), ("item", "Shot 010")])
        .await;
    tus.send_file(&again, &file, 0, 64 * MB as usize).await;
    let dup = tus.get(&again).await.body;
    assert_eq!(dup["version"]["id"], status["version"]["id"]);
    assert_eq!(dup["duplicate"], true);
    assert_eq!(
        files_under(&media).len(),
        1,
        "a duplicate is not stored twice"
    );

    // The media list shows the stack.
    let (_, listed) = server
        .request("GET", "/api/media", Some(OPERATOR), None)
        .await;
    let item = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Shot 010")
        .unwrap();
    assert_eq!(item["versions"].as_array().unwrap().len(), 1);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn uploads_to_an_item_stack_up_as_versions_and_a_session_can_review_one() {
    let dir = scratch("stack");
    let (server, media) = server_with(|_| {}).await;
    let tus = Tus::new(server.addr, Some(OPERATOR));
    let mut numbers = Vec::new();
    for seed in 1..=2 {
        let file = padded_clip(&dir, &format!("take{seed}.mov"), 2 * MB, seed);
        let upload = tus
            .created(2 * MB, &[("filename", "take.mov"), ("item", "Shot 020")])
            .await;
        tus.send_file(&upload, &file, 0, MB as usize).await;
        numbers.push(tus.get(&upload).await.body["version"].clone());
    }
    assert_eq!(numbers[0]["number"], 1);
    assert_eq!(numbers[1]["number"], 2);
    assert_ne!(numbers[0]["media"], numbers[1]["media"]);
    assert_eq!(files_under(&media).len(), 2);
    // The checksum is filed as the server looks it up, so a session made
    // from the file does not hash it again.
    let stored = media
        .join(numbers[1]["media"].as_str().unwrap())
        .canonicalize()
        .unwrap();
    let meta = std::fs::metadata(&stored).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let record = syncreel::store::Store::open(&server.data_dir.join("syncreel.db")).unwrap();
    let known = record
        .known_checksum(
            &stored.to_string_lossy(),
            meta.len() as i64,
            mtime.as_nanos() as i64,
        )
        .unwrap();
    assert_eq!(known.as_deref(), numbers[1]["checksum"].as_str());
    // A session made from the uploaded file reviews that version.
    let made = server
        .create_session_with(
            json!({"title": "Shot 020", "media": numbers[1]["media"], "item": "Shot 020"}),
        )
        .await;
    assert_eq!(made.body["version"]["number"], 2);
    assert_eq!(made.body["version"]["id"], numbers[1]["id"]);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_host_link_uploads_into_its_own_session_only() {
    let dir = scratch("host");
    let file = padded_clip(&dir, "shot.mov", MB, 3);
    let (server, _media) = server_with(|_| {}).await;
    let a = server.create_session().await;
    let b = server.create_session().await;
    let session_a = a.body["session"]["id"].as_str().unwrap().to_string();
    let session_b = b.body["session"]["id"].as_str().unwrap().to_string();
    let host = Tus::new(server.addr, Some(&a.host));

    let other = host
        .create(MB, &[("filename", "shot.mov"), ("session", &session_b)])
        .await;
    assert_eq!((other.status, other.code()), (403, "forbidden"));
    let none = host.create(MB, &[("filename", "shot.mov")]).await;
    assert_eq!((none.status, none.code()), (403, "forbidden"));
    let reviewer = Tus::new(server.addr, Some(&token(&a.body, "reviewer")));
    let refused = reviewer
        .create(MB, &[("filename", "shot.mov"), ("session", &session_a)])
        .await;
    assert_eq!((refused.status, refused.code()), (403, "forbidden"));

    let upload = host
        .created(
            MB,
            &[
                ("filename", "shot.mov"),
                ("session", &session_a),
                ("item", "Shot 030"),
            ],
        )
        .await;
    // Another session's host may not touch it.
    let stranger = Tus::new(server.addr, Some(&b.host));
    assert_eq!(stranger.head(&upload).await.status, 403);
    host.send_file(&upload, &file, 0, MB as usize).await;
    assert_eq!(host.get(&upload).await.body["version"]["item"], "Shot 030");
    let (_, events) = server
        .request(
            "GET",
            &format!("/api/sessions/{session_a}/events"),
            Some(&a.host),
            None,
        )
        .await;
    let logged = events["events"].as_array().unwrap();
    assert!(
        logged.iter().any(|e| e["kind"] == "version_uploaded"
            && e["detail"].as_str().unwrap().starts_with("Shot 030 v1")),
        "{events}"
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Refusals, one per row: (what, status, code). Each leaves neither a
/// staged upload nor a file in the media root.
#[tokio::test]
async fn every_refusal_is_typed_and_leaves_nothing_behind() {
    let dir = scratch("refusals");
    let good = padded_clip(&dir, "good.mov", MB, 4);
    let good_sum = sha256_file(&good);
    let junk = dir.join("junk.mov");
    std::fs::write(&junk, vec![0x5Au8; MB as usize]).unwrap();
    let (server, media) = server_with(|c| {
        c.uploads.quota_bytes = 3 * MB;
        c.uploads.max_size_bytes = 8 * MB;
    })
    .await;
    let tus = Tus::new(server.addr, Some(OPERATOR));
    let check = |what: &str, answer: &tus::Answer, status: u16, code: &str| {
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{what}: {}",
            answer.body
        );
        assert!(
            files_under(&media).is_empty(),
            "{what}: the media root is untouched"
        );
        assert!(
            staged(&server).is_empty(),
            "{what}: nothing staged: {:?}",
            staged(&server)
        );
    };

    let escaping = tus
        .create(MB, &[("filename", "../../etc/passwd.mov")])
        .await;
    check("a path for a name", &escaping, 400, "bad_filename");
    let hidden = tus.create(MB, &[("filename", ".profile")]).await;
    check("a dot-name", &hidden, 400, "bad_filename");
    let big = tus.create(9 * MB, &[("filename", "big.mov")]).await;
    check("over max size", &big, 413, "too_large");
    let quota = tus.create(4 * MB, &[("filename", "q.mov")]).await;
    check("over quota", &quota, 507, "over_quota");
    let anonymous = Tus::new(server.addr, None)
        .create(MB, &[("filename", "a.mov")])
        .await;
    check("no credential", &anonymous, 401, "unauthorized");
    let forged = Tus::new(server.addr, Some("not-a-token"))
        .create(MB, &[("filename", "a.mov")])
        .await;
    check("a wrong token", &forged, 401, "invalid_token");
    let bad_sum = tus
        .create(MB, &[("filename", "a.mov"), ("sha256", "abc")])
        .await;
    check("a malformed sha256", &bad_sum, 400, "bad_checksum");
    let (status, headers, _) = common::request_raw(
        server.addr,
        "POST",
        "/api/uploads",
        Some(OPERATOR),
        &[("upload-length", "10")],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, 412, "no Tus-Resumable");
    assert_eq!(headers.get("tus-version").unwrap(), "1.0.0");

    // The whole file is not what was declared: removed at the end.
    let wrong = tus
        .created(MB, &[("filename", "good.mov"), ("sha256", &"0".repeat(64))])
        .await;
    let bytes = std::fs::read(&good).unwrap();
    let end = tus.patch(&wrong, 0, Bytes::from(bytes.clone()), None).await;
    check(
        "a wrong whole-file checksum",
        &end,
        460,
        "file_checksum_mismatch",
    );
    assert_eq!(tus.head(&wrong).await.status, 404);

    // GStreamer cannot read it: removed after the probe, with the reason.
    let undecodable = tus.created(MB, &[("filename", "junk.mov")]).await;
    let end = tus
        .patch(
            &undecodable,
            0,
            Bytes::from(std::fs::read(&junk).unwrap()),
            None,
        )
        .await;
    check("an undecodable file", &end, 422, "not_media");
    assert!(
        end.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("junk.mov"),
        "{}",
        end.body
    );

    // A chunk whose checksum is wrong is discarded, the upload stays.
    let upload = tus
        .created(MB, &[("filename", "good.mov"), ("sha256", &good_sum)])
        .await;
    let half = Bytes::copy_from_slice(&bytes[..(MB / 2) as usize]);
    let corrupt = tus
        .patch(&upload, 0, half.clone(), Some(&checksum_header(b"other")))
        .await;
    assert_eq!((corrupt.status, corrupt.code()), (460, "checksum_mismatch"));
    assert_eq!(
        tus.head(&upload).await.offset(),
        0,
        "the chunk was discarded"
    );
    let wrong_type = common::request_raw(
        server.addr,
        "PATCH",
        &upload,
        Some(OPERATOR),
        &[
            ("tus-resumable", "1.0.0"),
            ("upload-offset", "0"),
            ("content-type", "application/json"),
        ],
        half.clone(),
    )
    .await;
    assert_eq!(wrong_type.0, 415);
    let past = tus
        .patch(&upload, 0, Bytes::from(vec![0u8; MB as usize + 1]), None)
        .await;
    assert_eq!((past.status, past.code()), (413, "past_end"));
    assert_eq!(tus.head(&upload).await.offset(), 0);
    // Terminated: gone, bytes and all.
    assert_eq!(tus.patch(&upload, 0, half, None).await.status, 204);
    assert_eq!(tus.delete(&upload).await.status, 204);
    assert_eq!(tus.head(&upload).await.status, 404);
    check(
        "a terminated upload",
        &tus.get(&upload).await,
        404,
        "not_found",
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn options_name_the_protocol_and_its_limits() {
    let (server, _) = server_with(|c| c.uploads.max_size_bytes = 12345).await;
    let (status, headers, _) = common::request_raw(
        server.addr,
        "OPTIONS",
        "/api/uploads",
        None,
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, 204);
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("tus-version"), "1.0.0");
    assert_eq!(h("tus-max-size"), "12345");
    assert_eq!(h("tus-checksum-algorithm"), "sha256");
    for ext in ["creation", "termination", "checksum", "expiration"] {
        assert!(h("tus-extension").split(',').any(|e| e == ext), "{ext}");
    }
    let tus = Tus::new(server.addr, Some(OPERATOR));
    let made = tus.create(100, &[("filename", "a.mov")]).await;
    assert!(made.header("upload-expires").unwrap().ends_with(" GMT"));
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_upload_is_gone() {
    let (server, _) = server_with(|c| c.uploads.expire_secs = 1).await;
    let tus = Tus::new(server.addr, Some(OPERATOR));
    let upload = tus.created(100, &[("filename", "a.mov")]).await;
    // Expiry is in whole seconds: bounded polling until it has passed.
    let deadline = Instant::now() + common::WAIT;
    let gone = loop {
        let head = tus.head(&upload).await;
        if head.status != 200 || Instant::now() > deadline {
            break head;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!((gone.status, gone.code()), (410, ""), "HEAD has no body");
    assert!(staged(&server).is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_typed_refusal_that_leaves_nothing_behind() {
    let disk = SmallDisk::mount("8m");
    let data_dir = disk.path.join("record");
    let media = disk.path.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let server = {
        let (data_dir, media) = (data_dir.clone(), media.clone());
        TestServer::start_with(move |c| {
            c.server.data_dir = data_dir;
            c.media.root = media;
            c.uploads.reserve_free_bytes = 0;
        })
        .await
    };
    let tus = Tus::new(server.addr, Some(OPERATOR));
    // More than the disk holds: refused before a byte is sent.
    let huge = tus.create(64 * MB, &[("filename", "huge.mov")]).await;
    assert_eq!(
        (huge.status, huge.code()),
        (507, "disk_full"),
        "{}",
        huge.body
    );
    // It fits when made; then something else fills the disk.
    let upload = tus.created(3 * MB, &[("filename", "a.mov")]).await;
    let filler = disk.fill();
    let sent = tus
        .patch(&upload, 0, Bytes::from(vec![7u8; 3 * MB as usize]), None)
        .await;
    assert_eq!(
        (sent.status, sent.code()),
        (507, "disk_full"),
        "{}",
        sent.body
    );
    assert_eq!(
        tus.head(&upload).await.status,
        404,
        "the upload was removed"
    );
    assert!(files_under(&media).is_empty());
    assert!(staged(&server).is_empty(), "{:?}", staged(&server));
    std::fs::remove_file(filler).unwrap();
    server.shutdown().await;
    drop(disk);
}
