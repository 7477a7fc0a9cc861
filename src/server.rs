//! Binding, serving and graceful shutdown.
//!
//! Shutdown has two halves, as in mini-redis: a watch channel tells every
//! session task and connection to finish (connections say goodbye with a
//! close frame), and the server then waits, bounded by
//! `server.shutdown_grace_ms`, for the connections to drain.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::http::{self, App};

/// A bound server, ready to run.
pub struct Server {
    pub app: Arc<App>,
    listener: TcpListener,
    shutdown_tx: watch::Sender<bool>,
    /// Cluster mode: the task publishing this node's load.
    load_publisher: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Refuses an invalid configuration before taking the port, so that a
    /// config built in code is held to the same rules as a loaded one.
    pub async fn bind(config: Config) -> std::io::Result<Server> {
        config.validate().map_err(std::io::Error::other)?;
        if let Some(limit) = crate::listener::raise_fd_limit() {
            tracing::debug!(limit, "open-file limit");
        }
        let listener = TcpListener::bind(config.server.bind).await?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut app = App::new(config, shutdown_rx).map_err(std::io::Error::other)?;
        // Joined before sessions are restored, so that each takes its lease.
        if app.config.cluster.enabled() {
            let cluster = crate::cluster::Cluster::join(&app.config.cluster)
                .await
                .map_err(std::io::Error::other)?;
            tracing::info!(node = %cluster.node, url = %app.config.cluster.nats_url, "joined the cluster");
            app.cluster = Some(cluster);
        }
        let app = Arc::new(app);
        let load_publisher = app.publish_load();
        // Before sessions are restored and leases taken: a gateway that
        // finds this node the owner must find it listening too.
        let _relayed = crate::ws::accept_relayed(&app);
        let _handed = app.accept_handovers();
        let _versions = app.accept_versions();
        let _ends = app.accept_ends();
        // Before the port is announced, so that a SIGHUP sent once the
        // server says it listens never meets the default action (exit).
        #[cfg(unix)]
        if let Some(certs) = app.tls.clone() {
            reload_on_hangup(certs, app.shutdown.clone());
        }
        let restored = app
            .restore_sessions()
            .await
            .map_err(std::io::Error::other)?;
        if restored > 0 {
            tracing::info!(restored, "sessions restored from the review record");
        }
        // A proxy made while its source plays takes over the stream.
        tokio::spawn(follow_proxies(
            app.uploads.proxies().made(),
            app.registry.clone(),
        ));
        // Proxies a restart cut off are made again, in the background.
        let uploads = app.uploads.clone();
        tokio::task::spawn_blocking(move || uploads.resume_proxies());
        Ok(Server {
            app,
            listener,
            shutdown_tx,
            load_publisher,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Server {
            app,
            listener,
            shutdown_tx,
            load_publisher,
        } = self;
        let stopping = app.shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            tracing::info!("shutting down");
            let _ = shutdown_tx.send(true);
        });
        // Exact-frame decoders hold GStreamer pipelines and threads: an
        // idle one is closed rather than kept for a page that left.
        let sweeper = app.clone();
        let mut sweeping = app.shutdown.clone();
        tokio::spawn(async move {
            let every = sweeper.config.media.frame_limits().idle / 2;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = sweeping.wait_for(|stop| *stop) => break,
                }
                let frames = sweeper.clone();
                let _ = tokio::task::spawn_blocking(move || frames.frames.sweep()).await;
            }
        });
        let router = http::router(app.clone(), crate::ws::routes());
        let limits = &app.config.limits;
        let listen = crate::listener::ListenLimits {
            header_read_timeout: Duration::from_millis(limits.header_read_timeout_ms.max(1)),
            max_connections_per_ip: limits.max_connections_per_ip.max(1),
        };
        crate::listener::serve(
            listener,
            router,
            listen,
            app.tls.as_ref().map(|certs| certs.acceptor()),
            app.metrics.clone(),
            stopping.clone(),
        )
        .await;

        let grace = Duration::from_millis(app.config.server.shutdown_grace_ms);
        let deadline = Instant::now() + grace;
        while app.metrics.connections_open.load(Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = app.metrics.connections_open.load(Relaxed);
        if left > 0 {
            tracing::warn!(left, "connections still open after the shutdown grace");
        }
        app.leave_cluster(load_publisher).await;
        Ok(())
    }
}

/// Reads the certificate pair again on each SIGHUP, as renewal tools
/// expect of a server.
#[cfg(unix)]
fn reload_on_hangup(certs: Arc<crate::tls::Certificates>, mut stopping: watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: certificates will not be reloaded");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hangups.recv() => if got.is_none() { break },
                _ = stopping.wait_for(|stop| *stop) => break,
            }
            match certs.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(err) => tracing::warn!(%err, "TLS certificate not reloaded; the old one stays"),
            }
        }
    });
}

/// Completes on ctrl-c or SIGTERM.
pub async fn terminate_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Tells every session on this node of each review proxy made; a session
/// that does not play its source ignores it.
async fn follow_proxies(
    mut made: tokio::sync::broadcast::Receiver<crate::uploads::proxies::ProxyMade>,
    registry: crate::live::Registry,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let made = match made.recv().await {
            Ok(made) => made,
            // Missed ones are picked up when their sessions next open.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "review proxies made while nobody listened");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        for handle in registry.handles() {
            let told = handle.tx.send(crate::live::SessionMsg::ProxyReady {
                checksum: made.checksum.clone(),
                path: made.path.clone(),
            });
            // A session too busy to take it in a second plays its source
            // until it next opens; the others are not held up.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), told).await;
        }
    }
}
