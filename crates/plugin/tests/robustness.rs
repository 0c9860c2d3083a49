//! No input string or file makes the host panic: property tests over the argument parser
//! and the analyzer (random bytes, and a real plugin truncated or corrupted at random).

mod common;

use std::path::Path;

use memlens_plugin::analyzer::analyze_bytes;
use memlens_plugin::{ArgDecl, ArgSpec, Args, ChainSpec, MiddlewareSpec, PluginSpec};
use proptest::prelude::*;

fn spec() -> ArgSpec {
    ArgSpec::new()
        .target("t", false)
        .arg(ArgDecl::string("a", "a"))
        .arg(ArgDecl::size("s", "s"))
        .arg(ArgDecl::flag("f", "f"))
        .default_arg("a")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn argument_strings_never_panic(s in r#"[a-z0-9_:,="'\\ \x00-\x7fé]{0,40}"#) {
        let _ = PluginSpec::parse(&s);
        let _ = Args::parse("p", &spec(), Some(&s), &s);
        let _ = MiddlewareSpec::parse(&s);
        let _ = ChainSpec::parse_cli(&["-c", s.as_str(), "-o", s.as_str()]);
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = analyze_bytes(Path::new("random.so"), &b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn corrupted_plugins_never_panic(
        cut in 0usize..100,
        flips in proptest::collection::vec((0usize..1_000_000, any::<u8>()), 1..64),
    ) {
        let good = std::fs::read(common::built().join(common::TESTCONN)).unwrap();
        let mut b = good[..good.len() * (cut + 1) / 100].to_vec();
        // Flip bytes mostly in the headers and tables near the start of the file.
        for (at, v) in flips {
            let len = b.len().max(1);
            if let Some(x) = b.get_mut(at % len.min(65536)) {
                *x ^= v;
            }
        }
        if let Ok(a) = analyze_bytes(Path::new("corrupt.so"), &b) {
            for d in a.descriptors {
                // A descriptor that survived corruption was fully checked.
                if d.problem.is_none() {
                    prop_assert_eq!(d.abi_version, memlens_plugin::abi::ABI_VERSION);
                }
            }
        }
    }
}
