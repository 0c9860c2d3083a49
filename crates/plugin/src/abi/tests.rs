//! Round trips through export → import, on both read paths (in-place native and portable
//! C ops), with every outcome kind, without loading a library.

use std::sync::Arc;

use memlens_core::mem::{MemoryMetadata, MemoryView, ReadOp};
use memlens_core::{Error, MemoryViewExt, PhysAddr, PhysicalMemory};

use super::export::export_memory;
use super::import::{ImportedMemory, Origin};

/// 64 bytes of `i as u8`; reads past 64 fail (partially, or with `Gap`); address 0x666
/// panics.
struct Small;

impl MemoryView for Small {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        for op in ops {
            if op.addr.0 == 0x666 {
                panic!("boom at 0x666");
            }
            let mut res = Ok(());
            let total = op.buf.len();
            for (k, b) in op.buf.iter_mut().enumerate() {
                let a = op.addr.0 + k as u64;
                *b = a as u8;
                if a >= 64 {
                    memlens_core::mem::record_failure(
                        &mut res,
                        total,
                        k,
                        1,
                        Error::Gap { addr: PhysAddr(64) },
                    );
                }
            }
            memlens_core::mem::finish_partial(&mut res);
            op.result = res;
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(63),
            real_size: 64,
            readonly: true,
            preferred_batch: 8,
        }
    }
}

fn imported(native: bool) -> Arc<dyn PhysicalMemory> {
    let mut obj = export_memory(Arc::new(Small) as Arc<dyn PhysicalMemory>);
    if !native {
        obj.vt.native_fingerprint ^= 1;
    }
    // SAFETY: a fresh object exported in this process.
    Arc::new(unsafe { ImportedMemory::<PhysAddr>::new(obj, Origin::host("small")) })
}

fn outcomes(m: &dyn PhysicalMemory, addrs: &[(u64, usize)]) -> Vec<(Vec<u8>, String)> {
    let mut bufs: Vec<Vec<u8>> = addrs.iter().map(|&(_, l)| vec![0xEE; l]).collect();
    let mut ops: Vec<ReadOp<'_, PhysAddr>> = bufs
        .iter_mut()
        .zip(addrs)
        .map(|(b, &(a, _))| {
            let mut op = ReadOp::new(PhysAddr(a), &mut b[..]);
            op.result = Err(Error::Other("stale".into())); // callers may reuse ops
            op
        })
        .collect();
    m.read_batch(&mut ops);
    let res: Vec<String> = ops.iter().map(|o| format!("{:?}", o.result)).collect();
    drop(ops);
    bufs.into_iter().zip(res).collect()
}

#[test]
fn both_paths_match_the_direct_call() {
    let cases: &[&[(u64, usize)]] = &[
        &[(0, 8)],
        &[(60, 8)],
        &[(100, 4)],
        &[(0, 8), (60, 8), (100, 4), (8, 0), (32, 32)],
    ];
    for addrs in cases {
        let want = outcomes(&Small, addrs);
        for native in [true, false] {
            let got = outcomes(&*imported(native), addrs);
            assert_eq!(got, want, "native={native} {addrs:?}");
        }
    }
    // The partial outcome keeps its spans and causes.
    let m = imported(false);
    let mut b = [0u8; 8];
    match m.read_into(PhysAddr(60), &mut b).unwrap_err() {
        Error::Partial { total, failed } => {
            assert_eq!(
                (total, failed.len(), failed[0].offset, failed[0].len),
                (8, 1, 4, 4)
            );
            assert_eq!(*failed[0].cause, Error::Gap { addr: PhysAddr(64) });
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(m.metadata().max_addr, PhysAddr(63));
    assert_eq!(m.ranges().len(), 1);
}

#[test]
fn panics_fail_the_batch_on_both_paths() {
    for native in [true, false] {
        let m = imported(native);
        let got = outcomes(&*m, &[(0, 4), (0x666, 4)]);
        for (_, r) in &got {
            assert!(
                r.contains("panicked in read_batch") && r.contains("boom at 0x666"),
                "{r}"
            );
        }
        // The object still works afterwards.
        assert_eq!(m.read_vec(PhysAddr(1), 2).unwrap(), [1, 2]);
    }
}

#[test]
fn header_parser_matches_the_layout() {
    let h = super::make_header(super::KIND_OS, 2, "linux", "1.2.3", "d", "LINUX");
    // SAFETY: PluginHeader is plain integers and byte arrays.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            &h as *const _ as *const u8,
            std::mem::size_of::<super::PluginHeader>(),
        )
    };
    let p = crate::analyzer::parse_header(bytes).unwrap();
    assert_eq!(p.fingerprint, super::layout_fingerprint(super::KIND_OS));
    assert_eq!(super::inline_str(&p.name), "linux");
    assert_eq!(super::inline_str(&p.version), "1.2.3");
    assert_eq!(p.input, 2);
    assert!(crate::analyzer::check_header(&p, "MEMLENS_OS_LINUX").is_ok());
    assert!(crate::analyzer::check_header(&p, "MEMLENS_CONNECTOR_LINUX").is_err());
    assert!(crate::analyzer::check_header(&p, "MEMLENS_OS_LINUS").is_err());
    assert!(crate::analyzer::parse_header(&bytes[..100]).is_none());
    assert_ne!(
        super::layout_fingerprint(super::KIND_OS),
        super::layout_fingerprint(super::KIND_CONNECTOR)
    );
}

#[test]
fn versions_and_distances() {
    use crate::inventory::{compare_versions, edit_distance};
    use std::cmp::Ordering::*;
    assert_eq!(compare_versions("1.10.0", "1.9.3"), Greater);
    assert_eq!(compare_versions("0.1.0", "0.1.0"), Equal);
    assert_eq!(compare_versions("0.1", "0.1.0"), Less);
    assert_eq!(compare_versions("1.0.0-rc1", "1.0.0-rc2"), Less);
    assert_eq!(edit_distance("linx", "linux"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("qemu", "qemu"), 0);
}

#[test]
fn long_descriptions_are_cut_at_a_character_boundary() {
    let d = "é".repeat(200);
    let h = super::make_header(super::KIND_CONNECTOR, 0, "x", "1", &d, "X");
    let s = super::inline_str(&h.description);
    assert!(s.chars().all(|c| c == 'é') && !s.is_empty() && s.len() < super::DESCRIPTION_LEN);
}

/// A plugin's memory that lies about failures: op 0 reports a span far outside its
/// buffer, op 1 reports one span per byte, op 2 a valid span with a made-up total.
struct Liar;

impl MemoryView for Liar {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        use memlens_core::error::FailedSpan;
        let span = |offset, len| FailedSpan {
            offset,
            len,
            cause: Box::new(Error::Gap { addr: PhysAddr(0) }),
        };
        for op in ops {
            op.result = Err(Error::Partial {
                total: usize::MAX,
                failed: match op.addr.0 {
                    0 => vec![span(usize::MAX - 1, 10), span(2, 2)],
                    1 => (0..5000).map(|i| span(i, 1)).collect(),
                    _ => vec![span(2, 2)],
                },
            });
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        Small.metadata()
    }
}

#[test]
fn failed_spans_from_a_plugin_are_checked() {
    for native in [true, false] {
        let mut obj = export_memory(Arc::new(Liar) as Arc<dyn PhysicalMemory>);
        if !native {
            obj.vt.native_fingerprint ^= 1;
        }
        // SAFETY: a fresh object exported in this process.
        let m = unsafe { ImportedMemory::<PhysAddr>::new(obj, Origin::host("liar")) };
        let mut bufs = vec![[0u8; 8000]; 3];
        let mut ops: Vec<ReadOp<'_, PhysAddr>> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, b)| ReadOp::new(PhysAddr(i as u64), &mut b[..]))
            .collect();
        m.read_batch(&mut ops);
        assert!(
            matches!(ops[0].result, Err(Error::Gap { .. })),
            "{:?}",
            ops[0].result
        );
        assert!(
            matches!(ops[1].result, Err(Error::Gap { .. })),
            "native={native}"
        );
        match &ops[2].result {
            Err(Error::Partial { total, failed }) => {
                assert_eq!((*total, failed.len()), (8000, 1));
                assert_eq!((failed[0].offset, failed[0].len), (2, 2));
            }
            r => panic!("{r:?}"),
        }
    }
}

/// A CPU state claiming usize::MAX vCPUs is seen with at most MAX_CPUS.
#[test]
fn vcpu_counts_are_clamped() {
    struct Many;
    impl memlens_core::CpuState for Many {
        fn cpu_count(&self) -> usize {
            usize::MAX
        }
        fn registers(&self, _: usize) -> memlens_core::Result<memlens_core::CpuRegisters> {
            Err(Error::Other("none".into()))
        }
    }
    let t = memlens_core::PhysicalTarget {
        memory: Arc::new(Small),
        writer: None,
        cpu: Some(Arc::new(Many)),
        info: Default::default(),
    };
    let (obj, info) = super::export::export_target(t).unwrap();
    // SAFETY: fresh objects exported in this process; `info` lives for the call.
    let t = unsafe {
        super::import::import_target(obj, super::StrRef::new(&info), Origin::host("many"))
    }
    .unwrap();
    assert_eq!(t.cpu.unwrap().cpu_count(), super::MAX_CPUS);
}

/// A plugin writing more than MAX_SINK_BYTES into a sink: the host keeps no more, and
/// the result is refused as over the limit.
#[test]
fn string_sinks_are_capped() {
    let piece = vec![b'x'; 1 << 20];
    let mut v = Vec::new();
    let sink = super::StrSink::to_vec(&mut v);
    for _ in 0..(super::MAX_SINK_BYTES >> 20) + 3 {
        // SAFETY: the sink writes into `v`, alive; `piece` is valid.
        unsafe { (sink.write)(sink.ctx, piece.as_ptr(), piece.len()) };
    }
    assert_eq!(v.len(), super::MAX_SINK_BYTES);
    let e = super::check_sink(&v, || "result".into()).unwrap_err();
    assert!(matches!(e, Error::Limit { .. }), "{e}");
    assert!(super::check_sink(b"[]", || "result".into()).is_ok());
}
