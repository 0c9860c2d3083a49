//! Scenario recipes: which machine QEMU emulates and how the kernel is started.
//!
//! Recipes are static data so that `testlab list`, the tests and the builder agree on one
//! table; adding a scenario is adding a row.

use serde::{Deserialize, Serialize};

/// Guest architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// x86-64 (`qemu-system-x86_64`, Debian `amd64`).
    X86_64,
    /// AArch64 (`qemu-system-aarch64 -M virt`, Debian `arm64`).
    Aarch64,
}

impl Arch {
    /// Debian architecture name (`amd64`, `arm64`).
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The QEMU system emulator binary.
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The Debian package that ships [`Arch::qemu_binary`].
    pub fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Aarch64 => "qemu-system-arm",
        }
    }
}

/// One named recipe for a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScenarioSpec {
    /// Name used by the API and the CLI, e.g. `x86_64-kaslr`.
    pub name: &'static str,
    /// Guest architecture.
    pub arch: Arch,
    /// Guest RAM in MiB (`-m`).
    pub memory_mib: u64,
    /// Number of vCPUs (`-smp`).
    pub smp: u32,
    /// `-cpu` model, if not QEMU's default.
    pub cpu: Option<&'static str>,
    /// `-M` machine type, if not QEMU's default.
    pub machine: Option<&'static str>,
    /// Extra kernel command-line words (e.g. `nokaslr`).
    pub extra_append: &'static str,
    /// Whether the kernel randomizes its addresses (KASLR) in this scenario.
    pub kaslr: bool,
    /// Whether the guest uses 5-level paging.
    pub la57: bool,
    /// Debian kernel series other than the distribution default, e.g. `Some("6.12")`:
    /// the kernel is then the current ABI of the meta package `linux-image-6.12-amd64`
    /// instead of `linux-image-amd64` (resolved with `apt-cache depends`, never pinned here).
    pub kernel_series: Option<&'static str>,
    /// One-line description.
    pub description: &'static str,
}

impl ScenarioSpec {
    /// Guest RAM in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib << 20
    }
}

/// Every scenario the lab knows, in build order.
pub const SCENARIOS: &[ScenarioSpec] = &[
    ScenarioSpec {
        name: "x86_64-kaslr",
        arch: Arch::X86_64,
        memory_mib: 256,
        smp: 1,
        cpu: None,
        machine: None,
        extra_append: "",
        kaslr: true,
        la57: false,
        kernel_series: None,
        description: "x86-64, 256 MiB, 1 vCPU (qemu64), KASLR on, 4-level paging",
    },
    ScenarioSpec {
        name: "x86_64-nokaslr",
        arch: Arch::X86_64,
        memory_mib: 256,
        smp: 1,
        cpu: None,
        machine: None,
        extra_append: "nokaslr",
        kaslr: false,
        la57: false,
        kernel_series: None,
        description: "x86-64, 256 MiB, 1 vCPU (qemu64), `nokaslr`: kernel at its link address",
    },
    ScenarioSpec {
        name: "x86_64-la57",
        arch: Arch::X86_64,
        memory_mib: 512,
        smp: 2,
        cpu: Some("max"),
        machine: None,
        extra_append: "",
        kaslr: true,
        la57: true,
        kernel_series: None,
        description: "x86-64, 512 MiB, 2 vCPUs, `-cpu max`: 5-level paging (CR4.LA57), KASLR on",
    },
    ScenarioSpec {
        name: "x86_64-4g",
        arch: Arch::X86_64,
        memory_mib: 4096,
        smp: 1,
        cpu: None,
        machine: None,
        extra_append: "",
        kaslr: true,
        la57: false,
        kernel_series: None,
        description:
            "x86-64, 4 GiB (1 GiB remapped above 4 GiB), KASLR on; the large benchmark dump",
    },
    ScenarioSpec {
        name: "arm64",
        arch: Arch::Aarch64,
        memory_mib: 256,
        smp: 1,
        cpu: Some("cortex-a57"),
        machine: Some("virt"),
        extra_append: "",
        kaslr: true,
        la57: false,
        kernel_series: None,
        description:
            "AArch64 `-M virt -cpu cortex-a57`, 256 MiB at 0x40000000, Debian arm64 kernel",
    },
    ScenarioSpec {
        name: "x86_64-6.12",
        arch: Arch::X86_64,
        memory_mib: 256,
        smp: 1,
        cpu: None,
        machine: None,
        extra_append: "",
        kaslr: true,
        la57: false,
        kernel_series: Some("6.12"),
        description:
            "x86-64, 256 MiB, 1 vCPU, KASLR on, Debian's 6.12 kernel series (a second build)",
    },
];

/// Looks a recipe up by name.
pub fn find(name: &str) -> Option<&'static ScenarioSpec> {
    SCENARIOS.iter().find(|s| s.name == name)
}
