//! The crate's error type. Translation outcomes use core's [`memlens_core::Error`]
//! (`NotPresent`, `BadEntry`, `NonCanonical`) because they travel inside read batches;
//! [`ArchError`] covers configuration (names, parameters) and wraps core errors.

/// Errors of configuring translation (architecture names, MMU parameters, roots).
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArchError {
    /// An architecture name that memlens does not know.
    #[error("unknown architecture '{name}' (valid: {})", valid.join(", "))]
    UnknownArch {
        /// The name given.
        name: String,
        /// Every valid name.
        valid: &'static [&'static str],
    },
    /// MMU parameters that no hardware supports (e.g. an aarch64 VA size for a granule).
    #[error("invalid MMU configuration for {arch}: {what}")]
    InvalidConfig {
        /// Architecture.
        arch: &'static str,
        /// What is wrong.
        what: String,
    },
    /// The registers do not describe a page-table root for this architecture.
    #[error("no page-table root in the registers: {what}")]
    NoRoot {
        /// What is missing.
        what: String,
    },
    /// A memory or translation error.
    #[error(transparent)]
    Core(#[from] memlens_core::Error),
}
