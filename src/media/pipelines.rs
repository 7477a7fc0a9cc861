//! When a session's players run: only while someone watches.
//!
//! A media session's players (picture and sound: two threads, four
//! GStreamer pipelines with their own streaming and encoder threads) cost
//! some 40-55 MiB and 16-18 threads whether anyone watches or not, so a
//! server with forty rooms open and nobody in them used 2 GiB. Here they
//! are started by the first viewer that asks for the stream and stopped
//! once nobody has watched for `idle_teardown`: an idle session has no
//! pipeline and no thread.
//!
//! What the players follow is kept here while they are down: the file on
//! screen, a pending playlist cut, and the transports in effect and
//! scheduled. A restart therefore opens the right file and shows the
//! room's frame at once (the player's first picture is `position(now)`,
//! decoded exactly, as a keyframe), so a rebuilt stream is the same stream.
//!
//! The player decides when to stop, on its own thread at its own ticks
//! (see [`Retire`]): it asks here, under the lock that starting takes, so
//! a viewer arriving at that moment either finds it still running or
//! starts a new one. A viewer counts from [`Pipelines::want`] (before its
//! peer exists) until its peer is gone.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::Duration;

use super::audio::{self, AudioEvent};
use super::compare::CompareSpec;
use super::player::{
    self, PlayerCommand, PlayerEvent, Retire, StreamSettings, Transports, Watched,
};
use super::watermark::Watermark;
use super::MediaInfo;
use crate::clock::Transport;
use crate::server_clock::ServerClock;

/// What every start of a session's players is made from.
#[derive(Clone)]
pub struct PipelineSpec {
    pub stream: StreamSettings,
    /// Burned into every picture of every run of the players.
    pub watermark: Option<Watermark>,
    pub clock: ServerClock,
    /// Whether the session has a sound track (any playlist entry has sound).
    pub has_audio: bool,
    /// How long nobody watches before the players stop.
    pub idle_teardown: Duration,
    /// Running players, for `/metrics`: one per session whose pipelines are up.
    pub running: Arc<AtomicI64>,
}

/// Where the players' output goes. Called on their threads; must not block.
pub struct Sinks {
    pub frames: Box<dyn Fn(PlayerEvent) + Send + Sync>,
    pub sound: Box<dyn Fn(AudioEvent) + Send + Sync>,
}

/// One session's players, started on demand.
pub struct Pipelines(Arc<Shared>);

struct Shared {
    spec: PipelineSpec,
    watched: Watched,
    sinks: Sinks,
    state: Mutex<State>,
}

struct State {
    /// The file on screen.
    media: MediaInfo,
    /// A playlist cut still to come: its file and its transport.
    cut: Option<(MediaInfo, Transport)>,
    transports: Transports,
    /// The version compared beside the one on screen, if any.
    compare: Option<CompareSpec>,
    run: Option<Run>,
    /// Counts starts, so that a player told to stop long ago cannot take
    /// down its successor.
    generation: u64,
    /// Viewers between `want` and having a peer the hub counts.
    arriving: usize,
    /// The media failed: it is not started again.
    failed: bool,
}

/// Running players.
struct Run {
    generation: u64,
    picture: mpsc::Sender<PlayerCommand>,
    sound: Option<mpsc::Sender<PlayerCommand>>,
}

impl Run {
    fn send(&self, command: impl Fn() -> PlayerCommand) {
        let _ = self.picture.send(command());
        if let Some(sound) = &self.sound {
            let _ = sound.send(command());
        }
    }
}

impl std::fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelines")
            .field("running", &self.is_running())
            .finish()
    }
}

/// A viewer on its way in; keeps the players up until dropped, by which
/// time the viewer's peer is counted by `watched` (or never will be).
pub struct Arriving(Weak<Shared>);

impl Drop for Arriving {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.lock().arriving -= 1;
        }
    }
}

impl Pipelines {
    /// Nothing starts until a viewer [`want`](Self::want)s the stream.
    /// `watched` says whether anyone receives it.
    pub fn new(
        spec: PipelineSpec,
        media: MediaInfo,
        initial: Transport,
        watched: Watched,
        sinks: Sinks,
    ) -> Pipelines {
        Pipelines(Arc::new(Shared {
            spec,
            watched,
            sinks,
            state: Mutex::new(State {
                media,
                cut: None,
                transports: Transports::new(initial),
                compare: None,
                run: None,
                generation: 0,
                arriving: 0,
                failed: false,
            }),
        }))
    }

    /// A viewer wants the stream: the players start if they are down. Hold
    /// the guard until the viewer's peer is counted by `watched`.
    pub fn want(&self) -> Arriving {
        let mut state = self.0.lock();
        state.arriving += 1;
        if state.run.is_none() && !state.failed {
            Shared::start(&self.0, &mut state);
        }
        Arriving(Arc::downgrade(&self.0))
    }

    /// The room's transport changed (it may take effect later).
    pub fn follow(&self, transport: Transport) {
        let mut state = self.0.lock();
        state.transports.accept(transport);
        if let Some(run) = &state.run {
            run.send(|| PlayerCommand::Transport(transport));
        }
    }

    /// The room compares another version beside the one on screen, or
    /// stops comparing (`None`). Only the picture player hears of it: the
    /// sound stays the version on screen's.
    pub fn compare(&self, spec: Option<CompareSpec>) {
        let mut state = self.0.lock();
        state.compare = spec.clone();
        if let Some(run) = &state.run {
            let _ = run.picture.send(PlayerCommand::Compare(spec.map(Box::new)));
        }
    }

    /// The room moves to another file from the transport's instant; a
    /// compare of the file it leaves ends.
    pub fn cue(&self, media: &MediaInfo, transport: Transport) {
        let mut state = self.0.lock();
        if state.compare.take().is_some() {
            if let Some(run) = &state.run {
                let _ = run.picture.send(PlayerCommand::Compare(None));
            }
        }
        state.transports.accept(transport);
        state.cut = Some((media.clone(), transport));
        if let Some(run) = &state.run {
            run.send(|| PlayerCommand::Cue(Box::new(media.clone()), transport));
        }
    }

    /// A viewer needs a whole picture.
    pub fn keyframe(&self) {
        self.0.keyframe();
    }

    /// Whether the players are up (or starting).
    pub fn is_running(&self) -> bool {
        self.0.lock().run.is_some()
    }

    /// Keyframe requests for a caller that must not keep the session's
    /// media alive (the hub, which the players' sinks hold).
    pub fn keyframes(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = Arc::downgrade(&self.0);
        move || {
            if let Some(shared) = shared.upgrade() {
                shared.keyframe();
            }
        }
    }
}

impl Drop for Pipelines {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if let Some(run) = state.run.take() {
            run.send(|| PlayerCommand::Stop);
        }
    }
}

impl Shared {
    fn keyframe(&self) {
        if let Some(run) = &self.lock().run {
            let _ = run.picture.send(PlayerCommand::Keyframe);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic under this lock leaves plain data behind; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(shared: &Arc<Shared>, state: &mut State) {
        let spec = &shared.spec;
        let now = spec.clock.now();
        if state
            .cut
            .as_ref()
            .is_some_and(|(_, t)| t.anchor_time <= now)
        {
            let (media, _) = state.cut.take().expect("checked above");
            state.media = media;
        }
        let current = state.transports.at(now);
        state.generation += 1;
        let generation = state.generation;
        spec.running.fetch_add(1, Relaxed);
        // Shared by both players' sinks: dropped when the last thread ends.
        let running = Arc::new(RunningGuard(spec.running.clone()));
        let frames = {
            let running = running.clone();
            let shared = Arc::downgrade(shared);
            move |event: PlayerEvent| {
                let _ = &running;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if let PlayerEvent::Failed(_) = &event {
                    let mut state = shared.lock();
                    state.failed = true;
                    if state
                        .run
                        .as_ref()
                        .is_some_and(|r| r.generation == generation)
                    {
                        state.run = None;
                    }
                }
                (shared.sinks.frames)(event);
            }
        };
        let retire = Retire {
            after: spec.idle_teardown,
            ask: Box::new({
                let shared = Arc::downgrade(shared);
                move || {
                    let Some(shared) = shared.upgrade() else {
                        return true;
                    };
                    let mut state = shared.lock();
                    if state
                        .run
                        .as_ref()
                        .is_some_and(|r| r.generation != generation)
                    {
                        // Replaced: this one was told to stop already.
                        return true;
                    }
                    if state.arriving > 0 || (shared.watched)() {
                        return false;
                    }
                    // Dropping the senders stops the sound player too.
                    state.run = None;
                    true
                }
            }),
        };
        let picture = player::spawn_retiring(
            state.media.clone(),
            spec.stream,
            spec.watermark.clone(),
            spec.clock,
            current,
            shared.watched.clone(),
            frames,
            Some(retire),
        );
        let picture = match picture {
            Ok(picture) => picture,
            Err(err) => {
                state.failed = true;
                return (shared.sinks.frames)(PlayerEvent::Failed(err));
            }
        };
        let sound = spec.has_audio.then(|| {
            let weak = Arc::downgrade(shared);
            audio::spawn(
                &state.media,
                spec.clock,
                current,
                shared.watched.clone(),
                move |event| {
                    let _ = &running;
                    if let Some(shared) = weak.upgrade() {
                        (shared.sinks.sound)(event);
                    }
                },
            )
        });
        let sound = match sound.transpose() {
            Ok(sound) => sound,
            Err(err) => {
                (shared.sinks.sound)(AudioEvent::Failed(err));
                None
            }
        };
        let run = Run {
            generation,
            picture,
            sound,
        };
        // What is still to come, in order: a pending cut, then transports
        // scheduled after the one in effect.
        if let Some(spec) = &state.compare {
            let _ = run
                .picture
                .send(PlayerCommand::Compare(Some(Box::new(spec.clone()))));
        }
        if let Some((media, transport)) = &state.cut {
            run.send(|| PlayerCommand::Cue(Box::new(media.clone()), *transport));
        }
        for transport in state.transports.upcoming_all() {
            run.send(|| PlayerCommand::Transport(*transport));
        }
        state.run = Some(run);
    }
}

/// A session's running players in the gauge, until the last of their
/// threads has let go of its pipelines.
struct RunningGuard(Arc<AtomicI64>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        give_back_freed_memory();
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Returns the pages a torn-down player freed to the system. glibc keeps
/// freed memory in its arenas (one per thread that allocated, up to 8 per
/// core), and the pipelines' picture buffers and encoder state are freed
/// by threads that are gone: without this an idle session still held
/// about 20 MiB of resident memory after its pipelines were dropped
/// (docs/benchmarks.md, "Idle session cost"). It walks every arena once,
/// a few milliseconds on the player's own thread, once per teardown.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages back to the kernel; it
    // takes the allocator's own locks and touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
