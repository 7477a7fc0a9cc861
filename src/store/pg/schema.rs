//! The PostgreSQL schema, step by step: append, never edit a step that
//! has shipped.

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the whole record, as SQLite's steps 1 to 11 left it.
    "CREATE TABLE media_items (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        media_item_id TEXT NOT NULL REFERENCES media_items(id),
        number BIGINT NOT NULL,
        path TEXT NOT NULL,
        checksum TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (media_item_id, number),
        UNIQUE (media_item_id, checksum)
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        fps_num BIGINT NOT NULL,
        fps_den BIGINT NOT NULL,
        drop_frame BOOLEAN NOT NULL,
        start_timecode TEXT NOT NULL,
        duration_frames BIGINT NOT NULL,
        media TEXT,
        created_at BIGINT NOT NULL,
        last_frame BIGINT NOT NULL DEFAULT 0,
        version_id TEXT REFERENCES versions(id),
        ended_at BIGINT,
        entry BIGINT NOT NULL DEFAULT 0,
        deleted_at BIGINT,
        watermark TEXT
    );
    CREATE TABLE links (
        seq BIGSERIAL NOT NULL,
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        role TEXT NOT NULL,
        token_hash BYTEA NOT NULL UNIQUE,
        expires_at BIGINT,
        revoked BOOLEAN NOT NULL DEFAULT FALSE,
        passcode_hash TEXT
    );
    CREATE TABLE notes (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        client_key TEXT NOT NULL,
        frame BIGINT NOT NULL,
        frame_out BIGINT,
        text TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        version_id TEXT REFERENCES versions(id),
        parent_id BIGINT REFERENCES notes(id),
        resolved_by TEXT,
        resolved_at BIGINT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_by_session ON events (session_id, id);
    CREATE TABLE webhook_deliveries (
        id BIGSERIAL PRIMARY KEY,
        delivery TEXT NOT NULL,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        attempt BIGINT NOT NULL,
        status INTEGER,
        error TEXT,
        at BIGINT NOT NULL
    );
    CREATE INDEX deliveries_by_delivery ON webhook_deliveries (delivery, attempt);
    CREATE TABLE drawings (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        frame BIGINT NOT NULL,
        tool TEXT NOT NULL,
        colour TEXT NOT NULL,
        width DOUBLE PRECISION NOT NULL,
        points BYTEA NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        erased_by TEXT,
        erased_at BIGINT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    CREATE TABLE approvals (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        status TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        frames_seen TEXT NOT NULL,
        frame_count BIGINT NOT NULL,
        stream TEXT,
        stream_bytes BIGINT,
        stream_kbps BIGINT,
        checksum TEXT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    CREATE TABLE session_entries (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        position BIGINT NOT NULL,
        media TEXT NOT NULL,
        version_id TEXT REFERENCES versions(id),
        fps_num BIGINT,
        fps_den BIGINT,
        drop_frame BOOLEAN,
        start_timecode TEXT,
        duration_frames BIGINT,
        PRIMARY KEY (session_id, position)
    );
    CREATE TABLE media_checksums (
        path TEXT PRIMARY KEY,
        size_bytes BIGINT NOT NULL,
        mtime_ns BIGINT NOT NULL,
        checksum TEXT NOT NULL
    );
    CREATE TABLE personal_rooms (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        room TEXT NOT NULL,
        link_id TEXT NOT NULL,
        entry BIGINT NOT NULL,
        frame BIGINT NOT NULL,
        PRIMARY KEY (session_id, room)
    );",
    // 2: the webhook outbox, as SQLite's step 12.
    "CREATE TABLE webhook_outbox (
        id BIGSERIAL PRIMARY KEY,
        delivery TEXT NOT NULL,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        due_at BIGINT NOT NULL,
        claimed_by TEXT,
        claimed_until BIGINT,
        finished_at BIGINT,
        UNIQUE (delivery, url)
    );
    CREATE INDEX outbox_due ON webhook_outbox (finished_at, due_at);",
    // 3: a playing room's motion, as SQLite's step 13.
    "ALTER TABLE sessions ADD COLUMN moving_since BIGINT;
    ALTER TABLE sessions ADD COLUMN moving_speed_num BIGINT;
    ALTER TABLE sessions ADD COLUMN moving_speed_den BIGINT;",
    // 4: fencing, as SQLite's step 14.
    "CREATE TABLE session_fences (
        session_id TEXT PRIMARY KEY,
        token BIGINT NOT NULL
    );",
];
