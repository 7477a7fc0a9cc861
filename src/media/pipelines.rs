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
//!
//! A player that fails is started again (see [`RestartPolicy`]): under
//! load a fresh encoder can miss its first-picture deadline, and a file
//! being copied back into place is briefly missing, and neither should
//! leave a room without video until the server restarts. Only a failure
//! that outlasts the restarts, or one no restart can mend (not media, an
//! unsupported rate), reaches the room; the next viewer who asks for the
//! stream tries again, and the first picture after that tells the room
//! the video is back.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::Duration;

use super::audio::{self, AudioEvent};
use super::compare::CompareSpec;
use super::player::{
    self, EncodedFrame, PlayerCommand, PlayerEvent, Retire, StreamSettings, Transports, Watched,
};
use super::watermark::Watermark;
use super::{MediaError, MediaInfo};
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
    pub restarts: RestartPolicy,
    /// Players started again after a failure, for `/metrics`.
    pub restarted: Arc<AtomicU64>,
    /// Pictures that came out more than a frame late, for `/metrics` and
    /// the node's published load.
    pub late: Arc<AtomicU64>,
}

/// How a failed player is started again: up to `attempts` times in a row
/// while someone watches, waiting `backoff`, then twice that, and so on
/// (at most [`MAX_BACKOFF`]). A picture from a player resets the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub attempts: u32,
    pub backoff: Duration,
}

/// The longest wait before a restart, however many came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl RestartPolicy {
    /// The wait before restart number `attempt` (1-based), or `None` when
    /// the failure goes to the room instead.
    pub fn delay(&self, attempt: u32, error: &MediaError) -> Option<Duration> {
        if attempt == 0 || attempt > self.attempts || !error.may_pass() {
            return None;
        }
        let doublings = (attempt - 1).min(16);
        Some(self.backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF))
    }
}

/// The stream's health as the room should hear of it.
#[derive(Debug)]
pub enum MediaHealth {
    /// The players failed and were not (or could not be) started again.
    Failed(MediaError),
    /// Pictures flow again after a `Failed`.
    Restored,
}

/// Where the players' output goes. Called on their threads; must not block.
pub struct Sinks {
    pub frames: Box<dyn Fn(EncodedFrame) + Send + Sync>,
    pub sound: Box<dyn Fn(AudioEvent) + Send + Sync>,
    pub health: Box<dyn Fn(MediaHealth) + Send + Sync>,
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
    /// Failed starts since the last picture.
    failures: u32,
    /// A restart waits for its backoff: nothing else starts the players.
    restart_due: bool,
    /// The room was told the media failed, and has not heard otherwise.
    reported: bool,
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
                failures: 0,
                restart_due: false,
                reported: false,
            }),
        }))
    }

    /// A viewer wants the stream: the players start if they are down. Hold
    /// the guard until the viewer's peer is counted by `watched`.
    ///
    /// After a failure the room was told of, this is a fresh try with a
    /// fresh set of restarts: the file may be back, the load gone.
    pub fn want(&self) -> Arriving {
        Shared::want(&self.0)
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
    /// Starts the players if they are down, for viewers this node cannot
    /// count (another node's, which keep them up through `watched`).
    pub fn starter(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = Arc::downgrade(&self.0);
        move || {
            if let Some(shared) = shared.upgrade() {
                drop(Shared::want(&shared));
            }
        }
    }

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
    fn want(shared: &Arc<Shared>) -> Arriving {
        let mut state = shared.lock();
        state.arriving += 1;
        if state.run.is_none() && !state.restart_due {
            if state.reported {
                state.failures = 0;
            }
            Shared::start(shared, &mut state);
        }
        Arriving(Arc::downgrade(shared))
    }

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
            let pictured = AtomicBool::new(false);
            let late = spec.late.clone();
            move |event: PlayerEvent| {
                let _ = &running;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                match event {
                    PlayerEvent::Frame(frame) => {
                        if !pictured.swap(true, Relaxed) {
                            shared.pictured(generation);
                        }
                        if frame.late {
                            late.fetch_add(1, Relaxed);
                        }
                        (shared.sinks.frames)(frame);
                    }
                    PlayerEvent::Failed(err) => {
                        Shared::failed(&shared, &mut shared.lock(), generation, err);
                    }
                }
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
            Err(err) => return Shared::failed(shared, state, generation, err),
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

impl Shared {
    /// The first picture of run `generation`: whatever failed before is
    /// mended.
    fn pictured(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        state.failures = 0;
        if std::mem::take(&mut state.reported) {
            drop(state);
            (self.sinks.health)(MediaHealth::Restored);
        }
    }

    /// Run `generation` failed: start it again after a backoff, or tell the
    /// room. A failure of a run already replaced is nobody's business.
    fn failed(shared: &Arc<Shared>, state: &mut State, generation: u64, err: MediaError) {
        if state.generation != generation {
            return;
        }
        state.run = None;
        state.failures = state.failures.saturating_add(1);
        let Some(delay) = shared.spec.restarts.delay(state.failures, &err) else {
            tracing::warn!(%err, failures = state.failures, "session media failed");
            state.reported = true;
            return (shared.sinks.health)(MediaHealth::Failed(err));
        };
        tracing::warn!(%err, failures = state.failures, ?delay, "session media failed; restarting");
        state.restart_due = true;
        let weak = Arc::downgrade(shared);
        let timer = std::thread::Builder::new()
            .name("syncreel-media-restart".into())
            .spawn(move || {
                std::thread::sleep(delay);
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                let mut state = shared.lock();
                state.restart_due = false;
                // Nobody left to watch: the next viewer's `want` starts it.
                if state.run.is_none() && (state.arriving > 0 || (shared.watched)()) {
                    tracing::info!(failures = state.failures, "session media restarting");
                    shared.spec.restarted.fetch_add(1, Relaxed);
                    Shared::start(&shared, &mut state);
                }
            });
        if let Err(spawn) = timer {
            state.restart_due = false;
            state.reported = true;
            tracing::warn!(%spawn, "no thread to restart the media");
            (shared.sinks.health)(MediaHealth::Failed(err));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const POLICY: RestartPolicy = RestartPolicy {
        attempts: 3,
        backoff: Duration::from_millis(1000),
    };

    fn passing() -> MediaError {
        MediaError::Gstreamer("the encoder produced nothing".into())
    }

    #[test]
    fn restarts_wait_longer_each_time_and_stop_at_the_attempts() {
        let waits: Vec<_> = (1..=4).map(|n| POLICY.delay(n, &passing())).collect();
        assert_eq!(
            waits,
            [
                Some(Duration::from_millis(1000)),
                Some(Duration::from_millis(2000)),
                Some(Duration::from_millis(4000)),
                None,
            ]
        );
        assert_eq!(POLICY.delay(0, &passing()), None, "counts start at one");
    }

    #[test]
    fn a_wait_never_passes_the_cap_however_large_the_config() {
        let policy = RestartPolicy {
            attempts: u32::MAX,
            backoff: Duration::from_secs(u64::MAX / 2),
        };
        assert_eq!(policy.delay(1, &passing()), Some(MAX_BACKOFF));
        assert_eq!(policy.delay(u32::MAX, &passing()), Some(MAX_BACKOFF));
    }

    #[test]
    fn what_the_file_is_is_not_tried_again_but_a_file_away_is() {
        let path = PathBuf::from("clip.mov");
        let not_media = MediaError::NotMedia {
            path: path.clone(),
            reason: "no demuxer".into(),
        };
        assert_eq!(POLICY.delay(1, &not_media), None);
        assert_eq!(POLICY.delay(1, &MediaError::NoVideo(path.clone())), None);
        assert!(POLICY.delay(1, &MediaError::Missing(path)).is_some());
    }

    #[test]
    fn no_attempts_means_every_failure_goes_to_the_room() {
        let never = RestartPolicy {
            attempts: 0,
            ..POLICY
        };
        assert_eq!(never.delay(1, &passing()), None);
    }
}
