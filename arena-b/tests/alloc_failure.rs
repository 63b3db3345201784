//! Every `try_*` constructor and allocation method while the global
//! allocator fails: each returns an error, none aborts. Each case runs in a
//! child process (this test binary again, with `ARENA_B_FAIL_CASE` set), so
//! an abort counts as one failed case instead of killing the suite. Review
//! finding: `reserve_size(1).try_build()` aborted because its error message
//! was built with `format!`; a huge `lockfree_buffer` and
//! `LockFreeAllocator::new` aborted through `handle_alloc_error`.
#![cfg(not(miri))] // no child processes under Miri

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use arena_b::{AllocErrorKind, Arena, SyncArena};

/// The system allocator, except that it refuses everything while `FAIL`.
struct Failing;

static FAIL: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator, or returns null (a valid
// answer of `alloc`) while failing.
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if FAIL.load(Ordering::SeqCst) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if FAIL.load(Ordering::SeqCst) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Failing = Failing;

/// Runs `f` with the global allocator failing; returns whether it reported
/// an error (it must not abort, and must not succeed).
fn failing<T, E>(f: impl FnOnce() -> Result<T, E>) -> bool {
    FAIL.store(true, Ordering::SeqCst);
    let result = f();
    FAIL.store(false, Ordering::SeqCst);
    result.is_err()
}

fn out_of_memory<T>(r: Result<T, arena_b::AllocError>) -> Result<T, ()> {
    match r {
        Err(e) if e.kind() == AllocErrorKind::OutOfMemory => Err(()),
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(v) => Ok(v),
    }
}

type Case = (&'static str, fn() -> bool);

/// The cases; each returns `true` when the call failed cleanly.
const CASES: &[Case] = &[
    ("build_with_reserve", || {
        failing(|| Arena::builder().reserve_size(1).try_build())
    }),
    ("build_sync", || {
        failing(|| Arena::builder().try_build_sync())
    }),
    ("build_sync_with_limit", || {
        failing(|| Arena::builder().allocation_limit(1 << 20).try_build_sync())
    }),
    ("try_alloc", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc(1u64).map(|_| ())))
    }),
    ("try_alloc_with_drop", || {
        let arena = Arena::new();
        let value = std::sync::Arc::new(1);
        failing(|| out_of_memory(arena.try_alloc(value).map(|_| ())))
    }),
    ("try_alloc_with", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_with(|| [1u8; 64]).map(|_| ())))
    }),
    ("try_alloc_no_drop", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_no_drop(1u64).map(|_| ())))
    }),
    ("try_alloc_try_with", || {
        let arena = Arena::new();
        failing(
            || match arena.try_alloc_try_with(|| Ok::<_, ()>([1u8; 64])) {
                Err(arena_b::AllocOrInitError::Alloc(e))
                    if e.kind() == AllocErrorKind::OutOfMemory =>
                {
                    Err(())
                }
                _ => Ok(()),
            },
        )
    }),
    ("try_alloc_box", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_box(7u64).map(drop)))
    }),
    ("try_alloc_slice_fill_family", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_slice_fill_copy(8, 1u8).map(|_| ())))
            && failing(|| out_of_memory(arena.try_alloc_slice_fill_with(8, |i| i).map(|_| ())))
            && failing(|| out_of_memory(arena.try_alloc_slice_fill_default::<u32>(8).map(|_| ())))
            && failing(|| {
                out_of_memory(
                    arena
                        .try_alloc_slice_fill_clone(2, &String::new())
                        .map(|_| ()),
                )
            })
    }),
    ("string_try_reserve", || {
        let arena = Arena::new();
        let mut s = arena_b::collections::String::new_in(&arena);
        failing(|| s.try_reserve(100))
    }),
    ("try_alloc_str", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_str("hello").map(|_| ())))
    }),
    ("try_alloc_slice_fast", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_slice_fast(&[1u32; 8]).map(|_| ())))
    }),
    ("try_alloc_slice_clone", || {
        let arena = Arena::new();
        let src = [String::new(), String::new()];
        failing(|| out_of_memory(arena.try_alloc_slice_clone(&src).map(|_| ())))
    }),
    ("try_alloc_slice_fill_iter", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_slice_fill_iter(0..10u32).map(|_| ())))
    }),
    ("try_alloc_str_uninit", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_str_uninit(10).map(|_| ())))
    }),
    ("try_alloc_layout", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_alloc_layout(Layout::new::<u64>())))
    }),
    ("try_reserve_additional", || {
        let arena = Arena::new();
        failing(|| out_of_memory(arena.try_reserve_additional(100)))
    }),
    ("scope_try_alloc_layout", || {
        let arena = Arena::new();
        failing(|| arena.scope(|s| out_of_memory(s.try_alloc_layout(Layout::new::<u64>()))))
    }),
    ("vec_try_reserve_in_arena", || {
        let arena = Arena::new();
        let mut v: allocator_api2::vec::Vec<u8, _> = allocator_api2::vec::Vec::new_in(&arena);
        failing(|| v.try_reserve(100))
    }),
    ("sync_try_alloc_first_use", || {
        let arena = SyncArena::new();
        failing(|| out_of_memory(arena.try_alloc(1u64).map(|_| ())))
    }),
    ("sync_try_alloc_layout_warm", || {
        let arena = SyncArena::new();
        arena.alloc(1u8);
        failing(|| out_of_memory(arena.try_alloc_layout(Layout::new::<[u8; 100_000]>())))
    }),
    ("sync_vec_try_reserve", || {
        let arena = SyncArena::new();
        let mut v: allocator_api2::vec::Vec<u8, _> = allocator_api2::vec::Vec::new_in(&arena);
        failing(|| v.try_reserve(100))
    }),
    #[cfg(feature = "lockfree")]
    ("huge_lockfree_buffer", || {
        Arena::builder()
            .lockfree_buffer(1 << 60, 64)
            .try_build_sync()
            .is_err()
    }),
    #[cfg(feature = "lockfree")]
    ("lockfree_buffer_while_failing", || {
        failing(|| Arena::builder().lockfree_buffer(4096, 64).try_build_sync())
    }),
    #[cfg(feature = "lockfree")]
    ("lockfree_allocator_try_new", || {
        use arena_b::LockFreeAllocator;
        LockFreeAllocator::try_new(usize::MAX).is_err()
            && LockFreeAllocator::try_new(isize::MAX as usize / 2).is_err()
            && LockFreeAllocator::try_new(0).is_err()
            && failing(|| LockFreeAllocator::try_new(4096))
    }),
    #[cfg(feature = "lockfree")]
    ("lockfree_allocator_new_panics_with_a_message", || {
        let payload = std::panic::catch_unwind(|| arena_b::LockFreeAllocator::new(usize::MAX))
            .expect_err("new(usize::MAX) must panic");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        message.contains("18446744073709551615") && message.contains("try_new")
    }),
    #[cfg(feature = "virtual_memory")]
    ("virtual_memory_fallback_while_failing", || {
        // The reservation itself is mmap, not the allocator; the fallback
        // report and the arena must not need the allocator either.
        failing(|| {
            Arena::builder()
                .virtual_memory(usize::MAX / 2)
                .virtual_memory_strict(true)
                .try_build()
        })
    }),
];

const CHILD: &str = "ARENA_B_FAIL_CASE";

#[test]
fn every_fallible_path_returns_an_error_while_the_system_allocator_fails() {
    if let Ok(name) = std::env::var(CHILD) {
        // The child: run one case; the exit status says how it went.
        let (_, case) = CASES
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a known case");
        std::process::exit(if case() { 0 } else { 3 });
    }
    let mut failures = Vec::new();
    for (name, _) in CASES {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "every_fallible_path_returns_an_error_while_the_system_allocator_fails",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, name)
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{name}: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" / ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "cases that aborted or did not fail:\n{}",
        failures.join("\n")
    );
}
