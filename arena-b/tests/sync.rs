//! `SyncArena`: shared across threads, per-thread sub-arenas, telemetry
//! summed over threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use arena_b::{Arena, SyncArena, ThreadSafety};

fn threads() -> usize {
    if cfg!(miri) {
        2
    } else {
        4
    }
}

fn per_thread() -> u64 {
    if cfg!(miri) {
        50
    } else {
        20_000
    }
}

#[test]
fn is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<SyncArena>();
}

#[test]
fn reference_readme_example_runs() {
    let arena = Arc::new(SyncArena::new());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let arena = Arc::clone(&arena);
            std::thread::spawn(move || arena.scope(|scope| *scope.alloc("thread-local data")))
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), "thread-local data");
    }
    assert_eq!(arena.threads(), 4);
}

#[test]
fn threads_allocate_without_overlap_and_keep_contents() {
    let arena = SyncArena::builder_default();
    let n = per_thread();
    let ranges: Vec<Vec<(usize, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads() as u64)
            .map(|t| {
                let arena = &arena;
                s.spawn(move || {
                    let mut mine: Vec<&mut [u64]> = Vec::new();
                    for i in 0..n {
                        let len = (i % 7 + 1) as usize;
                        mine.push(arena.alloc_slice_fast(&vec![t * 1_000_000 + i; len]));
                    }
                    for (i, s) in mine.iter().enumerate() {
                        assert!(
                            s.iter().all(|&v| v == t * 1_000_000 + i as u64),
                            "thread {t} lost data"
                        );
                    }
                    mine.iter()
                        .map(|s| (s.as_ptr() as usize, s.as_ptr() as usize + s.len() * 8))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(usize, usize)> = ranges.into_iter().flatten().collect();
    all.sort();
    for w in all.windows(2) {
        assert!(w[0].1 <= w[1].0, "allocations of different threads overlap");
    }
    assert_eq!(arena.threads(), threads());
}

trait BuilderDefault {
    fn builder_default() -> SyncArena;
}
impl BuilderDefault for SyncArena {
    fn builder_default() -> SyncArena {
        Arena::builder().chunk_size(1024).build_sync()
    }
}

#[test]
fn references_can_be_shared_between_threads() {
    let arena = SyncArena::new();
    let text: &str = arena.alloc_str("made on the main thread");
    let numbers: &[u32] = arena.alloc_slice_fast(&[1, 2, 3]);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(text, "made on the main thread");
            let mine = arena.alloc_str("made on a worker");
            assert_eq!(numbers.iter().sum::<u32>(), 6);
            assert_eq!(mine, "made on a worker");
        });
    });
}

#[test]
fn two_arenas_used_alternately_on_one_thread() {
    let a = SyncArena::new();
    let b = SyncArena::new();
    let mut from_a = Vec::new();
    let mut from_b = Vec::new();
    for i in 0..100u32 {
        from_a.push(&*a.alloc(i));
        from_b.push(&*b.alloc(i + 1000));
    }
    for i in 0..100u32 {
        assert_eq!(*from_a[i as usize], i);
        assert_eq!(*from_b[i as usize], i + 1000);
    }
    assert_eq!(a.threads(), 1);
    assert_eq!(b.threads(), 1);
    assert_eq!(a.bytes_allocated(), 400);
    assert_eq!(b.bytes_allocated(), 400);
}

#[test]
fn a_dropped_arenas_cache_entry_is_never_used() {
    for round in 0..10u64 {
        let arena = SyncArena::new();
        let v = arena.alloc(round);
        assert_eq!(*v, round);
        assert_eq!(arena.threads(), 1, "a new arena gets a new sub-arena");
        drop(arena);
    }
}

#[test]
fn bytes_and_stats_are_summed_over_threads() {
    let arena = SyncArena::new();
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| {
                for i in 0..100u64 {
                    arena.alloc(i);
                }
            });
        }
    });
    assert_eq!(arena.bytes_allocated(), threads() * 800);
    let stats = arena.stats();
    assert_eq!(stats.bytes_allocated, threads() * 800);
    assert_eq!(stats.chunks, threads());
    #[cfg(feature = "stats")]
    assert_eq!(stats.allocations, Some(threads() as u64 * 100));
}

#[test]
fn telemetry_can_be_read_while_threads_allocate() {
    let arena = SyncArena::builder_default();
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(threads() + 2);
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| {
                barrier.wait();
                for i in 0..per_thread() {
                    arena.alloc(i);
                }
            });
        }
        s.spawn(|| {
            barrier.wait();
            let mut last = 0;
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) || reads < 10 {
                let now = arena.bytes_allocated();
                assert!(
                    now <= threads() * per_thread() as usize * 8,
                    "impossible byte count {now}"
                );
                last = last.max(now);
                let _ = arena.stats();
                reads += 1;
                if reads > 100_000 {
                    break;
                }
            }
        });
        barrier.wait();
        done.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        arena.bytes_allocated(),
        threads() * per_thread() as usize * 8
    );
}

#[derive(Clone)]
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn reset_and_drop_run_destructors_from_every_thread() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut arena = SyncArena::new();
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| {
                for _ in 0..10 {
                    arena.alloc(Counted(drops.clone()));
                }
            });
        }
    });
    arena.reset();
    assert_eq!(drops.load(Ordering::SeqCst), threads() * 10);
    assert_eq!(arena.bytes_allocated(), 0);
    arena.alloc(Counted(drops.clone()));
    // Dropped on another thread than the one that allocated.
    std::thread::spawn(move || drop(arena)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), threads() * 10 + 1);
}

#[test]
fn scopes_run_on_many_threads_at_once() {
    let arena = SyncArena::new();
    let kept = arena.alloc(5u64);
    std::thread::scope(|s| {
        for t in 0..threads() as u32 {
            let arena = &arena;
            s.spawn(move || {
                for _ in 0..10 {
                    let sum = arena.scope(|scope| {
                        let v = scope.alloc_slice_fill_iter((0..100u32).map(|i| i + t));
                        v.iter().sum::<u32>()
                    });
                    assert_eq!(sum, 4950 + 100 * t);
                }
            });
        }
    });
    assert_eq!(*kept, 5);
}

#[test]
fn allocator_api2_collections_on_many_threads() {
    use allocator_api2::vec::Vec as AVec;
    let arena = SyncArena::new();
    std::thread::scope(|s| {
        for t in 0..threads() as u32 {
            let arena = &arena;
            s.spawn(move || {
                let mut v = AVec::new_in(arena);
                v.extend((0..500u32).map(|i| i * t));
                assert_eq!(v[499], 499 * t);
                let mut map = hashbrown::HashMap::new_in(arena);
                map.insert(t, "value");
                assert_eq!(map[&t], "value");
            });
        }
    });
}

#[test]
fn builder_settings() {
    let err = Arena::builder()
        .reserve_size(4096)
        .try_build_sync()
        .unwrap_err();
    assert!(err.to_string().contains("reserve_size"));
    let err = Arena::builder()
        .thread_safety(ThreadSafety::Shared)
        .try_build()
        .unwrap_err();
    assert!(err.to_string().contains("build_sync"));
    let arena = Arena::builder()
        .thread_safety(ThreadSafety::Shared)
        .allocation_limit(4096)
        .chunk_size(1024)
        .build_sync();
    assert!(
        arena.try_alloc([0u8; 8192]).is_err(),
        "a single allocation over the limit fails"
    );
}

#[test]
fn allocation_limit_bounds_all_threads_together() {
    let mut arena = Arena::builder()
        .chunk_size(4096)
        .allocation_limit(3 * 4096)
        .build_sync();
    // Each thread fills its own chunks until the shared limit refuses.
    let served: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while arena
                        .try_alloc_layout(std::alloc::Layout::new::<[u8; 1024]>())
                        .is_ok()
                    {
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert!(
        arena.capacity() <= 3 * 4096,
        "capacity {}",
        arena.capacity()
    );
    assert!(served <= 12, "served {served} KiB under a 12 KiB limit");
    // Shrinking gives the bytes back to the limit, and forgets the parts of
    // the threads that exited.
    arena.reset_and_shrink();
    assert_eq!((arena.capacity(), arena.threads()), (0, 0));
    for _ in 0..12 {
        arena.alloc_layout(std::alloc::Layout::new::<[u8; 1024]>());
    }
    assert_eq!(arena.threads(), 1);
}

#[test]
fn alternate_arenas_then_reset_then_allocate() {
    // Regression (Stacked Borrows): the cached sub-arena pointer must stay
    // valid across `reset`'s `&mut` access.
    let mut x = SyncArena::new();
    let y = SyncArena::new();
    x.alloc(1u32);
    y.alloc(1u32);
    x.alloc(2u32); // found by walking the list, then cached
    x.reset();
    assert_eq!(*x.alloc(3u32), 3);
    assert_eq!(x.threads(), 1);
}

#[test]
fn reset_and_shrink_then_allocate_on_a_thread_with_a_cached_part() {
    // The thread's cache points at a part that `reset_and_shrink` frees:
    // the arena's fresh id must make it miss.
    let mut arena = SyncArena::new();
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    arena.alloc(Count(dropped.clone()));
    arena.reset_and_shrink();
    assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(*arena.alloc(7u64), 7);
    assert_eq!(arena.threads(), 1);
}

#[test]
fn idle_chunks_of_other_threads_do_not_count_against_the_limit_after_reset() {
    // Regression (review): a pooled arena reset after one thread used it
    // kept that thread's chunks counted in the shared limit, so another
    // thread could not allocate what the first one could.
    let mut arena = Arena::builder()
        .chunk_size(4096)
        .allocation_limit(100 * 1024)
        .build_sync();
    let big = std::alloc::Layout::from_size_align(60 * 1024, 8).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert!(arena.try_alloc_layout(big).is_ok()));
    });
    arena.reset();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(
                arena.try_alloc_layout(big).is_ok(),
                "the limit counted idle chunks"
            )
        });
    });
    // Both threads at once still cannot exceed the limit.
    arena.reset();
    let served = std::thread::scope(|s| {
        let a = s.spawn(|| arena.try_alloc_layout(big).is_ok());
        let b = s.spawn(|| arena.try_alloc_layout(big).is_ok());
        [a.join().unwrap(), b.join().unwrap()]
    });
    assert!(
        !(served[0] && served[1]),
        "2 x 60 KiB fit under a 100 KiB limit"
    );
    assert!(arena.capacity() >= 60 * 1024);
}

#[test]
fn reset_and_shrink_with_a_panicking_destructor_leaves_no_dangling_cache() {
    // Regression (review): the fresh id was taken after freeing the parts,
    // so a panicking destructor left this thread's cache pointing at a
    // freed part (a use after free under Miri).
    struct Panics;
    impl Drop for Panics {
        fn drop(&mut self) {
            panic!("destructor panics");
        }
    }
    let mut arena = SyncArena::new();
    arena.alloc(Panics);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| arena.reset_and_shrink()));
    assert!(result.is_err());
    assert_eq!(*arena.alloc(5u64), 5);
}

#[test]
fn a_panicking_destructor_does_not_leak_the_shared_limit() {
    struct Panics;
    impl Drop for Panics {
        fn drop(&mut self) {
            panic!("destructor panics");
        }
    }
    let mut arena = Arena::builder()
        .chunk_size(4096)
        .max_chunk_size(4096)
        .allocation_limit(8192)
        .build_sync();
    arena.alloc(Panics);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| arena.reset_and_shrink()));
    assert!(result.is_err());
    let layout = std::alloc::Layout::from_size_align(4000, 8).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(arena.try_alloc_layout(layout).is_ok());
            assert!(
                arena.try_alloc_layout(layout).is_ok(),
                "the limit still counted freed chunks"
            );
        });
    });
}

#[test]
fn a_checkpoint_at_the_start_after_reset_cannot_bypass_the_shared_limit() {
    let mut arena = Arena::builder()
        .chunk_size(4096)
        .max_chunk_size(4096)
        .allocation_limit(8192)
        .build_sync();
    let layout = std::alloc::Layout::from_size_align(4000, 8).unwrap();
    arena.alloc_layout(layout);
    arena.reset();
    arena.scope(|scope| {
        let part = scope.arena();
        let cp = part.checkpoint();
        // SAFETY: nothing allocated after `cp` is used.
        unsafe { part.rewind_to_checkpoint(cp) };
        for _ in 0..3 {
            let _ = part.try_alloc_layout(layout);
        }
    });
    assert!(arena.capacity() <= 8192, "capacity {}", arena.capacity());
}

/// The part `SyncArena::local` gives cannot leave its thread: it is a
/// plain `&Arena`, which is not `Send`.
#[test]
fn local_part_is_not_send() {
    // What `local` returns is exactly `&Arena`, and `&Arena: Send` would
    // need `Arena: Sync`, which `arena_is_send_and_not_sync` in
    // tests/alloc.rs rules out at compile time.
    let arena = SyncArena::new();
    let _: &Arena = arena.local();
}

/// `SyncArena::local` is the calling thread's part: what it allocates is
/// the arena's (its stats, its shared limit, freed by its reset), each
/// thread gets its own part, and the handle and the part share one cursor.
#[test]
fn local_part_is_the_threads_share_of_the_arena() {
    let mut arena = Arena::builder()
        .chunk_size(4096)
        .allocation_limit(2 * 4096)
        .build_sync();
    let part = arena.local();
    let a = part.alloc(1u64) as *mut u64 as usize;
    let b = arena.alloc(2u64) as *mut u64 as usize;
    assert_eq!(b, a + 8, "one cursor for the part and the handle");
    assert!(std::ptr::eq(part, arena.try_local().unwrap()));
    assert_eq!(arena.bytes_allocated(), 16);
    let ours = part as *const Arena as usize;
    std::thread::scope(|s| {
        s.spawn(|| {
            let theirs = arena.local();
            let theirs_at = theirs as *const Arena as usize;
            assert_ne!(theirs_at, ours, "another thread, another part");
            theirs.alloc_slice_fill_copy(4000, 0u8);
        });
    });
    assert_eq!(arena.threads(), 2);
    // The other thread's chunk counts against the shared limit: this part
    // can take one more chunk's worth, not two.
    assert!(part.try_alloc_slice_fill_copy(3000, 0u8).is_ok());
    assert!(part.try_alloc_slice_fill_copy(5000, 0u8).is_err());
    arena.reset();
    assert_eq!(arena.bytes_allocated(), 0);
    assert_eq!(*arena.local().alloc(3u8), 3);
}
