//! One module per command.

pub mod bench;
pub mod bench_cli;
pub mod dump;
pub mod info;
pub mod maps;
pub mod modules;
pub mod plugins;
pub mod ps;
pub mod read;
pub mod search;
pub mod strings;
pub mod translate;
pub mod write;
