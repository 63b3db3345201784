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
//! Read the results as ratios within the group.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::alloc::Layout;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

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

criterion_group!(benches, shared_alloc);
criterion_main!(benches);
