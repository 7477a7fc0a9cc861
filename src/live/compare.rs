//! Version compare in a session's task: the checks that need the
//! record's view of versions (the core only knows who may), what the room
//! is told, and what the players are told.

use crate::media::compare::{CompareSpec, Layout};
use crate::media::MediaInfo;
use crate::protocol::{ErrorCode, ServerMessage, WireCompare, WireVersion};
use crate::session::{Compare, CompareMode, Event, ParticipantId, WIPE_FULL};

use super::SessionTask;

/// A compare as a connection asks for it, with version B resolved (from
/// the record, its file probed) before it reaches the task.
#[derive(Debug, Clone)]
pub struct CompareRequest {
    pub compare: Compare,
    pub other: WireVersion,
    pub media: MediaInfo,
}

impl SessionTask {
    /// Starts, adjusts or stops comparing for `from`, or tells them why not.
    pub(super) fn compare(
        &mut self,
        from: ParticipantId,
        request: Option<CompareRequest>,
        reference: Option<u32>,
    ) {
        if let Some(request) = &request {
            if let Err(message) = self.comparable(request) {
                return self.send_error(from, ErrorCode::CannotCompare, message, reference);
            }
        }
        let compare = request.as_ref().map(|r| r.compare.clone());
        match self.session.set_compare(from, compare) {
            Ok(()) => self.compared = request,
            Err(err) => self.send_error(
                from,
                ErrorCode::of_command(&err),
                err.to_string(),
                reference,
            ),
        }
    }

    /// Whether B can be shown beside the version on screen.
    fn comparable(&self, request: &CompareRequest) -> Result<(), String> {
        if self.media.is_none() {
            return Err("this session has no video stream to compare in".into());
        }
        let Some(current) = &self.version else {
            return Err("this session reviews no version to compare with".into());
        };
        let other = &request.other;
        if other.item != current.item {
            return Err(format!(
                "{} v{} is of {:?}, not {:?}: only versions of the item on screen compare",
                other.item, other.number, other.item, current.item
            ));
        }
        let rate = self.session.info().timecode.rate();
        if request.media.rate != rate {
            return Err(format!(
                "{} v{} runs at {} fps and the version on screen at {rate} fps: only versions at one frame rate compare frame for frame",
                other.item, other.number, request.media.rate
            ));
        }
        Ok(())
    }

    /// The room's message for a compare event, after telling the players.
    pub(super) fn compare_news(&mut self, event: &Event) -> Option<ServerMessage> {
        let Event::Compare {
            version,
            compare,
            by,
        } = event
        else {
            return None;
        };
        if compare.is_none() {
            self.compared = None;
        }
        if let Some(media) = &self.media {
            let spec = compare
                .as_ref()
                .zip(self.compared.as_ref())
                .map(|(c, r)| CompareSpec {
                    media: r.media.clone(),
                    layout: layout(c),
                });
            media.pipelines.compare(spec);
        }
        Some(ServerMessage::Compare {
            version: *version,
            compare: self.wire_compare(),
            by: by.map(|p| p.0),
        })
    }

    /// The room's compare as the wire shows it, labels included.
    pub(super) fn wire_compare(&self) -> Option<WireCompare> {
        let compare = self.session.compare()?;
        let mut wire = WireCompare::from(compare);
        wire.other = self
            .compared
            .as_ref()
            .filter(|r| r.other.id == compare.version)
            .map(|r| r.other.clone());
        Some(wire)
    }

    /// The version a note or drawing is about: the one named, if the room
    /// shows it (on screen, or compared beside it), else the one on screen.
    pub(super) fn pointed_version(
        &self,
        named: Option<&str>,
    ) -> Result<Option<&WireVersion>, String> {
        let current = self.version.as_ref();
        let Some(named) = named else {
            return Ok(current);
        };
        if current.is_some_and(|v| v.id == named) {
            return Ok(current);
        }
        match &self.compared {
            Some(r) if r.other.id == named && self.session.compare().is_some() => Ok(Some(&r.other)),
            _ => Err(format!(
                "version {named} is not on screen: notes and drawings go to a version the room shows"
            )),
        }
    }
}

fn layout(compare: &Compare) -> Layout {
    match compare.mode {
        CompareMode::Side => Layout::Side,
        CompareMode::Wipe => Layout::Wipe(f32::from(compare.wipe_permille) / f32::from(WIPE_FULL)),
    }
}
