//! Values built in place: `alloc_with` and friends write the closure's
//! value straight into the arena. Review finding: `alloc_with(f)` was
//! `alloc(f())`, so bumpalo's own tests of 10-60 MB values overflowed the
//! stack and aborted. The large cases need the optimizer (release builds:
//! `cargo test -p arena-b --release --test in_place`, as CI runs it); the
//! small ones run everywhere, Miri included.

use arena_b::Arena;
#[cfg(not(debug_assertions))]
use arena_b::SyncArena;

#[test]
fn values_built_in_place_are_whole() {
    let arena = Arena::new();
    let a = arena.alloc_with(|| [7u8; 4096]);
    assert!(a.iter().all(|&b| b == 7));
    let b = arena
        .try_alloc_with(|| (1u64, [2u32; 100], "three"))
        .unwrap();
    assert_eq!((b.0, b.1[99], b.2), (1, 2, "three"));
    let c = arena.alloc_try_with(|| Ok::<_, ()>([9u16; 512])).unwrap();
    assert_eq!(c[511], 9);
    let d = arena
        .try_alloc_try_with(|| Ok::<_, ()>(vec![1, 2, 3]))
        .unwrap();
    assert_eq!(d.len(), 3);
}

/// 64 MiB on a spawned thread (2 MiB of stack by default), through every
/// `*_with` form, on `Arena` and `SyncArena`.
#[cfg(not(debug_assertions))]
#[test]
fn a_64_mib_value_needs_no_64_mib_of_stack() {
    const N: usize = 64 << 20;
    std::thread::spawn(|| {
        let arena = Arena::new();
        assert_eq!(arena.alloc_with(|| [7u8; N])[N - 1], 7);
        assert_eq!(arena.try_alloc_with(|| [8u8; N]).unwrap()[N - 1], 8);
        assert_eq!(
            arena.alloc_try_with(|| Ok::<_, ()>([9u8; N])).unwrap()[N - 1],
            9
        );
        assert_eq!(
            arena.try_alloc_try_with(|| Ok::<_, ()>([10u8; N])).unwrap()[N - 1],
            10
        );
        let sync = SyncArena::new();
        assert_eq!(sync.alloc_with(|| [11u8; N])[N - 1], 11);
        assert_eq!(sync.try_alloc_with(|| [12u8; N]).unwrap()[N - 1], 12);
        sync.scope(|s| assert_eq!(s.alloc_with(|| [13u8; N])[N - 1], 13));
    })
    .join()
    .expect("no stack overflow");
}
