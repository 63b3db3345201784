//! User code that runs inside the arena's own operations (the diagnostics
//! sink, a `tracing` subscriber) and re-enters the arena: it must always
//! find the books consistent. Review finding: a sink that allocated into
//! the arena on `VirtualMemoryDecommitted` made `rewind_to_checkpoint`
//! record the wrong position, so a stale checkpoint was accepted and a live
//! value was dropped while borrowed (a heap-use-after-free under ASan); a
//! sink that panicked there skipped the record altogether.
//! `scripts/sanitize` runs these under AddressSanitizer; Miri has no mmap,
//! so there the arena falls back to heap chunks and never decommits.
#![cfg(feature = "virtual_memory")]

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arena_b::{Arena, DiagnosticEvent};

const HAS_MMAP: bool = cfg!(all(unix, not(miri)));

thread_local! {
    /// The arena the sink or subscriber re-enters (null: none).
    static ARENA: Cell<*const Arena> = const { Cell::new(std::ptr::null()) };
    /// Decommit reports seen.
    static DECOMMITS: Cell<usize> = const { Cell::new(0) };
}

/// A value whose destructor counts.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Allocates into the arena under test, as a sink on a `thread_local!`
/// arena would.
fn allocate_into_the_arena() {
    let arena = ARENA.with(Cell::get);
    if !arena.is_null() {
        // SAFETY: `ARENA` points at the arena of the running test, which
        // outlives every report it makes (cleared before the arena drops).
        let arena = unsafe { &*arena };
        arena.alloc_slice_fast(&[0xAAu8; 4096]);
        arena.alloc(Counted(Arc::new(AtomicUsize::new(0))));
    }
}

fn vm_arena(sink: impl Fn(&DiagnosticEvent) + Send + Sync + 'static) -> Arena {
    Arena::builder()
        .virtual_memory(64 << 20)
        .decommit_threshold(4096)
        .diagnostics(sink)
        .build()
}

/// The review's sequence: a live value, `cp0`, another value, `cp_mid`,
/// 1 MiB; rewind to `cp0` (the decommit report runs `during`), then to
/// `cp_mid`, which must be refused as stale without touching `live`.
fn stale_checkpoint_after_reentrant_report(arena: &Arena, during_rewind_may_panic: bool) {
    let live_drops = Arc::new(AtomicUsize::new(0));
    let live = arena.alloc(Counted(Arc::clone(&live_drops)));
    let cp0 = arena.checkpoint();
    arena.alloc(Counted(Arc::new(AtomicUsize::new(0))));
    let cp_mid = arena.checkpoint();
    arena.alloc_slice_fast(&vec![0u8; 1 << 20]);
    ARENA.with(|a| a.set(arena));
    DECOMMITS.with(|d| d.set(0));
    // SAFETY: nothing allocated after `cp0` is used again.
    let first = catch_unwind(AssertUnwindSafe(|| unsafe {
        arena.rewind_to_checkpoint(cp0)
    }));
    assert_eq!(first.is_err(), during_rewind_may_panic);
    assert_eq!(DECOMMITS.with(Cell::get), 1, "the decommit was reported");
    // SAFETY: the call keeps the contract (nothing after `cp_mid` is used);
    // the arena must refuse it, since the rewind to `cp0` went below it.
    let second = catch_unwind(AssertUnwindSafe(|| unsafe {
        arena.rewind_to_checkpoint(cp_mid)
    }));
    ARENA.with(|a| a.set(std::ptr::null()));
    let payload = second.expect_err("a stale checkpoint was accepted");
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("stale"), "{message}");
    assert_eq!(
        live_drops.load(Ordering::SeqCst),
        0,
        "the live value was dropped"
    );
    assert_eq!(live.0.load(Ordering::SeqCst), 0); // still readable
}

#[test]
fn a_sink_that_allocates_during_a_rewind_cannot_make_a_stale_checkpoint_pass() {
    if !HAS_MMAP {
        return;
    }
    let arena = vm_arena(|event| {
        if let DiagnosticEvent::VirtualMemoryDecommitted { .. } = event {
            DECOMMITS.with(|d| d.set(d.get() + 1));
            allocate_into_the_arena();
        }
    });
    stale_checkpoint_after_reentrant_report(&arena, false);
}

#[test]
fn a_sink_that_panics_during_a_rewind_cannot_make_a_stale_checkpoint_pass() {
    if !HAS_MMAP {
        return;
    }
    let arena = vm_arena(|event| {
        if let DiagnosticEvent::VirtualMemoryDecommitted { .. } = event {
            DECOMMITS.with(|d| d.set(d.get() + 1));
            panic!("the sink panics on decommit");
        }
    });
    stale_checkpoint_after_reentrant_report(&arena, true);
}

/// A `tracing` subscriber that allocates into the arena from every event of
/// target `arena_b` (feature `virtual_memory` turns on feature `tracing`).
struct AllocatingSubscriber;

impl tracing::Subscriber for AllocatingSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct IsDecommit(bool);
        impl tracing::field::Visit for IsDecommit {
            fn record_debug(&mut self, _: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0 |= format!("{v:?}").contains("VirtualMemoryDecommitted");
            }
        }
        let mut seen = IsDecommit(false);
        event.record(&mut seen);
        if event.metadata().target() == "arena_b" && seen.0 {
            DECOMMITS.with(|d| d.set(d.get() + 1));
            allocate_into_the_arena();
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_tracing_subscriber_that_allocates_during_a_rewind_cannot_make_a_stale_checkpoint_pass() {
    if !HAS_MMAP {
        return;
    }
    tracing::subscriber::with_default(AllocatingSubscriber, || {
        let arena = vm_arena(|_| {});
        stale_checkpoint_after_reentrant_report(&arena, false);
    });
}

/// Every other operation that reports: reset, scope exit and chunk growth
/// with a sink that allocates into the arena; the arena stays consistent
/// (checked by a rewind to a checkpoint taken before, which must work).
#[test]
fn a_sink_that_allocates_during_growth_scope_exit_and_reset_finds_the_arena_consistent() {
    let reports = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&reports);
    let mut arena = Arena::builder()
        .chunk_size(4096)
        .diagnostics(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            allocate_into_the_arena();
        })
        .build();
    ARENA.with(|a| a.set(&arena));
    let keep = arena.alloc(7u64);
    let cp = arena.checkpoint();
    for round in 0..20 {
        arena.scope(|s| {
            s.alloc_slice_fill_iter((0..2000u32).map(|i| i + round));
        });
        arena.alloc_slice_fast(&[1u8; 3000]); // grows: a report, which allocates
    }
    assert_eq!(*keep, 7);
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    ARENA.with(|a| a.set(std::ptr::null()));
    arena.reset();
    assert!(reports.load(Ordering::SeqCst) > 0);
    assert_eq!(arena.bytes_allocated(), 0);
}
