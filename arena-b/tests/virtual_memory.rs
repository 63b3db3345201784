//! Feature `virtual_memory`: one reserved region, committed as the arena
//! grows, decommitted on rewind and reset; a clear fallback when the
//! reservation fails.
#![cfg(feature = "virtual_memory")]

use std::sync::{Arc, Mutex};

use arena_b::{Arena, DiagnosticEvent};

/// Under Miri (no mmap) and on targets without it every arena falls back.
const HAS_MMAP: bool = cfg!(all(unix, not(miri)));

#[test]
fn one_region_grows_without_chunk_switches() {
    let arena = Arena::with_virtual_memory(256 << 20);
    if !HAS_MMAP {
        assert_eq!(arena.virtual_memory_committed_bytes(), None);
        return;
    }
    let first = arena.virtual_memory_committed_bytes().unwrap();
    assert!(first >= 4096);
    let mut blocks = Vec::new();
    for i in 0..2000u64 {
        let block = arena.alloc([i; 512]); // 4 KiB each, 8 MiB in all
        blocks.push(&*block);
    }
    for (i, block) in blocks.iter().enumerate() {
        assert!(block.iter().all(|&x| x == i as u64));
    }
    assert_eq!(arena.chunk_usage().len(), 1, "one contiguous region");
    let committed = arena.virtual_memory_committed_bytes().unwrap();
    assert!((2000 * 4096..=32 << 20).contains(&committed), "{committed}");
    assert_eq!(arena.capacity(), committed);
    // Contiguous: consecutive blocks sit next to each other.
    assert_eq!(
        blocks[1].as_ptr() as usize - blocks[0].as_ptr() as usize,
        4096
    );
}

#[test]
fn rewind_and_reset_decommit_above_the_threshold() {
    let mut arena = Arena::builder()
        .virtual_memory(64 << 20)
        .decommit_threshold(256 << 10)
        .build();
    if !HAS_MMAP {
        return;
    }
    let cp = arena.checkpoint();
    arena.alloc_slice_fill_iter((0..(4 << 20)).map(|i| i as u8));
    let grown = arena.virtual_memory_committed_bytes().unwrap();
    assert!(grown >= 4 << 20);
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    let after_rewind = arena.virtual_memory_committed_bytes().unwrap();
    assert!(after_rewind <= (256 << 10) + 4096, "{after_rewind}");
    assert_eq!(arena.capacity(), after_rewind);
    // It grows again, and the memory is usable.
    let again = arena.alloc_slice_fill_iter(0..1_000_000u32);
    assert_eq!(again[999_999], 999_999);
    arena.reset();
    assert!(arena.virtual_memory_committed_bytes().unwrap() <= (256 << 10) + 4096);
    // Small rewinds under the threshold keep their pages.
    let cp = arena.checkpoint();
    arena.alloc([0u8; 1000]);
    let before = arena.virtual_memory_committed_bytes();
    // SAFETY: nothing allocated after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    assert_eq!(arena.virtual_memory_committed_bytes(), before);
}

#[test]
fn beyond_the_reservation_heap_chunks_take_over() {
    let arena = Arena::builder().virtual_memory(1 << 20).build();
    if !HAS_MMAP {
        return;
    }
    let a = arena.alloc_slice_fill_iter(0..100_000usize); // 800 KB in the region
    let b = arena.alloc_slice_fill_iter(0..100_000usize); // does not fit: heap
    assert_eq!((a[99_999], b[99_999]), (99_999, 99_999));
    assert_eq!(arena.chunk_usage().len(), 2);
    assert!(arena.virtual_memory_committed_bytes().unwrap() <= 1 << 20);
}

#[test]
fn scopes_and_allocator_collections_in_the_region() {
    let arena = Arena::with_virtual_memory(64 << 20);
    let mut v = allocator_api2::vec::Vec::new_in(&arena);
    let total = arena.scope(|scope| {
        let tmp = scope.alloc_slice_fill_iter(0..500_000u32);
        for x in tmp.iter().step_by(1000) {
            v.push(*x);
        }
        tmp.iter().map(|&x| x as u64).sum::<u64>()
    });
    assert_eq!(total, 499_999 * 500_000 / 2);
    assert_eq!(v.len(), 500);
    assert_eq!(v[499], 499_000);
}

fn events() -> (
    Arc<Mutex<Vec<DiagnosticEvent>>>,
    impl Fn(&DiagnosticEvent) + Send + Sync,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = seen.clone();
        move |e: &DiagnosticEvent| seen.lock().unwrap().push(e.clone())
    };
    (seen, sink)
}

#[test]
fn failed_reservation_falls_back_and_reports() {
    // More address space than any machine has: the reservation fails, as it
    // would under a low `ulimit -v`.
    let (seen, sink) = events();
    let arena = Arena::builder()
        .virtual_memory(usize::MAX / 2)
        .diagnostics(sink)
        .build();
    assert_eq!(arena.virtual_memory_committed_bytes(), None);
    assert_eq!(*arena.alloc(5u32), 5, "heap chunks work");
    let seen = seen.lock().unwrap();
    assert!(
        matches!(&seen[0], DiagnosticEvent::VirtualMemoryUnavailable { requested, .. } if *requested == usize::MAX / 2),
        "{seen:?}"
    );
}

#[test]
fn strict_reservation_failure_is_a_build_error() {
    let err = Arena::builder()
        .virtual_memory(usize::MAX / 2)
        .virtual_memory_strict(true)
        .try_build()
        .unwrap_err();
    assert!(err.to_string().contains("virtual_memory_strict"), "{err}");
    let err = Arena::builder()
        .virtual_memory(1 << 20)
        .try_build_sync()
        .unwrap_err();
    assert!(err.to_string().contains("virtual_memory"), "{err}");
}

/// The fallback under a real address-space limit: this test re-runs itself
/// in a child process under `ulimit -v`. (Not under AddressSanitizer, whose
/// shadow memory needs more address space than any such limit allows.)
#[test]
#[cfg(all(target_os = "linux", not(miri), not(arena_b_asan)))]
fn fallback_under_ulimit_v() {
    if std::env::var_os("ARENA_B_ULIMIT_CHILD").is_some() {
        let (seen, sink) = events();
        let arena = Arena::builder()
            .virtual_memory(8 << 30) // 8 GiB > the limit below
            .diagnostics(sink)
            .build();
        assert_eq!(arena.virtual_memory_committed_bytes(), None);
        arena.alloc_slice_fill_iter(0..1000u32);
        assert!(matches!(
            seen.lock().unwrap()[0],
            DiagnosticEvent::VirtualMemoryUnavailable { .. }
        ));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 4194304 && exec "$0" --exact fallback_under_ulimit_v --nocapture -q"#)
        .arg(exe)
        .env("ARENA_B_ULIMIT_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "child under ulimit -v failed: {}\n{}{}",
        status.status,
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}
