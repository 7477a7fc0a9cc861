//! SyncReel: a self-hosted server for synchronized, frame-accurate review.
//!
//! # Layout
//!
//! The pure core, which never reads the clock, touches a socket or knows
//! JSON:
//! - [`timecode`]: rational frame rates and SMPTE labels, drop-frame included.
//! - [`clock`]: server time, shuttle speeds, and the [`clock::Transport`]
//!   anchor from which every participant computes the same frame.
//! - [`session`]: participants, roles, the driver's seat, presence, and
//!   commands turned into versioned, scheduled events.
//! - [`drawing`]: shapes on a frame in normalised coordinates, and their
//!   rasterization for stills.
//! - [`ranges`]: the frames a participant actually watched (approval receipts).
//!
//! The edges:
//! - [`protocol`]: the serde wire types (documented in `docs/protocol.md`).
//! - [`live`]: one task per session that owns a [`session::Session`], and
//!   the registry of live sessions.
//! - [`ws`]: one WebSocket connection (reader loop, writer task, limits).
//! - [`http`]: REST API, static web client, upgrade, health and metrics.
//! - [`links`]: role-scoped join links, stored hashed.
//! - [`passcode`]: optional per-link passcodes: Argon2id hashes and the
//!   gate that limits wrong attempts.
//! - [`operator`]: the operator credential everything but a join link needs.
//! - [`metrics`]: counters and the fan-out histogram.
//! - [`config`]: TOML plus environment overrides.
//! - [`listener`]: the accept loop: header timeouts, per-address caps,
//!   socket counts.
//! - [`tls`]: HTTPS/WSS certificates, reloaded on SIGHUP.
//! - [`uploads`]: resumable (tus) uploads: staging, checks, and the move
//!   into the media root as an item's next version.
//! - [`server`]: binding, serving, graceful shutdown.
//! - [`server_clock`]: the monotonic clock server time is read from.
//! - [`cluster`]: cluster mode over NATS: session ownership leases and
//!   node load (issue 14).
//! - [`cli`]: the `syncreel` command line.

pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod drawing;
pub mod export;
pub mod exporter;
pub mod framecode;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod links;
pub mod listener;
pub mod live;
pub mod media;
pub mod metrics;
pub mod operator;
pub mod passcode;
pub mod protocol;
pub mod ranges;
pub mod rtc;
pub mod server;
pub mod server_clock;
pub mod session;
pub mod store;
pub mod timecode;
pub mod tls;
pub mod uploads;
pub mod webhooks;
pub mod ws;
