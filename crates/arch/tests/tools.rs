//! The CLI-facing functions: translate rows, page-map rendering, JSON, and the bench
//! functions on a synthetic address space.

mod common;

use std::time::Duration;

use common::{roots, Builder, Fmt, Perm};
use memlens_arch::bench::{bench_translate, bench_virt, bench_walk, VirtBenchConfig};
use memlens_arch::report::{render_page_map, render_translations, translate_rows, TranslateRow};
use memlens_arch::{Mmu, PageMap, PageMapOptions, TlbConfig, VirtualView};
use memlens_core::VirtAddr;

fn fixture() -> Builder {
    let mut b = Builder::new(Fmt::X64, 0x1000);
    let p = Perm {
        w: true,
        u: true,
        nx: true,
    };
    for i in 0..16u64 {
        assert!(b.map(0x40_0000 + i * 4096, 0x10_0000 + i * 4096, 4096, p));
    }
    let k = Perm {
        w: true,
        u: false,
        nx: true,
    };
    assert!(b.map(0xffff_8880_0000_0000, 0, 2 << 20, k));
    let mut mem = b.mem.clone();
    mem.resize(0x20_0000, 0x5a);
    b.mem = mem;
    b
}

#[test]
fn translate_rows_render_and_serialise() {
    let b = fixture();
    let view = VirtualView::new(b.phys(), Mmu::x86_64(), roots(&b));
    let rows = translate_rows(
        &view,
        &[
            VirtAddr(0x40_0010),
            VirtAddr(0x50_0000),
            VirtAddr(0x8000_0000_0000),
        ],
    );
    assert_eq!(rows[0].pa.map(|p| p.0), Some(0x10_0010));
    assert!(rows[0].error.is_none());
    assert_eq!(rows[1].va, VirtAddr(0x50_0000));
    assert!(rows[1].error.as_deref().unwrap().contains("not mapped"));
    assert!(rows[2].error.as_deref().unwrap().contains("not canonical"));
    let text = render_translations(&rows);
    assert!(text.contains("0x400010") && text.contains("0x100010") && text.contains("rw- user"));
    assert!(text.contains("error:"));
    let json = serde_json::to_string(&rows).unwrap();
    let back: Vec<TranslateRow> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rows);
    assert!(json.contains("\"writable\":true"));

    let pm = view.page_map(&PageMapOptions::default());
    // 16 contiguous user pages coalesce into one range; plus the kernel page.
    assert_eq!(pm.ranges.len(), 2);
    assert_eq!(pm.ranges[0].len, 16 * 4096);
    let text = render_page_map(&pm);
    assert!(text.contains("2 ranges, 17 pages"), "{text}");
    let back: PageMap = serde_json::from_str(&serde_json::to_string(&pm).unwrap()).unwrap();
    assert_eq!(back, pm);
}

#[test]
fn bench_functions_report_sane_numbers() {
    let b = fixture();
    let phys = b.phys();
    let m = Mmu::x86_64();
    let r = roots(&b);
    let w = bench_walk(&phys, &m, &r, 3);
    assert_eq!((w.runs, w.ranges, w.pages), (3, 2, 17));
    assert!(w.min_ms <= w.median_ms && w.median_ms > 0.0);
    let view = VirtualView::new(&phys, m, r).with_tlb(TlbConfig::default());
    let t = bench_translate(&view, 256, 3, 1).unwrap();
    assert_eq!(t.failed, 0);
    assert!(t.cold_per_s > 0.0 && t.warm_per_s > 0.0);
    let v = bench_virt(
        &view,
        &VirtBenchConfig {
            sizes: vec![8, 4096],
            batches: vec![1, 16],
            time_per_case: Duration::from_millis(20),
            seed: 3,
        },
    )
    .unwrap();
    assert_eq!(v.rows.len(), 4);
    assert_eq!(v.halves, 2);
    assert!(v.rows.iter().all(|r| r.reads > 0 && r.failed == 0));
    assert!(v.to_string().contains("READS/S"));
    // An empty address space is an error, not a panic.
    let empty = Builder::new(Fmt::X64, 0x1000);
    let view = VirtualView::new(empty.phys(), Mmu::x86_64(), roots(&empty));
    assert!(bench_virt(&view, &VirtBenchConfig::default()).is_err());
    assert!(bench_translate(&view, 16, 1, 1).is_err());
}
