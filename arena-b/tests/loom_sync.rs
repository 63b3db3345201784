//! Loom models of `SyncArena`'s thread registration: every interleaving of
//! two or three threads registering their sub-arenas with the lock-free
//! list, and of allocating through the thread-local cache.
//!
//! Run with `scripts/loom` (`RUSTFLAGS="--cfg loom" cargo test -p arena-b
//! --release --test loom_sync`).
#![cfg(loom)]

use arena_b::SyncArena;
use loom::sync::Arc;
use loom::thread;

#[test]
fn two_threads_register_concurrently() {
    loom::model(|| {
        let arena = Arc::new(SyncArena::new());
        let other = Arc::clone(&arena);
        let h = thread::spawn(move || {
            let v = other.alloc(1u64);
            *v += 10;
            *v
        });
        let mine = arena.alloc(2u64);
        assert_eq!(h.join().unwrap(), 11);
        assert_eq!(*mine, 2);
        assert_eq!(arena.threads(), 2);
        assert_eq!(arena.bytes_allocated(), 16);
    });
}

#[test]
fn three_threads_each_find_their_own_sub_arena() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let arena = Arc::new(SyncArena::new());
        let handles: Vec<_> = (0..2u64)
            .map(|t| {
                let arena = Arc::clone(&arena);
                thread::spawn(move || {
                    let a = arena.alloc(t) as *const u64 as usize;
                    let b = arena.alloc(t + 100) as *const u64 as usize;
                    // Same thread, same sub-arena: consecutive slots.
                    assert_eq!(b, a + 8);
                    (a, b)
                })
            })
            .collect();
        let main = arena.alloc(7u64) as *const u64 as usize;
        let mut all = vec![main];
        for h in handles {
            let (a, b) = h.join().unwrap();
            all.extend([a, b]);
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 5, "no two allocations share memory");
        assert_eq!(arena.threads(), 3);
    });
}

#[test]
fn alternating_arenas_on_threads() {
    loom::model(|| {
        let x = Arc::new(SyncArena::new());
        let y = Arc::new(SyncArena::new());
        let (x2, y2) = (Arc::clone(&x), Arc::clone(&y));
        let h = thread::spawn(move || {
            let a = *x2.alloc(1u32);
            let b = *y2.alloc(2u32);
            let c = *x2.alloc(3u32);
            (a, b, c)
        });
        assert_eq!(*y.alloc(4u32), 4);
        assert_eq!(*x.alloc(5u32), 5);
        assert_eq!(h.join().unwrap(), (1, 2, 3));
        assert_eq!(x.threads(), 2);
        assert_eq!(y.threads(), 2);
    });
}
