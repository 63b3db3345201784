//! Checkpoints and rewinds, and the refusals that keep a stale or foreign
//! checkpoint from freeing live memory.

use std::cell::Cell;

use arena_b::{Arena, DiagnosticEvent};

#[test]
fn checkpoint_rewind_frees_and_reuses() {
    let arena = Arena::new();
    let keep = arena.alloc(7u64);
    let before = arena.bytes_allocated();
    let cp = arena.checkpoint();
    let first = arena.alloc(1u64) as *mut u64;
    arena.alloc_slice_fill_iter(0..10_000u32);
    assert!(arena.bytes_allocated() > before);
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    assert_eq!(arena.bytes_allocated(), before);
    let again = arena.alloc(2u64) as *mut u64;
    assert_eq!(first, again, "memory is reused after a rewind");
    assert_eq!(*keep, 7);
    // The same checkpoint can be rewound to again.
    // SAFETY: as above.
    unsafe { arena.rewind_to_checkpoint(cp) };
    let expected_rewinds = if cfg!(feature = "stats") { 2 } else { 0 };
    assert_eq!(arena.stats().rewinds, expected_rewinds);
}

#[test]
#[should_panic(expected = "another arena")]
fn checkpoint_of_another_arena_panics() {
    let a = Arena::new();
    let b = Arena::new();
    let cp = a.checkpoint();
    // SAFETY: it panics before touching anything.
    unsafe { b.rewind_to_checkpoint(cp) };
}

#[test]
#[should_panic(expected = "stale")]
fn checkpoint_rewound_past_panics() {
    let arena = Arena::new();
    let outer = arena.checkpoint();
    arena.alloc(1u32);
    let inner = arena.checkpoint();
    arena.alloc(String::from("dropped by the first rewind"));
    // SAFETY: nothing after `outer` is used again.
    unsafe { arena.rewind_to_checkpoint(outer) };
    arena.alloc(2u32);
    // SAFETY: it panics: `inner` points at freed state.
    unsafe { arena.rewind_to_checkpoint(inner) };
}

#[test]
#[should_panic(expected = "stale")]
fn checkpoint_before_reset_panics() {
    let mut arena = Arena::new();
    arena.alloc(1u32);
    let cp = arena.checkpoint();
    arena.reset();
    arena.alloc(String::from("x"));
    // SAFETY: it panics.
    unsafe { arena.rewind_to_checkpoint(cp) };
}

#[test]
fn nested_checkpoints_rewind_inner_then_outer() {
    let arena = Arena::new();
    let outer = arena.checkpoint();
    arena.alloc(1u32);
    let inner = arena.checkpoint();
    arena.alloc(2u32);
    // SAFETY: nothing allocated after the checkpoints is used again.
    unsafe {
        arena.rewind_to_checkpoint(inner);
        arena.alloc(3u32);
        arena.rewind_to_checkpoint(inner);
        arena.rewind_to_checkpoint(outer);
    }
    assert_eq!(arena.bytes_allocated(), 0);
}

#[test]
fn checkpoint_across_chunks() {
    let arena = Arena::builder().chunk_size(256).build();
    arena.alloc([1u8; 200]);
    let cp = arena.checkpoint();
    for i in 0..1000u64 {
        arena.alloc(i);
    }
    assert!(arena.chunk_usage().len() > 2);
    let before = arena.capacity();
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    assert_eq!(arena.bytes_allocated(), 200);
    for i in 0..1000u64 {
        arena.alloc(i);
    }
    assert_eq!(
        arena.capacity(),
        before,
        "chunks are reused, not reallocated"
    );
}

#[test]
#[should_panic(expected = "scope that is still open")]
fn rewinding_below_an_open_scope_panics() {
    let arena = Arena::new();
    let cp = arena.checkpoint();
    arena.scope(|s| {
        let v = s.alloc(1u64);
        // SAFETY: it panics before freeing anything.
        unsafe { arena.rewind_to_checkpoint(cp) };
        *v += 1;
    });
}

#[test]
fn checkpoint_inside_scope_is_usable_there_and_stale_after() {
    let arena = Arena::new();
    let stale = arena.scope(|s| {
        s.alloc(1u8);
        let cp = arena.checkpoint();
        arena.alloc(2u8);
        // SAFETY: the arena's value after `cp` is not used again.
        unsafe { arena.rewind_to_checkpoint(cp) };
        let kept = s.alloc_slice_fill_iter(0..100u16);
        assert_eq!(kept[99], 99);
        cp
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.alloc(1u64);
        // SAFETY: it panics.
        unsafe { arena.rewind_to_checkpoint(stale) };
    }));
    assert!(r.is_err());
}

#[test]
fn rewind_from_a_destructor_run_by_a_rewind_is_refused() {
    use arena_b::Checkpoint;
    thread_local! {
        static TL: Arena = Arena::new();
        static OLDER: Cell<Option<Checkpoint>> = const { Cell::new(None) };
    }
    struct Rewinder;
    impl Drop for Rewinder {
        fn drop(&mut self) {
            if let Some(c) = OLDER.with(|o| o.take()) {
                // SAFETY: refused with a panic (a rewind is running).
                TL.with(|a| unsafe { a.rewind_to_checkpoint(c) });
            }
        }
    }
    TL.with(|a| {
        let keep = a.alloc(String::from("keep me"));
        let c1 = a.checkpoint();
        OLDER.with(|o| o.set(Some(c1)));
        a.alloc(String::from("mid"));
        let c2 = a.checkpoint();
        a.alloc(Rewinder);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: nothing after `c2` is used again.
            unsafe { a.rewind_to_checkpoint(c2) }
        }));
        assert!(r.is_err(), "the nested rewind must be refused");
        assert_eq!(keep.as_str(), "keep me");
        // The arena is usable, and the outer checkpoint still is.
        // SAFETY: nothing after `c1` is used again.
        unsafe { a.rewind_to_checkpoint(c1) };
        assert_eq!(keep.as_str(), "keep me");
    });
}

#[test]
fn allocator_give_back_makes_later_checkpoints_stale() {
    use allocator_api2::vec::Vec as AVec;
    let arena = Arena::new();
    let keep = arena.alloc(String::from("keep me"));
    let mut v: AVec<u8, &Arena> = AVec::with_capacity_in(48, &arena);
    v.push(1);
    let c0 = arena.checkpoint();
    drop(v); // gives the last block back: the position moves backwards
    arena.alloc(String::from("tmp"));
    let c1 = arena.checkpoint();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: nothing after `c0` is used again (or it is refused).
        unsafe { arena.rewind_to_checkpoint(c0) };
        // SAFETY: `c1` must be refused: `c0` went below it.
        unsafe { arena.rewind_to_checkpoint(c1) };
    }));
    assert!(r.is_err(), "a checkpoint rewound past was accepted");
    assert_eq!(keep.as_str(), "keep me");
}

/// Review finding: a checkpoint refused after a collection in the arena
/// shrank in place or was freed as the last block got a message that named
/// only rewinds, scope exits and resets.
#[test]
fn the_refusal_after_an_allocator_shrink_or_free_says_so() {
    use allocator_api2::vec::Vec as AVec;
    for shrink in [true, false] {
        let arena = Arena::new();
        let mut v: AVec<u8, &Arena> = AVec::with_capacity_in(256, &arena);
        v.push(1);
        let cp = arena.checkpoint();
        if shrink {
            v.shrink_to_fit(); // in place: the position moves back below `cp`
        } else {
            drop(v);
        }
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: refused (the arena went back past `cp`).
            unsafe { arena.rewind_to_checkpoint(cp) };
        }))
        .unwrap_err();
        let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(
            message.contains("stale")
                && message.contains("`Allocator` deallocation or in-place shrink"),
            "{message}"
        );
    }
}

thread_local! {
    static LEAKED: Arena = Arena::new();
    static SAVED: Cell<Option<arena_b::Checkpoint>> = const { Cell::new(None) };
}

#[test]
fn a_checkpoint_taken_during_a_rewind_cannot_rewind_it_again() {
    struct TakeCp;
    impl Drop for TakeCp {
        fn drop(&mut self) {
            LEAKED.with(|a| SAVED.with(|s| s.set(Some(a.checkpoint()))));
        }
    }
    struct UseCp;
    impl Drop for UseCp {
        fn drop(&mut self) {
            if let Some(c) = SAVED.with(|s| s.take()) {
                // SAFETY: refused (a rewind is running destructors), or a no-op.
                LEAKED.with(|a| unsafe { a.rewind_to_checkpoint(c) });
            }
        }
    }
    LEAKED.with(|a| {
        let keep = a.alloc(String::from("keep me"));
        let c = a.checkpoint();
        a.alloc(UseCp);
        a.alloc(TakeCp);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: nothing after `c` is used again.
            unsafe { a.rewind_to_checkpoint(c) }
        }));
        assert_eq!(keep.as_str(), "keep me");
    });
}

#[test]
fn a_panicking_destructor_leaves_later_checkpoints_stale() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("destructor panics");
        }
    }
    let arena = Arena::new();
    let keep = arena.alloc(String::from("keep me"));
    let ca = arena.checkpoint();
    arena.alloc(PanicOnDrop);
    let cb = arena.checkpoint();
    arena.alloc(String::from("after cb"));
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: nothing after `ca` is used again.
        unsafe { arena.rewind_to_checkpoint(ca) }
    }));
    assert!(first.is_err());
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: must be refused: the rewind to `ca` went below it.
        unsafe { arena.rewind_to_checkpoint(cb) }
    }));
    assert!(
        second.is_err(),
        "a checkpoint above a half-done rewind was accepted"
    );
    assert_eq!(keep.as_str(), "keep me");
    // Retrying the first rewind finishes it.
    // SAFETY: nothing after `ca` is used again.
    unsafe { arena.rewind_to_checkpoint(ca) };
    assert_eq!(keep.as_str(), "keep me");
}

#[test]
fn a_sink_checkpoint_is_consistent_with_the_value_that_triggered_it() {
    thread_local! {
        static A: Arena = Arena::builder()
            .chunk_size(1024)
            .diagnostics(|e| {
                if matches!(e, DiagnosticEvent::ChunkAllocated { .. }) {
                    A.with(|a| SAVED.with(|s| s.set(Some(a.checkpoint()))));
                }
            })
            .build();
    }
    A.with(|a| {
        let boxed = a.alloc(Box::new(7u32));
        let cp = SAVED
            .with(|s| s.take())
            .expect("the first chunk was reported");
        // SAFETY: nothing allocated after the checkpoint is used; `boxed`
        // was allocated (and its destructor linked) before the sink ran.
        unsafe { a.rewind_to_checkpoint(cp) };
        assert_eq!(**boxed, 7);
    });
}

#[test]
fn the_rewind_history_stays_bounded() {
    use allocator_api2::vec::Vec as AVec;
    let arena = Arena::new();
    let cp = arena.checkpoint();
    let n = if cfg!(miri) { 200 } else { 20_000 };
    for i in 0..n {
        arena.alloc(i as u64);
        let mut v = AVec::new_in(&arena);
        v.push(1u8);
        drop(v); // gives its block back: recorded like a rewind
    }
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    assert_eq!(arena.bytes_allocated(), 0);
}
