//! The SQLite schema, step by step.

/// Schema steps, applied in order; entry `i` takes `user_version` from
/// `i` to `i + 1`. Never edit a step that has shipped: add one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: sessions, their links, notes and the event log.
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        fps_num INTEGER NOT NULL,
        fps_den INTEGER NOT NULL,
        drop_frame INTEGER NOT NULL,
        start_timecode TEXT NOT NULL,
        duration_frames INTEGER NOT NULL,
        media TEXT,
        created_at INTEGER NOT NULL,
        last_frame INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE links (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        role TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        expires_at INTEGER,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        frame_out INTEGER,
        text TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (session_id, client_key)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_by_session ON events (session_id, id);",
    // 2: the webhook delivery log, one row per attempt.
    "CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        delivery TEXT NOT NULL,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        status INTEGER,
        error TEXT,
        at INTEGER NOT NULL
    );
    CREATE INDEX deliveries_by_delivery ON webhook_deliveries (delivery, attempt);",
    // 3: media items and their version stacks; drawings; approvals with
    // receipts; replies and resolution on notes; the version under review.
    "CREATE TABLE media_items (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        media_item_id TEXT NOT NULL REFERENCES media_items(id),
        number INTEGER NOT NULL,
        path TEXT NOT NULL,
        checksum TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (media_item_id, number),
        UNIQUE (media_item_id, checksum)
    );
    ALTER TABLE sessions ADD COLUMN version_id TEXT REFERENCES versions(id);
    ALTER TABLE sessions ADD COLUMN ended_at INTEGER;
    ALTER TABLE notes ADD COLUMN version_id TEXT REFERENCES versions(id);
    ALTER TABLE notes ADD COLUMN parent_id INTEGER REFERENCES notes(id);
    ALTER TABLE notes ADD COLUMN resolved_by TEXT;
    ALTER TABLE notes ADD COLUMN resolved_at INTEGER;
    CREATE TABLE drawings (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        tool TEXT NOT NULL,
        colour TEXT NOT NULL,
        width REAL NOT NULL,
        points BLOB NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        erased_by TEXT,
        erased_at INTEGER,
        UNIQUE (session_id, client_key)
    );
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        status TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        frames_seen TEXT NOT NULL,
        frame_count INTEGER NOT NULL,
        stream TEXT,
        stream_bytes INTEGER,
        stream_kbps INTEGER,
        checksum TEXT,
        UNIQUE (session_id, client_key)
    );",
    // 4: playlist sessions: the entries a session can be cued to, and the
    // one on screen. `sessions.version_id` and its timeline columns follow
    // the entry on screen.
    "CREATE TABLE session_entries (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        position INTEGER NOT NULL,
        media TEXT NOT NULL,
        version_id TEXT REFERENCES versions(id),
        PRIMARY KEY (session_id, position)
    );
    ALTER TABLE sessions ADD COLUMN entry INTEGER NOT NULL DEFAULT 0;",
    // 5: each playlist entry's own timeline, so that the review of an
    // entry not on screen can be labelled (and exported) without its
    // file. NULL for entries recorded before.
    "ALTER TABLE session_entries ADD COLUMN fps_num INTEGER;
    ALTER TABLE session_entries ADD COLUMN fps_den INTEGER;
    ALTER TABLE session_entries ADD COLUMN drop_frame INTEGER;
    ALTER TABLE session_entries ADD COLUMN start_timecode TEXT;
    ALTER TABLE session_entries ADD COLUMN duration_frames INTEGER;",
    // 6: a client key belongs to its author's link, not the whole session:
    // two links may use the same key, and neither sees the other's record
    // as its own. SQLite cannot drop a UNIQUE constraint, so the three
    // tables are rebuilt (renaming first keeps every foreign key pointing
    // at the table of its name). Rows from before carry the link ''.
    "ALTER TABLE notes RENAME TO notes_v5;
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        frame_out INTEGER,
        text TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        version_id TEXT REFERENCES versions(id),
        parent_id INTEGER REFERENCES notes(id),
        resolved_by TEXT,
        resolved_at INTEGER,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    INSERT INTO notes (id, session_id, client_key, frame, frame_out, text, author, author_role,
                       created_at, version_id, parent_id, resolved_by, resolved_at)
        SELECT id, session_id, client_key, frame, frame_out, text, author, author_role,
               created_at, version_id, parent_id, resolved_by, resolved_at
        FROM notes_v5 ORDER BY id;
    DROP TABLE notes_v5;
    ALTER TABLE drawings RENAME TO drawings_v5;
    CREATE TABLE drawings (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        tool TEXT NOT NULL,
        colour TEXT NOT NULL,
        width REAL NOT NULL,
        points BLOB NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        erased_by TEXT,
        erased_at INTEGER,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    INSERT INTO drawings (id, session_id, version_id, client_key, frame, tool, colour, width,
                          points, author, author_role, created_at, erased_by, erased_at)
        SELECT id, session_id, version_id, client_key, frame, tool, colour, width,
               points, author, author_role, created_at, erased_by, erased_at
        FROM drawings_v5 ORDER BY id;
    DROP TABLE drawings_v5;
    ALTER TABLE approvals RENAME TO approvals_v5;
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        status TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        frames_seen TEXT NOT NULL,
        frame_count INTEGER NOT NULL,
        stream TEXT,
        stream_bytes INTEGER,
        stream_kbps INTEGER,
        checksum TEXT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    INSERT INTO approvals (id, session_id, version_id, client_key, status, author, author_role,
                           created_at, frames_seen, frame_count, stream, stream_bytes,
                           stream_kbps, checksum)
        SELECT id, session_id, version_id, client_key, status, author, author_role,
               created_at, frames_seen, frame_count, stream, stream_bytes,
               stream_kbps, checksum
        FROM approvals_v5 ORDER BY id;
    DROP TABLE approvals_v5;",
    // 7: sessions the operator deleted: gone from every listing, never
    // restored; their record is kept unless it was purged.
    "ALTER TABLE sessions ADD COLUMN deleted_at INTEGER;",
    // 8: media checksums by (path, size, mtime), so a restart does not
    // hash every file again.
    "CREATE TABLE media_checksums (
        path TEXT PRIMARY KEY,
        size_bytes INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        checksum TEXT NOT NULL
    );",
    // 9: an optional passcode per link, as the PHC string of its Argon2id
    // hash (salt and parameters included). NULL: no passcode, which is
    // what every link made before has.
    "ALTER TABLE links ADD COLUMN passcode_hash TEXT;",
    // 10: the text burned into a session's pictures (issue #11); NULL for
    // none, which is every session made before it.
    "ALTER TABLE sessions ADD COLUMN watermark TEXT;",
    // 11: where each personal room of an ended session stands (issue #13),
    // so that a restart reopens it there rather than at the live room's
    // frame. `room` is the SHA-256 of the room's resume secret: the record
    // never holds a secret someone could resume with.
    "CREATE TABLE personal_rooms (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        room TEXT NOT NULL,
        link_id TEXT NOT NULL,
        entry INTEGER NOT NULL,
        frame INTEGER NOT NULL,
        PRIMARY KEY (session_id, room)
    );",
    // 12: the webhook outbox (issue #14): one row per (announcement, URL)
    // until it is delivered or given up, so that a restart resumes what
    // was pending and, on a shared record, exactly one node claims each
    // attempt.
    "CREATE TABLE webhook_outbox (
        id INTEGER PRIMARY KEY,
        delivery TEXT NOT NULL,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at INTEGER NOT NULL,
        claimed_by TEXT,
        claimed_until INTEGER,
        finished_at INTEGER,
        UNIQUE (delivery, url)
    );
    CREATE INDEX outbox_due ON webhook_outbox (finished_at, due_at);",
    // 13: a playing room's motion (issue #14): the wall-clock instant its
    // last recorded frame was on screen and its speed, so that a node
    // taking the session over carries on playing where the room has got
    // to. NULL while paused.
    "ALTER TABLE sessions ADD COLUMN moving_since INTEGER;
    ALTER TABLE sessions ADD COLUMN moving_speed_num INTEGER;
    ALTER TABLE sessions ADD COLUMN moving_speed_den INTEGER;",
    // 14: fencing (issue #14): per session, the highest lease token a
    // write has carried; a write with a lower one is an old owner's and
    // is refused. A single node writes no fence, so the table stays empty.
    "CREATE TABLE session_fences (
        session_id TEXT PRIMARY KEY,
        token INTEGER NOT NULL
    );",
];
