//! Under AddressSanitizer with feature `debug` (`scripts/sanitize` builds
//! with `-Zsanitizer=address --cfg arena_b_asan`), freed arena memory is
//! poisoned for ASan: a use after rewind is reported at the faulting read.
//! The test runs the faulty read in a child process (ASan aborts it) and
//! checks the report.
#![cfg(all(arena_b_asan, feature = "debug"))]

use arena_b::Arena;

/// In the parent: runs test `name` again as a child with
/// `ARENA_B_ASAN_CHILD` set and checks that ASan killed it with a
/// use-after-poison report. Returns `true` in the child, which then does
/// the faulty read.
fn in_child_or_expect_report(name: &str) -> bool {
    if std::env::var_os("ARENA_B_ASAN_CHILD").is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture"])
        .env("ARENA_B_ASAN_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the child survived the use of freed memory"
    );
    assert!(
        stderr.contains("use-after-poison"),
        "no ASan use-after-poison report:\n{stderr}"
    );
    false
}

#[test]
fn asan_reports_a_use_after_rewind() {
    if in_child_or_expect_report("asan_reports_a_use_after_rewind") {
        let arena = Arena::new();
        let cp = arena.checkpoint();
        let stale: *const u64 = arena.alloc(42u64);
        // SAFETY: (test) `stale` is used below on purpose: the bug ASan
        // must catch.
        unsafe { arena.rewind_to_checkpoint(cp) };
        // SAFETY: none; this read is the use after rewind.
        let value = unsafe { std::ptr::read_volatile(stale) };
        println!("read {value} after the rewind: ASan missed it");
    }
}

#[cfg(feature = "lockfree")]
#[test]
fn asan_reports_a_use_after_lockfree_buffer_reset() {
    if in_child_or_expect_report("asan_reports_a_use_after_lockfree_buffer_reset") {
        let mut buffer = arena_b::LockFreeAllocator::new(4096);
        let stale: *const u64 = buffer.alloc_copy(42u64).unwrap();
        buffer.reset();
        // SAFETY: none; this read is the use after reset.
        let value = unsafe { std::ptr::read_volatile(stale) };
        println!("read {value} after the reset: ASan missed it");
    }
}

#[test]
fn legitimate_reuse_after_rewind_is_not_reported() {
    let arena = Arena::new();
    for round in 0..1000u64 {
        let cp = arena.checkpoint();
        let v = arena.alloc_slice_fill_iter(0..64usize);
        let s = arena.alloc_str("reused memory");
        assert_eq!((v[63], &*s), (63, "reused memory"));
        arena.scope(|scope| {
            let t = scope.alloc([round; 8]);
            assert_eq!(t[7], round);
        });
        let mut w = allocator_api2::vec::Vec::new_in(&arena);
        w.extend(0..100u32);
        assert_eq!(w[99], 99);
        drop(w);
        // SAFETY: nothing allocated after `cp` is used again.
        unsafe { arena.rewind_to_checkpoint(cp) };
    }
    let mut arena = arena;
    arena.reset();
    assert_eq!(*arena.alloc(1u8), 1);
}
