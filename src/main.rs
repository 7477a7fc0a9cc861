use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    // GLib 2.74 (Debian 12) keeps freed slices in per-thread magazines that
    // never go back to the system: each torn-down session's pipelines left
    // about 1 MiB behind (docs/benchmarks.md, "Idle session cost"). From
    // 2.76 on, slices are plain malloc anyway. Set before any thread
    // exists, since setenv is not thread-safe, and before GLib starts.
    if std::env::var_os("G_SLICE").is_none() {
        std::env::set_var("G_SLICE", "always-malloc");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("syncreel=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    syncreel::cli::run(syncreel::cli::Cli::parse()).await
}
