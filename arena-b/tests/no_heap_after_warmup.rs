//! "No heap allocation after warm-up", proven with a counting global
//! allocator: checkpoint loops, scope loops and reset loops stop calling
//! the system allocator once their chunks exist, and memory stays constant.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use arena_b::Arena;

struct Counting;

static CALLS: AtomicUsize = AtomicUsize::new(0);
/// Bytes asked of `alloc` while counting.
static ALLOC_BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Counting is per thread: the test harness's own thread may allocate
    /// meanwhile (for example to print a "running for over 60 seconds" note).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Counting `ALLOC_BYTES` (apart from `CALLS`, which another test
    /// counts meanwhile).
    static COUNTING_BYTES: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        if COUNTING_BYTES.try_with(Cell::get).unwrap_or(false) {
            ALLOC_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Iterations: millions natively, a few hundred under Miri.
fn iterations() -> usize {
    if cfg!(miri) {
        30
    } else {
        2_000_000
    }
}

/// Runs `body` once to warm up, then `iterations()` times while counting
/// this thread's system allocator calls.
fn system_calls_after_warmup(body: impl FnMut(usize)) -> usize {
    system_calls_after_warmup_n(iterations(), body)
}

fn system_calls_after_warmup_n(n: usize, mut body: impl FnMut(usize)) -> usize {
    body(0);
    CALLS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    for i in 1..=n {
        body(i);
    }
    COUNTING.with(|c| c.set(false));
    CALLS.load(Ordering::SeqCst)
}

#[test]
fn steady_state_loops_never_touch_the_system_allocator() {
    // Checkpoint + allocations (spanning several chunks) + rewind.
    let arena = Arena::builder().chunk_size(1024).build();
    let calls = system_calls_after_warmup(|i| {
        let cp = arena.checkpoint();
        for k in 0..64u64 {
            arena.alloc(k + i as u64);
        }
        arena.alloc_str("some scratch text");
        arena.alloc_slice_fast(&[0u8; 700]);
        // SAFETY: nothing allocated after `cp` is used again.
        unsafe { arena.rewind_to_checkpoint(cp) };
    });
    assert_eq!(calls, 0, "checkpoint loop called the system allocator");
    let capacity = arena.capacity();
    assert!(capacity <= 8 * 1024, "capacity grew to {capacity}");
    assert_eq!(arena.bytes_allocated(), 0);

    // Nested scopes, with the arena's own value kept across them.
    let arena = Arena::builder().chunk_size(1024).build();
    let kept = arena.alloc(7u64);
    let calls = system_calls_after_warmup(|i| {
        arena.scope(|s| {
            s.alloc_slice_fill_iter((0..300u32).map(|k| k ^ i as u32));
            s.scope(|inner| {
                inner.alloc([1u8; 2000]);
            });
        });
    });
    assert_eq!(calls, 0, "scope loop called the system allocator");
    assert_eq!(*kept, 7);

    // Feature `thread_local`: short-lived arenas, created, filled and
    // dropped, reuse the thread's cached chunks.
    #[cfg(feature = "thread_local")]
    {
        let rounds = if cfg!(miri) { 20 } else { 20_000 };
        let calls = system_calls_after_warmup_n(rounds, |i| {
            let arena = Arena::new();
            for k in 0..3000u64 {
                arena.alloc(k ^ i as u64);
            }
            arena.alloc_str("short-lived");
            drop(arena);
        });
        assert_eq!(calls, 0, "short-lived arenas called the system allocator");
    }
    #[cfg(not(feature = "thread_local"))]
    {
        // Without the cache every arena asks the system for its chunks.
        let calls = system_calls_after_warmup(|_| {
            let arena = Arena::new();
            arena.alloc(1u64);
        });
        assert!(calls > 0);
    }

    // Reset loop.
    let mut arena = Arena::builder().chunk_size(4096).build();
    let calls = system_calls_after_warmup(|i| {
        for k in 0..100u64 {
            arena.alloc(k * i as u64);
        }
        arena.reset();
    });
    assert_eq!(calls, 0, "reset loop called the system allocator");
}

/// Review finding: `reset_for_reuse` on an arena over its bounds reset its
/// parts before shrinking them, and a reset merges a part's chunks into
/// one new chunk of their total size: a big allocation only to free it.
/// Over the bounds, the parts are freed as they are.
#[test]
#[cfg(feature = "std")]
fn reset_for_reuse_over_its_bounds_frees_without_merging_first() {
    let mut arena = Arena::builder().chunk_size(4096).build_sync();
    for _ in 0..64 {
        arena.alloc_slice_fill_copy(3000, 0u8);
    }
    let grown = arena.capacity();
    assert!(grown > 64 * 1024, "several chunks: {grown}");
    ALLOC_BYTES.store(0, Ordering::SeqCst);
    COUNTING_BYTES.with(|c| c.set(true));
    let kept = arena.reset_for_reuse(64 * 1024, 8);
    COUNTING_BYTES.with(|c| c.set(false));
    assert_eq!(kept, 0);
    let asked = ALLOC_BYTES.load(Ordering::SeqCst);
    assert!(
        asked < 4096,
        "reset_for_reuse allocated {asked} bytes to shrink a {grown}-byte arena"
    );
}
