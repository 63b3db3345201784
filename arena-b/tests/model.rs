//! Model-based property test: random sequences of allocations, checkpoints,
//! rewinds, scopes and resets against a simple model. Live allocations must
//! never overlap and must keep their contents.

use arena_b::{Arena, Checkpoint};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Allocate `len` bytes aligned to `1 << align_shift`, filled with a tag.
    Alloc {
        len: usize,
        align_shift: u8,
    },
    Str {
        len: usize,
    },
    Boxed,
    Checkpoint,
    /// Rewind to the checkpoint at this index (mod the number taken).
    Rewind(usize),
    /// Run a scope that makes `n` allocations (and `arena_allocs` outer
    /// ones) then returns.
    Scope {
        n: usize,
        arena_allocs: usize,
    },
    Reset,
    Shrink,
    Reserve(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..300, 0u8..8).prop_map(|(len, align_shift)| Op::Alloc { len, align_shift }),
        2 => (0usize..40).prop_map(|len| Op::Str { len }),
        1 => Just(Op::Boxed),
        2 => Just(Op::Checkpoint),
        2 => (0usize..8).prop_map(Op::Rewind),
        2 => (0usize..20, 0usize..4).prop_map(|(n, arena_allocs)| Op::Scope { n, arena_allocs }),
        1 => Just(Op::Reset),
        1 => Just(Op::Shrink),
        1 => (0usize..5000).prop_map(Op::Reserve),
    ]
}

/// A live allocation in the model: where it is, and the byte it was filled
/// with.
struct Live {
    ptr: *const u8,
    len: usize,
    tag: u8,
    /// Position in the model's allocation order (for rewinds).
    seq: usize,
}

/// A checkpoint and the allocation count at that time.
struct Cp {
    cp: Checkpoint,
    seq: usize,
    /// What the model knows: the arena must accept it (`Some(true)`), must
    /// refuse it (`Some(false)`), or may do either (`None`: a scope, reserve
    /// or reset moved the arena's position without an allocation the model
    /// counts, so the model cannot tell whether it was rewound past).
    valid: Option<bool>,
    /// Were any allocations live when it was taken?
    above_start: bool,
}

fn check_live(live: &[Live]) {
    for l in live {
        // SAFETY: the model only keeps allocations that are still live.
        let bytes = unsafe { std::slice::from_raw_parts(l.ptr, l.len) };
        assert!(
            bytes.iter().all(|&b| b == l.tag),
            "allocation {} lost its contents",
            l.seq
        );
    }
    let mut ranges: Vec<(usize, usize)> = live
        .iter()
        .filter(|l| l.len > 0)
        .map(|l| (l.ptr as usize, l.ptr as usize + l.len))
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "live allocations overlap: {w:?}");
    }
}

fn run(ops: Vec<Op>, chunk_size: usize) {
    quiet_panics();
    // Chunk size 1 stands for a virtual-memory arena (feature
    // `virtual_memory`): a small region that heap chunks extend.
    let builder = Arena::builder().chunk_size(chunk_size.max(64));
    #[cfg(feature = "virtual_memory")]
    let builder = if chunk_size == 1 {
        builder.virtual_memory(64 << 10).decommit_threshold(4096)
    } else {
        builder
    };
    let mut arena = builder.build();
    let mut live: Vec<Live> = Vec::new();
    let mut cps: Vec<Cp> = Vec::new();
    let mut seq = 0usize;
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut boxed_live = 0usize;

    struct Tracked(
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        #[allow(dead_code)] Vec<u8>,
    );
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let mut boxed_seq: Vec<usize> = Vec::new();

    for op in ops {
        match op {
            Op::Alloc { len, align_shift } => {
                let layout = std::alloc::Layout::from_size_align(len, 1 << align_shift).unwrap();
                let p = arena.alloc_layout(layout);
                assert_eq!(p.as_ptr() as usize % (1 << align_shift), 0);
                let tag = (seq % 251) as u8;
                // SAFETY: `p` is valid for `len` bytes.
                unsafe { p.as_ptr().write_bytes(tag, len) };
                if len > 0 {
                    live.push(Live {
                        ptr: p.as_ptr(),
                        len,
                        tag,
                        seq,
                    });
                    seq += 1;
                }
            }
            Op::Str { len } => {
                let tag = b'a' + (seq % 26) as u8;
                let s: String = std::iter::repeat_n(tag as char, len).collect();
                let a = arena.alloc_str(&s);
                if len > 0 {
                    live.push(Live {
                        ptr: a.as_ptr(),
                        len,
                        tag,
                        seq,
                    });
                    seq += 1;
                }
            }
            Op::Boxed => {
                arena.alloc(Tracked(drops.clone(), vec![1, 2, 3]));
                boxed_live += 1;
                boxed_seq.push(seq);
                seq += 1;
            }
            Op::Checkpoint => cps.push(Cp {
                cp: arena.checkpoint(),
                seq,
                valid: Some(true),
                above_start: !live.is_empty(),
            }),
            Op::Rewind(i) => {
                if cps.is_empty() {
                    continue;
                }
                let i = i % cps.len();
                let cp = cps[i].cp;
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // SAFETY: if accepted, the model drops every allocation made
                    // after the checkpoint and never touches them again; a
                    // refusal panics before anything is freed.
                    unsafe { arena.rewind_to_checkpoint(cp) }
                }));
                match (cps[i].valid, r.is_ok()) {
                    (Some(true), false) => panic!("a valid checkpoint was refused"),
                    (Some(false), true) => panic!("a stale checkpoint was accepted"),
                    (_, false) => continue,
                    (_, true) => {}
                }
                let target = cps[i].seq;
                seq = target;
                live.retain(|l| l.seq < target);
                let before = boxed_seq.len();
                boxed_seq.retain(|&s| s < target);
                boxed_live -= before - boxed_seq.len();
                let certain = cps[i].valid == Some(true);
                for c in cps.iter_mut() {
                    if c.seq > target {
                        c.valid = Some(false);
                    } else if c.seq == target && !certain {
                        c.valid = None;
                    }
                }
            }
            Op::Scope { n, arena_allocs } => {
                let mut outer: Vec<Live> = Vec::new();
                arena.scope(|s| {
                    let mut inner: Vec<(&mut [u8], u8)> = Vec::new();
                    for k in 0..n {
                        let tag = (k % 200) as u8 + 1;
                        inner.push((s.alloc_slice_fast(&vec![tag; k * 3 + 1]), tag));
                        s.alloc(Tracked(drops.clone(), vec![]));
                        if k < arena_allocs {
                            let t = ((seq + k) % 251) as u8;
                            let a = arena.alloc_slice_fast(&[t; 24]);
                            outer.push(Live {
                                ptr: a.as_ptr(),
                                len: 24,
                                tag: t,
                                seq: seq + k,
                            });
                        }
                    }
                    for (slice, tag) in &inner {
                        assert!(
                            slice.iter().all(|b| b == tag),
                            "scope allocation lost its contents"
                        );
                    }
                    check_live(&live);
                });
                // Scope values were dropped; the scope invalidates checkpoints
                // taken inside it (none here) but not older ones.
                seq += arena_allocs.min(n);
                live.extend(outer);
                for c in cps.iter_mut() {
                    if c.valid == Some(true) {
                        c.valid = None;
                    }
                }
            }
            Op::Reset => {
                arena.reset();
                seq = 0;
                live.clear();
                boxed_live = 0;
                boxed_seq.clear();
                for c in cps.iter_mut() {
                    c.valid = if c.above_start { Some(false) } else { None };
                }
            }
            Op::Shrink => arena.shrink_to_fit(),
            Op::Reserve(n) => {
                let before = arena.chunk_usage().len();
                arena.reserve_additional(n);
                for c in cps.iter_mut() {
                    if c.valid == Some(true) {
                        c.valid = None;
                    }
                }
                let chunks = arena.chunk_usage().len();
                let p = arena.alloc_layout(std::alloc::Layout::from_size_align(n, 1).unwrap());
                let _ = p;
                assert_eq!(
                    arena.chunk_usage().len(),
                    chunks,
                    "reserve_additional({n}) did not hold"
                );
                assert!(chunks >= before);
                if n > 0 {
                    // SAFETY: `p` is valid for `n` bytes.
                    unsafe { p.as_ptr().write_bytes(0x5A, n) };
                    live.push(Live {
                        ptr: p.as_ptr(),
                        len: n,
                        tag: 0x5A,
                        seq,
                    });
                    seq += 1;
                }
            }
        }
        check_live(&live);
        assert!(arena.bytes_allocated() <= arena.capacity());
        // No false alarm: nothing here writes freed memory.
        #[cfg(feature = "debug")]
        arena.validate().unwrap();
    }
    let _ = boxed_live;
}

fn cases() -> u32 {
    std::env::var("ARENA_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(miri) { 4 } else { 256 })
}

/// The model provokes refused (panicking) rewinds on purpose; keep their
/// messages out of the test output. Failures are reported by proptest.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arena_matches_model(ops in proptest::collection::vec(op(), 1..120), chunk in prop_oneof![Just(1usize), Just(64), Just(512), Just(8192)]) {
        run(ops, chunk);
    }
}
