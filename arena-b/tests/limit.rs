//! The allocation limit at its edge: what `try_*` methods, plain methods
//! and collections (through the `Allocator` interface) do under each
//! `LimitPolicy`, and that a refusal leaves the arena usable.

use allocator_api2::vec::Vec;
use arena_b::{
    catch_limit, fallible, AllocErrorKind, Arena, LimitExceeded, LimitPolicy, SyncArena,
};

const LIMIT: usize = 64 * 1024;

fn unwinding() -> Arena {
    Arena::builder()
        .allocation_limit(LIMIT)
        .limit_policy(LimitPolicy::Unwind)
        .build()
}

fn unwinding_sync() -> SyncArena {
    Arena::builder()
        .allocation_limit(LIMIT)
        .limit_policy(LimitPolicy::Unwind)
        .build_sync()
}

/// Pushes until something gives.
fn fill<A: allocator_api2::alloc::Allocator>(alloc: A) -> usize {
    let mut v = Vec::new_in(alloc);
    for i in 0..10_000_000u64 {
        v.push(i);
    }
    v.len()
}

#[test]
fn a_vec_growing_past_the_limit_unwinds_with_the_limit_and_the_arena_stays_usable() {
    let arena = unwinding();
    let err = catch_limit(|| fill(&arena)).unwrap_err();
    assert_eq!(err.limit(), LIMIT);
    assert!(err.requested() > 0);
    assert!(
        err.to_string().contains("allocation limit of 65536 bytes"),
        "{err}"
    );
    // The refused growth changed nothing: the arena serves what fits.
    assert_eq!(*arena.alloc(42u32), 42);
    assert!(arena.capacity() <= LIMIT);
}

#[test]
fn a_hash_map_growing_past_the_limit_unwinds() {
    let arena = unwinding();
    let err = catch_limit(|| {
        let mut map = hashbrown::HashMap::new_in(&arena);
        for i in 0..1_000_000u64 {
            map.insert(i, i);
        }
    })
    .unwrap_err();
    assert_eq!(err.limit(), LIMIT);
}

#[test]
fn sync_arena_collections_unwind_from_any_thread() {
    let arena = unwinding_sync();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let err = catch_limit(|| fill(&arena)).unwrap_err();
                assert_eq!(err.limit(), LIMIT);
            });
        }
    });
    assert!(arena.capacity() <= LIMIT);
}

#[test]
fn plain_methods_unwind_and_try_methods_return_errors() {
    let arena = unwinding();
    let big = [0u8; 100_000];
    let err = arena.try_alloc_slice_fast(&big).unwrap_err();
    assert_eq!(err.kind(), AllocErrorKind::LimitExceeded);
    assert_eq!((err.requested(), err.limit()), (100_000, Some(LIMIT)));
    assert!(arena.try_alloc([0u8; 100_000]).is_err());
    assert!(arena
        .try_alloc_layout(std::alloc::Layout::new::<[u8; 100_000]>())
        .is_err());
    assert!(arena.try_reserve_additional(100_000).is_err());
    let err = catch_limit(|| arena.alloc_slice_fast(&big).len()).unwrap_err();
    assert_eq!((err.requested(), err.limit()), (100_000, LIMIT));
    let err = catch_limit(|| arena.alloc_str(&"x".repeat(100_000)).len()).unwrap_err();
    assert_eq!(err.requested(), 100_000);
    let sync = unwinding_sync();
    assert!(sync
        .try_alloc_layout(std::alloc::Layout::new::<[u8; 100_000]>())
        .is_err());
    assert!(catch_limit(|| sync.alloc_slice_fast(&big).len()).is_err());
}

#[test]
fn the_unwind_runs_no_panic_hook() {
    // A panic hook that counts this thread's calls (other tests panic on
    // their own threads meanwhile): a limit refusal is not a panic report.
    use std::cell::Cell;
    thread_local!(static HOOK_CALLS: Cell<usize> = const { Cell::new(0) });
    let previous = std::sync::Arc::new(std::panic::take_hook());
    let chained = std::sync::Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        HOOK_CALLS.with(|c| c.set(c.get() + 1));
        chained(info);
    }));
    let arena = unwinding();
    let result = catch_limit(|| fill(&arena));
    let _ = std::panic::take_hook();
    assert!(result.is_err());
    assert_eq!(HOOK_CALLS.with(Cell::get), 0);
}

#[test]
fn other_panics_pass_through_catch_limit_unchanged() {
    let payload = std::panic::catch_unwind(|| {
        let _ = catch_limit(|| -> u32 { std::panic::panic_any(7u32) });
    })
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&7));
    assert!(LimitExceeded::from_payload(&*payload).is_none());
}

#[test]
fn try_reserve_returns_errors_under_the_default_policy_and_inside_fallible() {
    // Default policy: the `Allocator` interface returns the error, so
    // `try_reserve` sees it.
    let arena = Arena::builder().allocation_limit(LIMIT).build();
    let mut v: Vec<u8, _> = Vec::new_in(&arena);
    assert!(v.try_reserve(1 << 20).is_err());
    assert!(v.try_reserve(1000).is_ok());
    let mut map: hashbrown::HashMap<u64, u64, _, _> = hashbrown::HashMap::new_in(&arena);
    assert!(map.try_reserve(1 << 20).is_err());

    // Unwinding policy: inside `fallible`, errors again.
    let arena = unwinding();
    let mut v: Vec<u8, _> = Vec::new_in(&arena);
    assert!(fallible(|| v.try_reserve(1 << 20)).is_err());
    assert!(fallible(|| v.try_reserve(1000)).is_ok());
    // Outside it, the same call unwinds (the interface cannot tell it from a push).
    assert!(catch_limit(|| v.try_reserve(1 << 20)).is_err());
    // `fallible` nests.
    assert!(fallible(|| fallible(|| v.try_reserve(1 << 20))).is_err());
    assert!(catch_limit(|| v.try_reserve(1 << 20)).is_err());
}

#[test]
fn fallible_is_left_when_its_closure_panics() {
    let arena = unwinding();
    let _ = std::panic::catch_unwind(|| fallible(|| panic!("inside fallible")));
    // Outside `fallible` again: the refusal unwinds.
    let mut v: Vec<u8, _> = Vec::new_in(&arena);
    assert!(catch_limit(|| v.try_reserve(1 << 20)).is_err());
}

#[test]
fn the_default_policy_panics_with_a_message_naming_the_setting() {
    let arena = Arena::builder().allocation_limit(4096).build();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.alloc_slice_fast(&[0u8; 10_000]);
    }))
    .unwrap_err();
    let message = payload.downcast_ref::<String>().expect("a message");
    assert!(
        message.contains("limit of 4096 bytes")
            && message.contains("ArenaBuilder::allocation_limit"),
        "{message}"
    );
}

#[test]
fn limit_advice_names_the_callers_setting() {
    let arena = Arena::builder()
        .allocation_limit(4096)
        .limit_policy(LimitPolicy::Unwind)
        .limit_advice("raise Server::scratch_limit")
        .build();
    let err = catch_limit(|| arena.alloc_slice_fast(&[0u8; 10_000]).len()).unwrap_err();
    let text = err.to_string();
    assert!(text.ends_with("raise Server::scratch_limit"), "{text}");
    assert!(!text.contains("ArenaBuilder"), "{text}");
}

/// Review finding: in a `SyncArena`, an idle chunk of one thread's part
/// that the shared limit cannot take back made a small allocation fail far
/// under the limit, with the idle chunk's size in the message.
#[test]
fn an_idle_chunk_over_the_shared_budget_falls_back_to_a_chunk_of_the_size_needed() {
    let mut arena2 = Arena::builder().allocation_limit(LIMIT).build_sync();
    arena2.alloc_slice_fast(&[1u8; 50_000]);
    // A pooled arena's reset: this thread's 50 KB chunk is idle, and its
    // bytes are given back to the shared limit.
    arena2.reset();
    // The next request uses 28,000 bytes of the budget on another thread.
    std::thread::scope(|s| {
        s.spawn(|| arena2.alloc_slice_fast(&[2u8; 28_000]).len());
    });
    let small = arena2.try_alloc_layout(std::alloc::Layout::new::<[u8; 100]>());
    assert!(small.is_ok(), "{:?}", small.err());
    assert!(arena2.capacity() >= 50_000, "the idle chunk is kept");
    // A refusal names the request's size, not an idle chunk's.
    let err = arena2
        .try_alloc_layout(std::alloc::Layout::new::<[u8; 40_000]>())
        .unwrap_err();
    assert_eq!(err.requested(), 40_000, "{err}");
}

/// Review finding: a first chunk larger than the system can give (1 TiB)
/// failed a one-word allocation, and the plain methods aborted naming the
/// value's size instead of the chunk's.
#[test]
#[cfg_attr(miri, ignore = "asks the allocator for 1 TiB")]
fn a_chunk_size_the_system_cannot_give_falls_back_to_the_size_needed() {
    let arena = Arena::builder().chunk_size(1 << 40).build();
    assert_eq!(*arena.try_alloc(7u64).unwrap(), 7);
    assert_eq!(arena.alloc_str("hello"), "hello");
    assert!(arena.capacity() < 1 << 20);
    let sync = Arena::builder().chunk_size(1 << 40).build_sync();
    assert_eq!(sync.alloc_str("hello"), "hello");
}

/// Review finding (a real server): a destructor that allocated in the
/// arena while the limit's own unwind ran it unwound a second time, which
/// aborts the process. While its thread unwinds, the arena lets such an
/// allocation go past the limit instead.
#[test]
fn a_destructor_allocating_during_the_limit_unwind_does_not_abort() {
    struct AllocatesOnDrop<'a>(&'a Arena, usize);
    impl Drop for AllocatesOnDrop<'_> {
        fn drop(&mut self) {
            let block = self.0.alloc_slice_fast(&vec![0xABu8; self.1]);
            assert_eq!(block[self.1 - 1], 0xAB);
        }
    }
    let arena = unwinding();
    let err = catch_limit(|| {
        let _guard = AllocatesOnDrop(&arena, 600_000); // far past the limit
        fill(&arena)
    })
    .unwrap_err();
    assert_eq!(err.limit(), LIMIT);
    // Outside an unwind the limit holds again.
    assert!(arena.try_alloc_slice_fast(&[0u8; 100_000]).is_err());
    assert!(catch_limit(|| arena.alloc_slice_fast(&[0u8; 100_000]).len()).is_err());
}

#[test]
fn the_same_in_a_sync_arena() {
    struct AllocatesOnDrop<'a>(&'a SyncArena);
    impl Drop for AllocatesOnDrop<'_> {
        fn drop(&mut self) {
            self.0.alloc_slice_fast(&[1u8; 200_000]);
        }
    }
    let arena = unwinding_sync();
    assert!(catch_limit(|| {
        let _guard = AllocatesOnDrop(&arena);
        fill(&arena)
    })
    .is_err());
    assert_eq!(arena.limit_unwinds(), 1);
}
