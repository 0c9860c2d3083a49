//! The connector against the test lab's live Debian guest (`testlab::require_live`): the
//! marker's strings are at the guest-physical addresses the guest recorded (pagemap) and
//! that QEMU's `gva2gpa` reports; registers equal the monitor's (parsed by the lab's own
//! parser); the target list shows the guest's name — on x86-64 and arm64; and a 4 GiB
//! guest's RAM above 4 GiB reads as QEMU's own dump of it. Needs the lab (fails with a
//! set-up hint otherwise).

mod common;

use common::native;
use memlens_connector_qemu::{list_targets, QemuArgs, QemuConnector};
use memlens_core::cpu::{Cr0, Efer};
use memlens_core::{CpuRegisters, MemoryViewExt, PhysAddr};

/// The guest is listed under its name, RAM size and QMP socket; its marker strings are at
/// the physical addresses the guest recorded, with the QMP layout and without it.
fn check_listing_and_markers(
    guest: &testlab::LiveGuest,
    os: &std::sync::Arc<dyn memlens_core::Os>,
) {
    let listed = list_targets(os.as_ref()).unwrap();
    let t = listed
        .iter()
        .find(|t| t.pid == guest.pid())
        .expect("the lab guest is listed");
    assert_eq!(t.cmdline.name.as_deref(), Some(guest.name()));
    assert_eq!(t.cmdline.ram_size, guest.spec.memory_bytes());
    assert_eq!(t.cmdline.qmp_socket.as_deref(), Some(guest.qmp_socket()));
    assert!(t.to_string().contains(guest.name()));

    let marker = &guest.guest.marker;
    assert!(
        !marker.strings.is_empty(),
        "the lab recorded marker strings"
    );
    for mode in ["", ",no-qmp"] {
        let c = QemuConnector::open(
            os.clone(),
            &QemuArgs::parse(&format!("{}{mode}", guest.name())).unwrap(),
        )
        .unwrap();
        let mem = c.memory();
        let mut checked = 0;
        for s in &marker.strings {
            let Some(pa) = s.pa else { continue };
            let got = mem.read_vec(PhysAddr(pa), s.text.len()).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                s.text,
                "{} marker {:?} {} at {pa:#x} ({mode})",
                guest.spec.name,
                s.kind,
                s.index
            );
            checked += 1;
        }
        assert!(
            checked >= 3,
            "only {checked} markers had a physical address"
        );
    }
}

#[test]
fn live_guest_markers_registers_and_listing() {
    let guest = testlab::require_live("x86_64-kaslr");
    let os = native(false);

    check_listing_and_markers(&guest, &os);
    let marker = &guest.guest.marker;

    // gva2gpa of the marker's strings while its page tables are loaded.
    let c = QemuConnector::open(os.clone(), &QemuArgs::parse(guest.name()).unwrap()).unwrap();
    let cpu = guest
        .stop_on_marker()
        .unwrap()
        .expect("caught the marker on a vCPU");
    {
        let mut q = guest.qmp().unwrap();
        let mut pairs = 0;
        for s in &marker.strings {
            if let Some(pa) = q.gva2gpa(s.va, cpu).unwrap() {
                let got = c.memory().read_vec(PhysAddr(pa), s.text.len()).unwrap();
                assert_eq!(String::from_utf8_lossy(&got), s.text, "gva2gpa {:#x}", s.va);
                pairs += 1;
            }
        }
        assert!(pairs >= 3, "{pairs} gva2gpa pairs");
    }

    // Registers (guest stopped) equal the monitor's, as the lab parses them.
    let text = guest.qmp().unwrap().hmp("info registers -a").unwrap();
    let truth = testlab::truth::parse_registers(&text);
    let ours = c.registers().unwrap();
    assert_eq!(ours.len(), truth.len());
    let target = c.physical_target();
    let cpu_state = target.cpu.as_ref().expect("registers through QMP");
    assert_eq!(cpu_state.cpu_count(), truth.len());
    for (i, t) in truth.iter().enumerate() {
        let CpuRegisters::X86(r) = cpu_state.registers(i).unwrap() else {
            panic!("x86 registers expected")
        };
        assert_eq!(Some(r.cr3), t.get("CR3"));
        assert_eq!(Some(r.cr0), t.get("CR0"));
        assert_eq!(Some(r.cr4), t.get("CR4"));
        assert_eq!(r.efer, t.get("EFER"));
        assert_eq!(Some(r.rip), t.get("RIP"));
        assert_eq!(Some(r.gpr[0]), t.get("RAX"));
        assert_eq!(Some(r.gpr[4]), t.get("RSP"));
        assert_eq!(Some(r.gpr[15]), t.get("R15"));
        assert_eq!(ours[i], CpuRegisters::X86(r));
    }
    // Kernel mode: long mode active, paging on.
    let CpuRegisters::X86(r0) = &ours[0] else {
        panic!()
    };
    assert!(Efer::from(r0.efer.unwrap_or(0)).lma() && Cr0::from(r0.cr0).pg());
    guest.qmp().unwrap().cont().unwrap();
}

/// The arm64 guest (`-M virt`, RAM at 1 GiB): listing and markers with and without QMP, and
/// the registers QMP gives equal the monitor's as the lab parses them.
#[test]
fn live_arm64_guest_markers_and_registers() {
    let guest = testlab::require_live("arm64");
    let os = native(false);
    check_listing_and_markers(&guest, &os);

    let c = QemuConnector::open(os, &QemuArgs::parse(guest.name()).unwrap()).unwrap();
    guest.qmp().unwrap().stop().unwrap();
    let text = guest.qmp().unwrap().hmp("info registers -a").unwrap();
    let truth = testlab::truth::parse_registers(&text);
    let target = c.physical_target();
    let cpu_state = target.cpu.as_ref().expect("registers through QMP");
    assert_eq!(cpu_state.cpu_count(), truth.len());
    for (i, t) in truth.iter().enumerate() {
        let CpuRegisters::Aarch64(r) = cpu_state.registers(i).unwrap() else {
            panic!("aarch64 registers expected")
        };
        assert_eq!(Some(r.pc), t.get("PC"), "cpu {i} PC");
        assert_eq!(Some(r.sp), t.get("SP"), "cpu {i} SP");
        assert_eq!(Some(r.pstate), t.get("PSTATE"), "cpu {i} PSTATE");
        for (n, x) in r.x.iter().enumerate() {
            assert_eq!(Some(*x), t.get(&format!("X{n:02}")), "cpu {i} X{n}");
        }
    }
    guest.qmp().unwrap().cont().unwrap();
}

/// The 4 GiB x86-64 guest: RAM above 4 GiB (QEMU remaps what does not fit below the PCI
/// hole there) reads, live, exactly as an ELF dump of the same stopped guest made by QEMU
/// itself (`dump-guest-memory`), with the QMP layout and with the machine-type layout.
#[test]
fn live_4g_guest_ram_above_4g_equals_a_dump() {
    use std::io::{Read, Seek, SeekFrom};
    const GIB: u64 = 1 << 30;
    let guest = testlab::require_live("x86_64-4g");
    let os = native(false);
    guest.qmp().unwrap().stop().unwrap();
    let dir = TempDir::new();
    let elf = dir.0.join("guest.elf");
    guest
        .qmp()
        .unwrap()
        .dump_guest_memory(&elf, testlab::qmp::DumpFormat::Elf)
        .expect("QEMU dumps the stopped guest");
    let loads: Vec<_> = testlab::dumps::program_headers(&elf)
        .unwrap()
        .into_iter()
        .filter(|p| p.kind == testlab::dumps::PT_LOAD && p.filesz > 0)
        .collect();
    let high = loads
        .iter()
        .find(|p| p.paddr == 4 * GIB)
        .unwrap_or_else(|| panic!("QEMU's dump has no RAM at 4 GiB: {loads:x?}"));
    assert!(high.filesz >= GIB / 2, "{high:x?}");
    let mut file = std::fs::File::open(&elf).unwrap();
    let mut from_dump = |pa: u64, len: usize| {
        let p = loads
            .iter()
            .find(|p| p.paddr <= pa && pa + len as u64 <= p.paddr + p.filesz)
            .unwrap_or_else(|| panic!("{pa:#x} not in the dump"));
        let mut buf = vec![0u8; len];
        file.seek(SeekFrom::Start(p.offset + pa - p.paddr)).unwrap();
        file.read_exact(&mut buf).unwrap();
        buf
    };
    // All of high RAM in 64 MiB pieces, plus the start and end of low RAM.
    const PIECE: u64 = 64 << 20;
    let mut pieces: Vec<u64> = (0..high.filesz / PIECE)
        .map(|i| high.paddr + i * PIECE)
        .collect();
    let low = loads
        .iter()
        .find(|p| p.paddr <= 0x10_0000 && 0x10_0000 + PIECE <= p.paddr + p.filesz)
        .expect("low RAM in the dump");
    pieces.push(0x10_0000);
    pieces.push((low.paddr + low.filesz - PIECE) & !0xfff);
    let mut nonzero_high = 0usize;
    for mode in ["", ",no-qmp"] {
        let c = QemuConnector::open(
            os.clone(),
            &QemuArgs::parse(&format!("{}{mode}", guest.name())).unwrap(),
        )
        .unwrap();
        let mem = c.memory();
        for &pa in &pieces {
            let want = from_dump(pa, PIECE as usize);
            let got = mem.read_vec(PhysAddr(pa), PIECE as usize).unwrap();
            if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
                panic!("{mode:?}: live and dump differ at {:#x}", pa + i as u64);
            }
            if pa >= 4 * GIB && mode.is_empty() {
                nonzero_high += got.iter().filter(|b| **b != 0).count();
            }
        }
    }
    // The comparison means something: the kernel uses high RAM (memblock allocates top-down).
    assert!(
        nonzero_high > 1 << 20,
        "only {nonzero_high} non-zero bytes above 4 GiB"
    );
    guest.qmp().unwrap().cont().unwrap();
}

/// A folder under the temporary directory, removed on drop (also on panic: the dump of a
/// 4 GiB guest is 4 GiB).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let d = std::env::temp_dir().join(format!("memlens-qemu-live-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
