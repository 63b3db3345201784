//! Feature `slab`: blocks given back through `Allocator` are reused by
//! later allocations of their size class, never across a rewind.
#![cfg(feature = "slab")]

use allocator_api2::vec::Vec;
use arena_b::{Arena, SyncArena};

#[test]
fn growing_vectors_reuse_their_old_buffers() {
    let arena = Arena::with_capacity(1 << 20);
    // Two vectors growing in turn: each growth leaves the other's buffer
    // last, so old buffers are freed in the middle and cached.
    let mut a: Vec<u64, &Arena> = Vec::new_in(&arena);
    let mut b: Vec<u64, &Arena> = Vec::new_in(&arena);
    let n = if cfg!(miri) { 300 } else { 10_000u64 };
    for i in 0..n {
        a.push(i);
        b.push(i);
    }
    let with_two = arena.bytes_allocated();
    let stats = arena.slab_stats();
    assert!(stats.cached_blocks > 5, "{stats:?}");
    drop((a, b));
    // Many short-lived vectors next to a long-lived one: memory stays flat.
    let mut keep: Vec<u32, &Arena> = Vec::new_in(&arena);
    let before = arena.bytes_allocated();
    let rounds = if cfg!(miri) { 300 } else { 10_000u32 };
    for round in 0..rounds {
        let mut tmp: Vec<u32, &Arena> = Vec::with_capacity_in(8, &arena);
        tmp.extend(0..8);
        assert_eq!(tmp.iter().sum::<u32>(), 28);
        if round % 100 == 0 {
            keep.push(round);
        }
    }
    let grown = arena.bytes_allocated() - before;
    assert!(
        grown < 4096,
        "10,000 temporary vectors took {grown} bytes (with two growing: {with_two})"
    );
    assert!(arena.slab_stats().reused_blocks > u64::from(rounds) * 9 / 10);
}

#[test]
fn contents_survive_reuse() {
    let arena = Arena::new();
    let mut live: std::vec::Vec<Vec<u8, &Arena>> = std::vec::Vec::new();
    let n = if cfg!(miri) { 80 } else { 2000usize };
    for i in 0..n {
        let len = 1 + i % if cfg!(miri) { 40 } else { 300 };
        let mut v = Vec::with_capacity_in(len, &arena);
        v.extend(std::iter::repeat_n(i as u8, len));
        live.push(v);
        if i % 3 == 0 {
            live.swap_remove(i / 7 % live.len());
        }
        for v in &live {
            let tag = v[0];
            assert!(
                v.iter().all(|&b| b == tag),
                "a reused block overlapped a live one"
            );
        }
    }
    assert!(arena.slab_stats().reused_blocks > 0);
}

#[test]
fn a_rewind_invalidates_the_cache() {
    let arena = Arena::new();
    let keep = arena.alloc(0u64);
    let cp = arena.checkpoint();
    {
        let v: Vec<u8, &Arena> = Vec::with_capacity_in(64, &arena);
        let _pin = arena.alloc(1u8); // `v` is no longer the last block
        drop(v); // cached
    }
    assert_eq!(arena.slab_stats().cached_blocks, 1);
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    // The cached block lies above the rewind point: it must not come back
    // while the bump pointer hands the same memory out.
    let fresh = arena.alloc([7u8; 64]);
    let v: Vec<u8, &Arena> = Vec::with_capacity_in(64, &arena);
    assert_ne!(v.as_ptr(), fresh.as_ptr());
    assert_eq!(arena.slab_stats().reused_blocks, 0);
    assert_eq!(arena.slab_stats().invalidations, 1);
    assert_eq!(*keep, 0);
}

#[test]
fn shrinking_caches_the_tail_and_alignment_is_respected() {
    let arena = Arena::new();
    let mut v: Vec<u8, &Arena> = Vec::with_capacity_in(256, &arena);
    let _pin = arena.alloc(1u8);
    v.push(1);
    v.shrink_to(16); // tail of 240 bytes cached
    assert_eq!(arena.slab_stats().cached_blocks, 1);
    let w: Vec<u64, &Arena> = Vec::with_capacity_in(16, &arena);
    assert_eq!(w.as_ptr() as usize % 8, 0);
    assert_eq!(v[0], 1);
}

#[test]
fn thread_slabs_reuse_per_thread_and_follow_scope_exits() {
    let arena = SyncArena::new();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let arena = &arena;
            s.spawn(move || {
                let slab = arena.thread_slab();
                let mut keep = Vec::new_in(&slab);
                let n = if cfg!(miri) { 100 } else { 1000u64 };
                for i in 0..n {
                    let mut tmp: Vec<u64, _> = Vec::with_capacity_in(4, &slab);
                    tmp.extend([t, i, t, i]);
                    assert_eq!(tmp[1], i);
                    keep.push(i);
                }
                assert!(
                    slab.stats().reused_blocks > n * 9 / 10,
                    "{:?}",
                    slab.stats()
                );
                // A scope exit on this thread's part moves its cursor back:
                // the cache is dropped.
                let tmp: Vec<u64, _> = Vec::with_capacity_in(4, &slab);
                let _pin = arena.alloc(0u8);
                drop(tmp);
                arena.scope(|scope| {
                    scope.alloc([0u8; 100]);
                });
                let v: Vec<u64, _> = Vec::with_capacity_in(4, &slab);
                drop(v);
                assert!(slab.stats().invalidations >= 1);
            });
        }
    });
}
