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
