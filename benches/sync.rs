//! Shared-arena benchmark: two threads, 1M `u64` allocations each, into one
//! fresh shared arena per iteration (creation, the allocations, and the
//! drop of the arena are all timed).
//!
//! Contenders, all in one criterion group so the ratios come from one run:
//! * `sync_arena`: `arena_b::SyncArena`, used directly from both threads
//!   (per-thread sub-arenas found through a thread-local cache);
//! * `sync_arena_lockfree_buffer` (with `--features lockfree`): the same
//!   with its shared `LockFreeAllocator` enabled;
//! * `bumpalo_herd`: `bumpalo_herd::Herd` with one `Member` per thread (the
//!   user fetches a per-thread handle first);
//! * `blink_sync`: a shared `&blink_alloc::SyncBlinkAlloc`;
//! * `mutex_bumpalo`: a shared `Mutex<bumpalo::Bump>`.
//!
//! The contenders run twice, in two groups:
//! * `sync_alloc_2x1m_u64`: two threads spawned for every iteration (what
//!   `thread::scope` code does). Every iteration takes ~8 MiB per thread
//!   from malloc and gives it back. `thread::scope` returns before its
//!   threads have fully exited, so glibc sometimes gives the next
//!   iteration's two threads one malloc arena, whose heap then crosses the
//!   trim threshold and is faulted back in: `SyncArena` measured ~250 page
//!   faults per iteration here and herd ~50 (`/proc/self/stat`), so this
//!   group measures glibc's heap as much as the arenas (see the README).
//! * `sync_alloc_2x1m_u64_pool_threads`: the same work on two long-lived
//!   worker threads, as a server's or a thread pool's workers are; each
//!   iteration still makes a fresh arena, fills it from both workers and
//!   drops it. No page faults after warm-up for either contender, so what
//!   is left is the allocations. The lock-bound peers, ~100x slower either
//!   way, are left out of it.
//!
//! Read the results as ratios within a group.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::alloc::Layout;
use std::hint::black_box;
use std::sync::{Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

use arena_b::SyncArena;
use criterion::{criterion_group, criterion_main, Criterion};

const PER_THREAD: u64 = 1_000_000;
const THREADS: usize = 2;

fn two_threads(work: impl Fn() + Sync) {
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(&work);
        }
    });
}

fn shared_alloc(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_alloc_2x1m_u64");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("sync_arena", |b| {
        b.iter(|| {
            let arena = SyncArena::new();
            two_threads(|| {
                for i in 0..PER_THREAD {
                    black_box(arena.alloc(black_box(i)));
                }
            });
            arena
        });
    });

    // `cargo bench --bench sync --features lockfree`: the same arena with
    // the shared lock-free buffer enabled (every allocation a
    // compare-and-swap on one offset), to show what the per-thread parts
    // save.
    #[cfg(feature = "lockfree")]
    group.bench_function("sync_arena_lockfree_buffer", |b| {
        b.iter(|| {
            let arena = arena_b::Arena::builder()
                .lockfree_buffer(2 * THREADS * PER_THREAD as usize * 8, 64)
                .build_sync();
            two_threads(|| {
                for i in 0..PER_THREAD {
                    black_box(arena.alloc(black_box(i)));
                }
            });
            arena
        });
    });

    group.bench_function("bumpalo_herd", |b| {
        b.iter(|| {
            let herd = bumpalo_herd::Herd::new();
            two_threads(|| {
                let member = herd.get();
                for i in 0..PER_THREAD {
                    black_box(member.alloc(black_box(i)));
                }
            });
            herd
        });
    });

    group.bench_function("blink_sync", |b| {
        b.iter(|| {
            let blink = blink_alloc::SyncBlinkAlloc::new();
            two_threads(|| {
                for i in 0..PER_THREAD {
                    let p = blink
                        .allocate(Layout::new::<u64>())
                        .expect("allocation")
                        .cast::<u64>();
                    // SAFETY: `p` is fresh memory for one `u64`.
                    unsafe { p.as_ptr().write(black_box(i)) };
                    black_box(p);
                }
            });
            blink
        });
    });

    group.bench_function("mutex_bumpalo", |b| {
        b.iter(|| {
            let bump = Mutex::new(bumpalo::Bump::new());
            two_threads(|| {
                for i in 0..PER_THREAD {
                    let guard = bump.lock().unwrap();
                    black_box(guard.alloc(black_box(i)) as *mut u64);
                }
            });
            bump
        });
    });

    group.finish();
}

/// `iters` iterations on two long-lived worker threads: each makes a fresh
/// shared `T` (`make`, on the bench thread), runs `work` on it from both
/// workers at once, and drops it. Returns the time of all iterations,
/// creation and drop included, thread start-up excluded.
fn on_pool_threads<T: Send + Sync>(
    iters: u64,
    make: impl Fn() -> T,
    work: impl Fn(&T) + Sync,
) -> Duration {
    let slot: RwLock<Option<T>> = RwLock::new(None);
    let start = Barrier::new(THREADS + 1);
    let end = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..iters {
                    start.wait();
                    work(slot.read().unwrap().as_ref().unwrap());
                    end.wait();
                }
            });
        }
        let begin = Instant::now();
        for _ in 0..iters {
            *slot.write().unwrap() = Some(make());
            start.wait();
            end.wait();
            drop(black_box(slot.write().unwrap().take()));
        }
        begin.elapsed()
    })
}

/// `SyncArena` and bumpalo-herd on long-lived worker threads.
fn shared_alloc_pool_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_alloc_2x1m_u64_pool_threads");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("sync_arena", |b| {
        b.iter_custom(|iters| {
            on_pool_threads(iters, SyncArena::new, |arena| {
                for i in 0..PER_THREAD {
                    black_box(arena.alloc(black_box(i)));
                }
            })
        });
    });
    group.bench_function("bumpalo_herd", |b| {
        b.iter_custom(|iters| {
            on_pool_threads(iters, bumpalo_herd::Herd::new, |herd| {
                let member = herd.get();
                for i in 0..PER_THREAD {
                    black_box(member.alloc(black_box(i)));
                }
            })
        });
    });
    group.finish();
}

criterion_group!(benches, shared_alloc, shared_alloc_pool_threads);
criterion_main!(benches);
