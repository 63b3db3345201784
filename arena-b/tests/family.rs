//! The whole allocation family, one suite run against every arena type
//! (`Arena`, `Scope`, `SyncArena`; `arena-tower` runs it on `RequestArena`):
//! the methods exist on each, with the same names, and behave the same.
//! Written from bumpalo's documented behaviour (names, slice fills,
//! `alloc_try_with`), not from its code.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arena_b::{AllocOrInitError, Arena, ArenaBox, SyncArena};

include!("support/family_suite.rs");

/// Destructors registered by the suite: `alloc`, `alloc_with`,
/// `alloc_try_with`, the dropped box, the moved-out box, the clone source
/// and its three clones.
const REGISTERED_AND_DIRECT: usize = 3 + 1 + 1 + 1 + 3;

#[test]
fn the_family_on_arena() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let arena = Arena::new();
        family!(&arena, &drops);
    }
    assert_eq!(drops.load(Ordering::SeqCst), REGISTERED_AND_DIRECT);
}

#[test]
fn the_family_on_scope() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = Arena::new();
    arena.scope(|scope| family!(scope, &drops));
    assert_eq!(drops.load(Ordering::SeqCst), REGISTERED_AND_DIRECT);
    assert_eq!(arena.bytes_allocated(), 0, "the scope gave it all back");
}

#[test]
fn the_family_on_a_nested_scope() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = Arena::new();
    arena.scope(|outer| outer.scope(|inner| family!(inner, &drops)));
    assert_eq!(drops.load(Ordering::SeqCst), REGISTERED_AND_DIRECT);
}

#[test]
fn the_family_on_sync_arena_from_several_threads() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let arena = SyncArena::new();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| family!(&arena, &Arc::new(AtomicUsize::new(0))));
            }
        });
        family!(&arena, &drops);
    }
    assert_eq!(drops.load(Ordering::SeqCst), REGISTERED_AND_DIRECT);
}

#[test]
fn a_failed_alloc_try_with_gives_its_slot_back_and_keeps_nothing() {
    let arena = Arena::new();
    arena.alloc(0u8);
    let before = arena.bytes_allocated();
    let drops = Arc::new(AtomicUsize::new(0));
    let r = arena.alloc_try_with(|| Err::<Tracked, _>(Tracked(Arc::clone(&drops))));
    let err = r.err().expect("the closure's error");
    // The slot was the last block: only its alignment padding stays.
    assert_eq!(arena.bytes_allocated(), before.next_multiple_of(8));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the error came back undropped"
    );
    drop(err);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "dropped once, by its owner"
    );
    drop(arena);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "never twice");
}

#[test]
fn a_panicking_closure_leaks_nothing_and_drops_nothing_twice() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = Arena::new();
    let kept = arena.alloc(Tracked(Arc::clone(&drops)));
    for round in 0..3 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match round {
            0 => {
                arena.alloc_with(|| -> Tracked { panic!("with") });
            }
            1 => {
                let _ = arena.alloc_try_with(|| -> Result<Tracked, ()> { panic!("try_with") });
            }
            _ => {
                let d = Arc::clone(&drops);
                arena.alloc_slice_fill_with(4, |i| {
                    if i == 2 {
                        panic!("fill");
                    }
                    Tracked(Arc::clone(&d))
                });
            }
        }));
        assert!(r.is_err());
    }
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    let _ = kept;
    drop(arena);
    // `kept`, and the two slice elements written before the panic.
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn an_arena_box_of_a_borrowing_value_runs_its_destructor() {
    struct Node<'a> {
        name: String,
        children: Vec<&'a Node<'a>>,
        dropped: &'a Cell<usize>,
    }
    impl Drop for Node<'_> {
        fn drop(&mut self) {
            self.dropped.set(self.dropped.get() + 1);
        }
    }
    let dropped = Cell::new(0);
    let arena = Arena::new();
    {
        let leaf = arena.alloc_box(Node {
            name: "leaf".into(),
            children: vec![],
            dropped: &dropped,
        });
        let root = arena.alloc_box(Node {
            name: "root".into(),
            children: vec![&*leaf],
            dropped: &dropped,
        });
        assert_eq!(root.children[0].name, "leaf");
        // Leaked: its destructor never runs (its fields own no heap memory,
        // so nothing is lost but arena memory).
        let leaked: &mut Node<'_> = ArenaBox::leak(arena.alloc_box(Node {
            name: String::new(),
            children: vec![],
            dropped: &dropped,
        }));
        leaked.children.clear();
    }
    assert_eq!(
        dropped.get(),
        2,
        "root and leaf dropped, the leaked one not"
    );
}

#[test]
fn arena_box_new_in_takes_any_arena_allocator() {
    let arena = Arena::new();
    let sync = SyncArena::new();
    let a = ArenaBox::new_in(String::from("arena"), &arena);
    let s = ArenaBox::new_in(String::from("sync"), &sync);
    let scoped = arena.scope(|scope| ArenaBox::new_in(vec![1, 2], scope).len());
    assert_eq!((a.as_str(), s.as_str(), scoped), ("arena", "sync", 2));
}
