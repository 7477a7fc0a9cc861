use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("syncreel=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    syncreel::cli::run(syncreel::cli::Cli::parse()).await
}
