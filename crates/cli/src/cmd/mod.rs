//! One module per command.

pub mod bench;
pub mod info;
pub mod read;
