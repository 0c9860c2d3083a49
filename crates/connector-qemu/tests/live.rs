//! The connector against the test lab's live Debian guest (`testlab::require_live`): the
//! marker's strings are at the guest-physical addresses the guest recorded (pagemap) and
//! that QEMU's `gva2gpa` reports; registers equal the monitor's (parsed by the lab's own
//! parser); the target list shows the guest's name. Needs the lab (fails with a set-up
//! hint otherwise).

mod common;

use common::native;
use memlens_connector_qemu::{list_targets, QemuArgs, QemuConnector};
use memlens_core::{CpuRegisters, MemoryViewExt, PhysAddr};

#[test]
fn live_guest_markers_registers_and_listing() {
    let guest = testlab::require_live("x86_64-kaslr");
    let os = native(false);

    // Listing.
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
                "marker {:?} {} at {pa:#x} ({mode})",
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
    assert!(r0.efer.unwrap_or(0) & 0x400 != 0 && r0.cr0 & 0x8000_0000 != 0);
    guest.qmp().unwrap().cont().unwrap();
}
