//! Allocation micro-benchmarks: `arena-b` against `bumpalo`, `bump-scope`
//! and the global allocator (`Box`).
//!
//! Run with `cargo bench --bench alloc` (add `-- --quick` for a fast pass).
//!
//! # Workloads
//! Each workload is **one** criterion group holding every contender, so all
//! numbers of a group come from the same run on the same machine state.
//! Read the results as **ratios within one group** (e.g. arena / bumpalo);
//! absolute times vary from machine to machine and run to run, and numbers
//! from different groups (or different runs) should not be compared.
//!
//! 1. `alloc_u64`: one `u64` allocated and freed per iteration.
//!    * `arena_alloc`: `checkpoint`, `alloc`, `rewind_to_checkpoint`.
//!    * `bumpalo`: `alloc`, then `reset`.
//!    * `bump_scope`: `checkpoint`, `alloc`, `reset_to` (its cheapest rewind).
//!    * `box_new`: `Box::new`, dropped.
//! 2. `many_allocs_u64`: 1024 `u64` allocations, then one free of all of
//!    them, per iteration. Same rewinds as above. `box_many` pushes the
//!    1024 boxes into a `Vec<Box<u64>>` allocated once outside the loop and
//!    `clear`ed (dropping the boxes) every iteration, so the per-iteration
//!    cost is the 1024 `malloc`/`free` pairs plus a `Vec::push` each, never
//!    a growth of the `Vec` itself.
//!    `arena_many_on_stack` is `arena_many` with the `Arena` value on the
//!    stack instead of boxed: on the AMD EPYC machine these numbers come
//!    from, a loop whose cursor sits on the stack next to `black_box`'s
//!    stack slots runs 1.0x-1.7x slower depending on code layout alone (the
//!    instructions are identical; see `scripts/callgrind-hot-path`), so
//!    every allocator under comparison is boxed, as it would be in a
//!    server's per-request state. bumpalo and bump-scope keep their bump
//!    pointer in the chunk (on the heap) anyway.
//! 3. `reused_arena_many_u64`: the same 1024 allocations through the
//!    lexical-scope API of a reused allocator: `Arena::scope` for arena-b
//!    (`arena_reused_scope`), `Bump::scoped` for bump-scope
//!    (`bump_scope_scoped`). bumpalo has no scopes; its equivalent is a
//!    reused `Bump` that is `reset` after the 1024 allocations
//!    (`bumpalo_reused_reset`).
//!
//! 4. `mixed_sizes` and 5. `alloc_with_small`: see their functions.
//!
//! Except in `mixed_sizes`, every allocator is created once, outside the
//! timed loop, with a 64 KiB first chunk, so the steady state measures the bump fast path and the
//! rewind, never chunk allocation or a chunk change. `black_box` hides the
//! inputs and every returned reference from the optimizer.

// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use arena_b::Arena;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};

#[macro_use]
#[path = "support/mixed.rs"]
mod mixed;
use mixed::Aligned16;

/// Allocations per iteration in the "many" workloads.
const MANY: u64 = 1024;
/// First-chunk size of every allocator (fits `MANY` `u64`s with room left).
const CAPACITY: usize = 64 * 1024;

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
}

fn alloc_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_u64");
    configure(&mut group);

    group.bench_function("arena_alloc", |b| {
        let arena = Box::new(Arena::with_capacity(CAPACITY));
        b.iter(|| {
            let cp = arena.checkpoint();
            black_box(arena.alloc(black_box(1u64)));
            // SAFETY: the reference above is dead (consumed by `black_box`).
            unsafe { arena.rewind_to_checkpoint(cp) };
        });
    });

    group.bench_function("bumpalo", |b| {
        let mut bump = Box::new(bumpalo::Bump::with_capacity(CAPACITY));
        b.iter(|| {
            black_box(bump.alloc(black_box(1u64)));
            bump.reset();
        });
    });

    group.bench_function("bump_scope", |b| {
        let bump: Box<bump_scope::Bump> = Box::new(bump_scope::Bump::with_size(CAPACITY));
        b.iter(|| {
            let cp = bump.checkpoint();
            black_box(bump.alloc(black_box(1u64)).into_mut());
            // SAFETY: `cp` is from this bump, which is never `reset`, and the
            // reference above is dead.
            unsafe { bump.reset_to(cp) };
        });
    });

    group.bench_function("box_new", |b| {
        b.iter(|| {
            drop(black_box(Box::new(black_box(1u64))));
        });
    });

    group.finish();
}

fn many_allocs_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("many_allocs_u64");
    configure(&mut group);

    group.bench_function("arena_many", |b| {
        let arena = Box::new(Arena::with_capacity(CAPACITY));
        b.iter(|| {
            let cp = arena.checkpoint();
            for i in 0..MANY {
                black_box(arena.alloc(black_box(i)));
            }
            // SAFETY: every reference above is dead.
            unsafe { arena.rewind_to_checkpoint(cp) };
        });
    });

    group.bench_function("arena_many_on_stack", |b| {
        let arena = Arena::with_capacity(CAPACITY);
        b.iter(|| {
            let cp = arena.checkpoint();
            for i in 0..MANY {
                black_box(arena.alloc(black_box(i)));
            }
            // SAFETY: nothing allocated after `cp` is used again.
            unsafe { arena.rewind_to_checkpoint(cp) };
        });
    });

    group.bench_function("bumpalo_many", |b| {
        let mut bump = Box::new(bumpalo::Bump::with_capacity(CAPACITY));
        b.iter(|| {
            for i in 0..MANY {
                black_box(bump.alloc(black_box(i)));
            }
            bump.reset();
        });
    });

    group.bench_function("bump_scope_many", |b| {
        let bump: Box<bump_scope::Bump> = Box::new(bump_scope::Bump::with_size(CAPACITY));
        b.iter(|| {
            let cp = bump.checkpoint();
            for i in 0..MANY {
                black_box(bump.alloc(black_box(i)).into_mut());
            }
            // SAFETY: `cp` is from this bump, which is never `reset`, and
            // every reference above is dead.
            unsafe { bump.reset_to(cp) };
        });
    });

    group.bench_function("box_many", |b| {
        // Allocated once; `clear` keeps the capacity, so only the boxes are
        // allocated and freed in the loop.
        let mut boxes: Vec<Box<u64>> = Vec::with_capacity(MANY as usize);
        b.iter(|| {
            for i in 0..MANY {
                boxes.push(Box::new(black_box(i)));
            }
            black_box(&mut boxes);
            boxes.clear();
        });
    });

    group.finish();
}

fn reused_arena_many_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("reused_arena_many_u64");
    configure(&mut group);

    group.bench_function("arena_reused_scope", |b| {
        let arena = Box::new(Arena::with_capacity(CAPACITY));
        b.iter(|| {
            arena.scope(|s| {
                for i in 0..MANY {
                    black_box(s.alloc(black_box(i)));
                }
            });
        });
    });

    group.bench_function("bumpalo_reused_reset", |b| {
        let mut bump = Box::new(bumpalo::Bump::with_capacity(CAPACITY));
        b.iter(|| {
            for i in 0..MANY {
                black_box(bump.alloc(black_box(i)));
            }
            bump.reset();
        });
    });

    group.bench_function("bump_scope_scoped", |b| {
        let mut bump: Box<bump_scope::Bump> = Box::new(bump_scope::Bump::with_size(CAPACITY));
        b.iter(|| {
            bump.scoped(|s| {
                for i in 0..MANY {
                    black_box(s.alloc(black_box(i)).into_mut());
                }
            });
        });
    });

    group.finish();
}

/// 4. `mixed_sizes`: the round above, then a free of all of it, with
///    every allocator at its defaults (`new()`: a small first chunk, so the
///    round spans several chunks until the allocator settles): the arena
///    rewinds to a checkpoint (`arena_rewind`) or resets (`arena_reset`),
///    bumpalo resets, bump-scope resets.
fn mixed_sizes(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixed_sizes");
    configure(&mut group);

    group.bench_function("arena_rewind", |b| {
        let arena = Box::new(Arena::new());
        let cp = arena.checkpoint();
        b.iter(|| {
            mixed_round!(v => arena.alloc(v));
            // SAFETY: every reference above is dead.
            unsafe { arena.rewind_to_checkpoint(cp) };
        });
    });

    group.bench_function("arena_reset", |b| {
        let mut arena = Box::new(Arena::new());
        b.iter(|| {
            mixed_round!(v => arena.alloc(v));
            arena.reset();
        });
    });

    group.bench_function("bumpalo", |b| {
        let mut bump = Box::new(bumpalo::Bump::new());
        b.iter(|| {
            mixed_round!(v => bump.alloc(v));
            bump.reset();
        });
    });

    group.bench_function("bump_scope", |b| {
        let mut bump: Box<bump_scope::Bump> = Box::new(bump_scope::Bump::new());
        b.iter(|| {
            mixed_round!(v => bump.alloc(v).into_mut());
            bump.reset();
        });
    });

    group.finish();
}

/// 5. `alloc_with_small`: `alloc_with(|| v)` against `alloc(v)` of a small
///    value (a `u64` and a 24-byte struct), 1,024 per iteration with a
///    rewind: building in place costs nothing extra.
fn alloc_with_small(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_with_small");
    configure(&mut group);

    group.bench_function("alloc", |b| {
        let arena = Box::new(Arena::with_capacity(CAPACITY));
        b.iter(|| {
            let cp = arena.checkpoint();
            for i in 0..MANY {
                black_box(arena.alloc(black_box(i)));
                black_box(arena.alloc(black_box((i, i as u32, [i as u8; 8]))));
            }
            // SAFETY: every reference above is dead.
            unsafe { arena.rewind_to_checkpoint(cp) };
        });
    });

    group.bench_function("alloc_with", |b| {
        let arena = Box::new(Arena::with_capacity(CAPACITY));
        b.iter(|| {
            let cp = arena.checkpoint();
            for i in 0..MANY {
                black_box(arena.alloc_with(|| black_box(i)));
                black_box(arena.alloc_with(|| black_box((i, i as u32, [i as u8; 8]))));
            }
            // SAFETY: every reference above is dead.
            unsafe { arena.rewind_to_checkpoint(cp) };
        });
    });

    group.bench_function("bumpalo_alloc_with", |b| {
        let mut bump = Box::new(bumpalo::Bump::with_capacity(CAPACITY));
        b.iter(|| {
            for i in 0..MANY {
                black_box(bump.alloc_with(|| black_box(i)));
                black_box(bump.alloc_with(|| black_box((i, i as u32, [i as u8; 8]))));
            }
            bump.reset();
        });
    });

    group.finish();
}

criterion_group!(
    benches,
    alloc_u64,
    many_allocs_u64,
    reused_arena_many_u64,
    mixed_sizes,
    alloc_with_small
);
criterion_main!(benches);
