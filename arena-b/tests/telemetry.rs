//! Telemetry: `bytes_allocated`, `capacity`, `chunk_usage`, `stats` and the
//! peak.

use arena_b::Arena;

#[test]
fn telemetry() {
    let arena = Arena::builder().chunk_size(1024).build();
    assert_eq!(arena.bytes_allocated(), 0);
    assert_eq!(arena.capacity(), 0);
    assert!(arena.chunk_usage().is_empty());
    arena.alloc(1u64);
    arena.alloc(2u32);
    assert_eq!(arena.bytes_allocated(), 12);
    arena.alloc([0u8; 1020]); // does not fit: new chunk, tail wasted
    let stats = arena.stats();
    assert_eq!(stats.chunks, 2);
    assert_eq!(stats.bytes_allocated, 12 + 1020);
    assert_eq!(stats.wasted_tail_bytes, 1024 - 12);
    assert_eq!(stats.capacity, arena.capacity());
    assert!(stats.peak_bytes >= stats.bytes_allocated);
    let usage = arena.chunk_usage();
    assert_eq!(usage[0].used, 12);
    assert_eq!(usage[1].used, 1020);
    #[cfg(feature = "stats")]
    assert_eq!(stats.allocations, Some(3));
    #[cfg(feature = "stats")]
    {
        arena.scope(|s| {
            s.alloc(1u8);
            s.alloc(2u8);
        });
        assert_eq!(
            arena.stats().allocations,
            Some(5),
            "scope allocations count too"
        );
    }
    #[cfg(not(feature = "stats"))]
    assert_eq!(stats.allocations, None);
    let cloned = stats.clone();
    assert_eq!(format!("{cloned:?}"), format!("{stats:?}"));
}

#[test]
fn peak_tracks_the_high_water_mark() {
    let mut arena = Arena::new();
    arena.alloc_slice_fill_iter(0..1000u32);
    arena.reset();
    arena.alloc(1u8);
    assert!(arena.stats().peak_bytes >= 4000);
}

#[test]
fn the_peak_counts_collections_freed_through_the_allocator() {
    // A vector that opens a chunk of its own, and one that grows within a
    // chunk, then both freed in place: the peak still saw them.
    for (arena, len) in [(Arena::new(), 200 * 1024), (Arena::new(), 6 * 1024)] {
        let mut v = allocator_api2::vec::Vec::new_in(&arena);
        v.resize(len, 3u8);
        drop(v);
        assert_eq!(arena.bytes_allocated(), 0, "freed in place");
        assert!(arena.stats().peak_bytes >= len, "{:?}", arena.stats());
    }
    #[cfg(feature = "std")]
    {
        let sync = arena_b::Arena::builder().build_sync();
        let mut v = allocator_api2::vec::Vec::new_in(&sync);
        v.resize(200 * 1024, 3u8);
        drop(v);
        assert!(sync.stats().peak_bytes >= 200 * 1024, "{:?}", sync.stats());
    }
}

/// The mixed-size loop of the performance issue: 1,024 allocations of 3,
/// 8, 32, 16 (aligned to 16) and 200 bytes in turn, about 53 KB, more than
/// the first chunk; then a rewind (or a reset). After warm-up a round
/// switches chunks at most once: the chunks the first rounds walked through
/// are merged into one when the cursor moves back over them.
fn mixed_round(arena: &Arena) {
    #[repr(align(16))]
    #[allow(dead_code)] // only its size and alignment matter
    struct Aligned([u8; 16]);
    for i in 0..1024usize {
        match i % 5 {
            0 => drop(arena.alloc([i as u8; 3])),
            1 => drop(arena.alloc(i as u64)),
            2 => drop(arena.alloc([i as u8; 32])),
            3 => drop(arena.alloc(Aligned([i as u8; 16]))),
            _ => drop(arena.alloc([i as u8; 200])),
        }
    }
}

/// Rounds after the warm-up (fewer under Miri, which runs each of the
/// 1,024 allocations a thousand times slower).
const STEADY_ROUNDS: usize = if cfg!(miri) { 10 } else { 100 };

#[test]
fn a_steady_rewind_loop_switches_chunks_at_most_once_per_round() {
    let arena = Arena::new();
    let cp = arena.checkpoint();
    for _ in 0..3 {
        mixed_round(&arena);
        // SAFETY: nothing allocated after `cp` is used again.
        unsafe { arena.rewind_to_checkpoint(cp) };
    }
    let (before, chunks) = (arena.stats().chunk_switches, arena.chunk_usage().len());
    for _ in 0..STEADY_ROUNDS {
        mixed_round(&arena);
        // SAFETY: as above.
        unsafe { arena.rewind_to_checkpoint(cp) };
    }
    let per_round = (arena.stats().chunk_switches - before) as f64 / STEADY_ROUNDS as f64;
    assert!(per_round <= 1.0, "{per_round} chunk switches per round");
    assert_eq!(
        arena.chunk_usage().len(),
        chunks,
        "no growth in steady state"
    );
}

#[test]
fn a_steady_reset_loop_switches_chunks_at_most_once_per_round() {
    let mut arena = Arena::new();
    for _ in 0..3 {
        mixed_round(&arena);
        arena.reset();
    }
    let before = arena.stats().chunk_switches;
    for _ in 0..STEADY_ROUNDS {
        mixed_round(&arena);
        arena.reset();
    }
    let per_round = (arena.stats().chunk_switches - before) as f64 / STEADY_ROUNDS as f64;
    assert!(per_round <= 1.0, "{per_round} chunk switches per round");
    assert!(arena.chunk_usage().len() <= 2);
}
