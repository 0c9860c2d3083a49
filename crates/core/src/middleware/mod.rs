//! Middleware: wrappers that take any [`MemoryView`](crate::MemoryView) and are one
//! themselves, so they stack (`Metrics<Cache<Delay<File>>>`).

pub mod cache;
pub mod delay;
pub mod metrics;
pub mod zerofill;

pub use cache::{CacheConfig, PageCache};
pub use delay::Delay;
pub use metrics::Metrics;
pub use zerofill::ZeroFill;
