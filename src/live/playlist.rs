//! A session's playlist as the live runtime keeps it: its entries (each a
//! version ready to play), the cue that moves the room between them, and
//! a version that joins while the room runs (an upload).

use std::sync::Arc;

use super::{MediaSetup, SessionTask};
use crate::protocol::{self, ServerMessage, WireVersion};
use crate::session::ParticipantId;
use crate::store::Write;

/// The most entries a playlist session may have, made or grown.
pub const MAX_PLAYLIST: usize = 100;

/// One entry of a playlist session: a version of an item, ready to play.
#[derive(Debug, Clone)]
pub struct PlaylistEntry {
    /// The file as it was asked for (relative to the media root), as the
    /// record keeps it.
    pub media: String,
    pub setup: MediaSetup,
    pub version: WireVersion,
}

impl PlaylistEntry {
    pub(super) fn cut(&self) -> crate::session::Cut {
        crate::session::Cut {
            timecode: self.setup.info.timecode,
            duration_frames: self.setup.info.duration_frames,
        }
    }

    /// The entry as the record keeps it.
    pub(super) fn row(&self) -> crate::store::EntryRow {
        let timecode = self.setup.info.timecode;
        crate::store::EntryRow {
            media: self.media.clone(),
            version_id: Some(self.version.id.clone()),
            timeline: Some(crate::store::TimelineRow {
                fps_num: timecode.rate().num(),
                fps_den: timecode.rate().den(),
                drop_frame: timecode.drop_frame(),
                start_timecode: timecode.start().to_string(),
                duration_frames: self.setup.info.duration_frames,
            }),
        }
    }

    pub(super) fn wire(&self) -> protocol::WireEntry {
        let timecode = self.setup.info.timecode;
        protocol::WireEntry {
            version: self.version.clone(),
            fps: timecode.rate().to_string(),
            drop_frame: timecode.drop_frame(),
            start_timecode: timecode.start().to_string(),
            duration_frames: self.setup.info.duration_frames,
            source_width: self.setup.info.width,
            source_height: self.setup.info.height,
        }
    }
}

impl SessionTask {
    /// A version arrived for this session (an upload): it becomes the
    /// playlist's last entry, so the driver can cue the room to it (at the
    /// same timecode, for a version of the same shot). A session of one
    /// file becomes a playlist of its file and the new one. The room
    /// stays where it is; everyone is sent the new playlist.
    /// `own_media`: the session's own file as the record has it, for the
    /// first entry of a session of one file.
    pub(super) fn add_version(&mut self, entry: PlaylistEntry, own_media: Option<String>) {
        let id = self.session.info().id.clone();
        // A personal room follows its session's playlist as it was when
        // it opened; a session without a stream has nothing to cue.
        if self.belonging.is_some() || self.media.is_none() || self.ended_at.is_some() {
            tracing::info!(session = %id, version = %entry.version.id, "version not added: no live stream to cue");
            return;
        }
        let mut playlist = (*self.parts.playlist).clone();
        if playlist.is_empty() {
            let (Some(setup), Some(version), Some(media)) =
                (&self.parts.setup, &self.version, own_media)
            else {
                return;
            };
            playlist.push(PlaylistEntry {
                media,
                setup: setup.clone(),
                version: version.clone(),
            });
        }
        if playlist.iter().any(|e| e.version.id == entry.version.id) {
            return;
        }
        if playlist.len() >= MAX_PLAYLIST {
            tracing::warn!(session = %id, "version not added: the playlist is full");
            return;
        }
        let added = self.session.add_entry(entry.cut());
        let label = format!("{} v{}", entry.version.item, entry.version.number);
        playlist.push(entry);
        self.store.write_later(Write::Playlist {
            session_id: id,
            entries: playlist.iter().map(PlaylistEntry::row).collect(),
        });
        self.log_event("version_added", format!("entry {added}: {label}"));
        let message = ServerMessage::Playlist {
            entries: playlist.iter().map(PlaylistEntry::wire).collect(),
            entry: self.session.entry(),
        };
        self.parts.playlist = Arc::new(playlist);
        self.broadcast(&message);
    }

    /// What the room plays now: the playlist's entry on screen, else the
    /// session's own file.
    pub(super) fn current_setup(&self) -> Option<&MediaSetup> {
        match self.parts.playlist.get(self.session.entry()) {
            Some(entry) => Some(&entry.setup),
            None => self.parts.setup.as_ref(),
        }
    }

    /// The review proxy of a source the room plays was made while it
    /// runs: every entry of that source plays the proxy from now on, and
    /// if the room is on one its players move to it at the transport's
    /// instant. The proxy has the source's frames, so the picture does not
    /// jump; the stream only gets lighter to make. A room comparing
    /// versions keeps its players until it next cues: moving them would
    /// end the compare behind the driver's back.
    pub(super) fn proxy_ready(&mut self, checksum: &str, path: &std::path::Path) {
        let takes = |setup: &MediaSetup| setup.checksum.0 == checksum && setup.proxy.is_none();
        let mut now_playing = None;
        if let Some(setup) = self.parts.setup.as_mut().filter(|s| takes(s)) {
            setup.proxy = Some(path.to_owned());
            if self.parts.playlist.is_empty() {
                now_playing = Some(setup.playable());
            }
        }
        if self.parts.playlist.iter().any(|e| takes(&e.setup)) {
            let on = self.session.entry();
            let mut playlist = (*self.parts.playlist).clone();
            for (i, entry) in playlist.iter_mut().enumerate() {
                if takes(&entry.setup) {
                    entry.setup.proxy = Some(path.to_owned());
                    if i == on {
                        now_playing = Some(entry.setup.playable());
                    }
                }
            }
            self.parts.playlist = Arc::new(playlist);
        }
        let Some(playable) = now_playing else {
            return;
        };
        let id = &self.session.info().id;
        match (&self.media, &self.compared) {
            (Some(media), None) => {
                tracing::info!(session = %id, %checksum, "the room's stream moves to the review proxy");
                media.cue(&playable, *self.session.transport());
            }
            (Some(_), Some(_)) => {
                tracing::info!(session = %id, %checksum, "the review proxy waits for the compare to end");
            }
            (None, _) => {}
        }
    }

    /// The room moved to another playlist entry: the players follow, the
    /// record notes where the room now stands, and everyone is told the
    /// entry's timeline and version with the transport.
    pub(super) fn cue(
        &mut self,
        entry: usize,
        version: u64,
        transport: &crate::clock::Transport,
        by: Option<ParticipantId>,
    ) -> ServerMessage {
        let info = self.session.info();
        let chosen = self.parts.playlist.get(entry);
        if let (Some(chosen), Some(media)) = (chosen, &self.media) {
            media.cue(&chosen.setup.playable(), *transport);
        }
        self.version = chosen.map(|c| c.version.clone());
        // The record has the cue already (`SessionTask::record`).
        if self.belonging.is_none() {
            self.log_event(
                "cue",
                format!(
                    "entry {entry} ({}) by {:?}",
                    self.version
                        .as_ref()
                        .map_or(String::new(), |v| format!("{} v{}", v.item, v.number)),
                    by.map(|p| p.0)
                ),
            );
        }
        ServerMessage::Cue {
            version,
            execute_at: transport.anchor_time.as_micros(),
            entry,
            session: info.into(),
            media_version: self.version.clone(),
            transport: transport.into(),
            by: by.map(|p| p.0),
        }
    }
}
