// The allocation family as one macro, shared by `arena-b/tests/family.rs`
// and `arena-tower/tests/handle_miri.rs` (which runs it on `RequestArena`).
// Needs `std::sync::atomic::{AtomicUsize, Ordering}`, `std::sync::Arc` and
// `arena_b::{AllocOrInitError, ArenaBox}` in scope.

/// Counts its drops.
#[derive(Clone)]
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The family on receiver `$a`; `$drops` is checked by the caller after the
/// arena is gone.
macro_rules! family {
    ($a:expr, $drops:expr) => {{
        let a = $a;
        let drops: &Arc<AtomicUsize> = $drops;
        // Single values.
        assert_eq!(*a.alloc(1u8), 1);
        assert_eq!(*a.try_alloc(2u16).unwrap(), 2);
        assert_eq!(a.alloc_with(|| [3u32; 8])[7], 3);
        assert_eq!(a.try_alloc_with(|| 4u64).unwrap(), &4);
        assert_eq!(*a.alloc_try_with(|| Ok::<_, ()>(5u8)).unwrap(), 5);
        assert_eq!(a.alloc_try_with(|| Err::<u8, _>("no")), Err("no"));
        assert_eq!(*a.try_alloc_try_with(|| Ok::<_, ()>(6i8)).unwrap(), 6);
        assert!(matches!(
            a.try_alloc_try_with(|| Err::<u8, _>(7)),
            Err(AllocOrInitError::Init(7))
        ));
        let borrowed = String::from("borrowed");
        assert_eq!(**a.alloc_no_drop(&borrowed), *"borrowed");
        assert_eq!(**a.try_alloc_no_drop(&borrowed).unwrap(), *"borrowed");
        // Values with destructors: registered, or owned by a box.
        a.alloc(Tracked(Arc::clone(drops)));
        a.alloc_with(|| Tracked(Arc::clone(drops)));
        a.alloc_try_with(|| Ok::<_, ()>(Tracked(Arc::clone(drops))))
            .unwrap();
        let b: ArenaBox<'_, Tracked> = a.alloc_box(Tracked(Arc::clone(drops)));
        drop(b);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the box ran its destructor"
        );
        let kept = a.try_alloc_box(Tracked(Arc::clone(drops))).unwrap();
        assert_eq!(ArenaBox::into_inner(kept).0.load(Ordering::SeqCst), 1);
        assert_eq!(drops.load(Ordering::SeqCst), 2, "into_inner moved it out");
        // Strings and slices.
        assert_eq!(a.alloc_str("str"), "str");
        assert_eq!(a.try_alloc_str("try").unwrap(), "try");
        assert_eq!(a.alloc_str_uninit(3), "\0\0\0");
        assert_eq!(a.try_alloc_str_uninit(1).unwrap(), "\0");
        assert_eq!(a.alloc_slice_fast(&[1, 2]), &[1, 2]);
        assert_eq!(a.try_alloc_slice_fast(&[3u8]).unwrap(), &[3]);
        assert_eq!(a.alloc_slice_copy(&[4, 5]), &[4, 5]);
        assert_eq!(a.try_alloc_slice_copy(&['x']).unwrap(), &['x']);
        assert_eq!(a.alloc_slice_clone(&[String::from("c")])[0], "c");
        assert_eq!(a.try_alloc_slice_clone(&[vec![1]]).unwrap()[0], [1]);
        assert_eq!(a.alloc_slice_fill_iter(0..3u8), &[0, 1, 2]);
        assert_eq!(a.try_alloc_slice_fill_iter(0..2u8).unwrap(), &[0, 1]);
        assert_eq!(a.alloc_slice_fill_with(4, |i| i * i), &[0, 1, 4, 9]);
        assert_eq!(
            a.try_alloc_slice_fill_with(2, |i| i as u8).unwrap(),
            &[0, 1]
        );
        assert_eq!(a.alloc_slice_fill_copy(3, 9u8), &[9, 9, 9]);
        assert_eq!(a.try_alloc_slice_fill_copy(2, "s").unwrap(), &["s", "s"]);
        assert_eq!(a.alloc_slice_fill_clone(2, &String::from("k")), &["k", "k"]);
        assert_eq!(
            a.try_alloc_slice_fill_clone(1, &vec![2u8]).unwrap(),
            &[vec![2]]
        );
        assert_eq!(a.alloc_slice_fill_default::<u32>(2), &[0, 0]);
        assert_eq!(a.try_alloc_slice_fill_default::<String>(1).unwrap(), &[""]);
        let empty: &mut [u64] = a.alloc_slice_fill_with(0, |_| unreachable!());
        assert!(empty.is_empty());
        a.alloc_slice_fill_clone(3, &Tracked(Arc::clone(drops)));
        // Raw memory.
        let layout = std::alloc::Layout::from_size_align(24, 8).unwrap();
        assert_eq!(a.alloc_layout(layout).as_ptr() as usize % 8, 0);
        assert_eq!(a.try_alloc_layout(layout).unwrap().as_ptr() as usize % 8, 0);
    }};
}

