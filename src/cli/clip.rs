//! `syncreel clip OUT`: renders a test clip with its frame code burnt into
//! every picture (the demo's clips are made the same way), for trying
//! uploads, version switches and sync by eye or by the test tools that
//! read the code back.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::media::demo_clip::{self, ClipCodec, DemoClipSpec};
use crate::timecode::{FrameRate, Timecode};

#[derive(Debug, Args)]
pub struct ClipArgs {
    /// Where to write the clip (a QuickTime .mov); an existing file is
    /// left as it is.
    pub out: PathBuf,
    /// Frames in the clip.
    #[arg(long, default_value_t = 240)]
    pub frames: u32,
    /// Frame rate, e.g. 24, 25, 24000/1001.
    #[arg(long, default_value = "24000/1001")]
    pub fps: FrameRate,
    /// The first frame's timecode.
    #[arg(long, default_value = "01:00:00:00")]
    pub start: Timecode,
    /// Added to every frame's code, so that versions can be told apart by
    /// their pictures alone.
    #[arg(long, default_value_t = 0)]
    pub code_offset: u32,
    /// An Apple ProRes 422 clip (what gets a review proxy) instead of H.264.
    #[arg(long)]
    pub prores: bool,
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    #[arg(long, default_value_t = 360)]
    pub height: u32,
}

pub fn clip(args: ClipArgs) -> anyhow::Result<()> {
    let spec = DemoClipSpec {
        width: args.width,
        height: args.height,
        rate: args.fps,
        frames: args.frames,
        start: args.start,
        code_offset: args.code_offset,
        codec: if args.prores {
            ClipCodec::ProRes
        } else {
            ClipCodec::H264
        },
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&args.out, &spec)
        .with_context(|| format!("cannot render {}", args.out.display()))?;
    println!("{}", args.out.display());
    Ok(())
}
