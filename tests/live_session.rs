//! End-to-end tests of a live session: the real server on port 0, real
//! WebSocket clients, the wire protocol as a browser would speak it.

mod common;

use common::{Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn joining_by_link_gives_a_welcome_with_the_session_and_a_resume_secret() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let host = Client::join(server.addr, &s.host, "Dana").await;
    let w = &host.welcome;
    assert_eq!(w["protocol"], 1);
    assert_eq!(w["role"], "host");
    assert_eq!(w["session"]["id"], s.id.as_str());
    assert_eq!(w["session"]["fps"], "24");
    assert_eq!(w["session"]["startTimecode"], "01:00:00:00");
    assert_eq!(w["resume"].as_str().unwrap().len(), 32);
    assert_eq!(w["state"]["transport"]["playing"], false);
    assert!(w["serverTime"].as_i64().unwrap() > 0);

    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    assert_eq!(viewer.welcome["role"], "viewer");
    // The host joined first and took the seat; the viewer's snapshot says so.
    assert_eq!(viewer.welcome["state"]["control"]["driver"], host.id());
    viewer.ping(1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_seek_reaches_everyone_with_the_same_execute_at_and_frame() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut others = Vec::new();
    for (i, token) in [&s.reviewer, &s.viewer, &s.viewer, &s.viewer]
        .into_iter()
        .enumerate()
    {
        others.push(Client::join(server.addr, token, &format!("p{i}")).await);
    }

    host.send(json!({"type": "seek", "timecode": "01:00:10:05", "ref": 7}))
        .await;
    let at_host = host.expect("transport").await;
    assert_eq!(at_host["transport"]["anchorFrame"], 245);
    assert_eq!(at_host["cause"], "seek");
    assert_eq!(at_host["by"], host.id());
    let execute_at = at_host["executeAt"].as_i64().unwrap();
    assert!(execute_at > host.welcome["serverTime"].as_i64().unwrap());
    for other in &mut others {
        let msg = other.expect("transport").await;
        assert_eq!(msg["executeAt"], execute_at);
        assert_eq!(msg["version"], at_host["version"]);
        assert_eq!(msg["transport"], at_host["transport"]);
    }

    host.send(json!({"type": "play"})).await;
    let play = host.expect("transport").await;
    for other in &mut others {
        assert_eq!(other.expect("transport").await, play);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_viewer_cannot_drive_and_a_reviewer_must_be_granted_control() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Cole").await;

    viewer.send(json!({"type": "play", "ref": 1})).await;
    let err = viewer.expect_error().await;
    assert_eq!(
        (err["code"].as_str(), err["ref"].as_u64()),
        (Some("forbidden"), Some(1))
    );
    viewer
        .send(json!({"type": "requestControl", "ref": 2}))
        .await;
    assert_eq!(viewer.expect_error().await["code"], "forbidden");

    reviewer.send(json!({"type": "pause"})).await;
    assert_eq!(reviewer.expect_error().await["code"], "not_driver");
    reviewer.send(json!({"type": "requestControl"})).await;
    let asked = host
        .expect_where(|m| m["type"] == "control" && m["reason"] == "requested")
        .await;
    assert_eq!(asked["requests"], json!([reviewer.id()]));
    host.send(json!({"type": "grantControl", "participant": reviewer.id()}))
        .await;
    let granted = reviewer
        .expect_where(|m| m["type"] == "control" && m["reason"] == "granted")
        .await;
    assert_eq!(granted["driver"], reviewer.id());

    reviewer.send(json!({"type": "shuttle", "speed": 2})).await;
    let t = viewer.expect("transport").await;
    assert_eq!(
        (t["transport"]["speed"].as_f64(), t["by"].as_u64()),
        (Some(2.0), Some(reviewer.id()))
    );
    host.send(json!({"type": "pause"})).await;
    assert_eq!(host.expect_error().await["code"], "not_driver");
    host.send(json!({"type": "takeControl"})).await;
    let taken = reviewer.expect_where(|m| m["type"] == "control").await;
    assert_eq!(
        (taken["driver"].as_u64(), taken["reason"].as_str()),
        (Some(host.id()), Some("taken"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_expired_and_revoked_links_are_refused_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut stranger = Client::connect(server.addr).await;
    stranger.hello("not-a-real-token", "Eve", None).await;
    assert_eq!(stranger.expect_error().await["code"], "invalid_token");
    stranger.send(json!({"type": "play"})).await;
    assert_eq!(stranger.expect_error().await["code"], "not_joined");

    let (status, link) = server
        .request(
            "POST",
            &format!("/api/sessions/{}/links", s.id),
            Some(&s.host),
            Some(json!({"role": "viewer", "expiresInSecs": 0})),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    stranger
        .hello(link["token"].as_str().unwrap(), "Eve", None)
        .await;
    assert_eq!(stranger.expect_error().await["code"], "link_expired");

    let (_, link) = server
        .request(
            "POST",
            &format!("/api/sessions/{}/links", s.id),
            Some(&s.host),
            Some(json!({"role": "reviewer"})),
        )
        .await;
    let mut holder = Client::join(server.addr, link["token"].as_str().unwrap(), "Rae").await;
    let (status, _) = server
        .request(
            "DELETE",
            &format!(
                "/api/sessions/{}/links/{}",
                s.id,
                link["id"].as_str().unwrap()
            ),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let bye = holder.expect("goodbye").await;
    assert_eq!(bye["code"], "link_revoked");
    holder.expect_closed().await;
    // Only the stranger is left connected: the revoked connection's tasks
    // ended and were counted out.
    server.wait_for_connections(1).await;

    stranger
        .hello(link["token"].as_str().unwrap(), "Eve", None)
        .await;
    assert_eq!(stranger.expect_error().await["code"], "link_revoked");
    stranger
        .send(json!({"type": "hello", "protocol": 2, "token": s.viewer, "name": "Eve"}))
        .await;
    assert_eq!(
        stranger.expect_error().await["code"],
        "unsupported_protocol"
    );
    // After all those refusals the same connection can still join.
    stranger.hello(&s.viewer, "Eve", None).await;
    stranger.expect("welcome").await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_oversized_and_flooding_messages_get_typed_errors_while_others_carry_on() {
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_second = 20;
        c.limits.message_burst = 20;
    })
    .await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut bad = Client::join(server.addr, &s.reviewer, "Mallory").await;
    let mut bystander = Client::join(server.addr, &s.viewer, "Vic").await;

    bad.send_text("{not json".into()).await;
    assert_eq!(bad.expect_error().await["code"], "malformed");
    bad.send(json!({"type": "warp"})).await;
    assert_eq!(bad.expect_error().await["code"], "malformed");
    bad.send(json!({"type": "seek", "frame": 1, "timecode": "01:00:00:00", "ref": 5}))
        .await;
    let err = bad.expect_error().await;
    assert_eq!(
        (err["code"].as_str(), err["ref"].as_u64()),
        (Some("malformed"), Some(5))
    );
    bad.send(json!({"type": "shuttle", "speed": 7})).await;
    assert_eq!(bad.expect_error().await["code"], "bad_speed");
    bad.send(json!({"type": "seek", "timecode": "1:00"})).await;
    assert_eq!(bad.expect_error().await["code"], "bad_timecode");
    bad.send_text(format!(
        r#"{{"type":"ping","id":1,"t0":0,"pad":"{}"}}"#,
        "x".repeat(70_000)
    ))
    .await;
    let err = bad.expect_error().await;
    assert_eq!(err["code"], "message_too_large");

    for i in 0..200 {
        bad.send(json!({"type": "requestControl", "ref": i})).await;
    }
    let err = bad
        .expect_where(|m| m["type"] == "error" && m["code"] == "rate_limited")
        .await;
    assert!(err["message"].as_str().unwrap().contains("20"));

    // Everyone else is unaffected, and the flooder is still connected and
    // receiving the room's events.
    host.send(json!({"type": "seek", "frame": 100})).await;
    let t = bystander.expect("transport").await;
    assert_eq!(t["transport"]["anchorFrame"], 100);
    let t = bad.expect("transport").await;
    assert_eq!(t["transport"]["anchorFrame"], 100);
    let (status, _) = server.request("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn control_returns_to_the_host_after_the_driver_drops_and_the_room_keeps_playing() {
    let server = TestServer::start_with(|c| c.session.driver_grace_ms = 1_000).await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut colorist = Client::join(server.addr, &s.reviewer, "Cole").await;
    host.send(json!({"type": "grantControl", "participant": colorist.id()}))
        .await;
    let cid = colorist.id();
    colorist
        .expect_where(|m| m["type"] == "control" && m["driver"] == cid)
        .await;
    colorist.send(json!({"type": "play"})).await;
    let playing = host.expect("transport").await;
    assert_eq!(playing["transport"]["playing"], true);

    let dropped_at = std::time::Instant::now();
    colorist.drop_connection();
    let back = host
        .expect_where(|m| m["type"] == "control" && m["reason"] == "driverLeft")
        .await;
    let waited = dropped_at.elapsed();
    assert_eq!(back["driver"], host.id());
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "{waited:?}: the seat waits out the grace"
    );
    assert!(waited <= std::time::Duration::from_secs(5), "{waited:?}");

    // The transport was not touched: the room is still playing, and the
    // host can drive at once.
    let (_, state) = server
        .request(
            "GET",
            &format!("/api/sessions/{}", s.id),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(state["state"]["transport"], playing["transport"]);
    host.send(json!({"type": "pause"})).await;
    assert_eq!(
        host.expect("transport").await["transport"]["playing"],
        false
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_reviewer_withdraws_a_pending_request_and_everyone_sees_it_go() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Cole").await;

    // Nothing pending yet: a typed refusal, answered by ref.
    reviewer
        .send(json!({"type": "withdrawControl", "ref": 7}))
        .await;
    let err = reviewer.expect_error().await;
    assert_eq!(
        (err["code"].as_str(), err["ref"].as_u64()),
        (Some("no_pending_request"), Some(7))
    );

    reviewer.send(json!({"type": "requestControl"})).await;
    let asked = host
        .expect_where(|m| m["type"] == "control" && m["reason"] == "requested")
        .await;
    assert_eq!(asked["requests"], json!([reviewer.id()]));
    reviewer.send(json!({"type": "withdrawControl"})).await;
    let withdrawn = host
        .expect_where(|m| m["type"] == "control" && m["reason"] == "withdrawn")
        .await;
    assert_eq!(
        (withdrawn["requests"].clone(), withdrawn["driver"].as_u64()),
        (json!([]), Some(host.id()))
    );
    assert!(withdrawn["version"].as_u64() > asked["version"].as_u64());
    let own = reviewer
        .expect_where(|m| m["type"] == "control" && m["reason"] == "withdrawn")
        .await;
    assert_eq!(own["requests"], json!([]));

    // Denying a withdrawn request finds nobody waiting; withdrawing again
    // finds nothing pending.
    host.send(json!({"type": "denyControl", "participant": reviewer.id()}))
        .await;
    assert_eq!(host.expect_error().await["code"], "cannot_take_control");
    reviewer.send(json!({"type": "withdrawControl"})).await;
    assert_eq!(reviewer.expect_error().await["code"], "no_pending_request");
    server.shutdown().await;
}

#[tokio::test]
async fn a_late_joiner_receives_the_full_snapshot() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let reviewer = Client::join(server.addr, &s.reviewer, "Cole").await;
    host.send(json!({"type": "loopIn", "frame": 48})).await;
    host.send(json!({"type": "loopOut", "frame": 96})).await;
    host.send(json!({"type": "shuttle", "speed": 0.5})).await;
    let last = host
        .expect_where(|m| m["type"] == "transport" && m["cause"] == "shuttle")
        .await;

    let late = Client::join(server.addr, &s.viewer, "Late").await;
    let state = &late.welcome["state"];
    assert_eq!(state["version"], last["version"]);
    assert_eq!(state["transport"], last["transport"]);
    assert_eq!(state["transport"]["loopIn"], 48);
    assert_eq!(state["transport"]["speed"], 0.5);
    assert_eq!(state["control"]["driver"], host.id());
    let ids: Vec<u64> = state["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&host.id()) && ids.contains(&reviewer.id()) && ids.contains(&late.id()));
    server.shutdown().await;
}

#[tokio::test]
async fn a_reconnect_with_the_resume_secret_keeps_identity_and_the_seat() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let colorist = Client::join(server.addr, &s.reviewer, "Cole").await;
    let id = colorist.id();
    let resume = colorist.welcome["resume"].as_str().unwrap().to_string();
    host.send(json!({"type": "grantControl", "participant": id}))
        .await;
    host.expect_where(|m| m["type"] == "control" && m["driver"] == id)
        .await;

    colorist.drop_connection();
    let mut again = Client::connect(server.addr).await;
    again.hello(&s.reviewer, "Cole", Some(&resume)).await;
    let welcome = again.expect("welcome").await;
    assert_eq!(welcome["you"], id);
    assert_eq!(welcome["state"]["control"]["driver"], id);
    again.send(json!({"type": "seek", "frame": 10})).await;
    assert_eq!(host.expect("transport").await["by"], id);

    // A stale secret is not an error: the client joins as someone new.
    let mut fresh = Client::connect(server.addr).await;
    fresh
        .hello(&s.viewer, "Vic", Some("00000000000000000000000000000000"))
        .await;
    assert_ne!(fresh.expect("welcome").await["you"], id);
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_session_refuses_the_next_participant_with_a_typed_error() {
    let server = TestServer::start_with(|c| c.limits.max_participants = 2).await;
    let s = server.create_session().await;
    let _a = Client::join(server.addr, &s.host, "A").await;
    let _b = Client::join(server.addr, &s.viewer, "B").await;
    let mut c = Client::connect(server.addr).await;
    c.hello(&s.viewer, "C", None).await;
    assert_eq!(c.expect_error().await["code"], "session_full");
    c.ping(3).await;
    server.shutdown().await;
}

#[tokio::test]
async fn clock_sync_pings_are_stamped_with_server_time() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    c.send(json!({"type": "ping", "id": 9, "t0": 123})).await;
    let pong = c.expect("pong").await;
    assert_eq!(
        (pong["id"].as_u64(), pong["t0"].as_i64()),
        (Some(9), Some(123))
    );
    let (t1, t2) = (pong["t1"].as_i64().unwrap(), pong["t2"].as_i64().unwrap());
    assert!(t1 > 0 && t2 >= t1, "{pong}");
    server.shutdown().await;
}

#[tokio::test]
async fn presence_shows_reported_rtt_offset_and_frame() {
    let server = TestServer::start_with(|c| c.session.presence_interval_ms = 50).await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    viewer
        .send(json!({"type": "syncReport", "rttUs": 1800, "offsetUs": -250, "uncertaintyUs": 900}))
        .await;
    viewer
        .send(json!({"type": "frameReport", "frame": 42, "atUs": 5000}))
        .await;
    let vid = viewer.id();
    let entry = host
        .expect_where(|m| {
            m["type"] == "presence"
                && m["participants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["id"] == vid && p["lastFrame"] == 42)
        })
        .await["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == vid)
        .cloned()
        .unwrap();
    assert_eq!(entry["rttUs"], 1800);
    assert_eq!(entry["offsetUs"], -250);
    assert_eq!(entry["uncertaintyUs"], 900);
    assert_eq!(entry["name"], "Vic");

    viewer.send(json!({"type": "leave"})).await;
    viewer.expect("goodbye").await;
    host.expect_where(|m| m["type"] == "presence" && m["left"] == json!([vid]))
        .await;
    server.shutdown().await;
}
