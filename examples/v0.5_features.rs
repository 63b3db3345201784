//! A tour of the features the arena-b 1.1.0 README lists as "v0.5":
//! `SyncArena`, `LockFreePool`, `LockFreeAllocator`, `ThreadSlab`,
//! `reserve_additional`, `shrink_to_fit`, `reset_and_shrink` and the stats.
//!
//! Run with `cargo run --example v0_5_features --features lockfree,slab`
//! (Cargo target names cannot contain a '.').

use std::sync::Arc;

use allocator_api2::vec::Vec as ArenaVec;
use arena_b::{Arena, LockFreePool, SyncArena};

fn main() {
    // --- SyncArena: many threads, one arena, no per-thread handle -----------
    let shared = Arc::new(SyncArena::new());
    let words: Vec<&'static str> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let shared = Arc::clone(&shared);
                s.spawn(move || {
                    // A scope's references cannot leave it: return a copy.
                    shared.scope(|scope| *scope.alloc(["zero", "one", "two", "three"][t]))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("SyncArena: {} threads said {:?}", shared.threads(), words);

    // --- ThreadSlab: per-thread reuse of freed collection buffers ------------
    let reused = std::thread::scope(|s| {
        s.spawn(|| {
            let slab = shared.thread_slab();
            let mut keep = ArenaVec::new_in(&slab);
            for i in 0..1000u64 {
                let mut scratch: ArenaVec<u64, _> = ArenaVec::with_capacity_in(8, &slab);
                scratch.extend([i; 8]);
                keep.push(scratch.iter().sum::<u64>());
            }
            slab.stats().reused_blocks
        })
        .join()
        .unwrap()
    });
    println!("ThreadSlab: {reused} of 1000 scratch buffers reused a freed block");

    // --- LockFreeAllocator: a shared buffer for small allocations -----------
    let with_buffer = Arena::builder().lockfree_buffer(64 * 1024, 64).build_sync();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let arena = &with_buffer;
            s.spawn(move || {
                for i in 0..100 {
                    assert_eq!(*arena.alloc(t * 100 + i), t * 100 + i);
                }
            });
        }
    });
    let buffer = with_buffer.lockfree_allocator().expect("configured");
    println!(
        "LockFreeAllocator: hit rate {:.2}, {} bytes used, {} per-thread parts",
        buffer.cache_hit_rate(),
        buffer.used(),
        with_buffer.threads()
    );
    buffer.disable();
    with_buffer.alloc(0u64);
    println!(
        "LockFreeAllocator disabled: now {} per-thread part(s)",
        with_buffer.threads()
    );

    // --- LockFreePool: recycle objects one by one ----------------------------
    let pool = LockFreePool::new(4, || Vec::<u8>::with_capacity(4096));
    for _ in 0..100 {
        let mut buf = pool.get();
        buf.clear();
        buf.extend_from_slice(b"scratch");
    }
    let stats = pool.stats();
    println!(
        "LockFreePool: {} gets, hit rate {:.2}",
        stats.hits + stats.misses,
        stats.cache_hit_rate()
    );

    // --- reserve_additional, shrink_to_fit, reset_and_shrink ----------------
    let mut arena = Arena::new();
    arena.reserve_additional(1 << 20);
    let chunks = arena.chunk_usage().len();
    for i in 0..100_000u64 {
        arena.alloc(i);
    }
    println!(
        "reserve_additional(1 MiB): 100,000 u64 without a new chunk: {}",
        arena.chunk_usage().len() == chunks
    );
    let cp = arena.checkpoint();
    arena.alloc_slice_fill_iter(0..1_000_000u32);
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    let before = arena.capacity();
    arena.shrink_to_fit();
    println!(
        "shrink_to_fit: capacity {} KiB -> {} KiB",
        before / 1024,
        arena.capacity() / 1024
    );
    let stats = arena.stats();
    println!(
        "stats: {} bytes allocated, peak {} bytes, {} chunk(s)",
        stats.bytes_allocated, stats.peak_bytes, stats.chunks
    );
    arena.reset_and_shrink();
    println!(
        "reset_and_shrink: {} bytes allocated, capacity {} KiB",
        arena.bytes_allocated(),
        arena.capacity() / 1024
    );
}
