//! Session tests on simulated time: a tiny harness steps the clock to each
//! timeout the session asks for, the way quinn-proto's tests do.

use super::*;
use crate::timecode::FrameRate;
use proptest::prelude::*;

struct Room {
    session: Session,
    now: ServerTime,
    seen: Vec<Output>,
}

impl Room {
    fn new() -> Room {
        Room::with_limits(SessionLimits::default())
    }

    fn with_limits(limits: SessionLimits) -> Room {
        let start: Timecode = "01:00:00:00".parse().unwrap();
        let info = SessionInfo {
            id: "s1".into(),
            title: "Reel 1".into(),
            timecode: TimecodeFormat::new(FrameRate::FPS_24, false)
                .unwrap()
                .with_start(start)
                .unwrap(),
            duration_frames: 24 * 600,
            watermark: None,
        };
        let now = ServerTime::from_millis(10_000);
        Room {
            session: Session::new(info, limits, now),
            now,
            seen: Vec::new(),
        }
    }

    fn join(&mut self, name: &str, role: Role) -> ParticipantId {
        let secret = [name.len() as u8; 16];
        self.join_with_secret(name, role, secret)
    }

    fn join_with_secret(&mut self, name: &str, role: Role, secret: [u8; 16]) -> ParticipantId {
        let req = JoinRequest {
            name: name.into(),
            role,
            link: link_of(role),
            resume_secret: secret,
        };
        let id = self.session.join(self.now, req).unwrap();
        self.drain();
        id
    }

    fn cmd(&mut self, from: ParticipantId, command: Command) -> Result<(), CommandError> {
        let result = self.session.handle(self.now, from, command);
        self.drain();
        result
    }

    fn advance_ms(&mut self, ms: i64) {
        let until = self.now.saturating_add_micros(ms * 1000);
        // Step through every timeout on the way, in order.
        while let Some(t) = self.session.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.session.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    fn drain(&mut self) {
        while let Some(out) = self.session.poll_output() {
            self.seen.push(out);
        }
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.seen)
    }

    fn last_transport(&self) -> (u64, Transport, TransportCause) {
        self.seen
            .iter()
            .rev()
            .find_map(|o| match &o.event {
                Event::Transport {
                    version,
                    transport,
                    cause,
                    ..
                } => Some((*version, *transport, *cause)),
                _ => None,
            })
            .expect("a transport event")
    }

    fn last_control(&self) -> (Control, ControlReason) {
        self.seen
            .iter()
            .rev()
            .find_map(|o| match &o.event {
                Event::Control {
                    control, reason, ..
                } => Some((control.clone(), *reason)),
                _ => None,
            })
            .expect("a control event")
    }

    fn position(&self) -> i64 {
        self.session.position(self.now)
    }
}

/// Each role's link in these tests; a real link id is random.
fn link_of(role: Role) -> String {
    format!("{role:?}-link")
}

#[test]
fn first_host_drives_and_commands_are_scheduled_ahead() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    assert_eq!(room.session.driver(), Some(host));
    room.take();

    room.cmd(host, Command::Seek(SeekTarget::Frame(240)))
        .unwrap();
    let (version, transport, _) = room.last_transport();
    assert_eq!(transport.anchor_frame, 240);
    assert_eq!(
        transport.anchor_time,
        room.now
            .saturating_add_micros(SessionLimits::default().lead_min_micros)
    );
    assert_eq!(version, room.session.version());

    room.cmd(host, Command::Play).unwrap();
    room.advance_ms(1050);
    // Play took effect 50 ms after it was sent, so one second has played.
    assert_eq!(room.position(), 240 + 24);
}

#[test]
fn a_host_at_an_empty_seat_is_welcomed_already_driving() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let outputs = room.take();
    let Event::Welcome { snapshot, .. } = &outputs[0].event else {
        panic!("welcome first, got {:?}", outputs[0]);
    };
    assert_eq!(snapshot.control.driver, Some(host));
    let Event::Control { version, .. } = &outputs[1].event else {
        panic!("then control, got {:?}", outputs[1]);
    };
    assert_eq!(
        *version, snapshot.version,
        "the newcomer can ignore it as applied"
    );
}

#[test]
fn a_pending_request_is_withdrawn_when_its_author_leaves_or_drops() {
    let mut room = Room::new();
    room.join("Dana", Role::Host);
    let cole = room.join("Cole", Role::Reviewer);
    let ed = room.join("Ed", Role::Reviewer);
    room.cmd(cole, Command::RequestControl).unwrap();
    room.cmd(ed, Command::RequestControl).unwrap();
    room.session.leave(room.now, cole);
    room.drain();
    assert_eq!(
        room.last_control(),
        (
            Control {
                driver: Some(ParticipantId(1)),
                requests: vec![ed]
            },
            ControlReason::Withdrawn
        )
    );
    room.session.disconnect(room.now, ed);
    room.drain();
    assert_eq!(room.last_control().0.requests, vec![]);
}

#[test]
fn a_requester_withdraws_their_own_request_and_only_a_pending_one() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let cole = room.join("Cole", Role::Reviewer);
    let ed = room.join("Ed", Role::Reviewer);
    room.cmd(cole, Command::RequestControl).unwrap();
    room.cmd(ed, Command::RequestControl).unwrap();
    let before = room.session.version();
    room.cmd(cole, Command::WithdrawControl).unwrap();
    assert_eq!(
        room.last_control(),
        (
            Control {
                driver: Some(host),
                requests: vec![ed]
            },
            ControlReason::Withdrawn
        )
    );
    assert!(room.session.version() > before);
    // Twice, or never having asked, or after the host answered: nothing
    // is pending, and nothing changes.
    let version = room.session.version();
    assert_eq!(
        room.cmd(cole, Command::WithdrawControl),
        Err(CommandError::NoPendingRequest)
    );
    assert_eq!(
        room.cmd(host, Command::WithdrawControl),
        Err(CommandError::NoPendingRequest)
    );
    room.cmd(host, Command::GrantControl(ed)).unwrap();
    let version_granted = room.session.version();
    assert!(version_granted > version);
    assert_eq!(
        room.cmd(ed, Command::WithdrawControl),
        Err(CommandError::NoPendingRequest)
    );
    assert_eq!(room.session.version(), version_granted);
    assert_eq!(room.session.driver(), Some(ed));
}

#[test]
fn versions_increase_with_every_state_change() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let mut last = room.session.version();
    for command in [
        Command::Play,
        Command::Pause,
        Command::Step(1),
        Command::Step(-10),
        Command::Shuttle(Speed::new(-2, 1).unwrap()),
        Command::LoopIn(Some(5)),
        Command::LoopOut(Some(50)),
        Command::ClearLoop,
    ] {
        room.cmd(host, command).unwrap();
        let (version, _, _) = room.last_transport();
        assert!(version > last, "{command:?}");
        last = version;
    }
}

#[test]
fn lead_follows_the_slowest_participant_within_bounds() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let far = room.join("Remote", Role::Viewer);
    assert_eq!(room.session.lead_micros(), 50_000);
    let report = |rtt| SyncReport {
        rtt_micros: rtt,
        offset_micros: 0,
        uncertainty_micros: rtt / 2,
    };
    room.session.report_sync(room.now, far, report(120_000));
    assert_eq!(room.session.lead_micros(), 140_000);
    room.session.report_sync(room.now, host, report(10_000_000));
    assert_eq!(room.session.lead_micros(), 500_000);
    room.session.disconnect(room.now, host);
    assert_eq!(room.session.lead_micros(), 140_000);
    // A hostile report cannot wrap the sum round to a short lead.
    room.session.report_sync(room.now, far, report(i64::MAX));
    assert_eq!(room.session.lead_micros(), 500_000);
    room.session.report_sync(room.now, far, report(i64::MIN));
    assert_eq!(room.session.lead_micros(), 50_000);
}

#[test]
fn the_rooms_fan_out_time_is_added_beyond_the_rtt_bounds() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    room.session.set_fanout_micros(230_000);
    assert_eq!(room.session.lead_micros(), 50_000 + 230_000);
    room.session.report_sync(
        room.now,
        host,
        SyncReport {
            rtt_micros: 10_000_000,
            offset_micros: 0,
            uncertainty_micros: 0,
        },
    );
    assert_eq!(room.session.lead_micros(), 500_000 + 230_000);
    // Bounded both ways: a runaway measure cannot hold commands for long,
    // and a nonsense one cannot shorten the lead.
    room.session.set_fanout_micros(i64::MAX);
    assert_eq!(room.session.lead_micros(), 500_000 + 1_000_000);
    room.session.set_fanout_micros(-5);
    assert_eq!(room.session.lead_micros(), 500_000);
    // A command is scheduled that much later.
    room.session.set_fanout_micros(300_000);
    room.cmd(host, Command::Play).unwrap();
    let (_, transport, _) = room.last_transport();
    assert_eq!(
        transport.anchor_time.as_micros(),
        room.now.as_micros() + 800_000
    );
}

#[test]
fn a_step_of_any_size_beyond_the_limit_is_refused() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let version = room.session.version();
    for n in [i64::MIN, i64::MIN + 1, i64::MAX, 1_000_000] {
        assert!(
            matches!(
                room.cmd(host, Command::Step(n)),
                Err(CommandError::StepTooLarge(_))
            ),
            "{n}"
        );
    }
    assert_eq!(room.session.version(), version);
}

#[test]
fn another_links_resume_secret_lends_no_role() {
    let mut room = Room::new();
    let host = room.join_with_secret("Dana", Role::Host, [7; 16]);
    room.session.disconnect(room.now, host);
    // A viewer's link with the host's secret is not the host.
    assert_eq!(
        room.session
            .resume(room.now, &[7; 16], &link_of(Role::Viewer)),
        Err(JoinError::NothingToResume)
    );
    assert_eq!(
        room.session.presence(host).map(|p| p.connected),
        Some(false)
    );
    assert_eq!(
        room.session
            .resume(room.now, &[7; 16], &link_of(Role::Host)),
        Ok(host)
    );
}

#[test]
fn seek_by_timecode_uses_the_start_offset() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let tc = "01:00:10:05".parse().unwrap();
    room.cmd(host, Command::Seek(SeekTarget::Timecode(tc)))
        .unwrap();
    assert_eq!(room.last_transport().1.anchor_frame, 245);

    let before_start = "00:59:00:00".parse().unwrap();
    assert!(matches!(
        room.cmd(host, Command::Seek(SeekTarget::Timecode(before_start))),
        Err(CommandError::FrameOutOfRange { .. })
    ));
    let bad_field = "01:00:00:30".parse().unwrap();
    assert!(matches!(
        room.cmd(host, Command::Seek(SeekTarget::Timecode(bad_field))),
        Err(CommandError::BadTimecode(_))
    ));
}

#[test]
fn rejected_commands_change_nothing() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let viewer = room.join("Vic", Role::Viewer);
    let reviewer = room.join("Rae", Role::Reviewer);
    room.take();
    let version = room.session.version();
    let transport = *room.session.transport();

    assert_eq!(
        room.cmd(viewer, Command::Play),
        Err(CommandError::Forbidden(Role::Viewer))
    );
    assert_eq!(
        room.cmd(reviewer, Command::Play),
        Err(CommandError::NotDriver)
    );
    assert_eq!(
        room.cmd(viewer, Command::RequestControl),
        Err(CommandError::Forbidden(Role::Viewer))
    );
    assert_eq!(
        room.cmd(host, Command::Seek(SeekTarget::Frame(-1))),
        Err(CommandError::FrameOutOfRange {
            frame: -1,
            last: 24 * 600 - 1
        })
    );
    assert_eq!(
        room.cmd(host, Command::Step(1_000_000)),
        Err(CommandError::StepTooLarge(100_000))
    );
    assert_eq!(
        room.cmd(host, Command::GrantControl(viewer)),
        Err(CommandError::CannotTakeControl(viewer.0))
    );
    assert_eq!(
        room.cmd(ParticipantId(999), Command::Play),
        Err(CommandError::UnknownParticipant)
    );
    assert_eq!(room.session.version(), version);
    assert_eq!(*room.session.transport(), transport);
    assert!(room.take().is_empty());
}

#[test]
fn reviewer_requests_and_driver_grants_or_denies() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let colorist = room.join("Cole", Role::Reviewer);
    let editor = room.join("Ed", Role::Reviewer);

    room.cmd(colorist, Command::RequestControl).unwrap();
    room.cmd(editor, Command::RequestControl).unwrap();
    let (control, reason) = room.last_control();
    assert_eq!(control.driver, Some(host));
    assert_eq!(control.requests, vec![colorist, editor]);
    assert_eq!(reason, ControlReason::Requested);

    room.cmd(host, Command::DenyControl(editor)).unwrap();
    assert_eq!(room.last_control().0.requests, vec![colorist]);

    room.cmd(host, Command::GrantControl(colorist)).unwrap();
    let (control, reason) = room.last_control();
    assert_eq!(
        (control.driver, reason),
        (Some(colorist), ControlReason::Granted)
    );
    assert!(control.requests.is_empty());

    room.cmd(colorist, Command::Play).unwrap();
    assert_eq!(room.cmd(host, Command::Pause), Err(CommandError::NotDriver));

    room.cmd(host, Command::TakeControl).unwrap();
    assert_eq!(
        room.last_control(),
        (
            Control {
                driver: Some(host),
                requests: vec![]
            },
            ControlReason::Taken
        )
    );
    assert_eq!(
        room.cmd(colorist, Command::Pause),
        Err(CommandError::NotDriver)
    );
    assert_eq!(
        room.cmd(colorist, Command::TakeControl),
        Err(CommandError::Forbidden(Role::Reviewer))
    );
}

#[test]
fn release_returns_the_seat_to_the_host() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let colorist = room.join("Cole", Role::Reviewer);
    room.cmd(host, Command::GrantControl(colorist)).unwrap();
    room.cmd(colorist, Command::ReleaseControl).unwrap();
    assert_eq!(room.session.driver(), Some(host));
    assert_eq!(
        room.cmd(colorist, Command::ReleaseControl),
        Err(CommandError::NotDriver)
    );
}

#[test]
fn request_with_nobody_driving_takes_the_free_seat() {
    let mut room = Room::new();
    let colorist = room.join("Cole", Role::Reviewer);
    assert_eq!(room.session.driver(), None);
    room.cmd(colorist, Command::RequestControl).unwrap();
    assert_eq!(room.session.driver(), Some(colorist));
}

#[test]
fn dropped_driver_hands_back_to_host_within_grace_and_play_continues() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let colorist = room.join("Cole", Role::Reviewer);
    room.cmd(host, Command::GrantControl(colorist)).unwrap();
    room.cmd(colorist, Command::Play).unwrap();
    room.advance_ms(1000);
    room.take();

    room.session.disconnect(room.now, colorist);
    let dropped_at = room.now;
    let playing_from = room.position();
    room.advance_ms(2_999);
    assert_eq!(
        room.session.driver(),
        Some(colorist),
        "seat is held through the grace"
    );
    room.advance_ms(1);
    assert_eq!(room.session.driver(), Some(host));
    assert_eq!(room.last_control().1, ControlReason::DriverLeft);
    assert!(room.now.as_micros() - dropped_at.as_micros() <= 5_000_000);
    assert!(room.session.transport().playing);
    assert_eq!(room.position(), playing_from + 72);
}

#[test]
fn driver_who_reconnects_in_time_keeps_the_seat() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let colorist = room.join_with_secret("Cole", Role::Reviewer, [7; 16]);
    room.cmd(host, Command::GrantControl(colorist)).unwrap();
    room.session.disconnect(room.now, colorist);
    room.advance_ms(1000);
    let resumed = room
        .session
        .resume(room.now, &[7; 16], &link_of(Role::Reviewer))
        .unwrap();
    assert_eq!(resumed, colorist);
    room.advance_ms(10_000);
    assert_eq!(room.session.driver(), Some(colorist));
}

#[test]
fn resume_after_the_window_fails_and_presence_reports_the_leave() {
    let mut room = Room::new();
    room.join("Dana", Role::Host);
    let viewer = room.join_with_secret("Vic", Role::Viewer, [9; 16]);
    room.take();
    room.session.disconnect(room.now, viewer);
    room.advance_ms(60_000);
    assert_eq!(
        room.session
            .resume(room.now, &[9; 16], &link_of(Role::Viewer)),
        Err(JoinError::NothingToResume)
    );
    // The leave is announced with the next presence flush.
    room.advance_ms(500);
    let left: Vec<ParticipantId> = room
        .take()
        .into_iter()
        .flat_map(|o| match o.event {
            Event::Presence { left, .. } => left,
            _ => vec![],
        })
        .collect();
    assert_eq!(left, vec![viewer]);
}

#[test]
fn late_joiner_gets_a_full_snapshot() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    room.cmd(host, Command::LoopIn(Some(24))).unwrap();
    room.cmd(host, Command::LoopOut(Some(48))).unwrap();
    room.cmd(host, Command::Play).unwrap();
    room.advance_ms(500);
    room.take();

    let late = room.join("Late", Role::Viewer);
    let welcome = room.take().into_iter().find_map(|o| match o {
        Output {
            to: Audience::One(to),
            event: Event::Welcome { you, snapshot },
        } if to == late => Some((you, snapshot)),
        _ => None,
    });
    let (you, snapshot) = welcome.expect("a welcome for the late joiner");
    assert_eq!(you, late);
    assert_eq!(snapshot.version, room.session.version());
    assert_eq!(snapshot.transport, *room.session.transport());
    assert_eq!(snapshot.control.driver, Some(host));
    assert_eq!(snapshot.participants.len(), 2);
    assert_eq!(snapshot.counts.hosts, 1);
}

#[test]
fn full_room_refuses_joins() {
    let mut room = Room::with_limits(SessionLimits {
        max_participants: 2,
        ..SessionLimits::default()
    });
    room.join("A", Role::Host);
    room.join("B", Role::Viewer);
    let req = JoinRequest {
        name: "C".into(),
        role: Role::Viewer,
        link: link_of(Role::Viewer),
        resume_secret: [3; 16],
    };
    assert_eq!(room.session.join(room.now, req), Err(JoinError::Full(2)));
}

#[test]
fn presence_is_batched_and_large_rooms_hide_viewers_from_viewers() {
    let mut room = Room::with_limits(SessionLimits {
        presence_detail_limit: 3,
        ..SessionLimits::default()
    });
    room.join("Dana", Role::Host);
    for i in 0..4 {
        room.join(&format!("viewer{i}"), Role::Viewer);
    }
    let joined_at = room.now;
    let early: Vec<_> = room
        .take()
        .into_iter()
        .filter(|o| matches!(o.event, Event::Presence { .. }))
        .collect();
    assert!(early.is_empty(), "presence waits for the flush");
    room.advance_ms(500);
    assert_eq!(room.now.as_micros() - joined_at.as_micros(), 500_000);
    let mut by_audience = BTreeMap::new();
    for o in room.take() {
        if let Event::Presence {
            changed, counts, ..
        } = o.event
        {
            assert_eq!(counts.viewers, 4);
            by_audience.insert(format!("{:?}", o.to), changed.len());
        }
    }
    assert_eq!(by_audience.get("Staff"), Some(&5));
    assert_eq!(by_audience.get("Viewers"), Some(&1));
}

#[test]
fn playback_stops_at_the_end_and_play_restarts_from_the_top() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let last = 24 * 600 - 1;
    room.cmd(host, Command::Seek(SeekTarget::Frame(last - 24)))
        .unwrap();
    room.cmd(host, Command::Play).unwrap();
    room.advance_ms(5_000);
    let (_, transport, cause) = room.last_transport();
    assert_eq!(cause, TransportCause::ReachedEnd);
    assert!(!transport.playing);
    assert_eq!(transport.anchor_frame, last);
    room.cmd(host, Command::Play).unwrap();
    assert_eq!(room.last_transport().1.anchor_frame, 0);
}

#[test]
fn step_pauses_and_clamps() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    room.cmd(host, Command::Play).unwrap();
    room.advance_ms(1050);
    room.cmd(host, Command::Step(1)).unwrap();
    let (_, transport, _) = room.last_transport();
    assert!(!transport.playing);
    // The step applies at execute-at, 50 ms later: frame 25 then, plus one.
    assert_eq!(transport.anchor_frame, 26);
    room.cmd(host, Command::Step(-100)).unwrap();
    assert_eq!(room.last_transport().1.anchor_frame, 0);
}

#[test]
fn pause_step_and_marks_land_on_the_frame_the_driver_saw() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    room.cmd(host, Command::Play).unwrap();
    room.advance_ms(2000);
    // The playhead is at 49 by execute-at; the driver's picture, 200 ms
    // behind it, showed 43.
    let seen = |room: &mut Room, command, shown| {
        let result = room.session.handle_seen(room.now, host, command, shown);
        room.drain();
        result.map(|()| room.last_transport().1)
    };
    let paused = seen(&mut room, Command::Pause, Some(43)).unwrap();
    assert!(!paused.playing);
    assert_eq!(paused.anchor_frame, 43);
    assert_eq!(
        seen(&mut room, Command::Step(2), Some(43))
            .unwrap()
            .anchor_frame,
        45
    );
    let marks = seen(&mut room, Command::LoopIn(None), Some(40))
        .unwrap()
        .loop_marks;
    assert_eq!(marks.mark_in, Some(40));
    // An explicit mark wins over the frame shown.
    let marks = seen(&mut room, Command::LoopOut(Some(90)), Some(41))
        .unwrap()
        .loop_marks;
    assert_eq!(marks.mark_out, Some(90));

    // A speed change while playing goes on from the playhead, without a
    // jump back to the picture.
    room.cmd(host, Command::Play).unwrap();
    room.advance_ms(1000);
    let here = room
        .session
        .position(room.now.saturating_add_micros(50_000));
    let faster = seen(
        &mut room,
        Command::Shuttle(Speed::new(2, 1).unwrap()),
        Some(here - 5),
    )
    .unwrap();
    assert_eq!(faster.anchor_frame, here);

    // A frame off the media is no frame at all: the playhead is used.
    room.advance_ms(500);
    let here = room
        .session
        .position(room.now.saturating_add_micros(50_000));
    let paused = seen(&mut room, Command::Pause, Some(-3)).unwrap();
    assert_eq!(paused.anchor_frame, here);
}

#[test]
fn loop_marks_out_of_order_start_a_new_range() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    room.cmd(host, Command::LoopIn(Some(100))).unwrap();
    room.cmd(host, Command::LoopOut(Some(50))).unwrap();
    let marks = room.last_transport().1.loop_marks;
    assert_eq!((marks.mark_in, marks.mark_out), (None, Some(50)));
}

#[derive(Debug, Clone)]
enum Action {
    Join(Role),
    Command(usize, Command),
    Disconnect(usize),
    Leave(usize),
    Wait(i64),
}

fn any_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Play),
        Just(Command::Pause),
        (-10i64..20_000).prop_map(|f| Command::Seek(SeekTarget::Frame(f))),
        (-200i64..200).prop_map(Command::Step),
        (0..Speed::ALL.len()).prop_map(|i| Command::Shuttle(Speed::ALL[i])),
        proptest::option::of(0i64..15_000).prop_map(Command::LoopIn),
        proptest::option::of(0i64..15_000).prop_map(Command::LoopOut),
        Just(Command::ClearLoop),
        Just(Command::RequestControl),
        (0u64..8).prop_map(|i| Command::GrantControl(ParticipantId(i))),
        Just(Command::TakeControl),
        Just(Command::ReleaseControl),
        Just(Command::WithdrawControl),
    ]
}

fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        prop_oneof![Just(Role::Host), Just(Role::Reviewer), Just(Role::Viewer)]
            .prop_map(Action::Join),
        (0usize..8, any_command()).prop_map(|(i, c)| Action::Command(i, c)),
        (0usize..8).prop_map(Action::Disconnect),
        (0usize..8).prop_map(Action::Leave),
        (0i64..8_000).prop_map(Action::Wait),
    ]
}

proptest! {
    /// Whatever happens, the invariants that clients rely on hold: versions
    /// only grow, the driver can drive and is present, positions stay in
    /// the media, and whoever holds the seat is still here and may drive.
    #[test]
    fn invariants_hold_under_any_sequence(actions in proptest::collection::vec(any_action(), 1..80)) {
        let mut room = Room::new();
        let mut ids: Vec<ParticipantId> = Vec::new();
        let mut last_version = room.session.version();
        for action in actions {
            match action {
                Action::Join(role) => ids.push(room.join(&format!("p{}", ids.len()), role)),
                Action::Command(i, c) => {
                    if let Some(&id) = ids.get(i) {
                        let _ = room.cmd(id, c);
                    }
                }
                Action::Disconnect(i) => if let Some(&id) = ids.get(i) { room.session.disconnect(room.now, id) },
                Action::Leave(i) => if let Some(&id) = ids.get(i) { room.session.leave(room.now, id) },
                Action::Wait(ms) => room.advance_ms(ms),
            }
            room.drain();
            for out in room.take() {
                if let Event::Transport { version, .. } | Event::Control { version, .. } = out.event {
                    prop_assert!(version > last_version);
                    last_version = version;
                }
            }
            prop_assert!(room.session.info().timeline().contains(room.position()));
            if let Some(driver) = room.session.driver() {
                let p = room.session.presence(driver);
                prop_assert!(p.is_some_and(|p| p.role.can_drive()));
            }
        }
    }
}

#[test]
fn frame_reports_make_a_receipt_for_those_who_may_approve_only() {
    let mut room = Room::new();
    let reviewer = room.join("Ravi", Role::Reviewer);
    let viewer = room.join("Vic", Role::Viewer);
    for i in 0..4 {
        let at = room.now;
        for who in [reviewer, viewer] {
            room.session.report_frame(at, who, 100 + i * 12, at, None);
        }
        room.advance_ms(500);
    }
    let seen = room.session.seen(reviewer).unwrap();
    assert_eq!(seen.ranges(), &[(100, 136)]);
    assert_eq!(room.session.seen(viewer).unwrap().frame_count(), 0);
}

#[test]
fn in_a_personal_room_whoever_is_there_drives_and_the_room_empties_when_they_go() {
    let mut room = Room::new();
    let info = room.session.info().clone();
    room.session = Session::new(info, SessionLimits::default(), room.now).personal();
    let viewer = room.join_with_secret("Vic", Role::Viewer, [7; 16]);
    assert_eq!(room.session.driver(), Some(viewer));
    room.cmd(viewer, Command::Seek(SeekTarget::Frame(100)))
        .unwrap();
    assert_eq!(room.last_transport().1.anchor_frame, 100);

    // A room of one: a second person is someone else's room.
    let second = room.session.join(
        room.now,
        JoinRequest {
            name: "Ash".into(),
            role: Role::Reviewer,
            link: link_of(Role::Reviewer),
            resume_secret: [8; 16],
        },
    );
    assert_eq!(second, Err(JoinError::Full(1)));

    // A dropped connection keeps the room (and the seat, on return) for
    // the resume window; after it the room is empty.
    // Letting go of the seat there is not losing it.
    room.cmd(viewer, Command::ReleaseControl).unwrap();
    assert_eq!(room.session.driver(), None);
    room.cmd(viewer, Command::RequestControl).unwrap();
    assert_eq!(room.session.driver(), Some(viewer));

    room.session.disconnect(room.now, viewer);
    assert!(!room.session.is_empty());
    room.advance_ms(5_000);
    assert_eq!(
        room.session
            .resume(room.now, &[7; 16], &link_of(Role::Viewer)),
        Ok(viewer)
    );
    room.drain();
    assert_eq!(room.session.driver(), Some(viewer));
    room.session.disconnect(room.now, viewer);
    room.advance_ms(60_000);
    assert!(room.session.is_empty());
}

#[test]
fn in_a_shared_room_a_viewer_never_drives() {
    let mut room = Room::new();
    let viewer = room.join("Vic", Role::Viewer);
    assert_eq!(room.session.driver(), None);
    assert_eq!(
        room.cmd(viewer, Command::Play),
        Err(CommandError::Forbidden(Role::Viewer))
    );
}

#[test]
fn a_playing_room_taken_over_opens_where_it_has_got_to_still_playing() {
    let room = Room::new();
    let now = room.now;
    let two = Speed::new(2, 1).unwrap();
    // Recorded at frame 240 at 2×, 1.5 s ago: 72 frames on.
    let session =
        room.session
            .opening_moving(240, two, std::time::Duration::from_millis(1500), now);
    let transport = session.transport();
    assert!(transport.playing);
    assert_eq!(transport.speed, two);
    assert_eq!((transport.anchor_frame, transport.anchor_time), (312, now));
    // Past the end it stops at the last frame, as playing there would.
    let late =
        Room::new()
            .session
            .opening_moving(240, two, std::time::Duration::from_secs(3600), now);
    assert_eq!(late.transport().anchor_frame, 24 * 600 - 1);
}

#[test]
fn a_version_added_while_the_room_runs_can_be_cued_at_the_same_timecode() {
    let mut room = Room::new();
    let host = room.join("Dana", Role::Host);
    let cut = |start: &str, duration_frames| Cut {
        timecode: TimecodeFormat::new(FrameRate::FPS_24, false)
            .unwrap()
            .with_start(start.parse().unwrap())
            .unwrap(),
        duration_frames,
    };
    // v2 starts where v1 does; v3 ten seconds earlier (a longer head);
    // the fourth is another shot, whose labels the room's never reach.
    assert_eq!(room.session.add_entry(cut("01:00:00:00", 24 * 600)), 1);
    assert_eq!(room.session.add_entry(cut("00:59:50:00", 24 * 600)), 2);
    assert_eq!(room.session.add_entry(cut("02:00:00:00", 48)), 3);
    assert_eq!(room.session.entry(), 0, "adding moves nothing");

    // 01:00:05:20
    room.cmd(host, Command::Seek(SeekTarget::Frame(140)))
        .unwrap();
    let landed = |room: &mut Room| {
        room.take()
            .into_iter()
            .rev()
            .find_map(|o| match o.event {
                Event::Transport { transport, .. } => Some(transport.anchor_frame),
                _ => None,
            })
            .expect("a transport change")
    };
    room.cmd(host, Command::Cue(1, CueAt::SameTimecode))
        .unwrap();
    assert_eq!(landed(&mut room), 140, "v2 at 01:00:05:20");
    room.cmd(host, Command::Cue(2, CueAt::SameTimecode))
        .unwrap();
    assert_eq!(landed(&mut room), 380, "v3's 01:00:05:20 is 15 s 20 f in");
    assert_eq!(room.session.entry(), 2);
    room.cmd(host, Command::Cue(3, CueAt::SameTimecode))
        .unwrap();
    assert_eq!(
        landed(&mut room),
        0,
        "a label the entry lacks: its first frame"
    );
    room.cmd(host, Command::Cue(2, CueAt::Start)).unwrap();
    assert_eq!(landed(&mut room), 0);
    assert!(
        !room.session.transport().playing,
        "a cue leaves the room paused"
    );
}
