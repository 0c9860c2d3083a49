//! [`PhysicalTarget`]: what a connector hands to an OS plugin. **Key decision: a plain
//! struct of optional capabilities**, not a trait with stubbed methods: memory is always
//! there; writing, registers and kernel notes are present only when the target has them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cpu::CpuState;
use crate::mem::{PhysicalMemory, PhysicalWrite};

/// A connected physical target and its capabilities.
#[derive(Clone)]
pub struct PhysicalTarget {
    /// Physical memory (always present).
    pub memory: Arc<dyn PhysicalMemory>,
    /// Writing, present only when the target was opened writable on request.
    pub writer: Option<Arc<dyn PhysicalWrite>>,
    /// CPU registers, when the target records them.
    pub cpu: Option<Arc<dyn CpuState>>,
    /// What the connector knows about the target.
    pub info: TargetInfo,
}

impl std::fmt::Debug for PhysicalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysicalTarget")
            .field("info", &self.info)
            .field("writable", &self.writer.is_some())
            .field("cpu", &self.cpu.as_ref().map(|c| c.cpu_count()))
            .finish()
    }
}

impl PhysicalTarget {
    /// A read-only target with no registers.
    pub fn from_memory(memory: Arc<dyn PhysicalMemory>, info: TargetInfo) -> Self {
        Self {
            memory,
            writer: None,
            cpu: None,
            info,
        }
    }
}

/// Facts a connector knows about its target (shown by `memlens info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Connector name (`file`, `qemu`, …).
    pub connector: String,
    /// Format or kind (`raw`, `elf`, `kdump`, …).
    pub format: String,
    /// Format version or variant, when meaningful.
    pub version: Option<String>,
    /// The kernel's VMCOREINFO key/value pairs, when the target carries them.
    pub vmcoreinfo: Option<BTreeMap<String, String>>,
    /// Further facts as ordered (key, value) pairs.
    pub details: Vec<(String, String)>,
}
