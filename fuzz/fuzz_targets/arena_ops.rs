//! Random sequences of `Arena` operations against a model: every live
//! block keeps its contents and no two overlap; rewinds only to checkpoints
//! the model says are valid (the arena must accept them); scopes free only
//! their own blocks; `validate` (feature `debug`) finds no write into freed
//! memory.
#![no_main]

use std::alloc::Layout;

use arbitrary::Arbitrary;
use arena_b::Arena;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Alloc { size: u16, align_pow: u8 },
    AllocStr { len: u8 },
    AllocValue(u64),
    AllocDrop(u8),
    Checkpoint,
    Rewind(u8),
    Scope(Vec<ScopeOp>),
    Reset,
    Shrink,
    Reserve(u16),
}

#[derive(Arbitrary, Debug)]
enum ScopeOp {
    ScopeAlloc { size: u8, align_pow: u8 },
    ArenaAlloc { size: u8 },
    Nested(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    chunk_pow: u8,
    ops: Vec<Op>,
}

/// A live block: where, how long, what it holds, and when it was made.
struct Live {
    ptr: *const u8,
    len: usize,
    tag: u8,
    seq: usize,
}

fn fill(ptr: *mut u8, len: usize, tag: u8) {
    // SAFETY: a fresh block of `len` bytes.
    unsafe { ptr.write_bytes(tag, len) };
}

fn check(live: &[Live]) {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for b in live {
        // SAFETY: the model says the block is live.
        let bytes = unsafe { std::slice::from_raw_parts(b.ptr, b.len) };
        assert!(
            bytes.iter().all(|&x| x == b.tag),
            "block {} lost its contents",
            b.seq
        );
        if b.len > 0 {
            spans.push((b.ptr as usize, b.ptr as usize + b.len));
        }
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "overlapping blocks {:x?} and {:x?}",
            w[0],
            w[1]
        );
    }
}

fuzz_target!(|input: Input| {
    let chunk = 64usize << (input.chunk_pow % 10);
    let mut arena = Arena::builder().chunk_size(chunk).build();
    let mut live: Vec<Live> = Vec::new();
    // Checkpoints as a stack: (checkpoint, number of blocks before it).
    let mut cps: Vec<(arena_b::Checkpoint, usize)> = Vec::new();
    let mut seq = 0usize;
    for op in input.ops.into_iter().take(200) {
        seq += 1;
        let tag = (seq % 251) as u8 + 1;
        match op {
            Op::Alloc { size, align_pow } => {
                let layout =
                    Layout::from_size_align(size as usize % 5000, 1 << (align_pow % 8)).unwrap();
                let p = arena.alloc_layout(layout);
                assert_eq!(p.as_ptr() as usize % layout.align(), 0);
                fill(p.as_ptr(), layout.size(), tag);
                live.push(Live {
                    ptr: p.as_ptr(),
                    len: layout.size(),
                    tag,
                    seq,
                });
            }
            Op::AllocStr { len } => {
                let s = "x".repeat(len as usize);
                let r = arena.alloc_str(&s);
                fill(r.as_mut_ptr(), r.len(), tag);
                live.push(Live {
                    ptr: r.as_ptr(),
                    len: r.len(),
                    tag,
                    seq,
                });
            }
            Op::AllocValue(v) => {
                let r = arena.alloc([tag; 8]);
                assert_eq!(r, &[tag; 8]);
                let _ = v;
                live.push(Live {
                    ptr: r.as_ptr(),
                    len: 8,
                    tag,
                    seq,
                });
            }
            Op::AllocDrop(n) => {
                let r = arena.alloc(vec![tag; n as usize]);
                live.push(Live {
                    ptr: r.as_ptr(),
                    len: r.len(),
                    tag,
                    seq,
                });
            }
            Op::Checkpoint => cps.push((arena.checkpoint(), live.len())),
            Op::Rewind(k) => {
                if cps.is_empty() {
                    continue;
                }
                let i = k as usize % cps.len();
                let (cp, keep) = cps[i];
                cps.truncate(i + 1);
                live.truncate(keep);
                // SAFETY: the model drops every block made after `cp`.
                unsafe { arena.rewind_to_checkpoint(cp) };
            }
            Op::Scope(inner) => {
                let before = live.len();
                arena.scope(|scope| {
                    let mut mine: Vec<Live> = Vec::new();
                    for (j, sop) in inner.into_iter().take(50).enumerate() {
                        let tag = ((seq + j) % 251) as u8 + 1;
                        match sop {
                            ScopeOp::ScopeAlloc { size, align_pow } => {
                                let layout =
                                    Layout::from_size_align(size as usize, 1 << (align_pow % 6))
                                        .unwrap();
                                let p = scope.alloc_layout(layout);
                                fill(p.as_ptr(), layout.size(), tag);
                                mine.push(Live {
                                    ptr: p.as_ptr(),
                                    len: layout.size(),
                                    tag,
                                    seq,
                                });
                            }
                            ScopeOp::ArenaAlloc { size } => {
                                let r = arena.alloc_slice_fast(&vec![tag; size as usize]);
                                live.push(Live {
                                    ptr: r.as_ptr(),
                                    len: r.len(),
                                    tag,
                                    seq,
                                });
                            }
                            ScopeOp::Nested(n) => scope.scope(|nested| {
                                let r = nested.alloc_slice_fast(&vec![tag; n as usize]);
                                assert!(r.iter().all(|&x| x == tag));
                            }),
                        }
                        check(&mine);
                    }
                    let all: Vec<Live> = live
                        .iter()
                        .chain(mine.iter())
                        .map(|b| Live {
                            ptr: b.ptr,
                            len: b.len,
                            tag: b.tag,
                            seq: b.seq,
                        })
                        .collect();
                    check(&all);
                });
                // Arena blocks made inside the scope survive it; a
                // checkpoint taken before it may have been invalidated by
                // the scope's carve: forget the checkpoints.
                let _ = before;
                cps.clear();
            }
            Op::Reset => {
                arena.reset();
                live.clear();
                cps.clear();
            }
            Op::Shrink => arena.shrink_to_fit(),
            Op::Reserve(n) => {
                arena.reserve_additional(n as usize);
                cps.clear();
            }
        }
        check(&live);
        arena.validate().expect("no write into freed memory");
        assert!(arena.bytes_allocated() <= arena.capacity());
    }
});
