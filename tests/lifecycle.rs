//! A long-lived install: ended sessions give their slot back and are not
//! brought back live at each start, and the operator can delete a session
//! (keeping or purging its record).

mod common;

use common::{Client, TestServer, OPERATOR};
use serde_json::json;

async fn end(server: &TestServer, id: &str, host: &str) {
    let path = format!("/api/sessions/{id}/end");
    let (status, body) = server.request("POST", &path, Some(host), None).await;
    assert_eq!(status, 200, "{body}");
}

async fn live_sessions(server: &TestServer) -> i64 {
    let (_, health) = server.request("GET", "/healthz", None, None).await;
    health["sessions"].as_i64().unwrap()
}

#[tokio::test]
async fn ended_sessions_free_their_slot_and_come_back_only_when_asked_for() {
    let data = std::env::temp_dir().join(format!("syncreel-lifecycle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let config = {
        let data = data.clone();
        move |c: &mut syncreel::config::Config| {
            c.limits.max_sessions = 3;
            c.server.data_dir = data;
        }
    };
    let server = TestServer::start_with(config.clone()).await;
    let mut ended = Vec::new();
    for _ in 0..3 {
        let s = server.create_session().await;
        end(&server, &s.id, &s.host).await;
        ended.push(s);
    }
    // Three ended sessions do not hold the three live slots.
    let live = server.create_session().await;
    let mut reviewer = Client::join(server.addr, &ended[0].reviewer, "Ravi").await;
    reviewer
        .send(json!({"type": "note", "key": "k1", "frame": 10, "text": "kept"}))
        .await;
    reviewer.expect("noteAck").await;
    drop(reviewer);
    server.shutdown().await;

    // After a restart only the live one is running…
    let server = TestServer::start_with(config).await;
    assert_eq!(live_sessions(&server).await, 1);
    let (status, _) = server
        .request(
            "GET",
            &format!("/api/sessions/{}", live.id),
            Some(&live.host),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // …and an ended one opens when one of its links asks, record and all.
    let mut late = Client::join(server.addr, &ended[0].viewer, "Vic").await;
    let notes = late.expect("notes").await;
    assert_eq!(notes["notes"][0]["text"], "kept", "{notes}");
    assert_eq!(live_sessions(&server).await, 2);
    // Still three live slots: two more live sessions fit.
    server.create_session().await;
    server.create_session().await;
    let (status, body) = server
        .request(
            "POST",
            "/api/sessions",
            Some(OPERATOR),
            Some(json!({"title": "x", "fps": "24", "durationFrames": 10})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("too_many_sessions"))
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
}

fn count(db: &std::path::Path, sql: &str, id: &str) -> i64 {
    let db = rusqlite::Connection::open(db).unwrap();
    db.query_row(sql, [id], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn the_operator_deletes_a_session_keeping_or_purging_its_record() {
    let server = TestServer::start_with(|c| c.limits.max_sessions = 2).await;
    let db = server.data_dir.join("syncreel.db");
    let mut kept_and_purged = Vec::new();
    for purge in [false, true] {
        let s = server.create_session().await;
        let mut host = Client::join(server.addr, &s.host, "Dana").await;
        host.send(json!({"type": "note", "key": "k", "frame": 1, "text": "a note"}))
            .await;
        host.expect("noteAck").await;
        let path = format!("/api/sessions/{}?purge={purge}", s.id);
        // A host link is not the operator.
        let (status, _) = server.request("DELETE", &path, Some(&s.host), None).await;
        assert_eq!(status, 401);
        let (status, body) = server.request("DELETE", &path, Some(OPERATOR), None).await;
        assert_eq!(status, 204, "{body}");
        let bye = host.expect("goodbye").await;
        assert_eq!(bye["code"], "session_not_found", "{bye}");
        host.expect_closed().await;
        // Its links are dead, and it is gone from the API.
        let mut again = Client::connect(server.addr).await;
        again.hello(&s.viewer, "Vic", None).await;
        assert_eq!(again.expect_error().await["code"], "link_revoked");
        let (status, _) = server.request("DELETE", &path, Some(OPERATOR), None).await;
        assert_eq!(status, 404, "deleting twice");
        kept_and_purged.push(s.id);
    }
    // Both slots are free again.
    assert_eq!(live_sessions(&server).await, 0);
    server.create_session().await;
    server.create_session().await;
    // The record: kept for the first, purged for the second; audited both.
    let notes = "SELECT COUNT(*) FROM notes WHERE session_id = ?1";
    let deleted = "SELECT COUNT(*) FROM events WHERE session_id = ?1 AND kind = 'deleted'";
    assert_eq!(count(&db, notes, &kept_and_purged[0]), 1);
    assert_eq!(count(&db, notes, &kept_and_purged[1]), 0);
    for id in &kept_and_purged {
        assert_eq!(count(&db, deleted, id), 1);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_file_is_hashed_once_per_size_and_mtime() {
    let root = std::env::temp_dir().join(format!("syncreel-hash-once-{}", std::process::id()));
    let spec = syncreel::media::demo_clip::DemoClipSpec {
        width: 160,
        height: 90,
        frames: 24,
        ..Default::default()
    };
    let clip = root.join("shot.mov");
    syncreel::media::demo_clip::ensure(&clip, &spec).unwrap();
    let server = TestServer::with_media(&root).await;
    let checksum_of =
        |s: &common::CreatedSession| s.body["version"]["checksum"].as_str().unwrap().to_string();
    let first = server
        .create_session_with(json!({"title": "a", "media": "shot.mov"}))
        .await;
    let real = checksum_of(&first);
    // What the record remembers is what the next session is given, without
    // reading the file: prove it by making the record say otherwise.
    let db = rusqlite::Connection::open(server.data_dir.join("syncreel.db")).unwrap();
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let changed = db
            .execute(
                "UPDATE media_checksums SET checksum = ?1",
                [&"f".repeat(64)],
            )
            .unwrap();
        if changed == 1 {
            break;
        }
        // The writer records the checksum a moment after the answer.
        assert!(
            std::time::Instant::now() < deadline,
            "no checksum was recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = server
        .create_session_with(json!({"title": "b", "media": "shot.mov"}))
        .await;
    assert_eq!(checksum_of(&second), "f".repeat(64));
    // A file whose modification time moved is hashed again.
    let file = std::fs::File::options().write(true).open(&clip).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let third = server
        .create_session_with(json!({"title": "c", "media": "shot.mov"}))
        .await;
    assert_eq!(checksum_of(&third), real);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_live_review_nobody_is_in_ends_by_itself_and_gives_its_slot_back() {
    let server = TestServer::start_with(|c| {
        c.session.expire_idle_secs = 1;
        c.limits.max_sessions = 2;
    })
    .await;
    let empty = server.create_session().await;
    let busy = server.create_session().await;
    let _present = Client::join(server.addr, &busy.host, "Dana").await;
    let ended = |s: &common::CreatedSession| {
        let path = format!("/api/sessions/{}/events", s.id);
        let host = s.host.clone();
        let server = &server;
        async move {
            let (_, events) = server.request("GET", &path, Some(&host), None).await;
            events["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "ended")
        }
    };
    // Bounded polling for the server's own timer.
    let deadline = std::time::Instant::now() + common::WAIT;
    while !ended(&empty).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the empty review never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !ended(&busy).await,
        "a review with someone in it stays open"
    );
    // Its slot is free again: a new session fits beside the busy one.
    server.create_session().await;
    server.shutdown().await;
}

/// Issue #13: a personal room came back at the live room's frame after a
/// restart instead of its own.
#[tokio::test]
async fn a_personal_room_reopens_at_its_own_frame_after_a_restart() {
    let data = std::env::temp_dir().join(format!("syncreel-rooms-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let config = {
        let data = data.clone();
        move |c: &mut syncreel::config::Config| c.server.data_dir = data
    };
    let server = TestServer::start_with(config.clone()).await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    host.send(json!({"type": "seek", "frame": 1300})).await;
    host.expect("transport").await;
    end(&server, &s.id, &s.host).await;
    host.expect("ended").await;

    let mut rae = Client::join(server.addr, &s.reviewer, "Rae").await;
    assert_eq!(rae.welcome["room"], "personal");
    assert_eq!(rae.welcome["state"]["transport"]["anchorFrame"], 1300);
    rae.send(json!({"type": "seek", "frame": 1360})).await;
    let moved = rae.expect("transport").await;
    assert_eq!(moved["transport"]["anchorFrame"], 1360);
    // The record's one writer takes writes in order: once this note is
    // acknowledged, the room's frame (queued before it) is on disk.
    rae.send(json!({"type": "note", "key": "n1", "frame": 1360, "text": "here"}))
        .await;
    rae.expect("noteAck").await;
    let resume = rae.welcome["resume"].as_str().unwrap().to_string();
    rae.drop_connection();
    drop(host);
    server.shutdown().await;

    let server = TestServer::start_with(config).await;
    // Another link's participant cannot borrow the secret: a room of
    // their own, where the live review stood.
    let mut other = Client::connect(server.addr).await;
    other.hello(&s.viewer, "Vic", Some(&resume)).await;
    other.welcome = other.expect("welcome").await;
    assert_eq!(other.welcome["room"], "personal");
    assert_eq!(other.welcome["state"]["transport"]["anchorFrame"], 1300);
    // Rae, resuming through her link, is back at her own frame, and again
    // after a plain reconnect.
    for _ in 0..2 {
        let mut again = Client::connect(server.addr).await;
        again.hello(&s.reviewer, "Rae", Some(&resume)).await;
        again.welcome = again.expect("welcome").await;
        assert_eq!(again.welcome["room"], "personal");
        assert_eq!(
            again.welcome["state"]["transport"]["anchorFrame"], 1360,
            "{}",
            again.welcome
        );
        assert_eq!(again.welcome["resume"].as_str(), Some(resume.as_str()));
        again.drop_connection();
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
}
