//! Server configuration: a TOML file (see `config/syncreel.toml`, which
//! documents every key) with `SYNCREEL_<SECTION>__<KEY>` environment
//! variables laid over it, then command-line flags over both.
//!
//! Every key has a default, so an empty file (or none) is a valid config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::session::SessionLimits;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub limits: LimitsConfig,
    pub session: SessionConfig,
    pub links: LinksConfig,
    pub media: MediaConfig,
    pub rtc: RtcConfig,
    pub webhooks: WebhooksConfig,
    /// Cluster mode (`src/cluster`); off unless `nats_url` is set.
    pub cluster: crate::cluster::ClusterConfig,
    pub uploads: UploadsConfig,
}

/// Resumable uploads into the media root (`uploads`, `POST /api/uploads`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// The largest file one upload may declare (`Tus-Max-Size`).
    pub max_size_bytes: u64,
    /// All uploaded media together (files in `<media root>/uploads` and
    /// uploads under way) may not exceed this.
    pub quota_bytes: u64,
    /// Space always left free on the disks of the staging area and the
    /// media root, so that an upload never fills a disk the record and
    /// the logs share.
    pub reserve_free_bytes: u64,
    /// An upload not finished this long after it was made is removed
    /// (`Upload-Expires`).
    pub expire_secs: u64,
    /// The containers an upload may be, as the probe names them: `mov`,
    /// `mp4`, `mxf`, `mkv`, `webm`, `avi`, `mpegts`.
    pub allowed_containers: Vec<String>,
    /// An uploaded source whose codec (the probe's caps name, e.g.
    /// `video/x-prores`) holds one of these, lower case, gets a review
    /// proxy.
    pub proxy_codecs: Vec<String>,
    /// So does one with more pixels than this (1920×1080 by default).
    pub proxy_above_pixels: u64,
    /// Transcodes at once (1 to 4): each takes what it can of the CPU the
    /// live sessions share.
    pub proxy_concurrency: usize,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig {
            // Camera originals and ProRes masters run to tens of GB.
            max_size_bytes: 256 << 30,
            quota_bytes: 2 << 40,
            reserve_free_bytes: 1 << 30,
            // A week: a big file over a link that drops for a weekend
            // still resumes.
            expire_secs: 7 * 24 * 60 * 60,
            allowed_containers: ["mov", "mp4", "mxf", "mkv", "webm", "avi", "mpegts"]
                .map(String::from)
                .to_vec(),
            // Pieces of the codec's caps name (`video/x-prores`, …).
            proxy_codecs: ["prores", "dnxhd", "h265", "jpc", "j2c", "cineform", "dpx"]
                .map(String::from)
                .to_vec(),
            proxy_above_pixels: 1920 * 1080,
            proxy_concurrency: 1,
        }
    }
}

/// Where the record's events are announced (see `webhooks`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// `http://` or `https://` URLs that receive every event as a signed
    /// JSON POST.
    pub urls: Vec<String>,
    /// The HMAC-SHA256 key for the `X-SyncReel-Signature` header; at least
    /// [`WebhooksConfig::MIN_SECRET_BYTES`] when there are URLs.
    pub secret: String,
    /// A PEM file of extra roots trusted for https receivers, besides the
    /// bundled public ones. Empty: none.
    pub ca_file: PathBuf,
    /// Tries per delivery, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each retry.
    pub backoff_ms: u64,
    /// How long one attempt may take.
    pub timeout_ms: u64,
    /// How often a node looks in the outbox for deliveries due that it
    /// was not woken for: another node's announcements (on a shared
    /// record) or those a crash left pending. Its own are sent at once.
    pub poll_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            urls: Vec::new(),
            secret: String::new(),
            ca_file: PathBuf::new(),
            max_attempts: 6,
            backoff_ms: 1_000,
            timeout_ms: 5_000,
            poll_ms: 1_000,
        }
    }
}

impl WebhooksConfig {
    /// Receivers can only trust a signature whose key cannot be guessed:
    /// 16 bytes is 128 bits when random, and rules out "", "secret" and
    /// the like.
    pub const MIN_SECRET_BYTES: usize = 16;

    /// Refuses a configuration that could never deliver, or would deliver
    /// unsigned-in-effect requests, rather than failing on every event.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for url in &self.urls {
            crate::webhooks::Target::parse(url).map_err(|reason| ConfigError::WebhookUrl {
                url: url.clone(),
                reason,
            })?;
        }
        if !self.urls.is_empty() && self.secret.len() < Self::MIN_SECRET_BYTES {
            return Err(ConfigError::WebhookSecret {
                len: self.secret.len(),
            });
        }
        if !self.ca_file.as_os_str().is_empty() {
            crate::webhooks::root_store(&self.ca_file)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Only files under this directory can be reviewed. Empty: `<data_dir>/media`.
    pub root: PathBuf,
    pub stream_width: u32,
    pub stream_height: u32,
    /// `h264` (constrained baseline, the default: a third of VP8's CPU, see
    /// docs/benchmarks.md) or `vp8`.
    pub codec: String,
    pub bitrate_kbps: u32,
    pub keyframe_interval: u32,
    /// Exact frames (lossless PNG) kept in memory for paused rooms and
    /// steps, in MiB. A 1280×720 frame is about 1 MiB.
    pub frame_cache_mib: u32,
    /// Warm decoders kept for exact frames (one per version and width).
    pub frame_decoders: u32,
    /// An exact-frame decoder unused this long is closed.
    pub frame_decoder_idle_secs: u64,
    /// A session's players (pipelines and threads) stop once nobody has
    /// watched its stream this long; the next viewer starts them again.
    pub idle_teardown_ms: u64,
    /// A session's players that fail are started again this many times in
    /// a row (while someone watches) before the room is told.
    pub restart_attempts: u32,
    /// The wait before the first restart; it doubles for each further one.
    pub restart_backoff_ms: u64,
}

impl MediaConfig {
    pub fn frame_limits(&self) -> crate::media::frames::FrameLimits {
        crate::media::frames::FrameLimits {
            cache_bytes: (self.frame_cache_mib as usize).saturating_mul(1 << 20),
            decoders: self.frame_decoders.max(1) as usize,
            idle: std::time::Duration::from_secs(self.frame_decoder_idle_secs.max(1)),
        }
    }

    pub fn idle_teardown(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.idle_teardown_ms)
    }

    pub fn restarts(&self) -> crate::media::pipelines::RestartPolicy {
        crate::media::pipelines::RestartPolicy {
            attempts: self.restart_attempts,
            backoff: std::time::Duration::from_millis(self.restart_backoff_ms),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtcConfig {
    pub ice_servers: Vec<String>,
    pub turn_username: String,
    pub turn_credential: String,
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    pub include_loopback: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        let stream = crate::media::player::StreamSettings::default();
        MediaConfig {
            root: PathBuf::new(),
            stream_width: stream.width,
            stream_height: stream.height,
            codec: "h264".into(),
            bitrate_kbps: stream.bitrate_kbps,
            keyframe_interval: stream.keyframe_interval,
            frame_cache_mib: 256,
            frame_decoders: 4,
            frame_decoder_idle_secs: 30,
            idle_teardown_ms: 30_000,
            restart_attempts: 3,
            restart_backoff_ms: 1000,
        }
    }
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            ice_servers: Vec::new(),
            turn_username: String::new(),
            turn_credential: String::new(),
            udp_port_min: 0,
            udp_port_max: 0,
            include_loopback: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// The review record: empty for the SQLite file in `data_dir`, or a
    /// `postgres://` URL for a record shared by the nodes of a cluster.
    pub store: String,
    /// Where the web client's files are; served as `/app/`.
    pub web_root: PathBuf,
    /// The base of the links the server hands out. Empty: taken from the
    /// request's Host header, which is right unless behind a proxy.
    pub public_url: String,
    /// When set, creating sessions needs `Authorization: Bearer <this>`.
    pub admin_token: String,
    /// Host names (or host:port) the server answers to besides
    /// `public_url`'s, IP literals and `localhost`; any other `Host` is
    /// refused (`bad_host`), which defeats DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// How long shutdown waits for connections to close.
    pub shutdown_grace_ms: u64,
    /// PEM certificate chain and private key: when both are set the
    /// server speaks HTTPS and WSS itself (read again on SIGHUP).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    pub message_burst: u32,
    pub max_participants: usize,
    pub max_sessions: usize,
    pub max_connections: usize,
    /// Outgoing messages buffered per connection before it counts as slow.
    pub outbound_queue: usize,
    pub max_name_chars: usize,
    /// A WebSocket that has not sent a `hello` this long after opening is
    /// closed (`hello_timeout`): it would hold a connection slot for free.
    pub hello_timeout_ms: u64,
    /// How often the server pings each WebSocket (a protocol ping frame,
    /// which browsers answer by themselves).
    pub ping_interval_ms: u64,
    /// A WebSocket heard nothing from this long is dead (`peer_timeout`):
    /// it is dropped as a lost connection, and a driver's seat follows
    /// `session.driver_grace_ms` as for any drop.
    pub dead_peer_timeout_ms: u64,
    /// An HTTP request's headers must arrive within this; it also closes
    /// a keep-alive connection left idle this long.
    pub header_read_timeout_ms: u64,
    /// A request body must arrive within this.
    pub body_timeout_ms: u64,
    /// Open sockets from one client address; more are answered 429
    /// `too_many_connections`.
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub lead_min_ms: u64,
    pub lead_max_ms: u64,
    pub lead_margin_ms: u64,
    /// The most a room's measured fan-out time may add to the lead.
    pub lead_fanout_max_ms: u64,
    pub driver_grace_ms: u64,
    pub resume_window_secs: u64,
    pub presence_interval_ms: u64,
    pub presence_detail_limit: usize,
    /// A live review nobody has been connected to for this long ends by
    /// itself (as if its host had ended it), freeing its slot; its record
    /// stays for exports and async review.
    pub expire_idle_secs: u64,
    /// The watermark of a session whose creation names none: a template
    /// where `{title}` becomes the session's title. Empty: no watermark.
    pub watermark: String,
}

/// Join links' optional passcodes: how many wrong ones are allowed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LinksConfig {
    /// Wrong passcodes for one link from one client address within the
    /// window; then that address gets `passcode_locked` for that link.
    pub passcode_attempts: u32,
    /// Wrong passcodes for one link from all addresses together within
    /// the window; then the link takes no passcode from anyone. This is
    /// what bounds guessing by many addresses at once.
    pub passcode_link_attempts: u32,
    /// A count runs this long from its first wrong passcode.
    pub passcode_window_secs: u64,
    /// Entries the in-memory table of wrong attempts may hold (and the
    /// memory of passcodes that verified); when full, new guessers are
    /// locked out until entries expire.
    pub passcode_tracked: usize,
}

impl Default for LinksConfig {
    fn default() -> Self {
        let limits = crate::passcode::Limits::default();
        LinksConfig {
            passcode_attempts: limits.per_address,
            passcode_link_attempts: limits.per_link,
            passcode_window_secs: limits.window.as_secs(),
            passcode_tracked: limits.tracked,
        }
    }
}

impl LinksConfig {
    pub fn passcode_limits(&self) -> crate::passcode::Limits {
        crate::passcode::Limits {
            per_address: self.passcode_attempts,
            per_link: self.passcode_link_attempts,
            window: std::time::Duration::from_secs(self.passcode_window_secs),
            tracked: self.passcode_tracked,
        }
    }
}

impl SessionConfig {
    pub fn idle_expiry(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.expire_idle_secs.max(1))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: PathBuf::from("data"),
            store: String::new(),
            web_root: PathBuf::from("web-client"),
            public_url: String::new(),
            admin_token: String::new(),
            allowed_hosts: Vec::new(),
            shutdown_grace_ms: 3_000,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024,
            messages_per_second: 30,
            message_burst: 60,
            max_participants: 5_000,
            max_sessions: 1_000,
            max_connections: 20_000,
            outbound_queue: 256,
            max_name_chars: 64,
            hello_timeout_ms: 10_000,
            ping_interval_ms: 10_000,
            dead_peer_timeout_ms: 30_000,
            header_read_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections_per_ip: 512,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        let core = SessionLimits::default();
        let ms = |us: i64| (us / 1000) as u64;
        SessionConfig {
            lead_min_ms: ms(core.lead_min_micros),
            lead_max_ms: ms(core.lead_max_micros),
            lead_margin_ms: ms(core.lead_margin_micros),
            lead_fanout_max_ms: ms(core.lead_fanout_max_micros),
            driver_grace_ms: ms(core.driver_grace_micros),
            resume_window_secs: ms(core.resume_window_micros) / 1000,
            presence_interval_ms: ms(core.presence_interval_micros),
            presence_detail_limit: core.presence_detail_limit,
            // Thirty days: a review left open over a long shoot survives;
            // one forgotten does not hold its slot for ever.
            expire_idle_secs: 30 * 24 * 60 * 60,
            // Off: a watermark is a choice of the studio's, not a default.
            watermark: String::new(),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named on the command line could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML, or an environment override, does not fit the schema.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// An entry of `webhooks.urls` that can never be delivered to.
    #[error("invalid configuration: webhooks.urls: {url:?} {reason}")]
    WebhookUrl {
        url: String,
        reason: crate::webhooks::UrlError,
    },
    /// `webhooks.urls` is set but `webhooks.secret` is too short to sign with.
    #[error(
        "invalid configuration: webhooks.secret must be at least {} bytes when webhooks.urls is set (it has {len})",
        WebhooksConfig::MIN_SECRET_BYTES
    )]
    WebhookSecret { len: usize },
    /// `webhooks.ca_file` cannot be read or holds no usable certificate.
    #[error("invalid configuration: webhooks.ca_file {}: {reason}", path.display())]
    WebhookCaFile { path: PathBuf, reason: String },
}

impl Config {
    /// Reads `path` (if given), then applies environment overrides taken
    /// from `env` (pass `std::env::vars()`).
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("SYNCREEL_") else {
                continue;
            };
            let Some((section, field)) = rest.split_once("__") else {
                continue;
            };
            let section = section.to_ascii_lowercase();
            let field = field.to_ascii_lowercase();
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(ConfigError::Invalid(format!("[{section}] is not a table")));
            };
            section_table.insert(field, env_value(&value));
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the schema cannot; `load` calls it, and so does
    /// `Server::bind` for configurations built in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.session;
        let fail = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if s.lead_min_ms > s.lead_max_ms {
            return fail("session.lead_min_ms must not exceed session.lead_max_ms");
        }
        if s.driver_grace_ms > 5_000 {
            return fail("session.driver_grace_ms must be at most 5000: control returns to the host within 5 s");
        }
        // The title is filled in (and cut to fit) per session; the rest of
        // the template must pass as it stands.
        let fixed = s
            .watermark
            .replace(crate::media::watermark::TITLE_PLACEHOLDER, "");
        if let Err(e) = crate::media::watermark::Watermark::new(&fixed) {
            return Err(ConfigError::Invalid(format!("session.watermark: {e}")));
        }
        let store = &self.server.store;
        if !store.is_empty()
            && !["postgres://", "postgresql://"]
                .iter()
                .any(|p| store.starts_with(p))
        {
            // Not echoed: the URL may carry a password.
            return fail("server.store must be empty (SQLite) or a postgres:// URL");
        }
        if self.limits.max_message_bytes < 256 {
            return fail("limits.max_message_bytes must be at least 256");
        }
        if self.limits.messages_per_second == 0 || self.limits.message_burst == 0 {
            return fail("limits.messages_per_second and limits.message_burst must be positive");
        }
        if self.limits.outbound_queue < 8 {
            return fail("limits.outbound_queue must be at least 8");
        }
        let l = &self.links;
        if l.passcode_attempts == 0 || l.passcode_link_attempts == 0 {
            return fail(
                "links.passcode_attempts and links.passcode_link_attempts must be positive",
            );
        }
        if l.passcode_window_secs == 0 || l.passcode_tracked < 2 {
            return fail(
                "links.passcode_window_secs must be positive and links.passcode_tracked at least 2",
            );
        }
        let m = &self.media;
        if !matches!(m.codec.as_str(), "vp8" | "h264") {
            return fail("media.codec must be \"vp8\" or \"h264\"");
        }
        if m.stream_width < 64
            || m.stream_height < 64
            || m.stream_width % 2 == 1
            || m.stream_height % 2 == 1
        {
            return fail("media.stream_width and stream_height must be even and at least 64");
        }
        if self.rtc.udp_port_min > self.rtc.udp_port_max {
            return fail("rtc.udp_port_min must not exceed rtc.udp_port_max");
        }
        let (cert, key) = (&self.server.tls_cert, &self.server.tls_key);
        if cert.as_os_str().is_empty() != key.as_os_str().is_empty() {
            return fail("server.tls_cert and server.tls_key go together: set both or neither");
        }
        if !cert.as_os_str().is_empty() {
            crate::tls::Certificates::load(cert, key)
                .map_err(|e| ConfigError::Invalid(format!("server.tls_cert/tls_key: {e}")))?;
        }
        self.cluster.validate().map_err(ConfigError::Invalid)?;
        let u = &self.uploads;
        if u.max_size_bytes == 0 || u.expire_secs == 0 {
            return fail("uploads.max_size_bytes and uploads.expire_secs must be positive");
        }
        if !(1..=4).contains(&u.proxy_concurrency) {
            return fail("uploads.proxy_concurrency must be 1 to 4");
        }
        self.webhooks.validate()
    }

    /// The directory media files must live under.
    pub fn media_root(&self) -> PathBuf {
        if self.media.root.as_os_str().is_empty() {
            self.server.data_dir.join("media")
        } else {
            self.media.root.clone()
        }
    }

    pub fn stream_settings(&self) -> crate::media::player::StreamSettings {
        use crate::media::player::{StreamSettings, VideoCodec};
        StreamSettings {
            width: self.media.stream_width,
            height: self.media.stream_height,
            codec: if self.media.codec == "h264" {
                VideoCodec::H264
            } else {
                VideoCodec::Vp8
            },
            bitrate_kbps: self.media.bitrate_kbps,
            keyframe_interval: self.media.keyframe_interval,
        }
    }

    /// How review proxies are made: at the stream's size, a keyframe
    /// every half second or so, at three times the stream's bitrate (a
    /// proxy is decoded, not sent).
    pub fn proxy_spec(&self) -> crate::media::proxy::ProxySpec {
        crate::media::proxy::ProxySpec {
            max_width: self.media.stream_width,
            max_height: self.media.stream_height,
            gop: 12,
            bitrate_kbps: self.media.bitrate_kbps.saturating_mul(3),
        }
    }

    pub fn rtc_settings(&self) -> crate::rtc::RtcSettings {
        crate::rtc::RtcSettings {
            ice_servers: self.rtc.ice_servers.clone(),
            turn_username: self.rtc.turn_username.clone(),
            turn_credential: self.rtc.turn_credential.clone(),
            udp_port_min: self.rtc.udp_port_min,
            udp_port_max: self.rtc.udp_port_max,
            include_loopback: self.rtc.include_loopback,
        }
    }

    pub fn session_limits(&self) -> SessionLimits {
        let s = &self.session;
        let us = |ms: u64| (ms as i64).saturating_mul(1000);
        SessionLimits {
            max_participants: self.limits.max_participants,
            lead_min_micros: us(s.lead_min_ms),
            lead_max_micros: us(s.lead_max_ms),
            lead_margin_micros: us(s.lead_margin_ms),
            lead_fanout_max_micros: us(s.lead_fanout_max_ms),
            driver_grace_micros: us(s.driver_grace_ms),
            resume_window_micros: us(s.resume_window_secs.saturating_mul(1000)),
            presence_interval_micros: us(s.presence_interval_ms),
            presence_detail_limit: s.presence_detail_limit,
            ..SessionLimits::default()
        }
    }
}

/// An environment value is TOML when it parses as a TOML value (numbers,
/// booleans) and a plain string otherwise, so `SYNCREEL_SERVER__BIND=0.0.0.0:80`
/// needs no quotes.
fn env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/syncreel.toml");
        let loaded = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = Config::load(
            None,
            env(&[
                ("SYNCREEL_SERVER__BIND", "0.0.0.0:9000"),
                ("SYNCREEL_LIMITS__MAX_PARTICIPANTS", "12"),
                ("SYNCREEL_SESSION__LEAD_MIN_MS", "80"),
                ("SYNCREEL_SERVER__ADMIN_TOKEN", "s3cret"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.server.bind,
            "0.0.0.0:9000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(config.limits.max_participants, 12);
        assert_eq!(config.session.lead_min_ms, 80);
        assert_eq!(config.server.admin_token, "s3cret");
    }

    #[test]
    fn a_watermark_template_may_name_the_title() {
        let config = Config::load(
            None,
            env(&[("SYNCREEL_SESSION__WATERMARK", "CONFIDENTIAL – {title}")]),
        )
        .unwrap();
        assert_eq!(config.session.watermark, "CONFIDENTIAL – {title}");
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let long_watermark = "x".repeat(121);
        for pairs in [
            vec![("SYNCREEL_SERVER__BIDN", "1")],
            vec![("SYNCREEL_LIMITS__MAX_PARTICIPANTS", "many")],
            vec![("SYNCREEL_SESSION__DRIVER_GRACE_MS", "9000")],
            vec![("SYNCREEL_SESSION__LEAD_MIN_MS", "900")],
            vec![("SYNCREEL_LINKS__PASSCODE_ATTEMPTS", "0")],
            vec![("SYNCREEL_LINKS__PASSCODE_WINDOW_SECS", "0")],
            vec![("SYNCREEL_SESSION__WATERMARK", "two\nlines {title}")],
            vec![("SYNCREEL_SESSION__WATERMARK", long_watermark.as_str())],
        ] {
            assert!(Config::load(None, env(&pairs)).is_err(), "{pairs:?}");
        }
    }
}
