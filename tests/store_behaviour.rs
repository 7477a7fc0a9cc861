//! One behavioural suite for the review record, run against both
//! backends: the SQLite file (the embedded default) and PostgreSQL (the
//! cluster's shared record, a real server from scripts/cluster/). What a
//! caller of `Store` can observe must not depend on which one is behind
//! it: idempotent writes by author and key, refused key conflicts, first
//! eraser and first end win, a failed write alone in its batch, version
//! stacks, deletion and purge, and a record that outlives its process.

mod common;

use common::postgres::Postgres;
use syncreel::drawing::{Colour, Shape, Tool};
use syncreel::store::{
    DeliveryRow, EntryRow, Fence, LinkRow, Mark, NewApproval, NewDrawing, NewNote, NewVersion,
    OutboxRow, PersonalRoomRow, Receipt, Record, RecordResult, Recorded, ReviewLookup, SessionRow,
    Store, StoreError, TimelineRow, VersionRow, Write,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_record_keeps_every_behaviour() {
    let path = std::env::temp_dir().join(format!(
        "syncreel-behaviour-{}-{}.db",
        std::process::id(),
        rand::random::<u32>()
    ));
    every_behaviour(|| Store::open(&path).expect("open the SQLite record")).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_record_keeps_every_behaviour() {
    let pg = Postgres::start();
    let url = pg.url.clone();
    every_behaviour(|| Store::connect(&url).expect("connect to PostgreSQL")).await;
    // A second node starting on a migrated record finds it as it is.
    let again = Store::connect(&pg.url).expect("connect again");
    assert!(!again.sessions().unwrap().is_empty());
}

/// Every behaviour, each on sessions of its own. `open` opens the same
/// record again, as a restarted server (or another node) would.
async fn every_behaviour(open: impl Fn() -> Store) {
    let store = open();
    sessions_links_and_playlists_outlive_the_process(&store, &open).await;
    notes_are_idempotent_per_author_and_key(&store).await;
    replies_resolve_and_reopen(&store).await;
    drawings_keep_their_shape_and_the_first_eraser_wins(&store).await;
    approvals_keep_their_receipt_and_refuse_a_changed_decision(&store).await;
    versions_stack_by_item_and_a_known_checksum_is_the_same_version(&store).await;
    a_failed_write_fails_alone_in_its_batch(&store).await;
    cue_end_and_delete_change_what_is_listed(&store).await;
    checksums_events_deliveries_and_rooms_read_back(&store).await;
    a_playlist_review_holds_each_versions_own_record(&store).await;
    the_webhook_outbox_gives_each_attempt_to_one_claimant(&store, &open).await;
    an_old_owners_writes_are_fenced_off_once_a_newer_owner_wrote(&store).await;
}

fn session(id: &str) -> SessionRow {
    SessionRow {
        id: id.into(),
        title: format!("Review {id}"),
        fps_num: 24000,
        fps_den: 1001,
        drop_frame: false,
        start_timecode: "01:00:00:00".into(),
        duration_frames: 1000,
        media: Some("demo.mov".into()),
        created_at: 1,
        last_frame: 0,
        moving: None,
        version_id: None,
        ended_at: None,
        playlist: Vec::new(),
        entry: 0,
        watermark: None,
    }
}

fn link(id: &str, session_id: &str, role: &str, hash_byte: u8) -> LinkRow {
    LinkRow {
        id: id.into(),
        session_id: session_id.into(),
        role: role.into(),
        token_hash: [hash_byte; 32],
        expires_at: None,
        revoked: false,
        passcode_hash: None,
    }
}

fn note(session_id: &str, key: &str, frame: i64) -> NewNote {
    NewNote {
        session_id: session_id.into(),
        version_id: None,
        parent_id: None,
        client_key: key.into(),
        author_link: "l1".into(),
        frame,
        frame_out: None,
        text: format!("note {key}"),
        author: "Dana".into(),
        author_role: "host".into(),
        created_at: 7,
    }
}

async fn write(store: &Store, write: Write) {
    store
        .write_acked(write)
        .await
        .expect("answered")
        .expect("written");
}

async fn record(store: &Store, record: Record) -> RecordResult {
    store.record(record).await.expect("answered")
}

async fn add_note(
    store: &Store,
    note: NewNote,
) -> Result<(syncreel::store::NoteRow, bool), StoreError> {
    match record(store, Record::Note(note)).await? {
        (Recorded::Note(row), new) => Ok((row, new)),
        other => panic!("a note came back as {other:?}"),
    }
}

/// Adds a version, each one later than the last: "the oldest" must not
/// depend on how ties fall.
async fn add_version(store: &Store, item: &str, path: &str, checksum: &str) -> (VersionRow, bool) {
    static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(5);
    let new = NewVersion {
        item: item.into(),
        path: path.into(),
        checksum: checksum.into(),
        size_bytes: 1234,
        created_at: CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    };
    match record(store, Record::Version(new)).await.expect("version") {
        (Recorded::Version(row), new) => (row, new),
        other => panic!("a version came back as {other:?}"),
    }
}

fn timeline(duration_frames: i64) -> TimelineRow {
    TimelineRow {
        fps_num: 25,
        fps_den: 1,
        drop_frame: false,
        start_timecode: "10:00:00:00".into(),
        duration_frames,
    }
}

async fn sessions_links_and_playlists_outlive_the_process(
    store: &Store,
    open: &impl Fn() -> Store,
) {
    let (a, _) = add_version(store, "Shot 010", "shot010/v1.mov", "aaa1").await;
    let (b, _) = add_version(store, "Shot 010", "shot010/v2.mov", "bbb2").await;
    let mut row = SessionRow {
        version_id: Some(a.id.clone()),
        playlist: vec![
            EntryRow {
                media: "shot010/v1.mov".into(),
                version_id: Some(a.id.clone()),
                timeline: Some(timeline(100)),
            },
            EntryRow {
                media: "shot010/v2.mov".into(),
                version_id: Some(b.id.clone()),
                timeline: None,
            },
        ],
        watermark: Some("Studio copy".into()),
        ..session("persist")
    };
    let links = vec![
        LinkRow {
            expires_at: Some(i64::MAX),
            passcode_hash: Some("$argon2id$v=19$…".into()),
            ..link("persist-host", "persist", "host", 1)
        },
        link("persist-viewer", "persist", "viewer", 2),
    ];
    write(store, Write::Session(row.clone(), links.clone())).await;
    let (kept, _) = add_note(store, note("persist", "acked", 12)).await.unwrap();

    // Another process (a restart, another node) reads what was acked.
    let other = open();
    let listed = other.sessions().unwrap();
    let found = listed
        .iter()
        .find(|s| s.id == "persist")
        .expect("the session is listed");
    assert_eq!(
        found, &row,
        "a session reads back as written, with its playlist"
    );
    row.playlist.clear();
    assert_eq!(
        other.session("persist").unwrap(),
        Some(row),
        "one session reads back (its playlist comes with entries_of)"
    );
    assert_eq!(other.entries_of("persist").unwrap(), found.playlist);
    let stored_links: Vec<LinkRow> = other
        .links()
        .unwrap()
        .into_iter()
        .filter(|l| l.session_id == "persist")
        .collect();
    assert_eq!(stored_links, links, "links read back in the order made");
    assert_eq!(
        other.notes("persist").unwrap(),
        vec![kept],
        "an acked note outlives its process"
    );
    assert_eq!(
        other
            .media_of_version("persist", "bbb2")
            .unwrap()
            .as_deref(),
        Some("shot010/v2.mov"),
        "a playlist entry's file is found by its version's checksum"
    );
    assert_eq!(other.media_of_version("persist", "nope").unwrap(), None);
    assert_eq!(other.session("nobody").unwrap(), None);

    // A token hash is unique across the record.
    let clash = store
        .write_acked(Write::Link(link("persist-clash", "persist", "viewer", 2)))
        .await
        .unwrap();
    assert!(matches!(clash, Err(StoreError::Database(_))), "{clash:?}");
    write(
        store,
        Write::RevokeLink {
            session_id: "persist".into(),
            link_id: "persist-viewer".into(),
        },
    )
    .await;
    let revoked = store
        .links()
        .unwrap()
        .into_iter()
        .find(|l| l.id == "persist-viewer");
    assert!(revoked.expect("still listed").revoked);
}

async fn notes_are_idempotent_per_author_and_key(store: &Store) {
    write(store, Write::Session(session("notes"), vec![])).await;
    let (a, new_a) = add_note(store, note("notes", "a", 10)).await.unwrap();
    let (b, new_b) = add_note(store, note("notes", "b", 20)).await.unwrap();
    let (again, new_again) = add_note(store, note("notes", "a", 10)).await.unwrap();
    assert!(new_a && new_b && !new_again);
    assert_eq!(again, a, "a resend finds the first copy");
    // Another link's note under the same key is its own note.
    let theirs = NewNote {
        author_link: "l2".into(),
        text: "theirs".into(),
        ..note("notes", "a", 10)
    };
    let (stored, new) = add_note(store, theirs.clone()).await.unwrap();
    assert!(new);
    assert_ne!(stored.id, a.id);
    // The same link reusing a key for other words is refused.
    let reused = NewNote {
        text: "other words".into(),
        ..note("notes", "a", 10)
    };
    assert!(matches!(
        add_note(store, reused).await,
        Err(StoreError::KeyConflict(..))
    ));
    let ranged = NewNote {
        frame_out: Some(40),
        ..note("notes", "range", 30)
    };
    let (ranged, _) = add_note(store, ranged).await.unwrap();
    assert_eq!(store.notes("notes").unwrap(), vec![a, b, stored, ranged]);
}

/// Cluster fencing: a session's writes carry its owner's lease token; once
/// a newer owner (a higher token) has written, an older owner's writes
/// are refused and change nothing, while the newer owner's, and writes
/// that carry no fence (a single node's), go on.
async fn an_old_owners_writes_are_fenced_off_once_a_newer_owner_wrote(store: &Store) {
    write(store, Write::Session(session("fenced"), vec![])).await;
    let owner = |token: u64| {
        store.fenced(Fence {
            session_id: "fenced".into(),
            token,
        })
    };
    let (old, new) = (owner(41), owner(57));
    let (first, _) = add_note(&old, note("fenced", "before", 1)).await.unwrap();
    // The new owner raises the fence before it reads the record.
    write(&new, Write::Fence).await;
    let refused = add_note(&old, note("fenced", "zombie", 2)).await;
    assert!(
        matches!(&refused, Err(StoreError::Fenced(id)) if id == "fenced"),
        "{refused:?}"
    );
    let moved = old
        .write_acked(Write::LastFrame {
            session_id: "fenced".into(),
            frame: 999,
            moving: None,
        })
        .await
        .expect("answered");
    assert!(matches!(moved, Err(StoreError::Fenced(_))), "{moved:?}");
    // A fence of one session is not another's: the old token still
    // writes for a session nobody newer has written for.
    write(store, Write::Session(session("unfenced"), vec![])).await;
    let elsewhere = store.fenced(Fence {
        session_id: "unfenced".into(),
        token: 41,
    });
    add_note(&elsewhere, note("unfenced", "fine", 1))
        .await
        .unwrap();
    let (second, _) = add_note(&new, note("fenced", "after", 3)).await.unwrap();
    add_note(store, note("fenced", "unfenced", 4))
        .await
        .unwrap();
    let kept: Vec<String> = store
        .notes("fenced")
        .unwrap()
        .into_iter()
        .map(|n| n.note.client_key)
        .collect();
    assert_eq!(kept, ["before", "after", "unfenced"]);
    assert_eq!(first.note.frame, 1);
    assert_eq!(second.note.frame, 3);
    assert_eq!(store.session("fenced").unwrap().unwrap().last_frame, 0);
    // A token the database cannot hold is refused, not wrapped.
    let huge = store.fenced(Fence {
        session_id: "fenced".into(),
        token: u64::MAX,
    });
    assert!(matches!(
        add_note(&huge, note("fenced", "huge", 5)).await,
        Err(StoreError::Database(_))
    ));
}

async fn replies_resolve_and_reopen(store: &Store) {
    write(store, Write::Session(session("replies"), vec![])).await;
    let (first, _) = add_note(store, note("replies", "q", 5)).await.unwrap();
    let reply = NewNote {
        parent_id: Some(first.id),
        text: "agreed".into(),
        ..note("replies", "r", 5)
    };
    let (reply, _) = add_note(store, reply).await.unwrap();
    assert_eq!(reply.note.parent_id, Some(first.id));
    let mark = Mark {
        by: "Sam".into(),
        at: 99,
    };
    let resolved = record(
        store,
        Record::Resolve {
            session_id: "replies".into(),
            note_id: first.id,
            resolved: Some(mark.clone()),
        },
    )
    .await
    .unwrap();
    let Recorded::Note(row) = resolved.0 else {
        panic!("resolve answers with the note")
    };
    assert_eq!(row.resolved, Some(mark));
    record(
        store,
        Record::Resolve {
            session_id: "replies".into(),
            note_id: first.id,
            resolved: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        store.notes("replies").unwrap()[0].resolved,
        None,
        "reopened"
    );
}

fn shape(points: Vec<[f32; 2]>) -> Shape {
    Shape {
        tool: Tool::Arrow,
        colour: Colour([0x12, 0x34, 0x56]),
        width: 0.0125,
        points,
    }
}

async fn drawings_keep_their_shape_and_the_first_eraser_wins(store: &Store) {
    write(store, Write::Session(session("draw"), vec![])).await;
    let drawing = NewDrawing {
        session_id: "draw".into(),
        version_id: None,
        client_key: "d1".into(),
        author_link: "l1".into(),
        frame: 48,
        shape: shape(vec![[0.25, 0.5], [0.75, 0.125]]),
        author: "Dana".into(),
        author_role: "host".into(),
        created_at: 3,
    };
    let (stored, new) = record(store, Record::Drawing(drawing.clone()))
        .await
        .unwrap();
    assert!(new);
    let Recorded::Drawing(stored) = stored else {
        panic!("a drawing comes back as a drawing")
    };
    let (resent, new) = record(store, Record::Drawing(drawing.clone()))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(resent, Recorded::Drawing(stored.clone()));
    let moved = NewDrawing {
        shape: shape(vec![[0.0, 0.0], [1.0, 1.0]]),
        ..drawing.clone()
    };
    assert!(matches!(
        record(store, Record::Drawing(moved)).await,
        Err(StoreError::KeyConflict(..))
    ));
    let erase = |by: &str, at| Record::Erase {
        session_id: "draw".into(),
        drawing_id: stored.id,
        mark: Mark { by: by.into(), at },
    };
    let (_, first) = record(store, erase("Sam", 10)).await.unwrap();
    let (after, second) = record(store, erase("Lee", 11)).await.unwrap();
    assert!(first && !second, "erasing again changes nothing");
    let Recorded::Drawing(after) = after else {
        panic!("an erase answers with the drawing")
    };
    assert_eq!(
        after.erased,
        Some(Mark {
            by: "Sam".into(),
            at: 10
        })
    );
    let listed = store.drawings("draw").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].drawing, drawing, "the shape reads back exactly");
}

async fn approvals_keep_their_receipt_and_refuse_a_changed_decision(store: &Store) {
    write(store, Write::Session(session("approve"), vec![])).await;
    let approval = NewApproval {
        session_id: "approve".into(),
        version_id: None,
        client_key: "a1".into(),
        author_link: "l1".into(),
        status: "approved".into(),
        author: "Dana".into(),
        author_role: "host".into(),
        created_at: 8,
        receipt: Receipt {
            frames: vec![(0, 99), (120, 130)],
            frame_count: 111,
            stream: Some("1280x720 VP8".into()),
            stream_bytes: Some(1 << 33),
            stream_kbps: Some(2500),
            checksum: Some("cafe".into()),
        },
    };
    let (first, new) = record(store, Record::Approval(approval.clone()))
        .await
        .unwrap();
    assert!(new);
    let (again, new) = record(store, Record::Approval(approval.clone()))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(first, again);
    let changed = NewApproval {
        status: "changes_requested".into(),
        ..approval.clone()
    };
    assert!(matches!(
        record(store, Record::Approval(changed)).await,
        Err(StoreError::KeyConflict(..))
    ));
    let listed = store.approvals("approve").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].approval, approval,
        "the receipt reads back exactly"
    );
}

async fn versions_stack_by_item_and_a_known_checksum_is_the_same_version(store: &Store) {
    let (one, new_one) = add_version(store, "Shot 020", "shot020/a.mov", "c1").await;
    let (two, new_two) = add_version(store, "Shot 020", "shot020/b.mov", "c2").await;
    let (same, new_same) = add_version(store, "Shot 020", "shot020/a-copy.mov", "c1").await;
    assert!(new_one && new_two && !new_same);
    assert_eq!((one.number, two.number), (1, 2));
    assert_eq!(same, one, "a file with a known checksum is that version");
    let (other_item, _) = add_version(store, "Shot 005", "shot005/a.mov", "c1").await;
    assert_eq!(other_item.number, 1, "numbers count per item");
    assert_eq!(store.version(&two.id).unwrap(), Some(two.clone()));
    assert_eq!(
        store.version_with_checksum("c1").unwrap(),
        Some(one.clone()),
        "the oldest version with these bytes, of any item"
    );
    assert_eq!(store.version_with_checksum("none").unwrap(), None);
    assert_eq!(store.version("nope").unwrap(), None);
    let listed: Vec<(String, i64)> = store
        .versions()
        .unwrap()
        .into_iter()
        .filter(|v| v.item == "Shot 020" || v.item == "Shot 005")
        .map(|v| (v.item, v.number))
        .collect();
    assert_eq!(
        listed,
        [
            ("Shot 005".into(), 1),
            ("Shot 020".into(), 1),
            ("Shot 020".into(), 2)
        ],
        "by item name, then number"
    );
}

async fn a_failed_write_fails_alone_in_its_batch(store: &Store) {
    store.write_later(Write::Session(session("batch"), vec![]));
    // No such session: the foreign key refuses this note alone.
    let orphan = add_note(store, note("no-such-session", "x", 1));
    let fine = add_note(store, note("batch", "y", 2));
    let (orphan, fine) = tokio::join!(orphan, fine);
    assert!(matches!(orphan, Err(StoreError::Database(_))), "{orphan:?}");
    assert!(fine.is_ok(), "{fine:?}");
    assert_eq!(store.notes("batch").unwrap().len(), 1);
}

async fn cue_end_and_delete_change_what_is_listed(store: &Store) {
    write(
        store,
        Write::Session(session("life"), vec![link("life-host", "life", "host", 7)]),
    )
    .await;
    add_note(store, note("life", "n", 1)).await.unwrap();
    let moving = syncreel::store::Moving {
        since_unix_ms: 1_765_000_000_123,
        speed_num: -2,
        speed_den: 1,
    };
    write(
        store,
        Write::LastFrame {
            session_id: "life".into(),
            frame: 300,
            moving: Some(moving),
        },
    )
    .await;
    let playing = store.session("life").unwrap().unwrap();
    assert_eq!(
        (playing.last_frame, playing.moving),
        (300, Some(moving)),
        "a playing room's motion reads back"
    );
    write(
        store,
        Write::LastFrame {
            session_id: "life".into(),
            frame: 321,
            moving: None,
        },
    )
    .await;
    let paused = store.session("life").unwrap().unwrap();
    assert_eq!((paused.last_frame, paused.moving), (321, None));
    write(
        store,
        Write::Cue {
            session_id: "life".into(),
            entry: 1,
            frame: 42,
            version_id: None,
            fps_num: 30000,
            fps_den: 1001,
            drop_frame: true,
            start_timecode: "00:59:59;00".into(),
            duration_frames: 555,
        },
    )
    .await;
    let cued = store.session("life").unwrap().unwrap();
    assert_eq!(
        (
            cued.entry,
            cued.fps_num,
            cued.drop_frame,
            cued.duration_frames,
            cued.last_frame
        ),
        (1, 30000, true, 555, 42),
        "a cue takes the entry's timeline and the frame it lands on"
    );
    // A version joins the playlist while the room runs: the entries are
    // replaced whole, in order.
    let entry = |media: &str, start: &str| EntryRow {
        media: media.into(),
        version_id: None,
        timeline: Some(TimelineRow {
            fps_num: 24,
            fps_den: 1,
            drop_frame: false,
            start_timecode: start.into(),
            duration_frames: 48,
        }),
    };
    for entries in [
        vec![entry("a.mov", "01:00:00:00")],
        vec![
            entry("a.mov", "01:00:00:00"),
            entry("uploads/a-v2.mov", "00:59:50:00"),
        ],
    ] {
        write(
            store,
            Write::Playlist {
                session_id: "life".into(),
                entries: entries.clone(),
            },
        )
        .await;
        assert_eq!(
            store.entries_of("life").unwrap(),
            entries,
            "the playlist reads back"
        );
    }
    for at in [1000, 2000] {
        write(
            store,
            Write::End {
                session_id: "life".into(),
                at,
            },
        )
        .await;
    }
    assert_eq!(
        store.session("life").unwrap().unwrap().ended_at,
        Some(1000),
        "the first end wins"
    );

    write(
        store,
        Write::Session(session("gone"), vec![link("gone-host", "gone", "host", 8)]),
    )
    .await;
    add_note(store, note("gone", "n", 1)).await.unwrap();
    write(
        store,
        Write::Delete {
            session_id: "life".into(),
            at: 3000,
            purge: false,
        },
    )
    .await;
    write(
        store,
        Write::Delete {
            session_id: "gone".into(),
            at: 3000,
            purge: true,
        },
    )
    .await;
    let listed: Vec<String> = store
        .sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(!listed.contains(&"life".to_string()) && !listed.contains(&"gone".to_string()));
    assert_eq!(store.session("life").unwrap(), None);
    let links = store.links().unwrap();
    assert!(
        links.iter().find(|l| l.id == "life-host").unwrap().revoked,
        "a deleted session's links stop"
    );
    assert!(
        !links.iter().any(|l| l.id == "gone-host"),
        "a purge removes its links"
    );
    assert_eq!(store.notes("life").unwrap().len(), 1, "kept unless purged");
    assert!(store.notes("gone").unwrap().is_empty(), "purged");
    let events = store.events("gone").unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, "deleted");
}

async fn checksums_events_deliveries_and_rooms_read_back(store: &Store) {
    let checksum = |size, sum: &str| Write::Checksum {
        path: "/media/a.mov".into(),
        size_bytes: size,
        mtime_ns: 77,
        checksum: sum.into(),
    };
    write(store, checksum(10, "old")).await;
    write(store, checksum(11, "new")).await;
    assert_eq!(
        store.known_checksum("/media/a.mov", 10, 77).unwrap(),
        None,
        "replaced"
    );
    assert_eq!(
        store
            .known_checksum("/media/a.mov", 11, 77)
            .unwrap()
            .as_deref(),
        Some("new")
    );

    for (at, kind) in [(1, "joined"), (2, "seek"), (3, "left")] {
        write(
            store,
            Write::Event {
                session_id: "events".into(),
                at,
                kind: kind.into(),
                detail: format!("detail {at}"),
            },
        )
        .await;
    }
    let kinds: Vec<String> = store
        .events("events")
        .unwrap()
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(kinds, ["joined", "seek", "left"]);

    write(store, Write::Session(session("rooms"), vec![])).await;
    let room = |frame| PersonalRoomRow {
        session_id: "rooms".into(),
        room: "r1".into(),
        link_id: "l1".into(),
        entry: 0,
        frame,
    };
    write(store, Write::RoomFrame(room(5))).await;
    write(store, Write::RoomFrame(room(9))).await;
    assert_eq!(store.personal_rooms("rooms").unwrap(), vec![room(9)]);
    write(
        store,
        Write::RoomClosed {
            session_id: "rooms".into(),
            room: "r1".into(),
        },
    )
    .await;
    assert!(store.personal_rooms("rooms").unwrap().is_empty());
}

async fn a_playlist_review_holds_each_versions_own_record(store: &Store) {
    let (a, _) = add_version(store, "Shot 030", "shot030/v1.mov", "p1").await;
    let (b, _) = add_version(store, "Shot 030", "shot030/v2.mov", "p2").await;
    let row = SessionRow {
        version_id: Some(a.id.clone()),
        playlist: vec![
            EntryRow {
                media: "shot030/v1.mov".into(),
                version_id: Some(a.id.clone()),
                timeline: Some(timeline(100)),
            },
            EntryRow {
                media: "shot030/v2.mov".into(),
                version_id: Some(b.id.clone()),
                timeline: Some(timeline(200)),
            },
        ],
        ..session("reel")
    };
    write(store, Write::Session(row, vec![])).await;
    for (key, version) in [("on-a", &a), ("on-b", &b)] {
        let on = NewNote {
            version_id: Some(version.id.clone()),
            ..note("reel", key, 3)
        };
        add_note(store, on).await.unwrap();
    }
    let ReviewLookup::Found(review) = store.review_of("reel", Some(&b.id)).unwrap() else {
        panic!("version B's review is found")
    };
    assert_eq!(review.session.duration_frames, 200, "on B's own timeline");
    assert_eq!(review.session.media.as_deref(), Some("shot030/v2.mov"));
    assert_eq!(review.version.as_ref(), Some(&b));
    let keys: Vec<&str> = review
        .notes
        .iter()
        .map(|n| n.note.client_key.as_str())
        .collect();
    assert_eq!(keys, ["on-b"]);
    assert!(matches!(
        store.review_of("reel", Some("not-in-it")).unwrap(),
        ReviewLookup::NoVersion
    ));
    assert!(matches!(
        store.review_of("nobody", None).unwrap(),
        ReviewLookup::NoSession
    ));
    let reel = store.reel_of("reel").unwrap().expect("a reel");
    let per_entry: Vec<usize> = reel.entries.iter().map(|r| r.notes.len()).collect();
    assert_eq!(per_entry, [1, 1], "each entry holds its own notes");
}

async fn the_webhook_outbox_gives_each_attempt_to_one_claimant(
    store: &Store,
    open: &impl Fn() -> Store,
) {
    let urls = ["https://a.example/hook", "https://b.example/hook"];
    write(
        store,
        Write::Outbox {
            delivery: "d1".into(),
            event: "note.created".into(),
            body: "{}".into(),
            urls: urls.map(String::from).to_vec(),
            due_at: 100,
        },
    )
    .await;
    let claim = |s: &Store, node: &'static str, now: i64, until: i64, limit: u32| {
        let s = s.clone();
        async move { s.claim_deliveries(node, now, until, limit).await.unwrap() }
    };
    assert!(
        claim(store, "A", 50, 1000, 10).await.is_empty(),
        "nothing before it is due"
    );

    // Two nodes claim at once: each row goes to exactly one of them.
    let other = open();
    let (mine, theirs) = tokio::join!(
        claim(store, "A", 100, 1000, 1),
        claim(&other, "B", 100, 1000, 1)
    );
    assert_eq!(
        (mine.len(), theirs.len()),
        (1, 1),
        "one row each: {mine:?} {theirs:?}"
    );
    assert_ne!(mine[0].id, theirs[0].id);
    let mut both: Vec<&str> = [&mine[0], &theirs[0]]
        .iter()
        .map(|r| r.url.as_str())
        .collect();
    both.sort();
    assert_eq!(both, urls);
    assert_eq!(mine[0].attempts, 0);
    assert!(
        claim(store, "A", 500, 1000, 10).await.is_empty(),
        "claims stand until they lapse"
    );

    let attempted =
        |row: &OutboxRow, status: Option<u16>, at: i64, next: Option<i64>| Write::Attempt {
            outbox_id: row.id,
            attempt: DeliveryRow {
                delivery: row.delivery.clone(),
                url: row.url.clone(),
                event: row.event.clone(),
                attempt: row.attempts + 1,
                status,
                error: status.is_none().then(|| "timed out".into()),
                at,
            },
            next_due_at: next,
        };
    // A's attempt fails and is due again at 2000; B's is delivered.
    write(store, attempted(&mine[0], None, 600, Some(2000))).await;
    write(&other, attempted(&theirs[0], Some(204), 610, None)).await;
    assert!(
        claim(store, "A", 1500, 3000, 10).await.is_empty(),
        "a retry waits until it is due"
    );
    let retry = claim(&other, "B", 2000, 3000, 10).await;
    assert_eq!(retry.len(), 1, "only the failed row comes back: {retry:?}");
    assert_eq!((retry[0].id, retry[0].attempts), (mine[0].id, 1));

    // B dies holding it: after its claim lapses, A takes it over.
    assert!(claim(store, "A", 2999, 4000, 10).await.is_empty());
    let taken = claim(store, "A", 3000, 4000, 10).await;
    assert_eq!(taken.iter().map(|r| r.id).collect::<Vec<_>>(), [mine[0].id]);
    write(store, attempted(&taken[0], Some(200), 3100, None)).await;
    assert!(
        claim(store, "A", 1_000_000, 2_000_000, 10).await.is_empty(),
        "delivered rows are done"
    );

    let log: Vec<(u32, Option<u16>)> = store
        .deliveries(2)
        .unwrap()
        .into_iter()
        .map(|d| (d.attempt, d.status))
        .collect();
    assert_eq!(
        log,
        [(1, Some(204)), (2, Some(200))],
        "the newest two attempts, oldest first"
    );
    assert_eq!(store.deliveries(10).unwrap().len(), 3);
}
