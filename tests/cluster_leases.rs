//! Session ownership leases and node load against a real nats-server
//! (Debian's 2.9, started through scripts/cluster/nats.sh): one owner per
//! session, a lapsed owner's session taken over within TTL + one renewal
//! interval, a dead owner's late renewal refused, node entries that vanish
//! with their node, and placement on the least-loaded live node.

mod common;
#[path = "support/process.rs"]
mod process;

use std::time::{Duration, Instant};

use common::nats::{eventually, NatsServer};
use common::TestServer;
use syncreel::cluster::{
    Cluster, ClusterConfig, HoldState, LeaseError, LossReason, NodeId, NodeLoad,
};

const TTL: Duration = Duration::from_millis(1_500);
const RENEW: Duration = Duration::from_millis(500);
const NODE_TTL: Duration = Duration::from_millis(1_500);
const LOAD_EVERY: Duration = Duration::from_millis(250);
/// nats-server ages entries out on a timer of its own, and a loaded
/// machine delays everything: what a bound on expiry may add.
const EXPIRY_SLACK: Duration = Duration::from_millis(1_000);
const POLL: Duration = Duration::from_millis(25);

fn settings(url: &str, node: &str) -> ClusterConfig {
    ClusterConfig {
        nats_url: url.to_string(),
        node_id: node.to_string(),
        lease_ttl_ms: TTL.as_millis() as u64,
        lease_renew_ms: RENEW.as_millis() as u64,
        load_interval_ms: LOAD_EVERY.as_millis() as u64,
        node_ttl_ms: NODE_TTL.as_millis() as u64,
        drained: false,
        // Sessions run where these tests create them.
        place_sessions: false,
        ..ClusterConfig::default()
    }
}

async fn join(nats: &NatsServer, node: &str) -> Cluster {
    Cluster::join(&settings(&nats.url, node))
        .await
        .expect("joins the cluster")
}

fn id(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// The buckets' ages are the cluster's, not each node's: a node whose
/// lease TTL differs from the live nodes' is refused with the setting
/// named (it would have shortened or stretched every lease), and one
/// with the same TTL joins.
#[tokio::test]
async fn a_node_with_another_lease_ttl_is_refused_while_the_cluster_runs() {
    let nats = NatsServer::start();
    let a = join(&nats, "node-a").await;
    let _held = a.leases.acquire("s1").await.expect("a takes s1");
    let mut other = settings(&nats.url, "node-b");
    other.lease_ttl_ms = 5_000;
    let refused = Cluster::join(&other).await.map(|_| ()).unwrap_err();
    let reason = refused.to_string();
    assert!(
        reason.contains("cluster.lease_ttl_ms = 1500") && reason.contains("this node 5000"),
        "{reason}"
    );
    // Nothing changed for the nodes already there.
    let b = join(&nats, "node-b").await;
    assert!(matches!(
        b.leases.acquire("s1").await,
        Err(LeaseError::Held { .. })
    ));
    nats.stop();
}

#[tokio::test]
async fn a_second_node_is_refused_while_the_first_holds_the_lease() {
    let nats = NatsServer::start();
    let a = join(&nats, "node-a").await;
    let b = join(&nats, "node-b").await;

    let lease = a.leases.acquire("s1").await.expect("a takes s1");
    assert_eq!(
        b.leases.acquire("s1").await,
        Err(LeaseError::Held { by: id("node-a") })
    );
    // Even the owner cannot take it twice: a lease is one create.
    assert_eq!(
        a.leases.acquire("s1").await,
        Err(LeaseError::Held { by: id("node-a") })
    );
    assert_eq!(
        b.leases.holder("s1").await.unwrap(),
        Some((id("node-a"), lease.revision))
    );
    // Another session is free.
    b.leases.acquire("s2").await.expect("b takes s2");

    // A release frees it at once, and only the holder's revision releases.
    let mut stale = lease.clone();
    stale.revision -= 1;
    assert_eq!(a.leases.release(stale).await, Err(LeaseError::Lost));
    assert!(b.leases.acquire("s1").await.is_err());
    a.leases.release(lease).await.expect("released");
    let taken = b
        .leases
        .acquire("s1")
        .await
        .expect("b takes s1 after the release");
    assert_eq!(
        a.leases.holder("s1").await.unwrap(),
        Some((id("node-b"), taken.revision))
    );
    assert!(matches!(
        a.leases.acquire("bad key").await,
        Err(LeaseError::BadKey(_))
    ));
    nats.stop();
}

#[tokio::test]
async fn an_owner_keeps_its_lease_by_renewing_and_a_dead_one_is_taken_over() {
    let nats = NatsServer::start();
    let a = join(&nats, "node-a").await;
    let b = join(&nats, "node-b").await;

    let lease = a.leases.acquire("s1").await.expect("a takes s1");
    let first = lease.revision;
    let mut holding = a.leases.hold(lease);
    let mut state = holding.state();

    // Across three TTLs B is refused every time, and each renewal moves
    // the fencing token.
    let until = Instant::now() + TTL * 3;
    let mut refusals = 0;
    while Instant::now() < until {
        assert_eq!(
            b.leases.acquire("s1").await,
            Err(LeaseError::Held { by: id("node-a") }),
            "after {refusals} refusals"
        );
        refusals += 1;
        tokio::time::sleep(RENEW / 2).await;
    }
    assert!(refusals >= 6);
    let renewed = holding.revision().expect("a still owns s1");
    assert!(
        renewed > first,
        "renewals move the revision: {first} → {renewed}"
    );
    assert!(matches!(
        *state.borrow_and_update(),
        HoldState::Owner { .. }
    ));

    // A dies: its connection goes, so no renewal reaches NATS any more.
    let last = holding.revision().unwrap();
    let died = Instant::now();
    a.leave().await;

    // Its own renewal task gives up on its own clock, and B takes the
    // session once the entry has aged out. Nobody watches the key (2.9
    // sends no event for an aged-out entry), so B retries its create.
    let why = tokio::time::timeout(TTL + EXPIRY_SLACK, holding.lost())
        .await
        .expect("the dead owner's task sees the loss");
    let a_stopped = Instant::now();
    assert_eq!(why, LossReason::Expired);
    let taken = eventually(
        "b takes s1 over",
        TTL + RENEW + EXPIRY_SLACK * 2,
        POLL,
        || {
            let b = b.clone();
            async move { b.leases.acquire("s1").await.ok() }
        },
    )
    .await;
    let took = taken.written_at.duration_since(died);
    eprintln!(
        "takeover: a stopped owning {:?} and b took s1 {:?} after a died (ttl {TTL:?}, renew {RENEW:?})",
        a_stopped - died,
        took
    );
    assert!(took <= TTL + RENEW + EXPIRY_SLACK, "took {took:?}");
    // Never two holders: A had stopped believing before B's create went out.
    assert!(a_stopped <= taken.written_at);
    assert!(taken.revision > last, "{} > {last}", taken.revision);

    // The dead owner comes back (same node name) with its last revision:
    // its late renewal and its release are refused, and B keeps s1.
    let zombie = join(&nats, "node-a").await;
    let mut late = taken.clone();
    late.revision = last;
    assert_eq!(zombie.leases.renew(&mut late).await, Err(LeaseError::Lost));
    assert_eq!(zombie.leases.release(late).await, Err(LeaseError::Lost));
    assert_eq!(
        zombie.leases.holder("s1").await.unwrap(),
        Some((id("node-b"), taken.revision))
    );
    nats.stop();
}

#[tokio::test]
async fn a_renewal_against_a_moved_revision_is_lost_and_the_holder_is_told() {
    let nats = NatsServer::start();
    let a = join(&nats, "node-a").await;
    let b = join(&nats, "node-b").await;
    let lease = a.leases.acquire("s1").await.unwrap();
    let mut holding = a.leases.hold(lease.clone());
    // Someone else writes the key (what a takeover after a lapse does):
    // the owner's next renewal meets the moved revision.
    let mut theirs = lease;
    b.leases
        .renew(&mut theirs)
        .await
        .expect("b's write at a's revision");
    let why = tokio::time::timeout(RENEW * 2, holding.lost())
        .await
        .expect("the owner is told within one renewal");
    assert_eq!(why, LossReason::Superseded);
    assert_eq!(holding.revision(), None);
    nats.stop();
}

#[tokio::test]
async fn a_released_holding_frees_the_session_at_once() {
    let nats = NatsServer::start();
    let a = join(&nats, "node-a").await;
    let b = join(&nats, "node-b").await;
    let holding = a.leases.hold(a.leases.acquire("s1").await.unwrap());
    holding.release().await.expect("released");
    b.leases
        .acquire("s1")
        .await
        .expect("b takes s1 without waiting for the TTL");
    nats.stop();
}

#[tokio::test]
async fn node_loads_appear_a_dead_node_vanishes_and_placement_picks_the_least_loaded() {
    let nats = NatsServer::start();
    let a = join(&nats, "node-a").await;
    let b = join(&nats, "node-b").await;
    let c = join(&nats, "node-c").await;
    let load = |sessions, drained| NodeLoad {
        sessions,
        participants: 10,
        cpu_permille: 100,
        drained,
        late_pictures: 0,
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (_keep_c, stop_c) = tokio::sync::watch::channel(false);
    let a_task = a
        .nodes
        .publish_every(LOAD_EVERY, move || load(3, false), stop.clone());
    // B is the idlest but drained: never picked.
    let _b_task = b
        .nodes
        .publish_every(LOAD_EVERY, move || load(0, true), stop.clone());
    let c_task = c
        .nodes
        .publish_every(LOAD_EVERY, move || load(1, false), stop_c);

    let loads = eventually("three node entries", Duration::from_secs(5), POLL, || {
        let a = a.clone();
        async move {
            let loads = a.nodes.loads().await.ok()?;
            (loads.len() == 3).then_some(loads)
        }
    })
    .await;
    assert_eq!(loads[&id("node-a")], load(3, false));
    assert_eq!(loads[&id("node-b")], load(0, true));
    assert_eq!(b.nodes.least_loaded().await.unwrap(), Some(id("node-c")));

    // C dies without a word: its entry ages out, and placement moves on.
    c_task.abort();
    let died = Instant::now();
    c.leave().await;
    eventually(
        "node-c's entry ages out",
        NODE_TTL + LOAD_EVERY + EXPIRY_SLACK * 2,
        POLL,
        || {
            let a = a.clone();
            async move {
                let loads = a.nodes.loads().await.ok()?;
                (!loads.contains_key(&id("node-c"))).then_some(())
            }
        },
    )
    .await;
    let gone = died.elapsed();
    eprintln!("a dead node left placement {gone:?} after it stopped (node ttl {NODE_TTL:?})");
    assert!(gone <= NODE_TTL + LOAD_EVERY + EXPIRY_SLACK, "{gone:?}");
    assert_eq!(b.nodes.least_loaded().await.unwrap(), Some(id("node-a")));

    // A clean stop withdraws the entry at once.
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), a_task)
        .await
        .expect("the publisher stops")
        .unwrap();
    let loads = b.nodes.loads().await.unwrap();
    assert!(!loads.contains_key(&id("node-a")), "{loads:?}");
    // Only the drained node is left: nowhere to place a session.
    assert_eq!(b.nodes.least_loaded().await.unwrap(), None);
    nats.stop();
}

/// `serve --cluster` in-process: the node publishes its load and holds the
/// lease of each live session it starts, renewed, and gives it up when the
/// live review ends and when the server stops. The TTL is long here, so a
/// lease that goes within 3 s was released, not left to lapse.
#[tokio::test]
async fn a_cluster_node_holds_the_lease_of_each_live_session_it_starts() {
    let nats = NatsServer::start();
    let mut node = settings(&nats.url, "node-serve");
    node.lease_ttl_ms = 5_000;
    node.lease_renew_ms = 1_000;
    let server = TestServer::start_with(move |c| c.cluster = node).await;
    let observer = join(&nats, "observer").await;
    let me = id("node-serve");
    let load_of = |observer: &Cluster| {
        let observer = observer.clone();
        async move {
            observer
                .nodes
                .loads()
                .await
                .ok()?
                .get(&id("node-serve"))
                .copied()
        }
    };
    let released_within = Duration::from_secs(3);

    let idle = eventually(
        "the node's load entry",
        Duration::from_secs(5),
        POLL,
        || load_of(&observer),
    )
    .await;
    assert_eq!(idle.sessions, 0);

    let s = server.create_session().await;
    let (holder, first) = eventually("the session's lease", Duration::from_secs(5), POLL, || {
        let observer = observer.clone();
        let session = s.id.clone();
        async move { observer.leases.holder(&session).await.ok()? }
    })
    .await;
    assert_eq!(holder, me);
    eventually("a renewal", Duration::from_secs(5), POLL, || {
        let observer = observer.clone();
        let session = s.id.clone();
        async move {
            let (_, revision) = observer.leases.holder(&session).await.ok()??;
            (revision > first).then_some(())
        }
    })
    .await;
    assert_eq!(
        observer.leases.acquire(&s.id).await,
        Err(LeaseError::Held { by: me.clone() })
    );
    eventually(
        "the load counts the session",
        Duration::from_secs(5),
        POLL,
        || {
            let load = load_of(&observer);
            async move { (load.await?.sessions == 1).then_some(()) }
        },
    )
    .await;
    assert_eq!(
        common::metric(server.addr, "syncreel_cluster_leases").await,
        1
    );

    // The host ends the live review: the lease goes with it.
    let (status, body) = server
        .request(
            "POST",
            &format!("/api/sessions/{}/end", s.id),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually(
        "the ended session's lease released",
        released_within,
        POLL,
        || {
            let observer = observer.clone();
            let session = s.id.clone();
            async move {
                observer
                    .leases
                    .holder(&session)
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await;

    // The operator deletes a session: its task stops, and its lease goes.
    let s3 = server.create_session().await;
    eventually(
        "the third session's lease",
        Duration::from_secs(5),
        POLL,
        || {
            let observer = observer.clone();
            let session = s3.id.clone();
            async move { observer.leases.holder(&session).await.ok()? }
        },
    )
    .await;
    let (status, body) = server
        .request(
            "DELETE",
            &format!("/api/sessions/{}", s3.id),
            Some(common::OPERATOR),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    eventually(
        "the deleted session's lease released",
        released_within,
        POLL,
        || {
            let observer = observer.clone();
            let session = s3.id.clone();
            async move {
                observer
                    .leases
                    .holder(&session)
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await;

    // A stopping node gives up its leases and its load entry.
    let s2 = server.create_session().await;
    eventually(
        "the second session's lease",
        Duration::from_secs(5),
        POLL,
        || {
            let observer = observer.clone();
            let session = s2.id.clone();
            async move { observer.leases.holder(&session).await.ok()? }
        },
    )
    .await;
    let stopped = Instant::now();
    server.shutdown().await;
    eventually(
        "leases and load withdrawn at shutdown",
        released_within,
        POLL,
        || {
            let observer = observer.clone();
            let session = s2.id.clone();
            async move {
                let lease = observer.leases.holder(&session).await.ok()?;
                let load = observer.nodes.loads().await.ok()?;
                (lease.is_none() && !load.contains_key(&id("node-serve"))).then_some(())
            }
        },
    )
    .await;
    eprintln!("shutdown released the lease within {:?}", stopped.elapsed());
    observer
        .leases
        .acquire(&s2.id)
        .await
        .expect("another node can take the session now");
    nats.stop();
}

/// The real binary, `syncreel serve --cluster nats://…`, killed with
/// SIGKILL while it owns a session: its lease lapses and another node can
/// take the session within TTL + one renewal interval.
#[tokio::test]
async fn a_killed_node_s_session_can_be_taken_within_the_ttl() {
    let nats = NatsServer::start();
    let data = std::env::temp_dir().join(format!(
        "syncreel-cluster-kill-{}-{}",
        std::process::id(),
        common::rand_suffix()
    ));
    let ttl = TTL.as_millis().to_string();
    let renew = RENEW.as_millis().to_string();
    // The observer's load timing: the cluster's nodes share one.
    let (node_ttl, load_every) = (
        NODE_TTL.as_millis().to_string(),
        LOAD_EVERY.as_millis().to_string(),
    );
    let mut node = process::Process::start_args(
        &data,
        &["--cluster", &nats.url],
        &[
            ("SYNCREEL_CLUSTER__NODE_ID", "node-killed"),
            ("SYNCREEL_CLUSTER__LEASE_TTL_MS", &ttl),
            ("SYNCREEL_CLUSTER__LEASE_RENEW_MS", &renew),
            ("SYNCREEL_CLUSTER__NODE_TTL_MS", &node_ttl),
            ("SYNCREEL_CLUSTER__LOAD_INTERVAL_MS", &load_every),
        ],
    );
    let body = node
        .post(
            "/api/sessions",
            serde_json::json!({"title": "Reel 1", "fps": "24", "durationFrames": 240}),
        )
        .await;
    let session = body["session"]["id"].as_str().unwrap().to_string();
    let observer = join(&nats, "observer").await;
    let (holder, _) = eventually("the session's lease", Duration::from_secs(5), POLL, || {
        let observer = observer.clone();
        let session = session.clone();
        async move { observer.leases.holder(&session).await.ok()? }
    })
    .await;
    assert_eq!(holder, id("node-killed"));

    node.child.kill().expect("SIGKILL");
    let died = Instant::now();
    node.child.wait().unwrap();
    let taken = eventually(
        "the session taken over",
        TTL + RENEW + EXPIRY_SLACK * 2,
        POLL,
        || {
            let observer = observer.clone();
            let session = session.clone();
            async move { observer.leases.acquire(&session).await.ok() }
        },
    )
    .await;
    let took = taken.written_at.duration_since(died);
    eprintln!("kill -9 → lease taken over in {took:?} (ttl {TTL:?}, renew {RENEW:?})");
    assert!(took <= TTL + RENEW + EXPIRY_SLACK, "{took:?}");
    drop(node);
    let _ = std::fs::remove_dir_all(&data);
    nats.stop();
}

/// The real binary stopped with SIGTERM gives its leases up on the way
/// out: with a 10 s TTL, a lease gone within 3 s was released, not lapsed.
#[tokio::test]
async fn a_node_stopped_with_sigterm_releases_its_leases() {
    let nats = NatsServer::start();
    let data = std::env::temp_dir().join(format!(
        "syncreel-cluster-term-{}-{}",
        std::process::id(),
        common::rand_suffix()
    ));
    // The observer's load timing: the cluster's nodes share one.
    let (node_ttl, load_every) = (
        NODE_TTL.as_millis().to_string(),
        LOAD_EVERY.as_millis().to_string(),
    );
    let mut node = process::Process::start_args(
        &data,
        &["--cluster", &nats.url],
        &[
            ("SYNCREEL_CLUSTER__NODE_ID", "node-term"),
            ("SYNCREEL_CLUSTER__LEASE_TTL_MS", "10000"),
            ("SYNCREEL_CLUSTER__LEASE_RENEW_MS", "1000"),
            ("SYNCREEL_CLUSTER__NODE_TTL_MS", &node_ttl),
            ("SYNCREEL_CLUSTER__LOAD_INTERVAL_MS", &load_every),
        ],
    );
    let body = node
        .post(
            "/api/sessions",
            serde_json::json!({"title": "Reel 1", "fps": "24", "durationFrames": 240}),
        )
        .await;
    let session = body["session"]["id"].as_str().unwrap().to_string();
    // An observer with the node's lease TTL: the cluster's nodes share one.
    let mut watching = settings(&nats.url, "observer");
    watching.lease_ttl_ms = 10_000;
    let observer = Cluster::join(&watching).await.expect("joins the cluster");
    eventually("the session's lease", Duration::from_secs(5), POLL, || {
        let observer = observer.clone();
        let session = session.clone();
        async move { observer.leases.holder(&session).await.ok()? }
    })
    .await;
    let pid = i32::try_from(node.child.id()).unwrap();
    // SAFETY: signals our own child, whose pid we hold and have not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopped = Instant::now();
    eventually("the lease released", Duration::from_secs(3), POLL, || {
        let observer = observer.clone();
        let session = session.clone();
        async move { observer.leases.acquire(&session).await.ok() }
    })
    .await;
    eprintln!("SIGTERM → lease free in {:?}", stopped.elapsed());
    let status = node.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&data);
    nats.stop();
}

/// A node told to join a cluster it cannot reach refuses to start, rather
/// than running as a single node nobody else knows of.
#[tokio::test]
async fn a_node_that_cannot_reach_nats_refuses_to_start() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = syncreel::config::Config::default();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = std::env::temp_dir().join(format!(
        "syncreel-cluster-unreachable-{}-{}",
        std::process::id(),
        common::rand_suffix()
    ));
    config.server.admin_token = common::OPERATOR.into();
    config.cluster = settings(&format!("nats://127.0.0.1:{port}"), "node-x");
    let started = tokio::time::timeout(
        Duration::from_secs(15),
        syncreel::server::Server::bind(config.clone()),
    )
    .await
    .expect("refuses within the join timeout");
    let err = started.err().expect("does not start");
    assert!(err.to_string().contains("cannot connect to NATS"), "{err}");
    let _ = std::fs::remove_dir_all(&config.server.data_dir);
}

/// A node restarted right after a crash, with the same node id and data
/// dir, restores its sessions and takes their leases again once its
/// previous life's leases have lapsed.
#[tokio::test]
async fn a_node_restarted_after_a_crash_takes_its_sessions_leases_again() {
    let nats = NatsServer::start();
    let data = std::env::temp_dir().join(format!(
        "syncreel-cluster-restart-{}-{}",
        std::process::id(),
        common::rand_suffix()
    ));
    let ttl = TTL.as_millis().to_string();
    let renew = RENEW.as_millis().to_string();
    // The observer's load timing: the cluster's nodes share one.
    let (node_ttl, load_every) = (
        NODE_TTL.as_millis().to_string(),
        LOAD_EVERY.as_millis().to_string(),
    );
    let env = [
        ("SYNCREEL_CLUSTER__NODE_ID", "node-phoenix"),
        ("SYNCREEL_CLUSTER__LEASE_TTL_MS", ttl.as_str()),
        ("SYNCREEL_CLUSTER__LEASE_RENEW_MS", renew.as_str()),
        ("SYNCREEL_CLUSTER__NODE_TTL_MS", node_ttl.as_str()),
        ("SYNCREEL_CLUSTER__LOAD_INTERVAL_MS", load_every.as_str()),
    ];
    let node = process::Process::start_args(&data, &["--cluster", &nats.url], &env);
    let body = node
        .post(
            "/api/sessions",
            serde_json::json!({"title": "Reel 1", "fps": "24", "durationFrames": 240}),
        )
        .await;
    let session = body["session"]["id"].as_str().unwrap().to_string();
    let observer = join(&nats, "observer").await;
    let holder = |observer: &Cluster, session: &str| {
        let observer = observer.clone();
        let session = session.to_string();
        async move { observer.leases.holder(&session).await.ok()? }
    };
    eventually(
        "the first life's lease",
        Duration::from_secs(5),
        POLL,
        || holder(&observer, &session),
    )
    .await;
    drop(node); // SIGKILL, reaped
                // A dead node writes nothing more, so a later revision is the new life's.
    let (_, before) = holder(&observer, &session)
        .await
        .expect("the dead node's lease outlives it by up to a TTL");
    let again = process::Process::start_args(&data, &["--cluster", &nats.url], &env);
    let (by, after) = eventually(
        "the second life's lease",
        TTL + RENEW * 3 + EXPIRY_SLACK * 2,
        POLL,
        || {
            let h = holder(&observer, &session);
            async move { h.await.filter(|(_, revision)| *revision > before) }
        },
    )
    .await;
    assert_eq!(by, id("node-phoenix"));
    assert!(after > before);
    drop(again);
    let _ = std::fs::remove_dir_all(&data);
    nats.stop();
}
