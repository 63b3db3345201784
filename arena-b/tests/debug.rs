//! Feature `debug`: freed memory is poisoned, writes into it are found,
//! stale checkpoints are counted, leak reports say what is still held.
#![cfg(feature = "debug")]

use arena_b::{Arena, SyncArena, POISON};
use std::alloc::Layout;

fn poisoned(p: *const u8, len: usize) -> bool {
    // SAFETY: (test) `p` points into a chunk the arena still owns; the bytes
    // are freed but the memory is live.
    (0..len).all(|i| unsafe { p.add(i).read() } == POISON)
}

#[test]
fn use_after_rewind_reads_poison_and_a_write_is_found() {
    let arena = Arena::with_capacity(4096);
    let cp = arena.checkpoint();
    let stale: *mut [u64; 4] = arena.alloc([1u64, 2, 3, 4]);
    // SAFETY: (test) `stale` is used below on purpose, to show the check.
    unsafe { arena.rewind_to_checkpoint(cp) };
    assert!(poisoned(stale.cast(), 32), "freed bytes hold the poison");
    arena.validate().unwrap();
    // SAFETY: (test) the chunk is live; this is the bug being detected.
    unsafe { stale.cast::<u64>().add(2).write(42) };
    let err = arena.validate().unwrap_err();
    assert_eq!((err.chunk, err.offset, err.bytes), (0, 16, 8));
    assert!(err.to_string().contains("written after being freed"));
    let stats = arena.debug_stats();
    assert_eq!(stats.detections, 1);
    assert!(stats.checks >= 3);
    assert!(stats.poisoned_bytes >= 32);
}

#[test]
fn reuse_after_rewind_is_not_a_false_alarm() {
    let arena = Arena::with_capacity(256);
    for round in 0..100u64 {
        let cp = arena.checkpoint();
        for i in 0..50 {
            arena.alloc(round * i);
            arena.alloc_str("some text");
        }
        arena.validate().unwrap();
        // SAFETY: (test) nothing allocated after `cp` is used again.
        unsafe { arena.rewind_to_checkpoint(cp) };
        arena.validate().unwrap();
    }
    assert!(arena.chunk_usage().len() > 1, "the rounds spanned chunks");
    assert_eq!(arena.debug_stats().detections, 0);
}

#[test]
fn rewind_across_chunks_poisons_every_chunk() {
    let arena = Arena::builder().chunk_size(128).build();
    let cp = arena.checkpoint();
    let blocks: Vec<*mut [u8; 64]> = (0..10).map(|_| arena.alloc([7u8; 64]) as *mut _).collect();
    assert!(arena.chunk_usage().len() >= 4);
    // SAFETY: (test) the blocks are only read below, as freed memory.
    unsafe { arena.rewind_to_checkpoint(cp) };
    for b in blocks {
        assert!(poisoned(b.cast(), 64));
    }
    arena.validate().unwrap();
}

#[test]
fn scope_exit_and_reset_poison() {
    let mut arena = Arena::with_capacity(4096);
    let mut inner_ptr = core::ptr::null();
    let mut nested_ptr = core::ptr::null();
    arena.scope(|scope| {
        inner_ptr = scope.alloc([9u8; 16]).as_ptr();
        scope.scope(|nested| nested_ptr = nested.alloc([8u8; 16]).as_ptr());
        assert!(poisoned(nested_ptr, 16), "a nested scope's exit poisons");
    });
    assert!(poisoned(inner_ptr, 16), "a scope's exit poisons");
    let kept: *const u8 = arena.alloc([5u8; 8]).as_ptr();
    arena.reset();
    assert!(poisoned(kept, 8), "reset poisons");
    arena.validate().unwrap();
}

#[test]
fn allocator_deallocation_poisons_the_returned_tail() {
    use allocator_api2::vec::Vec;
    let arena = Arena::with_capacity(4096);
    let mut v: Vec<u8, &Arena> = Vec::with_capacity_in(64, &arena);
    v.extend_from_slice(&[1; 64]);
    let p = v.as_ptr();
    v.truncate(8);
    v.shrink_to_fit();
    assert!(poisoned(p.wrapping_add(8), 56));
    drop(v);
    assert!(poisoned(p, 8));
    arena.validate().unwrap();
}

#[test]
fn stale_checkpoint_is_counted_as_a_detection() {
    let arena = Arena::new();
    let old = arena.checkpoint();
    arena.alloc(1u32);
    let newer = arena.checkpoint();
    // SAFETY: (test) nothing allocated is used again.
    unsafe { arena.rewind_to_checkpoint(old) };
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: (test) refused before anything is freed.
        unsafe { arena.rewind_to_checkpoint(newer) }
    }));
    assert!(refused.is_err());
    assert_eq!(arena.debug_stats().detections, 1);
}

#[test]
fn leak_report_lists_what_is_held_with_backtraces() {
    let mut arena = Arena::builder()
        .chunk_size(64)
        .debug_backtrace(true)
        .build();
    assert!(arena.leak_report().is_none());
    arena.alloc(String::from("a"));
    arena.alloc_layout(Layout::from_size_align(200, 8).unwrap());
    let report = arena.leak_report().unwrap();
    assert_eq!(report.values_pending_drop, 1);
    assert_eq!(report.chunks, 2);
    assert_eq!(report.backtraces.len(), 2);
    assert!(report.bytes >= 200);
    assert!(report.to_string().contains("chunk 0 opened at"));
    assert_eq!(arena.debug_stats().leak_reports, 1);
    arena.reset();
    assert!(arena.leak_report().is_none());
}

#[test]
fn sync_arena_debug_over_threads() {
    let mut arena = SyncArena::new();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                arena.scope(|scope| {
                    scope.alloc([3u8; 100]);
                });
                arena.alloc(1u64);
            });
        }
    });
    arena.validate().unwrap();
    assert!(arena.debug_stats().poisoned_bytes >= 200);
    assert_eq!(arena.leak_report().unwrap().bytes, 16);
    arena.reset();
    arena.validate().unwrap();
}

#[cfg(feature = "lockfree")]
#[test]
fn lockfree_buffer_reset_poisons_what_it_handed_out() {
    let mut arena = Arena::builder().lockfree_buffer(4096, 64).build_sync();
    arena.lockfree_allocator().unwrap().enable();
    let stale: *mut u64 = arena.alloc(0x1122_3344_5566_7788u64);
    let buffer_used = arena.lockfree_allocator().unwrap().used();
    assert!(buffer_used >= 8, "the value came from the shared buffer");
    arena.reset();
    assert!(
        poisoned(stale.cast(), 8),
        "freed buffer bytes hold the poison"
    );

    // Handed out again after the reset: fresh, writable, no false alarm.
    let again = arena.alloc(5u64);
    assert_eq!(*again, 5);
}
