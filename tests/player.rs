//! The session player on its own: it follows a transport frame-accurately
//! and its output decodes back to exactly the frames it claims.

#[path = "support/vp8.rs"]
mod vp8;

use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use syncreel::clock::{Speed, Transport};
use syncreel::live::ServerClock;
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::media::player::{
    self, EncodedFrame, PlayerCommand, PlayerEvent, StreamSettings, VideoCodec,
};
use syncreel::media::probe::probe;
use syncreel::media::watermark::Watermark;

fn clip() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("syncreel-player-{}", std::process::id()));
    let path = dir.join("clip.mov");
    let spec = DemoClipSpec {
        width: 640,
        height: 360,
        frames: 240,
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&path, &spec).unwrap();
    path
}

fn settings() -> StreamSettings {
    StreamSettings {
        width: 640,
        height: 360,
        // What `vp8::Vp8Reader` decodes.
        codec: VideoCodec::Vp8,
        ..StreamSettings::default()
    }
}

fn next_frame(rx: &mpsc::Receiver<PlayerEvent>) -> EncodedFrame {
    match rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a frame within the wait")
    {
        PlayerEvent::Frame(f) => f,
        PlayerEvent::Failed(e) => panic!("player failed: {e}"),
    }
}

#[test]
fn seeks_show_the_exact_frame_and_play_and_reverse_loops_show_the_transports_frame() {
    let info = probe(&clip()).unwrap();
    let clock = ServerClock::start();
    let (events_tx, events) = mpsc::channel();
    let paused_at_30 = Transport::paused_at(30, clock.now());
    let player = player::spawn(
        info.clone(),
        settings(),
        None,
        clock,
        paused_at_30,
        Arc::new(|| true),
        move |e| {
            let _ = events_tx.send(e);
        },
    )
    .unwrap();
    let mut reader = vp8::Vp8Reader::new();

    let first = next_frame(&events);
    assert!(first.keyframe, "the first picture is a keyframe");
    assert_eq!(first.frame, 30);
    assert_eq!(
        reader.read(&first.data, first.at.as_micros() as u64),
        Some(30)
    );

    // Seek while paused, backwards and forwards, each to the exact frame.
    // The last one steps back a frame, so that play below starts right
    // after an accurate seek (whose first picture the decoder re-stamps).
    for target in [7i64, 200, 199, 3, 11, 10] {
        let at = clock.now().saturating_add_micros(20_000);
        player
            .send(PlayerCommand::Transport(Transport::paused_at(target, at)))
            .unwrap();
        let shown = loop {
            let f = next_frame(&events);
            let code = reader.read(&f.data, f.at.as_micros() as u64);
            if f.at >= at {
                break (f, code);
            }
        };
        assert_eq!(shown.0.frame, target);
        assert!(shown.0.keyframe, "a seek is followed by a keyframe");
        assert_eq!(
            shown.1,
            Some(target as u32),
            "the decoded picture is frame {target}"
        );
        // The same picture again one frame interval later (not half a
        // second): a receiver that completes a picture when the next
        // timestamp arrives shows the seek at once.
        let follow = next_frame(&events);
        assert_eq!(follow.frame, target);
        assert!(follow.keyframe, "whole, for a viewer that missed the first");
        assert_eq!(
            reader.read(&follow.data, follow.at.as_micros() as u64),
            Some(target as u32)
        );
        assert_eq!(
            follow.at.as_micros() - shown.0.at.as_micros(),
            41_709,
            "one frame at 23.976"
        );
    }

    // Play from 10 at 1×: every picture decodes to the frame the transport
    // shows at its instant.
    let start = clock.now().saturating_add_micros(20_000);
    let play = Transport {
        playing: true,
        speed: Speed::NORMAL,
        ..Transport::paused_at(10, start)
    };
    player.send(PlayerCommand::Transport(play)).unwrap();
    let timeline = syncreel::clock::Timeline {
        rate: info.rate,
        duration: info.duration_frames,
    };
    let mut shown = Vec::new();
    while shown.len() < 30 {
        let f = next_frame(&events);
        if f.at < start {
            continue;
        }
        let code = reader.read(&f.data, f.at.as_micros() as u64);
        assert_eq!(f.frame, play.position(&timeline, f.at));
        assert_eq!(code, Some(f.frame as u32), "picture at {:?}", f.at);
        shown.push((f.at, f.frame));
    }
    // Each picture is exactly the transport's frame at its instant (checked
    // above). On an idle machine that is every frame from 10 on; a loaded
    // one may skip frames rather than fall behind the room, never go back.
    let frames: Vec<i64> = shown.iter().map(|(_, f)| *f).collect();
    assert!(frames.windows(2).all(|w| w[1] > w[0]), "{frames:?}");
    assert_eq!(frames[0], 10);

    // Reverse at 1× inside a loop of 20..=29: every picture is the frame
    // the transport shows at its instant, whatever the decoder had to seek.
    let start = clock.now().saturating_add_micros(20_000);
    let mut reverse = Transport {
        playing: true,
        speed: Speed::new(-1, 1).unwrap(),
        ..Transport::paused_at(25, start)
    };
    reverse.loop_marks.mark_in = Some(20);
    reverse.loop_marks.mark_out = Some(29);
    player.send(PlayerCommand::Transport(reverse)).unwrap();
    let mut frames = Vec::new();
    while frames.len() < 24 {
        let f = next_frame(&events);
        if f.at < start {
            continue;
        }
        assert_eq!(f.frame, reverse.position(&timeline, f.at));
        let code = reader.read(&f.data, f.at.as_micros() as u64);
        assert_eq!(code, Some(f.frame as u32), "picture at {:?}", f.at);
        frames.push(f.frame);
    }
    assert!(frames.iter().all(|f| (20..=29).contains(f)), "{frames:?}");
    assert!(
        frames.contains(&20) && frames.contains(&29),
        "it wrapped: {frames:?}"
    );
    player.send(PlayerCommand::Stop).unwrap();
}

#[test]
fn nobody_watching_nothing_is_encoded_and_the_first_watcher_gets_a_keyframe_of_the_right_frame() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let info = probe(&clip()).unwrap();
    let clock = ServerClock::start();
    let watched = Arc::new(AtomicBool::new(false));
    let (events_tx, events) = mpsc::channel();
    let player = player::spawn(
        info,
        settings(),
        None,
        clock,
        Transport::paused_at(0, clock.now()),
        {
            let watched = watched.clone();
            Arc::new(move || watched.load(Ordering::SeqCst))
        },
        move |e| {
            let _ = events_tx.send(e);
        },
    )
    .unwrap();
    // Unwatched, the player still follows the room: play from 40.
    let play = Transport {
        playing: true,
        ..Transport::paused_at(40, clock.now())
    };
    player.send(PlayerCommand::Transport(play)).unwrap();
    // …and pause on 77, which it never decoded.
    let pause_at = clock.now().saturating_add_micros(200_000);
    player
        .send(PlayerCommand::Transport(Transport::paused_at(77, pause_at)))
        .unwrap();

    // Let the room play and pause with nobody watching. This waits for
    // time to pass, not for an event: there is none while unwatched.
    std::thread::sleep(
        clock.instant(pause_at) + Duration::from_millis(50) - std::time::Instant::now(),
    );
    let watched_from = clock.now();
    watched.store(true, Ordering::SeqCst);
    // A new viewer asks for a picture, as the hub does when it connects,
    // and gets one at once rather than at the next still repeat.
    player.send(PlayerCommand::Keyframe).unwrap();
    // Had anything been encoded before, it would be first in the channel.
    let first = next_frame(&events);
    assert!(
        first.at.as_micros() - watched_from.as_micros() < 250_000,
        "the asked-for picture came at {:?}, {watched_from:?} asked",
        first.at
    );
    assert!(
        first.at >= watched_from,
        "a picture from {:?}, before anyone watched at {watched_from:?}",
        first.at
    );
    assert!(first.keyframe, "the first watcher starts from a keyframe");
    let mut reader = vp8::Vp8Reader::new();
    assert_eq!(first.frame, 77);
    assert_eq!(
        reader.read(&first.data, first.at.as_micros() as u64),
        Some(77)
    );
    player.send(PlayerCommand::Stop).unwrap();
}

/// The first picture of a player paused at `frame`, decoded.
fn first_picture(frame: i64, watermark: Option<Watermark>) -> (EncodedFrame, vp8::Luma) {
    let info = probe(&clip()).unwrap();
    let clock = ServerClock::start();
    let (events_tx, events) = mpsc::channel();
    let player = player::spawn(
        info,
        settings(),
        watermark,
        clock,
        Transport::paused_at(frame, clock.now()),
        Arc::new(|| true),
        move |e| {
            let _ = events_tx.send(e);
        },
    )
    .unwrap();
    let first = next_frame(&events);
    player.send(PlayerCommand::Stop).unwrap();
    let picture = vp8::Vp8Reader::new()
        .picture(&first.data, first.at.as_micros() as u64)
        .expect("the first picture decodes");
    (first, picture)
}

#[test]
fn a_watermarked_stream_carries_the_mark_in_the_middle_and_the_right_frame_code() {
    let watermark = Watermark::new("CONFIDENTIAL – Shot 060").unwrap();
    let (plain, bare) = first_picture(30, None);
    let (marked, picture) = first_picture(30, watermark);
    assert_eq!((plain.frame, marked.frame), (30, 30));
    let h = picture.layout.height;
    // Both are lossy encodes of one frame, so they differ a little all
    // over; the mark makes the middle differ by far more than that.
    let middle = picture.difference(&bare, h * 2 / 5..h * 3 / 5);
    let top = picture.difference(&bare, 0..h / 5);
    assert!(
        middle > 1.0 && middle > 4.0 * top,
        "the middle differs by {middle:.2} on average, the top by {top:.2}"
    );
    // The frame code along the bottom still reads.
    let code = syncreel::framecode::read(&picture.plane, picture.layout);
    assert_eq!(code, Some(30));
}
