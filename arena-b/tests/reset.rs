//! `reset`, `reset_and_shrink` and `shrink_to_fit`.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use arena_b::Arena;

#[test]
fn reset_keeps_chunks_and_reset_and_shrink_keeps_one() {
    let mut arena = Arena::builder().chunk_size(1024).build();
    for i in 0..10_000u64 {
        arena.alloc(i);
    }
    let cap = arena.capacity();
    let chunks = arena.chunk_usage().len();
    assert!(chunks > 1);
    arena.reset();
    assert_eq!(arena.bytes_allocated(), 0);
    assert_eq!(arena.capacity(), cap);
    for i in 0..10_000u64 {
        arena.alloc(i);
    }
    assert_eq!(arena.capacity(), cap, "reset chunks are reused");
    arena.reset_and_shrink();
    assert_eq!(arena.chunk_usage().len(), 1);
    assert_eq!(arena.capacity(), 1024);
    assert_eq!(arena.stats().resets, 2);
}

#[test]
fn shrink_to_fit_frees_only_empty_chunks() {
    let arena = Arena::builder().chunk_size(1024).build();
    let kept = arena.alloc(5u64);
    let cp = arena.checkpoint();
    for i in 0..10_000u64 {
        arena.alloc(i);
    }
    // SAFETY: nothing after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    let freed_events = Arc::new(AtomicUsize::new(0));
    arena.shrink_to_fit();
    assert_eq!(arena.chunk_usage().len(), 1);
    assert_eq!(*kept, 5);
    drop(freed_events);
}
