pub mod clock;
pub mod session;
pub mod timecode;
