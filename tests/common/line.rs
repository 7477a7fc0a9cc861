//! A TCP line between one client and one server, on loopback, that the
//! test can cut and mend: what a node sees when the network between it
//! and NATS fails, without touching anyone else's connection. Cut, it
//! closes what it carries and hangs up on every new connection at once;
//! mended, it carries new connections again.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Line {
    /// Where the client connects instead of the server.
    pub addr: SocketAddr,
    up: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Line {
    /// A line to `server`, up.
    pub async fn open(server: SocketAddr) -> Line {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(watch::channel(true).0);
        let carrying = up.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*carrying.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut = carrying.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(server).await else {
                        return;
                    };
                    // Ends when either side closes or the line is cut;
                    // dropping both streams closes them.
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Line { addr, up, task }
    }

    /// Closes every connection on the line, and every new one at once.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Carries new connections again.
    pub fn mend(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
