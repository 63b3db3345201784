//! Loom models of feature `lockfree`: `LockFreePool` (guards, counters and
//! the capacity bound, over a loom stand-in for crossbeam's queue) and
//! `LockFreeAllocator`'s compare-and-swap bump.
//!
//! Run with `scripts/loom`.
#![cfg(all(loom, feature = "lockfree"))]

use arena_b::{LockFreeAllocator, LockFreePool};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

#[test]
fn pool_never_hands_one_object_to_two_threads() {
    loom::model(|| {
        // Objects are ids; `in_use[id]` counts holders.
        let next = Arc::new(AtomicUsize::new(0));
        let in_use: Arc<Vec<AtomicUsize>> = Arc::new((0..4).map(|_| AtomicUsize::new(0)).collect());
        let make = {
            let next = Arc::clone(&next);
            move || next.fetch_add(1, Ordering::Relaxed)
        };
        let pool = Arc::new(LockFreePool::new(1, make));
        let worker = |pool: Arc<LockFreePool<usize>>, in_use: Arc<Vec<AtomicUsize>>| {
            move || {
                for _ in 0..2 {
                    let id = pool.get();
                    let holders = in_use[*id].fetch_add(1, Ordering::SeqCst);
                    assert_eq!(holders, 0, "object {} handed out twice", *id);
                    in_use[*id].fetch_sub(1, Ordering::SeqCst);
                }
            }
        };
        let h = thread::spawn(worker(Arc::clone(&pool), Arc::clone(&in_use)));
        worker(Arc::clone(&pool), Arc::clone(&in_use))();
        h.join().unwrap();
        let stats = pool.stats();
        assert_eq!(stats.hits + stats.misses, 4);
        assert_eq!(stats.deallocations, 4);
        assert!(pool.idle() <= 1, "the capacity bound holds");
        assert_eq!(stats.misses as usize, next.load(Ordering::Relaxed));
    });
}

#[test]
fn lockfree_allocator_claims_disjoint_regions() {
    loom::model(|| {
        let buffer = Arc::new(LockFreeAllocator::with_max_size(24, 16));
        let other = Arc::clone(&buffer);
        let h = thread::spawn(move || {
            let a = other.alloc_copy(1u64).map(|r| r as *mut u64 as usize);
            let b = other.alloc_copy(2u64).map(|r| r as *mut u64 as usize);
            (a, b)
        });
        let c = buffer.alloc_copy(3u64).map(|r| r as *mut u64 as usize);
        let (a, b) = h.join().unwrap();
        // 24 bytes hold three u64s: every claim succeeds, at distinct places.
        let mut all = vec![a.unwrap(), b.unwrap(), c.unwrap()];
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 3);
        assert_eq!(buffer.used(), 24);
        assert!(buffer.alloc_copy(4u64).is_none());
        assert_eq!(buffer.stats().misses, 1);
    });
}
