//! The `slab` free lists under fuzzer-chosen collection traffic: vectors in
//! the arena are created, grown, shrunk and dropped in any order, with
//! checkpoints, rewinds and scopes in between; every live vector keeps its
//! contents (a block handed out twice, or after a rewind freed it, would
//! overwrite one).
#![no_main]

use allocator_api2::vec::Vec as AVec;
use arbitrary::Arbitrary;
use arena_b::Arena;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    New { cap: u8, wide: bool },
    Push { which: u8, n: u8 },
    Shrink { which: u8, to: u8 },
    Drop { which: u8 },
    Checkpoint,
    Rewind,
    Scope(u8),
}

/// A vector in the arena with the tag all its elements carry.
enum V<'a> {
    Narrow(AVec<u8, &'a Arena>, u8),
    Wide(AVec<u64, &'a Arena>, u8),
}

impl V<'_> {
    fn check(&self) {
        match self {
            V::Narrow(v, t) => assert!(v.iter().all(|x| x == t), "a u8 vector was overwritten"),
            V::Wide(v, t) => assert!(
                v.iter()
                    .all(|&x| x == u64::from(*t) * 0x0101_0101_0101_0101),
                "a u64 vector was overwritten"
            ),
        }
    }
}

/// Freeing or shrinking a vector made before the checkpoint may move the
/// arena back below it (when it is the last block), which makes the
/// checkpoint stale: the model forgets the checkpoint then.
fn forget_cp_if_before(cp: &mut Option<(arena_b::Checkpoint, usize)>, k: usize) {
    if cp.as_ref().is_some_and(|(_, mark)| k < *mark) {
        *cp = None;
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let arena = Arena::with_capacity(512);
    // Vectors made after the last checkpoint start at `mark`.
    let mut vs: Vec<V<'_>> = Vec::new();
    let mut cp: Option<(arena_b::Checkpoint, usize)> = None;
    for (i, op) in ops.into_iter().take(300).enumerate() {
        let tag = (i % 250) as u8 + 1;
        match op {
            Op::New { cap, wide } => vs.push(if wide {
                V::Wide(AVec::with_capacity_in(cap as usize % 64, &arena), tag)
            } else {
                V::Narrow(AVec::with_capacity_in(cap as usize, &arena), tag)
            }),
            Op::Push { which, n } => {
                let k = which as usize % vs.len().max(1);
                if let Some(v) = vs.get_mut(k) {
                    match v {
                        V::Narrow(v, t) => v.extend(std::iter::repeat_n(*t, n as usize)),
                        V::Wide(v, t) => v.extend(std::iter::repeat_n(
                            u64::from(*t) * 0x0101_0101_0101_0101,
                            n as usize % 64,
                        )),
                    }
                }
            }
            Op::Shrink { which, to } => {
                let k = which as usize % vs.len().max(1);
                forget_cp_if_before(&mut cp, k);
                if let Some(v) = vs.get_mut(k) {
                    match v {
                        V::Narrow(v, _) => {
                            v.truncate(to as usize);
                            v.shrink_to_fit();
                        }
                        V::Wide(v, _) => {
                            v.truncate(to as usize % 64);
                            v.shrink_to_fit();
                        }
                    }
                }
            }
            Op::Drop { which } => {
                if !vs.is_empty() {
                    let k = which as usize % vs.len();
                    // A vector before the mark drops the checkpoint; one
                    // after it leaves the mark where it is.
                    forget_cp_if_before(&mut cp, k);
                    vs.remove(k);
                }
            }
            Op::Checkpoint => cp = Some((arena.checkpoint(), vs.len())),
            Op::Rewind => {
                // Vectors made before the checkpoint may have grown into
                // memory after it: the model gives them all up without
                // freeing them (a deallocation could move the arena back
                // below the checkpoint, which then, rightly, is refused),
                // then rewinds.
                if let Some((c, _)) = cp.take() {
                    for v in vs.drain(..) {
                        std::mem::forget(v);
                    }
                    // SAFETY: no vector is used again.
                    unsafe { arena.rewind_to_checkpoint(c) };
                }
            }
            Op::Scope(n) => {
                arena.scope(|scope| {
                    let r = scope.alloc_slice_fast(&vec![tag; n as usize]);
                    assert!(r.iter().all(|&x| x == tag));
                });
                cp = None;
            }
        }
        for v in &vs {
            v.check();
        }
        arena.validate().expect("no write into freed memory");
    }
});
