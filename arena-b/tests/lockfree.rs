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
