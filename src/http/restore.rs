//! Bringing recorded sessions back: every live one at start, an archived
//! one when someone with its link asks, and a session another node ran
//! (the takeover, fenced before the record is read); and a link another
//! node minted, looked up in the shared record.

use super::*;

impl App {
    /// Brings back every recorded session, paused where it was last, with
    /// its links and notes, so that clients reconnect and resync by
    /// themselves. A session whose media can no longer be opened comes
    /// back without its stream, and says why in the log.
    pub async fn restore_sessions(self: &Arc<Self>) -> Result<usize, StoreError> {
        let store = self.store.clone();
        let (sessions, links) = tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((store.sessions()?, store.links()?))
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        for link in links {
            self.links.restore(link.token_hash, link_of(link));
        }
        let mut restored = 0;
        // Only live reviews come back at start; an ended one is brought
        // back when someone with a link of it asks (`App::session`).
        for row in sessions.into_iter().filter(|row| row.ended_at.is_none()) {
            match self.owned_elsewhere(&row.id).await {
                // A shared record holds every node's sessions: the one
                // whose lease stands runs it, never two at once.
                Ok(Some(owner)) => {
                    tracing::info!(session = %row.id, %owner, "not restored here: another node owns it");
                    continue;
                }
                Err(why) => {
                    tracing::warn!(session = %row.id, %why, "not restored here");
                    continue;
                }
                Ok(None) => {}
            }
            match self.restore_session(row).await {
                Ok(()) => restored += 1,
                Err(err) if err.downcast_ref::<NotOwner>().is_some() => {
                    tracing::info!(%err, "a recorded session is not restored here");
                }
                Err(err) => tracing::warn!(%err, "a recorded session could not be restored"),
            }
        }
        Ok(restored)
    }

    /// The session `id`: live, or (ended and archived) brought back from
    /// the record now. `None` when there is no such session.
    pub async fn session(self: &Arc<Self>, id: &str) -> Result<SessionHandle, Unavailable> {
        if let Some(live) = self.registry.get(id) {
            return Ok(live);
        }
        // One at a time, so two people opening an archived review at
        // once do not bring it back twice.
        let _restoring = self.restoring.lock().await;
        if let Some(live) = self.registry.get(id) {
            return Ok(live);
        }
        // On a shared record, the node holding the session's lease runs
        // it. Once that node is gone and its lease has lapsed, the node
        // asked brings the session back from the record: the takeover.
        match self.owned_elsewhere(id).await {
            Ok(Some(owner)) => return Err(Unavailable::Elsewhere(owner)),
            Err(why) => return Err(Unavailable::CutOff(why)),
            Ok(None) => {}
        }
        let store = self.store.clone();
        let wanted = id.to_string();
        let found = tokio::task::spawn_blocking(move || {
            let Some(mut row) = store.session(&wanted)? else {
                return Ok(None);
            };
            row.playlist = store.entries_of(&wanted)?;
            Ok::<_, StoreError>(Some(row))
        })
        .await;
        let Ok(Ok(Some(row))) = found else {
            return Err(Unavailable::NotFound);
        };
        if let Err(err) = self.restore_session(row).await {
            if let Some(NotOwner(why)) = err.downcast_ref::<NotOwner>() {
                return Err(why.clone());
            }
            tracing::warn!(session = %id, %err, "a recorded session could not be opened");
            return Err(Unavailable::NotFound);
        }
        self.registry.get(id).ok_or(Unavailable::NotFound)
    }

    /// The link a token belongs to, if it may be used at `now_unix`. On a
    /// record shared by a cluster, a token this node has not seen may be
    /// another node's link: it is looked up there once (a single node's
    /// links are all in memory, so a wrong token costs it no read).
    pub async fn check_link(&self, token: &str, now_unix: u64) -> Result<Link, LinkError> {
        match self.links.check(token, now_unix) {
            Err(LinkError::Invalid) if !self.config.server.store.is_empty() => {
                let hash = crate::links::hash(token);
                let store = self.store.clone();
                let found = tokio::task::spawn_blocking(move || store.link_by_hash(&hash)).await;
                let Ok(Ok(Some(row))) = found else {
                    return Err(LinkError::Invalid);
                };
                self.links.restore(hash, link_of(row));
                self.links.check(token, now_unix)
            }
            checked => checked,
        }
    }

    async fn restore_session(self: &Arc<Self>, row: SessionRow) -> anyhow::Result<()> {
        // The lease first: two nodes opening the session at once, one
        // runs it and the other relays to it; neither starts it to stop.
        let lease = self.lease_to_run(&row.id).await.map_err(NotOwner)?;
        let restored = match self.fence_and_reread(row, lease.as_ref()).await {
            Ok(row) if !row.playlist.is_empty() => self.restore_playlist_session(row).await,
            Ok(row) => self.restore_single_session(row).await,
            Err(err) => Err(err),
        };
        let (row, review, stream) = match restored {
            Ok(parts) => parts,
            Err(err) => {
                self.let_go(lease).await;
                return Err(err);
            }
        };
        self.respawn(row, review, stream, lease).await
    }

    /// A new owner's fence goes up before it reads the record, so that
    /// nothing an old owner still writes lands unseen behind the read:
    /// the row is read again after it (cluster mode only).
    async fn fence_and_reread(
        &self,
        row: SessionRow,
        lease: Option<&Lease>,
    ) -> anyhow::Result<SessionRow> {
        if lease.is_none() {
            return Ok(row);
        }
        let store = self.session_store(&row.id, lease);
        store.write_acked(Write::Fence).await??;
        let id = row.id.clone();
        let fresh = tokio::task::spawn_blocking(move || {
            let mut row = store.session(&id)?;
            if let Some(row) = &mut row {
                row.playlist = store.entries_of(&id)?;
            }
            Ok::<_, StoreError>(row)
        })
        .await??;
        Ok(fresh.unwrap_or(row))
    }

    async fn restore_single_session(
        self: &Arc<Self>,
        row: SessionRow,
    ) -> anyhow::Result<(SessionRow, SessionReview, Restored)> {
        let media = match row.media.clone() {
            Some(requested) => {
                let app = self.clone();
                match tokio::task::spawn_blocking(move || app.prepare_media(&requested)).await? {
                    Ok(setup) => Some(setup),
                    Err(err) => {
                        tracing::warn!(session = %row.id, error = %err.message, "media unavailable after restart");
                        None
                    }
                }
            }
            None => None,
        };
        let store = self.store.clone();
        let id = row.id.clone();
        let version_id = row.version_id.clone();
        let (review, version, rooms) = tokio::task::spawn_blocking(move || {
            let version = match version_id {
                Some(v) => store.version(&v)?,
                None => None,
            };
            let rooms = store.personal_rooms(&id)?;
            Ok::<_, StoreError>((recorded_review(&store, &id)?, version, rooms))
        })
        .await??;
        // A version is its bytes: a file changed since it was recorded is
        // not what the notes and approvals are about.
        let (media, media_error) = match (media, &version) {
            (Some(setup), Some(v)) if setup.checksum.0 != v.checksum => {
                let message = format!(
                    "{} has changed since it was recorded as {} v{}: add it as a new version",
                    row.media.as_deref().unwrap_or_default(),
                    v.item,
                    v.number
                );
                tracing::warn!(session = %row.id, "{message}");
                (None, Some(message))
            }
            (media, _) => {
                let missing = (media.is_none() && row.media.is_some())
                    .then(|| "the media file could not be opened after a restart".to_string());
                (media, missing)
            }
        };
        let version = version.as_ref().map(wire_version);
        let stream = Restored {
            media,
            version,
            media_error,
            playlist: Vec::new(),
            entry: 0,
            rooms,
        };
        Ok((row, review, stream))
    }

    /// Brings back a playlist session on the entry it was on. Every entry
    /// must still be the bytes it was recorded as; otherwise the session
    /// comes back without a stream and the room is told which file changed.
    async fn restore_playlist_session(
        self: &Arc<Self>,
        row: SessionRow,
    ) -> anyhow::Result<(SessionRow, SessionReview, Restored)> {
        let app = self.clone();
        let store = self.store.clone();
        let id = row.id.clone();
        let files = row.playlist.clone();
        let (review, entries, rooms) = tokio::task::spawn_blocking(move || {
            let entries: Vec<Result<PlaylistEntry, String>> = files
                .iter()
                .map(|entry| {
                    let media = &entry.media;
                    let version = entry
                        .version_id
                        .as_deref()
                        .and_then(|v| store.version(v).ok().flatten())
                        .ok_or_else(|| format!("{media} has no recorded version"))?;
                    let setup = app.prepare_media(media).map_err(|e| e.message)?;
                    if setup.checksum.0 != version.checksum {
                        return Err(format!(
                            "{media} has changed since it was recorded as {} v{}: add it as a new version",
                            version.item, version.number
                        ));
                    }
                    Ok(PlaylistEntry {
                        media: media.clone(),
                        setup,
                        version: wire_version(&version),
                    })
                })
                .collect();
            let rooms = store.personal_rooms(&id)?;
            Ok::<_, StoreError>((recorded_review(&store, &id)?, entries, rooms))
        })
        .await??;
        let (playlist, media_error) = match entries.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(playlist) => (playlist, None),
            Err(message) => {
                tracing::warn!(session = %row.id, "{message}");
                (Vec::new(), Some(message))
            }
        };
        let entry = (row.entry.max(0) as usize).min(playlist.len().saturating_sub(1));
        let stream = Restored {
            media: playlist.get(entry).map(|e| e.setup.clone()),
            version: playlist.get(entry).map(|e| e.version.clone()),
            media_error,
            playlist,
            entry,
            rooms,
        };
        Ok((row, review, stream))
    }

    /// Starts a recorded session's task again, paused where it last was,
    /// under the lease taken for it.
    async fn respawn(
        &self,
        row: SessionRow,
        review: SessionReview,
        stream: Restored,
        lease: Option<Lease>,
    ) -> anyhow::Result<()> {
        let started = self.spawn_recorded(row, review, stream, lease.as_ref());
        match started {
            Ok(handle) => {
                self.own_session(&handle, lease);
                Ok(())
            }
            Err(err) => {
                self.let_go(lease).await;
                Err(err)
            }
        }
    }

    fn spawn_recorded(
        &self,
        row: SessionRow,
        review: SessionReview,
        stream: Restored,
        lease: Option<&Lease>,
    ) -> anyhow::Result<SessionHandle> {
        let store = self.session_store(&row.id, lease);
        let rate = FrameRate::new(row.fps_num, row.fps_den)?;
        let start: Timecode = row.start_timecode.parse()?;
        let timecode = TimecodeFormat::new(rate, row.drop_frame)?.with_start(start)?;
        let start_moving = self.still_moving(row.moving);
        let handle = self.registry.spawn(
            SessionInfo {
                id: row.id,
                title: row.title,
                timecode,
                duration_frames: row.duration_frames,
                watermark: row.watermark,
            },
            self.config.session_limits(),
            self.clock,
            self.metrics.clone(),
            self.shutdown.clone(),
            SessionStart {
                media: stream.media,
                store,
                webhooks: self.webhooks.clone(),
                start_frame: row.last_frame,
                start_moving,
                review,
                version: stream.version,
                media_error: stream.media_error,
                ended_at: row.ended_at,
                playlist: stream.playlist,
                entry: stream.entry,
                personal_rooms: stream.rooms,
                idle_expiry: self.config.session.idle_expiry(),
                transport_commit_wait: self.config.cluster.transport_commit_wait(),
            },
        )?;
        Ok(handle)
    }
}
