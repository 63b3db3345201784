//! Scratch reproducers for the second soundness review (to be deleted).
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use arena_b::{Arena, Checkpoint, DiagnosticEvent};

fn quiet<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    catch_unwind(AssertUnwindSafe(f))
}

// 1. A checkpoint taken by a destructor *during* a rewind carries the epoch
//    bumped at the start of run_drops_until, so a later destructor of the
//    same rewind passes the fast path with a drop mark already unlinked.
#[test]
fn r1_checkpoint_taken_during_rewind_passes_fast_path() {
    thread_local! {
        static A: &'static Arena = Box::leak(Box::new(Arena::new()));
        static CP: Cell<Option<Checkpoint>> = const { Cell::new(None) };
    }
    struct TakeCp;
    impl Drop for TakeCp {
        fn drop(&mut self) {
            A.with(|a| CP.with(|c| c.set(Some(a.checkpoint()))));
        }
    }
    struct UseCp;
    impl Drop for UseCp {
        fn drop(&mut self) {
            if let Some(c) = CP.with(|c| c.take()) {
                // Documented: refused with a panic (a rewind is running).
                A.with(|a| unsafe { a.rewind_to_checkpoint(c) });
            }
        }
    }
    let a = A.with(|a| *a);
    let keep = a.alloc(String::from("keep me"));
    let c = a.checkpoint();
    a.alloc(UseCp);
    a.alloc(TakeCp); // newest: its destructor runs first
    let r = quiet(|| unsafe { a.rewind_to_checkpoint(c) });
    eprintln!("r1 outer rewind panicked: {}", r.is_err());
    // `keep` was allocated before `c` and must still be alive.
    assert_eq!(keep.as_str(), "keep me");
}

// 2. A nested rewind that passes the fast path clears `rewinding` (Done sets
//    false, not the previous value); after it an older checkpoint is accepted
//    from inside the outer rewind.
#[test]
fn r2_inner_rewind_clears_rewinding_flag() {
    thread_local! {
        static A: &'static Arena = Box::leak(Box::new(Arena::new()));
        static OLDER: Cell<Option<Checkpoint>> = const { Cell::new(None) };
    }
    struct D;
    impl Drop for D {
        fn drop(&mut self) {
            A.with(|a| {
                let c = a.checkpoint();
                a.alloc(String::from("tmp"));
                // SAFETY: nothing after `c` is used again.
                unsafe { a.rewind_to_checkpoint(c) };
                if let Some(o) = OLDER.with(|o| o.take()) {
                    // Documented: refused with a panic (a rewind is running).
                    unsafe { a.rewind_to_checkpoint(o) };
                }
            });
        }
    }
    let a = A.with(|a| *a);
    let keep = a.alloc(String::from("keep me"));
    let c0 = a.checkpoint();
    OLDER.with(|o| o.set(Some(c0)));
    a.alloc(String::from("mid"));
    let c1 = a.checkpoint();
    a.alloc(D);
    let r = quiet(|| unsafe { a.rewind_to_checkpoint(c1) });
    eprintln!("r2 outer rewind panicked: {}", r.is_err());
    assert_eq!(keep.as_str(), "keep me");
}

// 3. A destructor panics in the middle of a rewind: headers were unlinked,
//    but nothing was recorded, so a checkpoint whose drop mark was unlinked
//    is accepted afterwards.
#[test]
fn r3_panic_mid_rewind_leaves_stale_checkpoint_valid() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("boom");
        }
    }
    let arena = Arena::new();
    let keep = arena.alloc(String::from("keep me"));
    let ca = arena.checkpoint();
    arena.alloc(PanicOnDrop);
    let cb = arena.checkpoint(); // drop mark = PanicOnDrop's header
    arena.alloc(String::from("x"));
    let r = quiet(|| unsafe { arena.rewind_to_checkpoint(ca) });
    assert!(r.is_err());
    // cb's mark was unlinked by the interrupted rewind: must be refused.
    let r = quiet(|| unsafe { arena.rewind_to_checkpoint(cb) });
    eprintln!("r3 rewind to cb panicked: {}", r.is_err());
    assert_eq!(keep.as_str(), "keep me");
}

// 4. Since events are reported after the bump, a checkpoint taken by the
//    sink (or a tracing subscriber) sits *after* the new value's memory but
//    *before* its drop header: rewinding to it drops a value allocated
//    before the checkpoint.
#[test]
fn r4_sink_checkpoint_between_bump_and_link() {
    thread_local! {
        static CP: Cell<Option<Checkpoint>> = const { Cell::new(None) };
        static A: &'static Arena = Box::leak(Box::new(
            Arena::builder()
                .diagnostics(|e| {
                    if matches!(e, DiagnosticEvent::ChunkAllocated { .. }) {
                        A.with(|a| CP.with(|c| c.set(Some(a.checkpoint()))));
                    }
                })
                .build(),
        ));
    }
    thread_local! { static DROPPED: Cell<bool> = const { Cell::new(false) }; }
    struct Flag(#[allow(dead_code)] Box<u64>);
    impl Drop for Flag {
        fn drop(&mut self) {
            DROPPED.with(|d| d.set(true));
        }
    }
    let a = A.with(|a| *a);
    let s = a.alloc(Flag(Box::new(7)));
    let cp = CP.with(|c| c.take()).expect("the sink ran");
    // SAFETY: nothing allocated after `cp` (nothing at all) is used again.
    unsafe { a.rewind_to_checkpoint(cp) };
    eprintln!("r4 value allocated before cp dropped: {}", DROPPED.with(|d| d.get()));
    assert_eq!(*s.0, 7);
}

// 5. Allocator deallocation of the last block now records a rewind each
//    time; with increasing positions the history Vec grows without bound.
#[cfg(not(miri))]
#[test]
fn r5_history_grows_with_vec_temporaries() {
    use allocator_api2::vec::Vec as AVec;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counting;
    static BYTES: AtomicUsize = AtomicUsize::new(0);
    static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            if COUNTING.load(Ordering::Relaxed) && l.size() < 1 << 20 {
                BYTES.fetch_add(l.size(), Ordering::Relaxed);
            }
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
            if COUNTING.load(Ordering::Relaxed) {
                BYTES.fetch_add(n, Ordering::Relaxed);
            }
            unsafe { System.realloc(p, l, n) }
        }
    }
    #[global_allocator]
    static G: Counting = Counting;
    let arena = Arena::with_capacity(64 << 20);
    COUNTING.store(true, Ordering::Relaxed);
    for i in 0..200_000u64 {
        arena.alloc(i);
        let mut v: AVec<u8, &Arena> = AVec::new_in(&arena);
        v.push(1);
        drop(v);
    }
    COUNTING.store(false, Ordering::Relaxed);
    eprintln!(
        "r5 heap bytes requested during the loop (chunk is preallocated): {}",
        BYTES.load(Ordering::Relaxed)
    );
}
