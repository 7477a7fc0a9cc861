//! The real server process, for tests that kill and restart it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::common;

const BIN: &str = env!("CARGO_BIN_EXE_syncreel");

/// The real server process on a data dir of our choosing; its media root
/// is `media/` inside it.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Process {
    pub fn start(data: &std::path::Path) -> Process {
        Process::start_with(data, &[])
    }

    /// [`Process::start`] with more configuration, as `SYNCREEL_…` variables.
    pub fn start_with(data: &std::path::Path, env: &[(&str, &str)]) -> Process {
        Process::start_args(data, &[], env)
    }

    /// [`Process::start_with`] with more `serve` flags (e.g. `--cluster`).
    pub fn start_args(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .env("RUST_LOG", "syncreel=warn")
            .env("SYNCREEL_SERVER__ADMIN_TOKEN", common::OPERATOR)
            .env("SYNCREEL_MEDIA__ROOT", data.join("media"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Process { child, addr }
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) =
            common::request(self.addr, "POST", path, Some(common::OPERATOR), Some(body)).await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
