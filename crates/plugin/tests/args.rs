//! Table-driven tests of the argument syntax: every quoting and escaping case, defaults,
//! flags, validators, unknown keys, middleware, and the `-c/-o` chain parser.

use std::time::Duration;

use memlens_plugin::args::{split_top, unquote};
use memlens_plugin::{
    ArgDecl, ArgKind, ArgSpec, Args, ChainSpec, MiddlewareSpec, PluginKind, PluginSpec,
};

fn spec() -> ArgSpec {
    ArgSpec::new()
        .target("a thing", false)
        .arg(ArgDecl::string("name", "a name"))
        .arg(ArgDecl::size("size", "a size").default("4k"))
        .arg(ArgDecl::number("addr", "a number"))
        .arg(ArgDecl::path("path", "a path"))
        .arg(ArgDecl::flag("ro", "read only"))
        .arg(ArgDecl::flag("fast", "go fast"))
        .arg(ArgDecl::new("mode", ArgKind::Choice(&["a", "b"]), "a mode"))
        .arg(ArgDecl::string("even", "even length").validate(|v| {
            if v.len() % 2 == 0 {
                Ok(())
            } else {
                Err(format!("'{v}' has odd length"))
            }
        }))
        .default_arg("name")
}

#[test]
fn unquote_table() {
    let cases: &[(&str, Option<&str>)] = &[
        ("plain", Some("plain")),
        ("\"a,b\"", Some("a,b")),
        ("\"a:b=c\"", Some("a:b=c")),
        ("'a,b:c=d'", Some("a,b:c=d")),
        (r#""a\"b""#, Some("a\"b")),
        (r#""a\\b""#, Some("a\\b")),
        (r#""\x""#, Some("x")),
        (r#"'no\escape'"#, Some("no\\escape")),
        (r#"a"b,c"d"#, Some("ab,cd")),
        (r#"C:\dir"#, Some("C:\\dir")),
        ("\"\"", Some("")),
        ("\"open", None),
        ("'open", None),
        (r#""trailing\"#, None),
        ("ünï\"cödé\"", Some("ünïcödé")),
    ];
    for (input, want) in cases {
        let got = unquote(input).ok();
        assert_eq!(got.as_deref(), *want, "unquote({input:?})");
    }
}

#[test]
fn split_table() {
    let cases: &[(&str, u8, Option<&[&str]>)] = &[
        ("a,b,c", b',', Some(&["a", "b", "c"])),
        ("a,\"b,c\",d", b',', Some(&["a", "\"b,c\"", "d"])),
        ("x:'y:z'", b':', Some(&["x", "'y:z'"])),
        (r#"k="a\"b,c""#, b',', Some(&[r#"k="a\"b,c""#])),
        ("", b',', Some(&[""])),
        ("a,", b',', Some(&["a", ""])),
        ("\"a,b", b',', None),
    ];
    for (input, sep, want) in cases {
        let got = split_top(input, *sep).ok();
        assert_eq!(got.as_deref(), *want, "split({input:?})");
    }
}

#[test]
fn args_table() {
    // (target, raw args, Ok(expected key=value pairs) | Err(substring of the message))
    type Case<'a> = (
        Option<&'a str>,
        &'a str,
        Result<&'a [(&'a str, &'a str)], &'a str>,
    );
    let cases: &[Case<'_>] = &[
        (None, "", Ok(&[("size", "4k")])),
        (None, "bob", Ok(&[("name", "bob"), ("size", "4k")])),
        (
            None,
            "bob,ro",
            Ok(&[("name", "bob"), ("ro", "true"), ("size", "4k")]),
        ),
        // The first bare token is the default argument, even if it looks like a flag.
        (None, "ro", Ok(&[("name", "ro"), ("size", "4k")])),
        (
            None,
            "name=x,ro,fast",
            Ok(&[
                ("fast", "true"),
                ("name", "x"),
                ("ro", "true"),
                ("size", "4k"),
            ]),
        ),
        (None, "ro=false", Ok(&[("ro", "false"), ("size", "4k")])),
        (None, "ro=maybe", Err("not true/false")),
        (None, "size=64MiB", Ok(&[("size", "64MiB")])),
        (None, "size=0x1000", Ok(&[("size", "0x1000")])),
        (None, "size=lots", Err("argument 'size'")),
        (
            None,
            "addr=0xffff",
            Ok(&[("addr", "0xffff"), ("size", "4k")]),
        ),
        (None, "addr=zz", Err("argument 'addr'")),
        (None, "mode=a", Ok(&[("mode", "a"), ("size", "4k")])),
        (None, "mode=c", Err("not one of a, b")),
        (None, "even=ab", Ok(&[("even", "ab"), ("size", "4k")])),
        (None, "even=abc", Err("odd length")),
        (
            None,
            "nmae=x",
            Err("unknown argument 'nmae'; valid keys: name, size"),
        ),
        (None, "name=x,name=y", Err("given twice")),
        (None, "name=x,,ro", Err("empty argument")),
        (
            None,
            "name=\"a,b=c:d\"",
            Ok(&[("name", "a,b=c:d"), ("size", "4k")]),
        ),
        (
            None,
            "path='/tmp/a b,c'",
            Ok(&[("path", "/tmp/a b,c"), ("size", "4k")]),
        ),
        (
            None,
            r#"name="q\"uote""#,
            Ok(&[("name", "q\"uote"), ("size", "4k")]),
        ),
        (None, "name=a=b", Ok(&[("name", "a=b"), ("size", "4k")])),
        (None, "x,name", Err("'name' is not a flag")),
        (Some("dev0"), "", Ok(&[("size", "4k")])),
    ];
    for (target, raw, want) in cases {
        let got = Args::parse("t", &spec(), *target, raw);
        match (want, got) {
            (Ok(pairs), Ok(a)) => {
                let got: Vec<(&str, &str)> = a
                    .values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(&got, pairs, "args {raw:?}");
                assert_eq!(a.target.as_deref(), *target);
            }
            (Err(sub), Err(e)) => {
                let m = e.to_string();
                assert!(m.contains(sub), "args {raw:?}: error {m:?} lacks {sub:?}");
            }
            (w, g) => panic!("args {raw:?}: wanted {w:?}, got {g:?}"),
        }
    }
}

#[test]
fn required_and_target_rules() {
    let s = ArgSpec::new()
        .target("device", true)
        .arg(ArgDecl::string("key", "k").required());
    let e = Args::parse("p", &s, None, "key=1").unwrap_err().to_string();
    assert!(e.contains("a target is required (device)"), "{e}");
    let e = Args::parse("p", &s, Some("d"), "").unwrap_err().to_string();
    assert!(e.contains("missing required argument 'key'"), "{e}");
    let none = ArgSpec::new();
    let e = Args::parse("p", &none, Some("d"), "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("takes no target"), "{e}");
    let e = Args::parse("p", &none, None, "x=1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("takes no arguments"), "{e}");
}

#[test]
fn plugin_spec_table() {
    type Case<'a> = (
        &'a str,
        Result<(&'a str, Option<&'a str>, &'a str), &'a str>,
    );
    let cases: &[Case<'_>] = &[
        ("file", Ok(("file", None, ""))),
        ("file:/dump.raw", Ok(("file", Some("/dump.raw"), ""))),
        ("file::map=a.toml", Ok(("file", None, "map=a.toml"))),
        ("qemu:vm1:a=1,b", Ok(("qemu", Some("vm1"), "a=1,b"))),
        ("file:\"C:\\\\d.raw\"", Ok(("file", Some("C:\\d.raw"), ""))),
        ("file:'a:b'", Ok(("file", Some("a:b"), ""))),
        ("file:x:k=\"v:w\"", Ok(("file", Some("x"), "k=\"v:w\""))),
        ("file:x:y:cache:extra", Err("5 ':'-separated sections")),
        ("", Err("name is empty")),
        ("Fi-le", Err("may only contain")),
        ("file:\"open", Err("unterminated quote")),
        ("file:x:k=\"open", Err("unterminated quote")),
    ];
    for (input, want) in cases {
        match (want, PluginSpec::parse(input)) {
            (Ok((n, t, a)), Ok(s)) => {
                assert_eq!(
                    (s.name.as_str(), s.target.as_deref(), s.args.as_str()),
                    (*n, *t, *a),
                    "{input}"
                );
            }
            (Err(sub), Err(e)) => {
                let m = e.to_string();
                assert!(m.contains(sub), "{input}: {m:?} lacks {sub:?}");
                assert!(m.contains(input), "{input}: the error names the input: {m}");
            }
            (w, g) => panic!("{input}: wanted {w:?}, got {g:?}"),
        }
    }
}

#[test]
fn middleware_table() {
    let m = PluginSpec::parse("file:x::cache_size=64MiB,cache_time=100ms,delay=50us,metrics")
        .unwrap()
        .middleware;
    assert_eq!(
        m,
        MiddlewareSpec {
            cache: true,
            cache_size: Some(64 << 20),
            cache_page_size: None,
            cache_time: Some(Duration::from_millis(100)),
            delay: Some(Duration::from_micros(50)),
            metrics: true,
            zero_gaps: false,
        }
    );
    let m = MiddlewareSpec::parse("zero_gaps,metrics").unwrap();
    assert!(m.zero_gaps && m.metrics && !m.cache);
    let m = MiddlewareSpec::parse("cache").unwrap();
    assert!(m.cache && !m.metrics && m.cache_size.is_none());
    assert_eq!(
        MiddlewareSpec::parse("delay=2").unwrap().delay,
        Some(Duration::from_millis(2))
    );
    assert!(MiddlewareSpec::parse("cache_page_size=2MiB,cache_size=64GiB").is_ok());
    for (bad, sub) in [
        ("cache_page_size=1000", "power of two"),
        // A page is read whole on every miss; the capacity is what may be allocated.
        ("cache_page_size=4MiB", "64 to 2097152"),
        ("cache_page_size=1TiB", "power of two"),
        (
            "cache_size=65GiB",
            "cache_size 69793218560 is over 68719476736",
        ),
        ("cache_time=1h", "unknown duration unit"),
        ("cash", "unknown argument 'cash'"),
        ("cache_size=big", "cache_size"),
    ] {
        let e = MiddlewareSpec::parse(bad).unwrap_err().to_string();
        assert!(e.contains(sub), "{bad}: {e}");
    }
}

#[test]
fn chain_parser() {
    let c = ChainSpec::parse_cli(&["-o", "native", "-c", "qemu:vm", "--os=linux"]).unwrap();
    let kinds: Vec<_> = c
        .steps
        .iter()
        .map(|s| (s.kind, s.spec.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (PluginKind::Os, "native"),
            (PluginKind::Connector, "qemu"),
            (PluginKind::Os, "linux")
        ]
    );
    assert_eq!(c.steps[1].spec.target.as_deref(), Some("vm"));
    for (words, sub) in [
        (&["-c", "a", "-c", "b"][..], "two connector steps in a row"),
        (&["-o", "a", "--os", "b"][..], "two os steps in a row"),
        (&["-c"][..], "needs a value"),
        (&["file"][..], "unexpected 'file'"),
        (&["-o", "linux:::cache"][..], "middleware"),
    ] {
        let e = ChainSpec::parse_cli(words).unwrap_err().to_string();
        assert!(e.contains(sub), "{words:?}: {e}");
    }
}

#[test]
fn help_lists_declarations() {
    let h = spec().help();
    for needle in [
        "name",
        "default argument",
        "default 4k",
        "one of a|b",
        "target: a thing",
    ] {
        assert!(h.contains(needle), "help lacks {needle:?}:\n{h}");
    }
}
