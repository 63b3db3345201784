//! Destructors: when they run, in which order, and what a panicking one
//! leaves behind.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arena_b::Arena;

mod common;
use common::SendCounted;

#[test]
fn zero_sized_type_with_drop_is_dropped() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Zst;
    impl Drop for Zst {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }
    let arena = Arena::new();
    arena.alloc(Zst);
    arena.alloc_slice_fill_iter([Zst, Zst]);
    drop(arena);
    assert_eq!(DROPS.load(Ordering::SeqCst), 3);
}

#[test]
fn destructors_run_on_rewind_reset_and_drop() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut arena = Arena::new();
    arena.alloc(SendCounted(log.clone(), 1));
    let cp = arena.checkpoint();
    arena.alloc(SendCounted(log.clone(), 2));
    arena.alloc(SendCounted(log.clone(), 3));
    // SAFETY: nothing after `cp` is used again.
    unsafe { arena.rewind_to_checkpoint(cp) };
    assert_eq!(*log.lock().unwrap(), vec![3, 2]);
    arena.alloc(SendCounted(log.clone(), 4));
    arena.reset();
    assert_eq!(*log.lock().unwrap(), vec![3, 2, 4, 1]);
    arena.alloc(SendCounted(log.clone(), 5));
    arena.alloc_slice_clone(&[SendCounted(log.clone(), 6)]);
    drop(arena);
    // The temporary `SendCounted(6)` passed to alloc_slice_clone drops first.
    assert_eq!(*log.lock().unwrap(), vec![3, 2, 4, 1, 6, 6, 5]);
}

#[test]
fn no_drop_values_are_never_dropped() {
    let drops = Cell::new(0);
    struct Borrowing<'a>(&'a Cell<u32>);
    impl Drop for Borrowing<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    {
        let arena = Arena::new();
        arena.alloc_no_drop(Borrowing(&drops));
        arena.scope(|s| {
            s.alloc_no_drop(Borrowing(&drops));
        });
    }
    assert_eq!(drops.get(), 0);
}

#[test]
fn panicking_destructor_does_not_corrupt_the_arena() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom");
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let arena = Arena::new();
    let cp = arena.checkpoint();
    arena.alloc(SendCounted(log.clone(), 1));
    arena.alloc(Bomb);
    arena.alloc(SendCounted(log.clone(), 2));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: nothing after `cp` is used again.
        unsafe { arena.rewind_to_checkpoint(cp) };
    }));
    assert!(r.is_err());
    assert_eq!(*log.lock().unwrap(), vec![2]);
    // The arena is still usable, and the rest is dropped later, once.
    let x = arena.alloc(5u32);
    assert_eq!(*x, 5);
    drop(arena);
    assert_eq!(*log.lock().unwrap(), vec![2, 1]);
}

#[test]
fn panicking_clone_drops_the_clones_made_so_far() {
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    struct Fragile(u32);
    impl Clone for Fragile {
        fn clone(&self) -> Self {
            assert!(self.0 != 3, "clone failed");
            LIVE.fetch_add(1, Ordering::SeqCst);
            Fragile(self.0)
        }
    }
    impl Drop for Fragile {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let src: Vec<Fragile> = (0..5)
        .map(|i| {
            LIVE.fetch_add(1, Ordering::SeqCst);
            Fragile(i)
        })
        .collect();
    let arena = Arena::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.alloc_slice_clone(&src);
    }));
    assert!(r.is_err());
    assert_eq!(LIVE.load(Ordering::SeqCst), 5 + 3);
    drop(arena);
    assert_eq!(LIVE.load(Ordering::SeqCst), 5);
    drop(src);
    assert_eq!(LIVE.load(Ordering::SeqCst), 0);
}
