//! The `syncreel` binary as a user runs it: serve, create a session from
//! the command line, and stop cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_syncreel");

#[test]
fn serve_then_create_a_session_from_the_cli_then_stop_on_sigterm() {
    let data = std::env::temp_dir().join(format!("syncreel-cli-{}", std::process::id()));
    let mut server = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("SYNCREEL_LIMITS__MAX_PARTICIPANTS", "7")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(data.is_dir(), "the data dir is created");
    // No token configured: the server made one and keeps it in its data dir.
    let operator = std::fs::read_to_string(data.join("operator-token")).unwrap();
    let operator = operator.trim();
    let unauthorized = Command::new(BIN)
        .args(["session", "create", "--server", &base, "--title", "x"])
        .args(["--fps", "24", "--duration-frames", "5"])
        .env("SYNCREEL_ADMIN_TOKEN", "guess")
        .output()
        .unwrap();
    assert!(!unauthorized.status.success());
    assert!(String::from_utf8_lossy(&unauthorized.stderr).contains("unauthorized"));

    let out = Command::new(BIN)
        .args([
            "session",
            "create",
            "--server",
            &base,
            "--title",
            "Reel 2 v5",
            "--admin-token",
            operator,
        ])
        .args([
            "--fps",
            "24000/1001",
            "--duration-frames",
            "14386",
            "--start-timecode",
            "01:00:00:00",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let links: Vec<&str> = text.lines().filter(|l| l.contains("#token=")).collect();
    assert_eq!(links.len(), 3, "{text}");
    for (line, role) in links.iter().zip(["host", "reviewer", "viewer"]) {
        assert!(line.starts_with(role), "{line}");
        assert!(line.contains(&format!("{base}/s/")), "{line}");
    }

    let refused = Command::new(BIN)
        .args([
            "session",
            "create",
            "--server",
            &base,
            "--title",
            "x",
            "--fps",
            "23",
            "--duration-frames",
            "5",
            "--admin-token",
            operator,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("bad_fps"));

    // A passcode for every link: the server says so, and refuses a short one.
    let create = |passcode: &str| {
        Command::new(BIN)
            .args(["session", "create", "--server", &base, "--title", "Locked"])
            .args([
                "--fps",
                "24",
                "--duration-frames",
                "5",
                "--passcode",
                passcode,
            ])
            .env("SYNCREEL_ADMIN_TOKEN", operator)
            .output()
            .unwrap()
    };
    let short = create("  ab ");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("bad_passcode"));
    let locked = create("open sesame");
    assert!(locked.status.success());
    let text = String::from_utf8(locked.stdout).unwrap();
    let links: Vec<&str> = text.lines().filter(|l| l.contains("#token=")).collect();
    assert_eq!(links.len(), 3, "{text}");
    assert!(
        links.iter().all(|l| l.ends_with("(needs the passcode)")),
        "{text}"
    );
    assert!(!text.contains("open sesame"));

    // Several files make a playlist session: versions of one item.
    let media = data.join("media");
    let spec = syncreel::media::demo_clip::DemoClipSpec {
        width: 160,
        height: 90,
        frames: 12,
        ..Default::default()
    };
    for (name, frames) in [("v1.mov", 12), ("v2.mov", 13)] {
        let spec = syncreel::media::demo_clip::DemoClipSpec { frames, ..spec };
        syncreel::media::demo_clip::ensure(&media.join(name), &spec).unwrap();
    }
    let out = Command::new(BIN)
        .args(["session", "create", "--server", &base, "--title", "Shot 5"])
        .args(["--media", "v1.mov", "--media", "v2.mov", "--item", "Shot 5"])
        .env("SYNCREEL_ADMIN_TOKEN", operator)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("#token=")).count(), 3);

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(server.wait()));
    let exit = exited
        .recv_timeout(Duration::from_secs(10))
        .expect("server stops on SIGTERM")
        .unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_bad_config_is_refused_with_a_reason() {
    let out = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("SYNCREEL_SESSION__DRIVER_GRACE_MS", "60000")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("driver_grace_ms"));
}
