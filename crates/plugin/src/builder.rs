//! Chains of plugins: `-c CONN[:args] -o OS[:args] [-c … -o …]`, in order, each step's
//! output the next step's input. **Key decision: the chain alternates kinds** — a
//! connector's [`PhysicalTarget`] feeds an OS plugin, and an OS (`Arc<dyn Os>`) feeds a
//! connector, which picks one of its processes by its target argument (a VM inside a
//! process: `-o native -c qemu:vm -o linux`). Two steps of the same kind in a row are an
//! error, because there is nothing sensible to hand from one to the other.
//!
//! Plugins are looked up in the [`StaticRegistry`] (the binary's own) and in the
//! [`Inventory`] (files). **Between the two, the highest version wins, and on a tie the
//! statically linked one** ([`file_replaces_static`]): one rule for files and the binary
//! alike, so a newer plugin can be dropped in without rebuilding the binary, while a file
//! of the same version never silently replaces what was linked in (and should a chosen
//! file fail to load, the linked one is used with a warning). Among files the inventory
//! decides (highest version, then search order). A missing plugin is an error listing
//! the available ones with a "did you mean" suggestion.
//!
//! Middleware from a connector step's fourth section wraps its memory, innermost first:
//! `delay` (a slow target), `cache`, `metrics` (what the user sees).

use std::sync::Arc;

use memlens_core::middleware::{CacheConfig, Delay, Metrics, PageCache, ZeroFill};
use memlens_core::{Os, PhysicalMemory, PhysicalTarget};

use crate::args::{MiddlewareSpec, PluginSpec};
use crate::error::{Error, Result};
use crate::inventory::{compare_versions, not_found, Inventory};
use crate::registry::{ConnectorFactory, OsFactory, StaticRegistry};
use crate::traits::PluginKind;

/// Whether a plugin file of `file_version` replaces a statically linked plugin of the same
/// kind and name of `static_version`: only when its version is strictly higher.
pub fn file_replaces_static(file_version: &str, static_version: &str) -> bool {
    compare_versions(file_version, static_version).is_gt()
}

/// One step of a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Connector (`-c`) or OS (`-o`).
    pub kind: PluginKind,
    /// The parsed step.
    pub spec: PluginSpec,
}

/// A parsed, validated chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChainSpec {
    /// Steps in order.
    pub steps: Vec<Step>,
}

impl ChainSpec {
    /// Parses command-line words: `-c X`, `--connector X`, `--connector=X`, `-o X`,
    /// `--os X`, `--os=X`, in any number, in order. Any other word is an error.
    pub fn parse_cli<S: AsRef<str>>(words: &[S]) -> Result<ChainSpec> {
        let mut chain = ChainSpec::default();
        let mut it = words.iter().map(AsRef::as_ref);
        while let Some(w) = it.next() {
            let (kind, value) = match w {
                "-c" | "--connector" => (PluginKind::Connector, it.next()),
                "-o" | "--os" => (PluginKind::Os, it.next()),
                _ => {
                    if let Some(v) = w.strip_prefix("--connector=") {
                        (PluginKind::Connector, Some(v))
                    } else if let Some(v) = w.strip_prefix("--os=") {
                        (PluginKind::Os, Some(v))
                    } else {
                        return Err(Error::Chain(format!(
                            "unexpected '{w}': expected -c CONNECTOR or -o OS"
                        )));
                    }
                }
            };
            let v = value.ok_or_else(|| Error::Chain(format!("'{w}' needs a value")))?;
            chain.push(kind, v)?;
        }
        Ok(chain)
    }

    /// Appends a step, checking that kinds alternate.
    pub fn push(&mut self, kind: PluginKind, value: &str) -> Result<()> {
        let spec = PluginSpec::parse(value)?;
        if kind == PluginKind::Os && !spec.middleware.is_empty() {
            return Err(Error::Chain(format!(
                "'{value}': middleware (4th section) applies to connectors only"
            )));
        }
        if let Some(prev) = self.steps.last() {
            if prev.kind == kind {
                return Err(Error::Chain(format!(
                    "'{}' follows '{}': two {kind} steps in a row (a connector feeds an OS, \
                     an OS feeds a connector)",
                    spec.name, prev.spec.name
                )));
            }
        }
        self.steps.push(Step { kind, spec });
        Ok(())
    }
}

/// Metrics of one connector step: its name and the counters around its memory.
pub type StepMetrics = (String, Arc<Metrics<Arc<dyn PhysicalMemory>>>);

/// What a chain produced.
pub enum Output {
    /// The last step was a connector.
    Target(PhysicalTarget),
    /// The last step was an OS plugin.
    Os(Arc<dyn Os>),
}

/// A built chain: its output and the metrics of connectors that asked for them.
pub struct Built {
    /// The last step's output.
    pub output: Output,
    /// `(connector name, metrics)` for each step with the `metrics` middleware.
    pub metrics: Vec<StepMetrics>,
}

impl Built {
    /// The OS, if the chain ended with one.
    pub fn os(&self) -> Option<Arc<dyn Os>> {
        match &self.output {
            Output::Os(o) => Some(o.clone()),
            Output::Target(_) => None,
        }
    }
    /// The physical target: the last connector's, or the one under the final OS.
    pub fn target(&self) -> Option<PhysicalTarget> {
        match &self.output {
            Output::Target(t) => Some(t.clone()),
            Output::Os(o) => o.physical(),
        }
    }
}

/// Builds chains from a registry and an inventory.
#[derive(Default, Clone, Copy)]
pub struct Builder<'a> {
    registry: Option<&'a StaticRegistry>,
    inventory: Option<&'a Inventory>,
}

impl<'a> Builder<'a> {
    /// A builder with no plugins.
    pub fn new() -> Self {
        Self::default()
    }
    /// Uses statically linked plugins (looked up first).
    pub fn registry(mut self, r: &'a StaticRegistry) -> Self {
        self.registry = Some(r);
        self
    }
    /// Uses plugins from files.
    pub fn inventory(mut self, i: &'a Inventory) -> Self {
        self.inventory = Some(i);
        self
    }

    fn names(&self, kind: PluginKind) -> Vec<String> {
        let mut v: Vec<String> = self
            .registry
            .map(|r| {
                r.metas()
                    .into_iter()
                    .filter(|m| m.kind == kind)
                    .map(|m| m.name)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(i) = self.inventory {
            v.extend(i.names(kind));
        }
        v.sort();
        v.dedup();
        v
    }

    /// The factory of connector `name`: the statically linked one unless a usable file
    /// has a strictly higher version ([`file_replaces_static`]).
    pub fn connector(&self, name: &str) -> Result<Box<dyn ConnectorFactory + 'a>> {
        let linked = self.registry.and_then(|r| r.connector(name)).map(|c| {
            let version = c.meta().version;
            (Box::new(*c) as Box<dyn ConnectorFactory + 'a>, version)
        });
        self.choose(PluginKind::Connector, name, linked, |i| {
            Ok(Box::new(i.load_connector(name)?))
        })
    }

    /// The factory of OS plugin `name`, chosen like [`connector`](Self::connector)'s.
    pub fn os(&self, name: &str) -> Result<Box<dyn OsFactory + 'a>> {
        let linked = self.registry.and_then(|r| r.os(name)).map(|c| {
            let version = c.meta().version;
            (Box::new(*c) as Box<dyn OsFactory + 'a>, version)
        });
        self.choose(PluginKind::Os, name, linked, |i| {
            Ok(Box::new(i.load_os(name)?))
        })
    }

    /// The rule behind [`connector`](Self::connector) and [`os`](Self::os): the linked
    /// factory (with its version), replaced by a file of a strictly higher version that
    /// loads; without a linked one, the file; else "not found" with the known names.
    fn choose<F: ?Sized>(
        &self,
        kind: PluginKind,
        name: &str,
        linked: Option<(Box<F>, String)>,
        load: impl Fn(&Inventory) -> Result<Box<F>>,
    ) -> Result<Box<F>> {
        if let Some((linked, version)) = linked {
            let newer = self
                .inventory
                .and_then(|i| i.find(kind, name).map(|e| (i, e)))
                .filter(|(_, e)| file_replaces_static(&e.version, &version));
            if let Some((i, e)) = newer {
                match load(i) {
                    Ok(f) => return Ok(f),
                    Err(err) => log::warn!(
                        "{} (version {} of '{name}'): {err}; using the built-in version {version}",
                        e.path.display(),
                        e.version,
                    ),
                }
            }
            return Ok(linked);
        }
        match self.inventory {
            Some(i) => load(i).map_err(|e| match e {
                Error::NotFound { .. } => not_found(kind, name, &self.names(kind)),
                e => e,
            }),
            None => Err(not_found(kind, name, &self.names(kind))),
        }
    }

    /// Builds a chain.
    pub fn build(&self, chain: &ChainSpec) -> Result<Built> {
        if chain.steps.is_empty() {
            return Err(Error::Chain(
                "no steps: give at least one -c CONNECTOR or -o OS".into(),
            ));
        }
        self.build_steps(None, chain)
    }

    /// Builds a chain on an input the caller already opened: a physical target (a dump
    /// file opened directly) feeds a first OS step, an OS feeds a first connector step.
    /// An empty chain returns the input.
    pub fn build_on(&self, input: Output, chain: &ChainSpec) -> Result<Built> {
        self.build_steps(Some(input), chain)
    }

    fn build_steps(&self, input: Option<Output>, chain: &ChainSpec) -> Result<Built> {
        let mut metrics = Vec::new();
        let mut out = input;
        for step in &chain.steps {
            out = Some(match step.kind {
                PluginKind::Connector => {
                    let input = match out.take() {
                        None => None,
                        Some(Output::Os(o)) => Some(o),
                        Some(Output::Target(_)) => {
                            return Err(Error::Chain("two connector steps in a row".into()))
                        }
                    };
                    let f = self.connector(&step.spec.name)?;
                    let mut t = f.create(&step.spec, input)?;
                    let m = &step.spec.middleware;
                    if !m.is_empty() {
                        t.memory = wrap(t.memory, m, &step.spec.name, &mut metrics);
                    }
                    Output::Target(t)
                }
                PluginKind::Os => {
                    let input = match out.take() {
                        None => None,
                        Some(Output::Target(t)) => Some(t),
                        Some(Output::Os(_)) => {
                            return Err(Error::Chain("two OS steps in a row".into()))
                        }
                    };
                    let f = self.os(&step.spec.name)?;
                    Output::Os(f.create(&step.spec, input)?)
                }
            });
        }
        let output = out.ok_or_else(|| Error::Chain("empty chain".into()))?;
        Ok(Built { output, metrics })
    }

    /// Parses command-line words and builds the chain.
    pub fn build_cli<S: AsRef<str>>(&self, words: &[S]) -> Result<Built> {
        self.build(&ChainSpec::parse_cli(words)?)
    }
}

fn wrap(
    mut mem: Arc<dyn PhysicalMemory>,
    m: &MiddlewareSpec,
    name: &str,
    metrics: &mut Vec<StepMetrics>,
) -> Arc<dyn PhysicalMemory> {
    if m.zero_gaps {
        mem = Arc::new(ZeroFill::new(mem));
    }
    if let Some(d) = m.delay {
        mem = Arc::new(Delay::new(mem, d, Default::default()));
    }
    if m.cache {
        let mut cfg = CacheConfig::default();
        if let Some(s) = m.cache_size {
            cfg.capacity = s;
        }
        if let Some(p) = m.cache_page_size {
            cfg.page_size = p;
        }
        cfg.validity = m.cache_time;
        mem = Arc::new(PageCache::new(mem, cfg));
    }
    if m.metrics {
        let met = Arc::new(Metrics::new(mem));
        metrics.push((name.to_string(), met.clone()));
        mem = met;
    }
    mem
}
