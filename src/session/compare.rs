//! Version compare as room state: which other version the room shows
//! beside the one on screen, and how. Whether that version exists, is of
//! the same item and runs at the same rate is for the runtime, which has
//! the record; here is who may change it and what the room is told.

use super::{Audience, CommandError, Event, ParticipantId, Session};

/// How the two versions share the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareMode {
    /// Side by side: the version on screen (A) left, the other (B) right.
    Side,
    /// A wipe: A left of the line, B right of it.
    Wipe,
}

/// The room compares the version on screen (A) with `version` (B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The other version's id.
    pub version: String,
    pub mode: CompareMode,
    /// Where the wipe line is, in thousandths of the picture's width
    /// (0..=1000); kept in side mode too, so a switch back finds it.
    pub wipe_permille: u16,
}

/// The largest `wipe_permille`.
pub const WIPE_FULL: u16 = 1000;

impl Session {
    /// What the room compares, if anything.
    pub fn compare(&self) -> Option<&Compare> {
        self.compare.as_ref()
    }

    /// Starts, adjusts or stops (`None`) comparing. Only the driver may,
    /// as with the transport: the compare is part of what the room shows.
    pub fn set_compare(
        &mut self,
        from: ParticipantId,
        compare: Option<Compare>,
    ) -> Result<(), CommandError> {
        let role = self
            .participants
            .get(&from)
            .filter(|p| p.away_since.is_none())
            .map(|p| p.presence.role)
            .ok_or(CommandError::UnknownParticipant)?;
        if !role.can_drive() && !self.personal {
            return Err(CommandError::Forbidden(role));
        }
        if self.driver != Some(from) {
            return Err(CommandError::NotDriver);
        }
        if let Some(c) = &compare {
            if c.wipe_permille > WIPE_FULL {
                return Err(CommandError::BadCompare);
            }
        }
        self.announce_compare(compare, Some(from));
        Ok(())
    }

    /// Ends a compare (a cue to another entry leaves the item it was of).
    pub(super) fn end_compare(&mut self, by: Option<ParticipantId>) {
        if self.compare.is_some() {
            self.announce_compare(None, by);
        }
    }

    fn announce_compare(&mut self, compare: Option<Compare>, by: Option<ParticipantId>) {
        self.compare = compare.clone();
        self.version += 1;
        self.push(
            Audience::All,
            Event::Compare {
                version: self.version,
                compare,
                by,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ServerTime;
    use crate::session::{
        Command, CueAt, Cut, JoinRequest, Role, SessionInfo, SessionLimits, Snapshot,
    };
    use crate::timecode::{FrameRate, TimecodeFormat};

    fn room() -> (Session, ServerTime) {
        let timecode = TimecodeFormat::new(FrameRate::FPS_24, false).unwrap();
        let info = SessionInfo {
            id: "s1".into(),
            title: "Shot 010".into(),
            timecode,
            duration_frames: 240,
            watermark: None,
        };
        let now = ServerTime::from_millis(10_000);
        let cut = Cut {
            timecode,
            duration_frames: 240,
        };
        let session =
            Session::new(info, SessionLimits::default(), now).with_playlist(vec![cut, cut], 0);
        (session, now)
    }

    fn join(session: &mut Session, now: ServerTime, name: &str, role: Role) -> ParticipantId {
        let req = JoinRequest {
            name: name.into(),
            role,
            link: format!("{role:?}"),
            resume_secret: [name.len() as u8; 16],
        };
        session.join(now, req).unwrap()
    }

    fn compares(session: &mut Session) -> Vec<Option<Compare>> {
        std::iter::from_fn(|| session.poll_output())
            .filter_map(|o| match o.event {
                Event::Compare { compare, .. } => Some(compare),
                _ => None,
            })
            .collect()
    }

    fn side(version: &str) -> Compare {
        Compare {
            version: version.into(),
            mode: CompareMode::Side,
            wipe_permille: 500,
        }
    }

    #[test]
    fn only_the_driver_compares_and_the_room_and_newcomers_hear_of_it() {
        let (mut session, now) = room();
        let host = join(&mut session, now, "Dana", Role::Host);
        let reviewer = join(&mut session, now, "Rey", Role::Reviewer);
        let viewer = join(&mut session, now, "Vic", Role::Viewer);
        compares(&mut session);
        assert_eq!(
            session.set_compare(viewer, Some(side("v2"))),
            Err(CommandError::Forbidden(Role::Viewer))
        );
        assert_eq!(
            session.set_compare(reviewer, Some(side("v2"))),
            Err(CommandError::NotDriver)
        );
        let off_picture = Compare {
            wipe_permille: WIPE_FULL + 1,
            ..side("v2")
        };
        assert_eq!(
            session.set_compare(host, Some(off_picture)),
            Err(CommandError::BadCompare)
        );
        assert!(compares(&mut session).is_empty());

        let before = session.version();
        session.set_compare(host, Some(side("v2"))).unwrap();
        assert_eq!(compares(&mut session), [Some(side("v2"))]);
        assert!(session.version() > before);
        let snapshot: Snapshot = session.snapshot(true);
        assert_eq!(snapshot.compare, Some(side("v2")));
        session.set_compare(host, None).unwrap();
        assert_eq!(compares(&mut session), [None]);
        assert_eq!(session.compare(), None);
    }

    #[test]
    fn a_cue_ends_the_compare_before_the_room_moves() {
        let (mut session, now) = room();
        let host = join(&mut session, now, "Dana", Role::Host);
        session.set_compare(host, Some(side("v2"))).unwrap();
        compares(&mut session);
        session
            .handle(now, host, Command::Cue(1, CueAt::Start))
            .unwrap();
        assert_eq!(compares(&mut session), [None]);
        assert_eq!(session.compare(), None);
    }
}
