//! The `syncreel` command line: `serve`, `demo`, `session create`,
//! `export` and `upload`.

mod clip;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::config::Config;
use crate::http::{
    created_body, App, CreateSession, CreatedSession, CreatedSessionBody, PlaylistItem,
};
use crate::protocol::WireRole;
use crate::server::{terminate_signal, Server};

#[derive(Debug, Parser)]
#[command(
    name = "syncreel",
    version,
    about = "Synchronized, frame-accurate review server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server with a demo session and print its links.
    Demo(ServeArgs),
    /// Manage sessions on a running server.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Write a session's notes as CSV, JSON, a CMX3600 EDL or OTIO, from
    /// the review record in the data dir (the server may be running).
    Export(ExportArgs),
    /// Upload a media file to a running server as the next version of an
    /// item (resumable: run it again after an interruption to go on).
    Upload(upload::UploadArgs),
    /// Render a test clip with its frame code burnt into every picture.
    Clip(clip::ClipArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub session: String,
    /// csv, json, edl, otio or html (a report with a still of each noted
    /// frame, drawings on it).
    #[arg(long)]
    pub format: crate::export::Format,
    /// Where to write; `-` for standard output.
    #[arg(long)]
    pub out: PathBuf,
    /// The server's data dir (where `syncreel.db` lives).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// The version to export (in a playlist, any entry's), or `all` for
    /// the whole playlist (edl, otio, json); by default the one on screen.
    #[arg(long = "media-version")]
    pub media_version: Option<String>,
    /// Where the session's media is, for the report's stills; defaults to
    /// `<data-dir>/media`, the server's default.
    #[arg(long)]
    pub media_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see config/syncreel.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on; overrides server.bind.
    #[arg(long)]
    pub bind: Option<std::net::SocketAddr>,
    /// Directory for server state; overrides server.data_dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The review record in PostgreSQL (postgres://user@host:port/db)
    /// instead of SQLite in the data directory; overrides server.store.
    #[arg(long)]
    pub store: Option<String>,
    /// Join a cluster through this JetStream nats-server (nats://host:port);
    /// overrides cluster.nats_url. Without it (and without the key), a
    /// single node.
    #[arg(long, value_name = "NATS_URL")]
    pub cluster: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Create a session and print one link per role, one per line.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    pub server: String,
    #[arg(long)]
    pub title: String,
    /// A media file under the server's media root; it sets the rate,
    /// length and start timecode, and the session streams it. Give it
    /// more than once for a playlist session the host can cue through.
    #[arg(long)]
    pub media: Vec<String>,
    /// The media item the file (each file) is a version of; defaults to
    /// the file name.
    #[arg(long, requires = "media")]
    pub item: Option<String>,
    /// Frame rate: 24000/1001, 24, 25, 30000/1001, 30, 48, 50, 60000/1001, 60.
    #[arg(long, required_unless_present = "media")]
    pub fps: Option<String>,
    #[arg(long, required_unless_present = "media")]
    pub duration_frames: Option<i64>,
    /// Label of the first frame, e.g. 01:00:00:00 (00:00:00;00 for drop-frame).
    #[arg(long)]
    pub start_timecode: Option<String>,
    /// Text burned into the session's pictures, e.g. "CONFIDENTIAL –
    /// {title}"; "" for none. Without it, the server's session.watermark.
    #[arg(long)]
    pub watermark: Option<String>,
    /// The server's operator token (server.admin_token); without it, the
    /// one in ./data/operator-token, where a server started here keeps it.
    #[arg(long, env = "SYNCREEL_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// A passcode (4 to 64 printable ASCII characters) that every link of
    /// the session will also need; the server keeps only its hash.
    #[arg(long, env = "SYNCREEL_PASSCODE")]
    pub passcode: Option<String>,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(bind) = self.bind {
            config.server.bind = bind;
        }
        if let Some(dir) = &self.data_dir {
            config.server.data_dir = dir.clone();
        }
        if let Some(store) = &self.store {
            config.server.store = store.clone();
        }
        if let Some(url) = &self.cluster {
            config.cluster.nats_url = url.clone();
            config.validate()?;
        }
        Ok(config)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        CliCommand::Serve(args) => serve(args.config()?, false).await,
        CliCommand::Demo(args) => serve(args.config()?, true).await,
        CliCommand::Session(SessionCommand::Create(args)) => create_remote(args).await,
        CliCommand::Export(args) => export(args),
        CliCommand::Upload(args) => upload::upload(args).await,
        CliCommand::Clip(args) => tokio::task::spawn_blocking(move || clip::clip(args)).await?,
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data dir {}",
            config.server.data_dir.display()
        )
    })?;
    let server = Server::bind(config)
        .await
        .context("cannot start the server")?;
    let addr = server.local_addr()?;
    // Links printed for a wildcard bind still need a host a browser can open.
    let shown = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let scheme = if server.app.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let base = if server.app.config.server.public_url.is_empty() {
        format!("{scheme}://{shown}")
    } else {
        server
            .app
            .config
            .server
            .public_url
            .trim_end_matches('/')
            .to_string()
    };
    // Scripts and tests read this exact line to find the port.
    println!("listening on {scheme}://{shown}");
    // Standard error: scripts read standard output for the lines above
    // and may stop reading it.
    eprintln!("{}", server.app.operator.announcement());
    if demo {
        let root = server.app.config.media_root();
        let clip = demo_clip(&root).await?;
        let created = match server.app.relink_latest(DEMO_TITLE).await? {
            Some(again) => {
                println!(
                    "carrying on the demo review from an earlier run (its old links work too)"
                );
                again
            }
            None => {
                let app = server.app.clone();
                let setup =
                    tokio::task::spawn_blocking(move || app.prepare_media("demo.mov")).await??;
                server
                    .app
                    .create_session(
                        CreateSession {
                            title: DEMO_TITLE.into(),
                            media: Some("demo.mov".into()),
                            item: Some("Reel 1".into()),
                            playlist: None,
                            fps: None,
                            duration_frames: None,
                            start_timecode: None,
                            drop_frame: None,
                            passcode: None,
                            // The server's `session.watermark`, like any
                            // session: off unless the operator sets it.
                            watermark: None,
                        },
                        vec![setup],
                    )
                    .await?
            }
        };
        println!("demo clip {}", clip.display());
        print_links(&created_body(&created, &base));

        // A second session shows a playlist: the reel, then a short take
        // at another rate and start, whose frame codes run from 10,000,
        // then the take's second version (codes from 20,000) to compare.
        let take = demo_take(&root).await?;
        let created = match server.app.relink_latest(DEMO_PLAYLIST_TITLE).await? {
            Some(again) => again,
            None => create_demo_playlist(&server.app).await?,
        };
        println!("demo take {}", take.display());
        print_links(&created_body(&created, &base));
    }
    server.run(terminate_signal()).await?;
    Ok(())
}

/// The demo's sessions are found again by these titles after a restart.
const DEMO_TITLE: &str = "SyncReel demo: Reel 1 v3";
const DEMO_PLAYLIST_TITLE: &str = "SyncReel demo: playlist, Reel 1 and Shot 010";

async fn create_demo_playlist(app: &Arc<App>) -> anyhow::Result<CreatedSession> {
    let app2 = app.clone();
    let setups = tokio::task::spawn_blocking(move || {
        ["demo.mov", DEMO_TAKE, DEMO_TAKE_V2]
            .into_iter()
            .map(|file| app2.prepare_media(file))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    let created = app
        .create_session(
            CreateSession {
                title: DEMO_PLAYLIST_TITLE.into(),
                media: None,
                item: None,
                playlist: Some(vec![
                    PlaylistItem {
                        media: "demo.mov".into(),
                        item: Some("Reel 1".into()),
                    },
                    PlaylistItem {
                        media: DEMO_TAKE.into(),
                        item: Some("Shot 010".into()),
                    },
                    // The take's second version: at either take, the
                    // driver can compare it with the other.
                    PlaylistItem {
                        media: DEMO_TAKE_V2.into(),
                        item: Some("Shot 010".into()),
                    },
                ]),
                fps: None,
                duration_frames: None,
                start_timecode: None,
                drop_frame: None,
                passcode: None,
                watermark: None,
            },
            setups,
        )
        .await?;
    Ok(created)
}

/// Makes the demo clip in the media root the first time (it takes a
/// little while: the picture is rendered and encoded).
async fn demo_clip(media_root: &std::path::Path) -> anyhow::Result<PathBuf> {
    let path = media_root.join("demo.mov");
    if !path.is_file() {
        eprintln!("generating the demo clip at {} (once)…", path.display());
    }
    tokio::task::spawn_blocking(move || {
        crate::media::demo_clip::ensure(&path, &crate::media::demo_clip::DemoClipSpec::default())
    })
    .await?
    .context("cannot prepare the demo clip")
}

/// The demo playlist's second entry, under the media root.
const DEMO_TAKE: &str = "demo-shot010.mov";
/// The take's second version, the demo playlist's third entry: the two
/// takes can be compared.
const DEMO_TAKE_V2: &str = "demo-shot010-v2.mov";

/// A ten-second take at 25 fps from 02:00:00:00, frame codes from 10,000:
/// quick to render, and unlike the reel in every way a cue must switch.
async fn demo_take(media_root: &std::path::Path) -> anyhow::Result<PathBuf> {
    use crate::media::demo_clip::DemoClipSpec;
    use crate::timecode::{FrameRate, Timecode};
    let path = media_root.join(DEMO_TAKE);
    let spec = DemoClipSpec {
        rate: FrameRate::FPS_25,
        frames: 250,
        start: Timecode {
            hours: 2,
            minutes: 0,
            seconds: 0,
            frames: 0,
            drop_frame: false,
        },
        code_offset: 10_000,
        ..DemoClipSpec::default()
    };
    // A second version of the take at its rate (codes from 20,000), for
    // a compare: made here so that a room can be shown one beside it.
    let second = media_root.join(DEMO_TAKE_V2);
    let spec2 = DemoClipSpec {
        code_offset: 20_000,
        ..spec
    };
    tokio::task::spawn_blocking(move || crate::media::demo_clip::ensure(&second, &spec2))
        .await?
        .context("cannot prepare the demo take's second version")?;
    tokio::task::spawn_blocking(move || crate::media::demo_clip::ensure(&path, &spec))
        .await?
        .context("cannot prepare the demo take")
}

fn print_links(body: &CreatedSessionBody) {
    println!("session {} \"{}\"", body.session.id, body.session.title);
    for link in &body.links {
        let role = match link.role {
            WireRole::Host => "host",
            WireRole::Reviewer => "reviewer",
            WireRole::Viewer => "viewer",
        };
        match &link.url {
            // The passcode is not in the URL: it goes out another way.
            Some(url) if link.has_passcode => println!("{role:<9} {url}  (needs the passcode)"),
            Some(url) => println!("{role:<9} {url}"),
            None => {}
        }
    }
}

/// Reads the record directly: SQLite in WAL mode lets this run beside a
/// live server.
/// `stills [#########...........]  9/20` on standard error, redrawn in
/// place, and a newline when done.
fn progress_bar(done: usize, total: usize) {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    eprint!(
        "\rstills [{}{}] {done:>4}/{total}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    );
    if done == total {
        eprintln!();
    }
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let db = args.data_dir.join("syncreel.db");
    if !db.is_file() {
        bail!("no review record at {}", db.display());
    }
    let store = crate::store::Store::open(&db)?;
    let scope = crate::exporter::Scope::from_version(args.media_version.as_deref());
    let root = args
        .media_root
        .clone()
        .unwrap_or_else(|| args.data_dir.join("media"));
    let exported = crate::exporter::export(
        &store,
        &args.session,
        &scope,
        args.format,
        &root,
        progress_bar,
    )
    .map_err(|err| match err {
        crate::exporter::ExportError::NoSession => {
            anyhow::anyhow!("no session {} in {}", args.session, db.display())
        }
        other => anyhow::anyhow!("session {}: {other}", args.session),
    })?;
    if let Some(why) = exported.warning {
        eprintln!("warning: the report has no stills: {why}");
    }
    if args.out.as_os_str() == "-" {
        print!("{}", exported.text);
    } else {
        std::fs::write(&args.out, exported.text)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        eprintln!("{} notes written to {}", exported.notes, args.out.display());
    }
    Ok(())
}

/// POSTs to a running server. Plain HTTP only: the CLI talks to the
/// server it runs beside, or through a tunnel.
async fn create_remote(args: CreateArgs) -> anyhow::Result<()> {
    let base = args.server.trim_end_matches('/');
    let Some(authority) = base.strip_prefix("http://") else {
        bail!("--server must be an http:// URL");
    };
    let (media, playlist) = match args.media.as_slice() {
        [] => (None, None),
        [one] => (Some(one.clone()), None),
        many => {
            let entries = many
                .iter()
                .map(|media| crate::http::PlaylistItem {
                    media: media.clone(),
                    item: args.item.clone(),
                })
                .collect();
            (None, Some(entries))
        }
    };
    let item = if playlist.is_some() { None } else { args.item };
    let body = serde_json::to_vec(&CreateSession {
        title: args.title,
        media,
        item,
        playlist,
        fps: args.fps,
        duration_frames: args.duration_frames,
        start_timecode: args.start_timecode,
        drop_frame: None,
        passcode: args.passcode,
        watermark: args.watermark,
    })?;
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut request = hyper::Request::post("/api/sessions")
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    // Without a token given, the one a server on this machine made for
    // itself (the default data dir), as an operator at its console means.
    let token = args.admin_token.clone().or_else(|| {
        std::fs::read_to_string(std::path::Path::new("data").join(crate::operator::TOKEN_FILE))
            .ok()
            .map(|t| t.trim().to_string())
    });
    if let Some(token) = &token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!(
            "server answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let created: CreatedSessionBody = serde_json::from_slice(&bytes)?;
    print_links(&created);
    Ok(())
}
