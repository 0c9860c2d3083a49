//! Plugin argument strings. **Key decision: every plugin declares its arguments
//! ([`ArgSpec`]), and anything undeclared or invalid is an error that lists the valid
//! keys** — memflow silently drops unknown keys, which turns a typo into a wrong result.
//!
//! Syntax of one step (`-c`/`-o` value):
//!
//! ```text
//! name[:target[:key=value,flag,key="quoted, value"[:middleware]]]
//! ```
//!
//! - Sections are separated by `:`, arguments by `,`, keys from values by the first `=`.
//! - Double quotes protect `, : =` and allow backslash escapes inside (`\"`, `\\`, any
//!   `\x` → `x`); single quotes protect everything with no escapes. Quotes may appear
//!   anywhere in a token and are removed (`a"b,c"d` → `ab,cd`). An unterminated quote is
//!   an error.
//! - In the argument section, a first bare token (no `=`) is the plugin's *default
//!   argument* ([`ArgSpec::default_arg`]); later bare tokens are boolean flags.
//! - Sizes take decimal or hex with binary units (`64MiB`, `0x1000`).
//! - The fourth section configures host-side middleware around the connector's memory
//!   ([`MiddlewareSpec`]): `zero_gaps`, `cache`, `cache_size`, `cache_page_size`,
//!   `cache_time`, `delay`, `metrics`.
//!
//! A `-c` value split into its sections, then its arguments checked against what the
//! plugin declares:
//!
//! ```
//! use memlens_plugin::{ArgDecl, ArgSpec, Args, PluginSpec};
//!
//! let step = PluginSpec::parse(r#"file:guest.bin:raw,map="my map.toml",offset=0x1000,ro:cache_size=64MiB"#)?;
//! assert_eq!(step.name, "file");
//! assert_eq!(step.target.as_deref(), Some("guest.bin"));
//! assert_eq!(step.middleware.cache_size, Some(64 << 20)); // implies the cache
//! assert!(step.middleware.cache);
//!
//! // What the plugin declares (its `args()`), and the parse it does on its side.
//! let spec = ArgSpec::new()
//!     .target("path of the dump", true)
//!     .arg(ArgDecl::string("format", "dump format").default("auto"))
//!     .default_arg("format") // what a first bare token sets
//!     .arg(ArgDecl::path("map", "TOML memory map"))
//!     .arg(ArgDecl::number("offset", "first byte of the image"))
//!     .arg(ArgDecl::flag("ro", "refuse writes"))
//!     .arg(ArgDecl::size("cache", "page cache size").default("4MiB"));
//! let args = Args::parse(&step.name, &spec, step.target.as_deref(), &step.args)?;
//! assert_eq!(args.target(), Some("guest.bin"));
//! assert_eq!(args.get("format"), Some("raw")); // the first bare token
//! assert!(args.flag("ro")); // a later bare token is a flag
//! assert_eq!(args.get("map"), Some("my map.toml")); // quotes removed
//! assert_eq!(args.number("offset")?, Some(0x1000));
//! assert_eq!(args.size("cache")?, Some(4 << 20)); // the default
//!
//! // A typo is an error that lists the valid keys, never silently dropped.
//! let err = Args::parse("file", &spec, Some("guest.bin"), "fromat=raw").unwrap_err();
//! println!("{err}");
//! assert!(err.to_string().contains("fromat") && err.to_string().contains("offset"));
//! # Ok::<(), memlens_plugin::Error>(())
//! ```
//!
//! The host splits the sections; the argument section crosses the ABI as its raw text and
//! the plugin parses it against its own spec with [`Args::parse`], so a plugin built
//! against this crate validates exactly as the statically linked one does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};

/// The type of an argument's value, checked when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgKind {
    /// Any string.
    String,
    /// A boolean flag: bare (`flag`) or `flag=true|false|yes|no|on|off|1|0`.
    Flag,
    /// A size with optional binary unit (`4k`, `64MiB`, `0x1000`).
    Size,
    /// An unsigned number, decimal or `0x` hex.
    Number,
    /// A filesystem path.
    Path,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

impl std::fmt::Display for ArgKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgKind::String => f.write_str("string"),
            ArgKind::Flag => f.write_str("flag"),
            ArgKind::Size => f.write_str("size"),
            ArgKind::Number => f.write_str("number"),
            ArgKind::Path => f.write_str("path"),
            ArgKind::Choice(c) => write!(f, "one of {}", c.join("|")),
        }
    }
}

/// A validator: `Err(message)` rejects the value.
pub type Validator = fn(&str) -> std::result::Result<(), String>;

/// The declaration of one argument.
#[derive(Debug, Clone, Serialize)]
pub struct ArgDecl {
    /// Key (`[a-z0-9_]+`).
    pub name: &'static str,
    /// One line for the help.
    pub description: &'static str,
    /// Value type.
    pub kind: ArgKind,
    /// Whether the argument must be given.
    pub required: bool,
    /// Value used when the argument is absent.
    pub default: Option<&'static str>,
    /// Extra check on the value.
    #[serde(skip)]
    pub validator: Option<Validator>,
}

impl ArgDecl {
    /// A declaration of `kind`.
    pub const fn new(name: &'static str, kind: ArgKind, description: &'static str) -> Self {
        Self {
            name,
            description,
            kind,
            required: false,
            default: None,
            validator: None,
        }
    }
    /// A string argument.
    pub const fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, ArgKind::String, description)
    }
    /// A boolean flag.
    pub const fn flag(name: &'static str, description: &'static str) -> Self {
        Self::new(name, ArgKind::Flag, description)
    }
    /// A size argument.
    pub const fn size(name: &'static str, description: &'static str) -> Self {
        Self::new(name, ArgKind::Size, description)
    }
    /// A number argument.
    pub const fn number(name: &'static str, description: &'static str) -> Self {
        Self::new(name, ArgKind::Number, description)
    }
    /// A path argument.
    pub const fn path(name: &'static str, description: &'static str) -> Self {
        Self::new(name, ArgKind::Path, description)
    }
    /// Marks the argument required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Sets the default value.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    /// Adds a validator.
    pub const fn validate(mut self, v: Validator) -> Self {
        self.validator = Some(v);
        self
    }

    fn check(&self, value: &str) -> std::result::Result<(), String> {
        match self.kind {
            ArgKind::String | ArgKind::Path => {}
            ArgKind::Flag => {
                parse_bool(value).ok_or_else(|| format!("'{value}' is not true/false"))?;
            }
            ArgKind::Size => {
                memlens_core::size::parse_size(value).map_err(|e| e.to_string())?;
            }
            ArgKind::Number => {
                memlens_core::addr::parse_u64(value).map_err(|e| e.to_string())?;
            }
            ArgKind::Choice(c) => {
                if !c.contains(&value) {
                    return Err(format!("'{value}' is not one of {}", c.join(", ")));
                }
            }
        }
        match self.validator {
            Some(v) => v(value),
            None => Ok(()),
        }
    }
}

/// The declaration of a plugin's target section.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TargetDecl {
    /// What the target names (`path of the dump`, `VM name or pid`).
    pub description: &'static str,
    /// Whether a target must be given.
    pub required: bool,
}

/// Everything a plugin accepts: target, default argument and keyed arguments.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArgSpec {
    /// The target section, or `None` if the plugin takes no target.
    pub target: Option<TargetDecl>,
    /// Key that a first bare token in the argument section sets.
    pub default_arg: Option<&'static str>,
    /// The keyed arguments.
    pub args: Vec<ArgDecl>,
}

impl ArgSpec {
    /// An empty spec: no target, no arguments.
    pub fn new() -> Self {
        Self::default()
    }
    /// Declares the target section.
    pub fn target(mut self, description: &'static str, required: bool) -> Self {
        self.target = Some(TargetDecl {
            description,
            required,
        });
        self
    }
    /// Adds an argument.
    pub fn arg(mut self, decl: ArgDecl) -> Self {
        self.args.push(decl);
        self
    }
    /// Makes `key` (which must be declared) the default argument.
    pub fn default_arg(mut self, key: &'static str) -> Self {
        self.default_arg = Some(key);
        self
    }

    fn find(&self, key: &str) -> Option<&ArgDecl> {
        self.args.iter().find(|a| a.name == key)
    }

    fn valid_keys(&self) -> String {
        if self.args.is_empty() {
            return "this plugin takes no arguments".into();
        }
        let keys: Vec<_> = self.args.iter().map(|a| a.name).collect();
        format!("valid keys: {}", keys.join(", "))
    }

    /// The help text of the arguments (one line per argument).
    pub fn help(&self) -> String {
        let mut s = String::new();
        match self.target {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "target: {}{}",
                    t.description,
                    if t.required { " (required)" } else { "" }
                );
            }
            None => s.push_str("target: none\n"),
        }
        if self.args.is_empty() {
            s.push_str("arguments: none\n");
            return s;
        }
        s.push_str("arguments:\n");
        for a in &self.args {
            let mut extra = Vec::new();
            if a.required {
                extra.push("required".to_string());
            }
            if let Some(d) = a.default {
                extra.push(format!("default {d}"));
            }
            if self.default_arg == Some(a.name) {
                extra.push("default argument".to_string());
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" [{}]", extra.join(", "))
            };
            let _ = writeln!(
                s,
                "  {:<18} {:<10} {}{}",
                a.name,
                a.kind.to_string(),
                a.description,
                extra
            );
        }
        s
    }
}

/// Parsed, validated arguments of one plugin step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Args {
    /// The target section, unquoted (`None` when empty or absent).
    pub target: Option<String>,
    /// Every declared argument that was given or has a default, unquoted. Flags hold
    /// `true`/`false`.
    pub values: BTreeMap<String, String>,
}

impl Args {
    /// Parses the raw argument section `raw` (still quoted) against `spec`, with the
    /// already-unquoted `target`. `plugin` names the plugin in errors.
    pub fn parse(plugin: &str, spec: &ArgSpec, target: Option<&str>, raw: &str) -> Result<Args> {
        let err = |message: String| Error::Args {
            plugin: plugin.to_string(),
            message,
        };
        let target = target.filter(|t| !t.is_empty()).map(str::to_string);
        match (spec.target, &target) {
            (None, Some(t)) => {
                return Err(err(format!("takes no target, but '{t}' was given")));
            }
            (
                Some(TargetDecl {
                    required: true,
                    description,
                }),
                None,
            ) => {
                return Err(err(format!("a target is required ({description})")));
            }
            _ => {}
        }
        let mut values = BTreeMap::new();
        let tokens = if raw.is_empty() {
            Vec::new()
        } else {
            split_top(raw, b',')?
        };
        for (i, tok) in tokens.iter().enumerate() {
            if tok.is_empty() {
                return Err(err(format!(
                    "empty argument at position {} in '{raw}'",
                    i + 1
                )));
            }
            let (key, value, as_flag) = match split_top(tok, b'=')?.as_slice() {
                [bare] => {
                    let bare = unquote(bare)?;
                    match (i, spec.default_arg) {
                        (0, Some(def)) => (def.to_string(), bare, false),
                        _ => (bare, "true".to_string(), true),
                    }
                }
                [k, _, ..] => {
                    // Everything after the first unquoted '=' is the value.
                    let rest = &tok[k.len() + 1..];
                    (unquote(k)?, unquote(rest)?, false)
                }
                [] => return Err(err(format!("empty argument in '{raw}'"))),
            };
            let Some(decl) = spec.find(&key) else {
                return Err(err(format!(
                    "unknown argument '{key}'; {}",
                    spec.valid_keys()
                )));
            };
            if decl.kind == ArgKind::Flag {
                // A bare flag is "true"; normalise explicit spellings.
                let b = parse_bool(&value)
                    .ok_or_else(|| err(format!("argument '{key}': '{value}' is not true/false")))?;
                if values.insert(key.clone(), b.to_string()).is_some() {
                    return Err(err(format!("argument '{key}' given twice")));
                }
                continue;
            }
            if as_flag {
                return Err(err(format!(
                    "'{key}' is not a flag; write {key}=VALUE ({})",
                    decl.description
                )));
            }
            decl.check(&value)
                .map_err(|m| err(format!("argument '{key}': {m}")))?;
            if values.insert(key.clone(), value).is_some() {
                return Err(err(format!("argument '{key}' given twice")));
            }
        }
        for decl in &spec.args {
            if values.contains_key(decl.name) {
                continue;
            }
            if decl.required {
                return Err(err(format!(
                    "missing required argument '{}' ({})",
                    decl.name, decl.description
                )));
            }
            if let Some(d) = decl.default {
                values.insert(decl.name.to_string(), d.to_string());
            }
        }
        Ok(Args { target, values })
    }

    /// The target, if any.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }
    /// The value of `key`, if given or defaulted.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
    /// Whether flag `key` is set.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).and_then(parse_bool).unwrap_or(false)
    }
    /// The value of size argument `key`.
    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(memlens_core::size::parse_size)
            .transpose()
            .map_err(|e| Error::Core(e.into()))
    }
    /// The value of number argument `key`.
    pub fn number(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(memlens_core::addr::parse_u64)
            .transpose()
            .map_err(|e| Error::Core(e.into()))
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Splits `s` at every unquoted `sep`, keeping quotes in the pieces. Errors on an
/// unterminated quote.
pub fn split_top(s: &str, sep: u8) -> Result<Vec<&str>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let open = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(unterminated(s, open)),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
            }
            b'\'' => {
                let open = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(unterminated(s, open)),
                        Some(b'\'') => break,
                        Some(_) => i += 1,
                    }
                }
            }
            c if c == sep => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    Ok(out)
}

fn unterminated(s: &str, at: usize) -> Error {
    Error::Syntax {
        input: s.to_string(),
        message: format!("unterminated quote starting at byte {at}"),
    }
}

/// Removes quotes and resolves backslash escapes inside double quotes.
pub fn unquote(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => loop {
                match chars.next() {
                    None => return Err(unterminated(s, at)),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, e)) => out.push(e),
                        None => return Err(unterminated(s, at)),
                    },
                    Some((_, c)) => out.push(c),
                }
            },
            '\'' => loop {
                match chars.next() {
                    None => return Err(unterminated(s, at)),
                    Some((_, '\'')) => break,
                    Some((_, c)) => out.push(c),
                }
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Host-side middleware requested in the fourth section of a connector step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MiddlewareSpec {
    /// Put a page cache in front of the connector (implied by any `cache_*` key).
    pub cache: bool,
    /// Cache capacity in bytes.
    pub cache_size: Option<u64>,
    /// Cache page size in bytes.
    pub cache_page_size: Option<u64>,
    /// Validity of cache entries (live targets).
    pub cache_time: Option<Duration>,
    /// Simulated latency per batch.
    pub delay: Option<Duration>,
    /// Count reads and latencies.
    pub metrics: bool,
    /// Read unbacked bytes (gaps, past the end) as zeros instead of failing.
    pub zero_gaps: bool,
}

impl MiddlewareSpec {
    /// The declaration of the middleware section (also printed in help).
    pub fn spec() -> ArgSpec {
        ArgSpec::new()
            .arg(ArgDecl::flag(
                "cache",
                "page cache in front of the connector",
            ))
            .arg(ArgDecl::size(
                "cache_size",
                "cache capacity, at most 64GiB (implies cache)",
            ))
            .arg(ArgDecl::size(
                "cache_page_size",
                "cache page size, a power of two, 64 to 2MiB (implies cache)",
            ))
            .arg(
                ArgDecl::string(
                    "cache_time",
                    "entry validity, e.g. 100ms, 2s (bare number = ms; implies cache)",
                )
                .validate(|v| parse_duration(v).map(|_| ())),
            )
            .arg(
                ArgDecl::string(
                    "delay",
                    "latency added per batch, e.g. 50us, 1ms (bare = ms)",
                )
                .validate(|v| parse_duration(v).map(|_| ())),
            )
            .arg(ArgDecl::flag("metrics", "count reads and latencies"))
            .arg(ArgDecl::flag(
                "zero_gaps",
                "read unbacked bytes (memory-map gaps, past the end) as zeros instead of failing",
            ))
    }

    /// Parses the raw middleware section.
    pub fn parse(raw: &str) -> Result<MiddlewareSpec> {
        let a = Args::parse("middleware", &Self::spec(), None, raw)?;
        let dur = |k: &str| -> Result<Option<Duration>> {
            a.get(k)
                .map(|v| {
                    parse_duration(v).map_err(|m| Error::Args {
                        plugin: "middleware".into(),
                        message: m,
                    })
                })
                .transpose()
        };
        let cache_size = a.size("cache_size")?;
        let cache_page_size = a.size("cache_page_size")?;
        memlens_core::middleware::cache::check_settings(cache_page_size, cache_size).map_err(
            |m| Error::Args {
                plugin: "middleware".into(),
                message: m,
            },
        )?;
        let cache_time = dur("cache_time")?;
        Ok(MiddlewareSpec {
            cache: a.flag("cache")
                || cache_size.is_some()
                || cache_page_size.is_some()
                || cache_time.is_some(),
            cache_size,
            cache_page_size,
            cache_time,
            delay: dur("delay")?,
            metrics: a.flag("metrics"),
            zero_gaps: a.flag("zero_gaps"),
        })
    }

    /// Whether any middleware was requested.
    pub fn is_empty(&self) -> bool {
        *self == MiddlewareSpec::default()
    }
}

/// Parses `10ms`, `50us`, `2s`, `100ns`; a bare number is milliseconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 10ms, 50us, 2s)"))?;
    Ok(match unit.trim() {
        "" | "ms" => Duration::from_millis(n),
        "ns" => Duration::from_nanos(n),
        "us" | "µs" => Duration::from_micros(n),
        "s" => Duration::from_secs(n),
        _ => return Err(format!("'{s}': unknown duration unit (ns, us, ms, s)")),
    })
}

/// One parsed `-c`/`-o` value: `name[:target[:args[:middleware]]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginSpec {
    /// Plugin name.
    pub name: String,
    /// Target, unquoted; `None` when absent or empty.
    pub target: Option<String>,
    /// Argument section, raw (still quoted): the plugin parses it with [`Args::parse`].
    pub args: String,
    /// Middleware section, parsed.
    pub middleware: MiddlewareSpec,
}

impl PluginSpec {
    /// Parses one step. Errors say what is wrong and where.
    pub fn parse(input: &str) -> Result<PluginSpec> {
        let syntax = |message: String| Error::Syntax {
            input: input.to_string(),
            message,
        };
        let sections = split_top(input, b':')?;
        if sections.len() > 4 {
            return Err(syntax(format!(
                "{} ':'-separated sections, at most 4 (name:target:args:middleware); \
                 quote values that contain ':'",
                sections.len()
            )));
        }
        let name = unquote(sections.first().copied().unwrap_or(""))?;
        if name.is_empty() {
            return Err(syntax("the plugin name is empty".into()));
        }
        if !valid_name(&name) {
            return Err(syntax(format!(
                "plugin name '{name}' may only contain a-z, 0-9 and _"
            )));
        }
        let target = match sections.get(1) {
            Some(t) => Some(unquote(t)?).filter(|t| !t.is_empty()),
            None => None,
        };
        let args = sections.get(2).copied().unwrap_or("").to_string();
        // Check the quoting of the argument section now, so errors name the whole input.
        split_top(&args, b',')?;
        let middleware = match sections.get(3) {
            Some(m) => MiddlewareSpec::parse(m)?,
            None => MiddlewareSpec::default(),
        };
        Ok(PluginSpec {
            name,
            target,
            args,
            middleware,
        })
    }
}

/// Whether `name` is a valid plugin name (`[a-z0-9_]+`, at most 31 bytes).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
