//! Feature `lockfree`: `LockFreePool` and `LockFreeStats`.
#![cfg(feature = "lockfree")]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arena_b::{LockFreePool, LockFreeStats};

#[test]
fn objects_come_back_and_are_reused() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let pool = LockFreePool::new(4, move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Vec::<u8>::with_capacity(64)
    });
    for _ in 0..100 {
        let mut v = pool.get();
        v.push(1);
    }
    assert_eq!(
        made.load(Ordering::SeqCst),
        1,
        "one object serves every sequential get"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.deallocations),
        (99, 1, 100)
    );
    assert!((stats.cache_hit_rate() - 0.99).abs() < 1e-9);
}

#[test]
fn capacity_bounds_the_idle_objects() {
    let pool = LockFreePool::new(2, || 0u32);
    let guards: Vec<_> = (0..5).map(|_| pool.get()).collect();
    drop(guards);
    assert_eq!(pool.idle(), 2);
    assert_eq!(pool.stats().overflowed, 3);
    assert_eq!(pool.capacity(), 2);
}

#[test]
fn take_keeps_the_object_out_of_the_pool() {
    let pool = LockFreePool::new(2, || String::from("x"));
    let s = pool.get().take();
    assert_eq!(s, "x");
    assert_eq!(pool.idle(), 0);
}

#[test]
#[should_panic(expected = "capacity of at least 1")]
fn zero_capacity_is_refused() {
    let _ = LockFreePool::new(0, || 0u8);
}

#[test]
fn no_object_is_handed_out_twice_at_once() {
    // Each object carries a unique id; a thread records the ids it holds
    // at the same time as others, and no id may be held twice.
    let next = Arc::new(AtomicUsize::new(0));
    let maker = Arc::clone(&next);
    let pool = LockFreePool::new(8, move || maker.fetch_add(1, Ordering::SeqCst));
    let held = Mutex::new(HashSet::new());
    let rounds = if cfg!(miri) { 20 } else { 5_000 };
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..rounds {
                    let obj = pool.get();
                    assert!(
                        held.lock().unwrap().insert(*obj),
                        "object {} handed out twice",
                        *obj
                    );
                    std::hint::spin_loop();
                    held.lock().unwrap().remove(&*obj);
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.hits + stats.misses, 4 * rounds as u64);
    assert!(
        next.load(Ordering::SeqCst) <= 4 + 8,
        "at most one object per thread plus spares"
    );
}

#[test]
fn stats_are_clone_snapshots() {
    let pool = LockFreePool::new(1, || ());
    let before: LockFreeStats = pool.stats();
    drop(pool.get());
    let after = pool.stats();
    assert_ne!(before, after);
    let mut copy = after.clone();
    copy.record_deallocation();
    assert_eq!(copy.deallocations, after.deallocations + 1);
    assert_eq!(LockFreeStats::default().cache_hit_rate(), 0.0);
}

// ----- LockFreeAllocator ------------------------------------------------------

use arena_b::{Arena, LockFreeAllocator};

#[test]
fn lockfree_allocator_regions_never_overlap_across_threads() {
    let buffer = LockFreeAllocator::with_max_size(1 << 20, 64);
    let per_thread = if cfg!(miri) { 50 } else { 2000 };
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let buffer = &buffer;
            s.spawn(move || {
                let mut mine = Vec::new();
                for i in 0..per_thread {
                    let len = 1 + i % 40;
                    let layout = std::alloc::Layout::from_size_align(len, 1 << (i % 4)).unwrap();
                    let p = buffer.try_alloc_layout(layout).expect("room left");
                    assert_eq!(p.as_ptr() as usize % layout.align(), 0);
                    // SAFETY: `p` is a fresh region of `len` bytes.
                    unsafe { p.as_ptr().write_bytes(t, len) };
                    mine.push((p, len));
                }
                for (p, len) in mine {
                    // SAFETY: our region, still live.
                    let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), len) };
                    assert!(bytes.iter().all(|&b| b == t), "another thread wrote here");
                }
            });
        }
    });
    assert_eq!(buffer.cache_hit_rate(), 1.0);
}

/// Threads claiming one-byte neighbours, with resets between rounds. Under
/// ASan with `debug` (`scripts/sanitize`), the reset poisons the buffer and
/// every claim unpoisons its bytes from its own thread: this is the case
/// where two threads' unpoisoning could meet in one 8-byte shadow granule.
#[test]
fn lockfree_allocator_small_neighbours_across_resets() {
    use std::sync::{Barrier, RwLock};
    let (bytes, rounds) = if cfg!(miri) { (64, 3) } else { (4096, 2000) };
    let buffer = RwLock::new(LockFreeAllocator::with_max_size(bytes, 8));
    // Both workers fill the buffer at once; then the main thread resets it.
    let filled = Barrier::new(3);
    let reset = Barrier::new(3);
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let (buffer, filled, reset) = (&buffer, &filled, &reset);
            s.spawn(move || {
                for round in 0..rounds {
                    {
                        let buffer = buffer.read().unwrap();
                        while let Some(b) = buffer.alloc_copy(t) {
                            *b = b.wrapping_add(1);
                            assert_eq!(*b, t + 1, "round {round}");
                        }
                    }
                    filled.wait();
                    reset.wait();
                }
            });
        }
        for _ in 0..rounds {
            filled.wait();
            buffer.write().unwrap().reset();
            reset.wait();
        }
    });
}

#[test]
fn lockfree_allocator_misses_when_full_or_too_large_and_resets() {
    let mut buffer = LockFreeAllocator::with_max_size(64, 32);
    let word = std::alloc::Layout::new::<u64>();
    for _ in 0..8 {
        assert!(buffer.try_alloc_layout(word).is_some());
    }
    assert!(buffer.try_alloc_layout(word).is_none(), "full");
    assert!(buffer
        .try_alloc_layout(std::alloc::Layout::new::<[u8; 33]>())
        .is_none());
    let stats = buffer.stats();
    assert_eq!((stats.hits, stats.misses), (8, 2));
    assert_eq!(buffer.cache_hit_rate(), 0.8);
    buffer.disable();
    assert!(buffer.try_alloc_layout(word).is_none());
    assert_eq!(buffer.stats().misses, 2, "a disabled buffer counts nothing");
    buffer.enable();
    buffer.reset();
    assert_eq!(buffer.used(), 0);
    assert_eq!(*buffer.alloc_copy(7u64).unwrap(), 7);
}

#[test]
fn sync_arena_uses_the_buffer_while_enabled() {
    let arena = Arena::builder().lockfree_buffer(4096, 64).build_sync();
    let buffer = arena.lockfree_allocator().expect("configured");
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let arena = &arena;
            s.spawn(move || {
                let x = arena.alloc(t);
                let name = arena.alloc_str("worker");
                let words = arena.alloc_slice_fast(&[t; 4]);
                assert_eq!((*x, &*name, words[3]), (t, "worker", t));
            });
        }
    });
    assert_eq!(arena.threads(), 0, "no thread needed a part of its own");
    assert_eq!(buffer.stats().hits, 9);
    // Values with destructors and large requests go to the thread's part.
    arena.alloc(String::from("needs drop"));
    arena.alloc([0u8; 100]);
    assert_eq!(arena.threads(), 1);
    buffer.disable();
    arena.alloc(1u8);
    assert_eq!(buffer.stats().hits, 9);
    assert!(arena.bytes_allocated() >= 9 * 8);
    // Full: falls back, counted as a miss.
    buffer.enable();
    for _ in 0..1000 {
        arena.alloc(0u64);
    }
    assert!(buffer.stats().misses > 0 && buffer.cache_hit_rate() < 1.0);
    let err = Arena::builder()
        .lockfree_buffer(4096, 64)
        .try_build()
        .unwrap_err();
    assert!(err.to_string().contains("build_sync"));
}
