//! The `file` connector plugin (`-c file:PATH[:format=…,cache_size=…,writable,map=…]`): dump
//! files behind `memlens-plugin`'s [`ConnectorPlugin`] trait, exported from the `cdylib`
//! as `MEMLENS_CONNECTOR_FILE` and usable statically through the same type.

use std::sync::Arc;

use memlens_core::{MemoryMap, Os, PhysicalTarget};
use memlens_plugin::{ArgDecl, ArgSpec, Args, BoxError, ConnectorPlugin};

use crate::{open_dump, DumpOptions, FormatChoice};

/// The `file` connector plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilePlugin;

impl ConnectorPlugin for FilePlugin {
    const NAME: &'static str = "file";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "dump files: raw, ELF core, kdump (normal and flattened), LiME, AVML; detected by content";

    fn args() -> ArgSpec {
        ArgSpec::new()
            .target("path of the dump file", true)
            .arg(
                ArgDecl::string(
                    "format",
                    "auto, raw, elf, kdump, lime or avml (default: detect)",
                )
                .default("auto"),
            )
            .arg(
                ArgDecl::size("cache_size", "decompressed-page cache for kdump/AVML")
                    .default("64MiB"),
            )
            .arg(ArgDecl::flag(
                "writable",
                "open a raw image writable (only on explicit request)",
            ))
            .arg(ArgDecl::string(
                "map",
                "TOML memory map placing a raw image's file ranges at guest-physical addresses",
            ))
    }

    fn create(args: &Args, _input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget, BoxError> {
        let path = args
            .target()
            .ok_or("the file connector needs a path: -c file:PATH")?;
        let format: FormatChoice = args.get("format").unwrap_or("auto").parse()?;
        let opts = DumpOptions {
            format,
            cache_bytes: args.size("cache_size")?.unwrap_or(64 << 20),
            writable: args.flag("writable"),
            map: args
                .get("map")
                .map(|m| MemoryMap::load(std::path::Path::new(m)))
                .transpose()?,
        };
        Ok(open_dump(path, &opts)?.target())
    }
}

memlens_plugin::export_connector!(FILE = FilePlugin);
