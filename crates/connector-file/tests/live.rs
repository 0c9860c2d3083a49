//! `paging=true` ELF dumps of a real guest: QEMU's `dump-guest-memory` with `paging=true`
//! writes one `PT_LOAD` per mapped virtual range, with the guest-virtual address in
//! `p_vaddr` and the physical one in `p_paddr`, and only mapped memory. A live lab guest
//! is stopped and dumped both ways into a temporary folder; every range of the
//! `paging=true` dump must read the same bytes as the `paging=false` dump at the same
//! physical address. Needs the lab (fails with a set-up hint otherwise).

use memlens_connector_file::{open_dump, DumpOptions, Format};
use memlens_core::{MemoryView, MemoryViewExt, PhysAddr};
use serde_json::json;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// `PT_LOAD`s of a little-endian ELF64 core as (p_offset, p_vaddr, p_paddr, p_filesz),
/// read here from the ELF specification (not with the crate's parser).
fn loads(file: &[u8]) -> Vec<(u64, u64, u64, u64)> {
    let u16_at = |o: usize| u16::from_le_bytes(file[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(file[o..o + 8].try_into().unwrap());
    assert_eq!(&file[..6], b"\x7fELF\x02\x01", "a little-endian ELF64");
    let phoff = u64_at(32) as usize;
    let phentsize = usize::from(u16_at(54));
    let mut phnum = u64::from(u16_at(56));
    if phnum == 0xffff {
        // PN_XNUM: the count is sh_info of section header 0.
        phnum = u64::from(u32_at(u64_at(40) as usize + 44));
    }
    (0..phnum as usize)
        .map(|i| phoff + i * phentsize)
        .filter(|&h| u32_at(h) == 1)
        .map(|h| {
            (
                u64_at(h + 8),
                u64_at(h + 16),
                u64_at(h + 24),
                u64_at(h + 32),
            )
        })
        .collect()
}

#[test]
fn paging_true_dump_reads_physical_addresses() {
    let guest = testlab::require_live("x86_64-kaslr");
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("paging-false.elf");
    let paged = dir.path().join("paging-true.elf");
    {
        let mut q = guest.qmp().unwrap();
        q.execute("stop", None).unwrap();
        for (path, paging) in [(&plain, false), (&paged, true)] {
            let proto = format!("file:{}", path.display());
            q.execute(
                "dump-guest-memory",
                Some(json!({ "paging": paging, "protocol": proto, "format": "elf" })),
            )
            .unwrap_or_else(|e| panic!("dump-guest-memory paging={paging}: {e}"));
        }
    }
    let opts = DumpOptions::default();
    let a = open_dump(&plain, &opts).unwrap();
    let b = open_dump(&paged, &opts).unwrap();
    assert_eq!((a.format(), b.format()), (Format::Elf, Format::Elf));

    // The paging=true dump really has virtual addresses in p_vaddr (kernel half), and its
    // p_paddr are physical: inside the RAM the paging=false dump covers.
    let file = std::fs::read(&paged).unwrap();
    let hdrs = loads(&file);
    assert!(hdrs.len() > 10, "{} PT_LOADs", hdrs.len());
    assert!(
        hdrs.iter()
            .any(|&(_, v, p, _)| v >= 0xffff_8000_0000_0000 && v != p),
        "no PT_LOAD with a kernel-virtual p_vaddr: not a paging=true dump?"
    );
    let ram = a.ranges();
    let in_ram = |p: u64, n: u64| {
        ram.iter()
            .any(|r| p >= r.base.0 && p.saturating_add(n) <= r.end_u64())
    };
    for &(_, v, p, n) in &hdrs {
        assert!(
            n == 0 || in_ram(p, n),
            "PT_LOAD vaddr {v:#x} paddr {p:#x} +{n:#x} is not in physical RAM {ram:?}"
        );
    }
    // Our reader's ranges of the paging=true dump are physical too.
    for r in b.ranges() {
        assert!(in_ram(r.base.0, r.len), "range {r:?} not in RAM {ram:?}");
    }

    // ≥ 2000 sampled addresses, uniform over the bytes of the PT_LOADs (most of the tens
    // of thousands of headers map one shared zero page): the paging=true dump through our
    // reader, and its file bytes at p_offset, both equal the paging=false dump at p_paddr.
    let with_data: Vec<_> = hdrs.iter().filter(|h| h.3 >= 8).collect();
    let mut cumulative = Vec::with_capacity(with_data.len());
    let mut total = 0u64;
    for h in &with_data {
        total += h.3 - 7;
        cumulative.push(total);
    }
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut checked = 0;
    let mut nonzero = 0;
    for _ in 0..4000 {
        let x = xorshift(&mut s) % total;
        let i = cumulative.partition_point(|&c| c <= x);
        let &(off, _, paddr, n) = with_data[i];
        let k = x - (cumulative[i] - (n - 7));
        let at = PhysAddr(paddr + k);
        let want = a.read_vec(at, 8).unwrap();
        assert_eq!(b.read_vec(at, 8).unwrap(), want, "reader at {at:?}");
        let f = (off + k) as usize;
        assert_eq!(&file[f..f + 8], &want[..], "file offset {f:#x} for {at:?}");
        nonzero += usize::from(want != [0; 8]);
        checked += 1;
    }
    assert!(checked >= 2000);
    assert!(
        nonzero > 200,
        "only {nonzero} of {checked} samples were non-zero"
    );
    // Whole ranges: the first and last page of every range our reader lists.
    for r in b.ranges() {
        for base in [r.base.0, r.end_u64() - r.len.min(4096)] {
            let n = r.len.min(4096) as usize;
            assert_eq!(
                b.read_vec(PhysAddr(base), n).unwrap(),
                a.read_vec(PhysAddr(base), n).unwrap(),
                "range {r:?} at {base:#x}"
            );
        }
    }
}
