//! Factories: what the builder calls to create a step, whether the plugin is linked
//! statically ([`StaticRegistry`]) or loaded from a file
//! ([`Inventory`](crate::Inventory)). **Key decision: one factory trait per kind**
//! ([`ConnectorFactory`], [`OsFactory`]) so the builder and the CLI never care where a
//! plugin came from; statically linked plugins catch panics too, so both paths fail alike.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget};

use crate::abi::panic_message;
use crate::args::{ArgSpec, Args, PluginSpec};
use crate::error::{BoxError, Error, Result};
use crate::traits::{ConnectorPlugin, InputKind, OsPlugin, PluginKind, TargetListing};

/// Facts shown for a plugin, wherever it comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginMeta {
    /// Kind.
    pub kind: PluginKind,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Whether it accepts an input.
    pub input: InputKind,
}

/// Creates connectors of one plugin.
pub trait ConnectorFactory: Send + Sync {
    /// The plugin's facts.
    fn meta(&self) -> PluginMeta;
    /// Help text.
    fn help(&self) -> Result<String>;
    /// Targets it can open now; `args` is a raw argument section.
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>>;
    /// The file it was loaded from; `None` when linked into the binary.
    fn path(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Creates a connector from a parsed step and the previous step's OS.
    fn create(&self, spec: &PluginSpec, input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget>;
}

/// Creates OS objects of one plugin.
pub trait OsFactory: Send + Sync {
    /// The plugin's facts.
    fn meta(&self) -> PluginMeta;
    /// Help text.
    fn help(&self) -> Result<String>;
    /// What it can open now; `args` is a raw argument section.
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>>;
    /// The file it was loaded from; `None` when linked into the binary.
    fn path(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Creates an OS from a parsed step and the previous step's target.
    fn create(&self, spec: &PluginSpec, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>>;
}

fn caught<T>(plugin: &str, during: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(Error::Panic {
            plugin: plugin.to_string(),
            during: during.to_string(),
            message: panic_message(&*p),
        })
    })
}

/// A linked plugin's error: a core error stays typed (so an OS plugin's own error kept in
/// [`memlens_core::Error::Os`] can be matched with
/// [`downcast_ref`](memlens_core::Error::downcast_ref)), wrapped with the plugin's name;
/// anything else becomes its message.
fn plugin_err(plugin: &str, e: BoxError) -> Error {
    match e.downcast::<memlens_core::Error>() {
        Ok(core) => Error::Core(core.context(format!("plugin '{plugin}'"))),
        Err(e) => Error::Plugin {
            plugin: plugin.to_string(),
            message: e.to_string(),
        },
    }
}

pub(crate) fn check_input(name: &str, kind: InputKind, given: bool, what: &str) -> Result<()> {
    match (kind, given) {
        (InputKind::None, true) => Err(Error::Chain(format!(
            "'{name}' takes no input, but the previous step gives it {what}"
        ))),
        (InputKind::Required, false) => Err(Error::Chain(format!(
            "'{name}' needs {what} as input: put a step before it"
        ))),
        _ => Ok(()),
    }
}

type TargetsFn = fn(&Args) -> std::result::Result<Vec<TargetListing>, BoxError>;

/// Both kinds' `targets`: the target argument made optional (listing comes before
/// choosing one), then the plugin's list.
fn static_targets(
    name: &'static str,
    args: fn() -> ArgSpec,
    list: TargetsFn,
    raw: &str,
) -> Result<Vec<TargetListing>> {
    caught(name, "targets", || {
        let mut spec = args();
        if let Some(t) = spec.target.as_mut() {
            t.required = false;
        }
        let a = Args::parse(name, &spec, None, raw)?;
        list(&a).map_err(|e| plugin_err(name, e))
    })
}

type ConnCreate = fn(&Args, Option<Arc<dyn Os>>) -> std::result::Result<PhysicalTarget, BoxError>;
type OsCreate = fn(&Args, Option<PhysicalTarget>) -> std::result::Result<Arc<dyn Os>, BoxError>;

/// A statically linked connector.
#[derive(Clone, Copy)]
pub struct StaticConnector {
    name: &'static str,
    version: &'static str,
    description: &'static str,
    input: InputKind,
    args: fn() -> ArgSpec,
    help: fn() -> String,
    targets: TargetsFn,
    create: ConnCreate,
}

impl StaticConnector {
    /// The factory of `T`.
    pub fn of<T: ConnectorPlugin>() -> Self {
        Self {
            name: T::NAME,
            version: T::VERSION,
            description: T::DESCRIPTION,
            input: T::INPUT,
            args: T::args,
            help: T::help,
            targets: T::targets,
            create: T::create,
        }
    }
}

impl ConnectorFactory for StaticConnector {
    fn meta(&self) -> PluginMeta {
        PluginMeta {
            kind: PluginKind::Connector,
            name: self.name.into(),
            version: self.version.into(),
            description: self.description.into(),
            input: self.input,
        }
    }
    fn help(&self) -> Result<String> {
        caught(self.name, "help", || Ok((self.help)()))
    }
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>> {
        static_targets(self.name, self.args, self.targets, args)
    }
    fn create(&self, spec: &PluginSpec, input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget> {
        check_input(self.name, self.input, input.is_some(), "an OS")?;
        caught(self.name, "create", || {
            let a = Args::parse(
                self.name,
                &(self.args)(),
                spec.target.as_deref(),
                &spec.args,
            )?;
            (self.create)(&a, input).map_err(|e| plugin_err(self.name, e))
        })
    }
}

/// A statically linked OS plugin.
#[derive(Clone, Copy)]
pub struct StaticOs {
    name: &'static str,
    version: &'static str,
    description: &'static str,
    input: InputKind,
    args: fn() -> ArgSpec,
    help: fn() -> String,
    targets: TargetsFn,
    create: OsCreate,
}

impl StaticOs {
    /// The factory of `T`.
    pub fn of<T: OsPlugin>() -> Self {
        Self {
            name: T::NAME,
            version: T::VERSION,
            description: T::DESCRIPTION,
            input: T::INPUT,
            args: T::args,
            help: T::help,
            targets: T::targets,
            create: T::create,
        }
    }
}

impl OsFactory for StaticOs {
    fn meta(&self) -> PluginMeta {
        PluginMeta {
            kind: PluginKind::Os,
            name: self.name.into(),
            version: self.version.into(),
            description: self.description.into(),
            input: self.input,
        }
    }
    fn help(&self) -> Result<String> {
        caught(self.name, "help", || Ok((self.help)()))
    }
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>> {
        static_targets(self.name, self.args, self.targets, args)
    }
    fn create(&self, spec: &PluginSpec, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>> {
        check_input(self.name, self.input, input.is_some(), "a physical target")?;
        caught(self.name, "create", || {
            let a = Args::parse(
                self.name,
                &(self.args)(),
                spec.target.as_deref(),
                &spec.args,
            )?;
            (self.create)(&a, input).map_err(|e| plugin_err(self.name, e))
        })
    }
}

/// Plugins linked into the binary. The builder prefers them to files of the same kind and
/// name unless the file's version is strictly higher
/// ([`file_replaces_static`](crate::builder::file_replaces_static)).
#[derive(Clone, Default)]
pub struct StaticRegistry {
    connectors: Vec<StaticConnector>,
    oses: Vec<StaticOs>,
}

impl std::fmt::Debug for StaticRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticRegistry")
            .field(
                "connectors",
                &self.connectors.iter().map(|c| c.name).collect::<Vec<_>>(),
            )
            .field(
                "oses",
                &self.oses.iter().map(|c| c.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl StaticRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds connector `T` (builder style).
    pub fn with_connector<T: ConnectorPlugin>(mut self) -> Self {
        self.add_connector::<T>();
        self
    }
    /// Adds OS plugin `T` (builder style).
    pub fn with_os<T: OsPlugin>(mut self) -> Self {
        self.add_os::<T>();
        self
    }
    /// Adds connector `T`, replacing one of the same name.
    pub fn add_connector<T: ConnectorPlugin>(&mut self) {
        self.connectors.retain(|c| c.name != T::NAME);
        self.connectors.push(StaticConnector::of::<T>());
    }
    /// Adds OS plugin `T`, replacing one of the same name.
    pub fn add_os<T: OsPlugin>(&mut self) {
        self.oses.retain(|c| c.name != T::NAME);
        self.oses.push(StaticOs::of::<T>());
    }
    /// The connector named `name`.
    pub fn connector(&self, name: &str) -> Option<&StaticConnector> {
        self.connectors.iter().find(|c| c.name == name)
    }
    /// The OS plugin named `name`.
    pub fn os(&self, name: &str) -> Option<&StaticOs> {
        self.oses.iter().find(|c| c.name == name)
    }
    /// Facts of every registered plugin (connectors first, then OS plugins, by name).
    pub fn metas(&self) -> Vec<PluginMeta> {
        let mut v: Vec<PluginMeta> = self
            .connectors
            .iter()
            .map(|c| c.meta())
            .chain(self.oses.iter().map(|o| o.meta()))
            .collect();
        v.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        v
    }
}
