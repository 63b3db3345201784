//! The allocation family, written once: [`alloc_api!`] generates every
//! allocation method (`alloc`, `alloc_with`, `alloc_slice_*`, `alloc_box`,
//! ... and each `try_*` form) as inherent methods of `Arena`, `Scope` and
//! `SyncArena`; `arena-tower`'s `RequestArena` reaches `SyncArena`'s
//! through `Deref`. So the method sets cannot drift apart again (they had:
//! 18 methods on `Arena`, 11 on `Scope`, 8 on `SyncArena`).
//!
//! # Why a macro and not a trait
//! A trait with provided methods would need a `use` in every caller before
//! `arena.alloc(x)` compiles, which the reference README's examples (and
//! bumpalo users) do not have. The macro writes inherent methods; each is
//! a thin wrapper over one function of `typed`, over a [`Bump`] handle
//! that the invocation says how to get (`self` for `Arena` and `Scope`;
//! the calling thread's part for `SyncArena`), with the bound that values
//! with destructors need on that type (`Send + 'static` where they may
//! drop on another thread, `'static` in a scope).
//!
//! [`Bump`]: crate::typed::Bump

#[allow(unused_imports)]
use crate::prelude::*;
/// Generates the allocation family for one type; see the module docs.
///
/// - `impl [generics] Type`: the type.
/// - `bound = [..]`: the bound on values whose destructor the arena runs.
/// - `plain = |this| expr`: the `Bump` handle for plain methods.
/// - `try = |this| expr`: the same, as a `Result<_, AllocError>`.
/// - `setup`/`end`: doc-example lines that make `arena` the receiver.
macro_rules! alloc_api {
    (
        impl [$($gen:tt)*] $ty:ty,
        bound = [$($bound:tt)+],
        plain = |$p:ident| $plain:expr,
        try = |$t:ident| $try:expr,
        setup = $setup:literal,
        end = $end:literal $(,)?
    ) => {
        impl<$($gen)*> $ty {
            /// Moves `value` into the arena and returns a mutable reference
            /// to it. If `T` needs drop, `value` is dropped when its memory
            /// is freed (rewind, scope exit, reset or the arena's drop).
            ///
            /// # Panics
            /// At the allocation limit (under `LimitPolicy::Unwind` it
            /// unwinds with a `LimitExceeded` instead); calls
            /// [`handle_alloc_error`](::alloc::alloc::handle_alloc_error) if the
            /// system is out of memory. [`try_alloc`](Self::try_alloc)
            /// returns the error instead.
            ///
            #[doc = concat!("```\n", $setup, "\nlet v = arena.alloc(vec![1, 2, 3]);\nv.push(4);\nassert_eq!(v.len(), 4);\n", $end, "\n```")]
            #[inline(always)]
            #[track_caller]
            pub fn alloc<T: $($bound)+>(&self, value: T) -> &mut T {
                let $p = self;
                match $crate::typed::value($plain, value, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, Some(core::alloc::Layout::new::<T>())),
                }
            }

            /// Fallible [`alloc`](Self::alloc): the error instead of a panic.
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(*arena.try_alloc(7u8).unwrap(), 7);\n", $end, "\n```")]
            #[inline(always)]
            pub fn try_alloc<T: $($bound)+>(&self, value: T) -> Result<&mut T, $crate::AllocError> {
                let $t = self;
                $crate::typed::value($try?, value, $crate::typed::Mode::Try)
            }

            /// Allocates the value `f` returns, built in place: the memory is
            /// taken first and `f`'s result is written straight into it (in
            /// release builds the optimizer then builds an array like
            /// `[0u8; 64 << 20]` without passing it through the stack; a large
            /// struct literal or nested array may still go through the stack,
            /// as with bumpalo, so build those field by field). `f`
            /// may allocate in the same arena; if it panics, nothing is
            /// kept. A checkpoint taken inside `f` is taken before the value
            /// exists: a rewind to it drops the value.
            ///
            #[doc = concat!("```\n", $setup, "\nlet big = arena.alloc_with(|| [7u8; 4096]);\nassert_eq!(big[4095], 7);\n", $end, "\n```")]
            #[inline(always)]
            #[track_caller]
            pub fn alloc_with<T: $($bound)+, F: FnOnce() -> T>(&self, f: F) -> &mut T {
                let $p = self;
                match $crate::typed::with($plain, f, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, Some(core::alloc::Layout::new::<T>())),
                }
            }

            /// Fallible [`alloc_with`](Self::alloc_with); `f` does not run if
            /// the memory cannot be had.
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_with(|| 1u64 << 40).unwrap().count_ones(), 1);\n", $end, "\n```")]
            #[inline(always)]
            pub fn try_alloc_with<T: $($bound)+, F: FnOnce() -> T>(
                &self,
                f: F,
            ) -> Result<&mut T, $crate::AllocError> {
                let $t = self;
                $crate::typed::with($try?, f, $crate::typed::Mode::Try)
            }

            /// Allocates the `Ok` value `f` returns, built in place; an `Err`
            /// comes back, and nothing is kept (the slot is given back if
            /// nothing was allocated after it).
            ///
            #[doc = concat!("```\n", $setup, "\nlet n = arena.alloc_try_with(|| \"42\".parse::<u32>()).unwrap();\nassert_eq!(*n, 42);\nassert!(arena.alloc_try_with(|| \"x\".parse::<u32>()).is_err());\n", $end, "\n```")]
            #[inline(always)]
            #[track_caller]
            pub fn alloc_try_with<T: $($bound)+, E, F: FnOnce() -> Result<T, E>>(
                &self,
                f: F,
            ) -> Result<&mut T, E> {
                let $p = self;
                match $crate::typed::try_with($plain, f, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, Some(core::alloc::Layout::new::<Result<T, E>>())),
                }
            }

            /// Fallible [`alloc_try_with`](Self::alloc_try_with): an
            /// [`AllocOrInitError`]($crate::AllocOrInitError) says whether
            /// the memory or the closure failed.
            ///
            #[doc = concat!("```\n", $setup, "\nuse arena_b::AllocOrInitError;\nlet r = arena.try_alloc_try_with(|| Err::<u8, _>(\"nope\"));\nassert_eq!(r, Err(AllocOrInitError::Init(\"nope\")));\n", $end, "\n```")]
            #[inline(always)]
            pub fn try_alloc_try_with<T: $($bound)+, E, F: FnOnce() -> Result<T, E>>(
                &self,
                f: F,
            ) -> Result<&mut T, $crate::AllocOrInitError<E>> {
                let $t = self;
                match $crate::typed::try_with($try?, f, $crate::typed::Mode::Try) {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(e)) => Err($crate::AllocOrInitError::Init(e)),
                    Err(e) => Err($crate::AllocOrInitError::Alloc(e)),
                }
            }

            /// Moves `value` into the arena **without** registering its
            /// destructor: it is never dropped. For types that borrow, where
            /// a destructor run at reset time could not be proven sound
            /// ([`alloc_box`](Self::alloc_box) runs the destructor when its box
            /// is dropped instead). For a type without drop glue this is
            /// exactly [`alloc`](Self::alloc).
            ///
            #[doc = concat!("```\n", $setup, "\nstruct Node<'a> { value: u32, next: Option<&'a Node<'a>> }\nlet a = arena.alloc_no_drop(Node { value: 1, next: None });\nlet b = arena.alloc_no_drop(Node { value: 2, next: Some(a) });\nassert_eq!(b.next.unwrap().value, 1);\n", $end, "\n```")]
            #[inline(always)]
            #[track_caller]
            pub fn alloc_no_drop<T>(&self, value: T) -> &mut T {
                let $p = self;
                // SAFETY: not registering a destructor only leaks.
                match unsafe { $crate::typed::value_no_drop($plain, value, $crate::typed::Mode::Plain) } {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, Some(core::alloc::Layout::new::<T>())),
                }
            }

            /// Fallible [`alloc_no_drop`](Self::alloc_no_drop).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(*arena.try_alloc_no_drop(&5).unwrap(), &5);\n", $end, "\n```")]
            #[inline(always)]
            pub fn try_alloc_no_drop<T>(&self, value: T) -> Result<&mut T, $crate::AllocError> {
                let $t = self;
                // SAFETY: not registering a destructor only leaks.
                unsafe { $crate::typed::value_no_drop($try?, value, $crate::typed::Mode::Try) }
            }

            /// Moves `value` into the arena in an [`ArenaBox`]($crate::ArenaBox),
            /// which owns it and runs its destructor when the box is dropped:
            /// for values that borrow *and* own heap data, with no `Send` or
            /// `'static` bound (the box borrows the arena, so the borrow
            /// checker orders the drop).
            ///
            #[doc = concat!("```\n", $setup, "\nstruct Named<'a> { name: String, next: Option<&'a Named<'a>> }\nlet first = arena.alloc_box(Named { name: \"a\".into(), next: None });\nlet second = arena.alloc_box(Named { name: \"b\".into(), next: Some(&*first) });\nassert_eq!(second.next.unwrap().name, \"a\");\n", $end, "\n```")]
            #[inline(always)]
            #[track_caller]
            pub fn alloc_box<T>(&self, value: T) -> $crate::ArenaBox<'_, T> {
                let $p = self;
                match $crate::typed::boxed($plain, value, $crate::typed::Mode::Plain) {
                    Ok(b) => b,
                    Err(e) => $crate::typed::fail(e, Some(core::alloc::Layout::new::<T>())),
                }
            }

            /// Fallible [`alloc_box`](Self::alloc_box).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(*arena.try_alloc_box(String::from(\"x\")).unwrap(), \"x\");\n", $end, "\n```")]
            #[inline(always)]
            pub fn try_alloc_box<T>(&self, value: T) -> Result<$crate::ArenaBox<'_, T>, $crate::AllocError> {
                let $t = self;
                $crate::typed::boxed($try?, value, $crate::typed::Mode::Try)
            }

            /// Copies `s` into the arena.
            ///
            #[doc = concat!("```\n", $setup, "\nlet s = arena.alloc_str(\"hello\");\ns.make_ascii_uppercase();\nassert_eq!(s, \"HELLO\");\n", $end, "\n```")]
            #[inline]
            #[track_caller]
            pub fn alloc_str(&self, s: &str) -> &mut str {
                let $p = self;
                match $crate::typed::str($plain, s, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, core::alloc::Layout::array::<u8>(s.len()).ok()),
                }
            }

            /// Fallible [`alloc_str`](Self::alloc_str).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_str(\"hi\").unwrap(), \"hi\");\n", $end, "\n```")]
            #[inline]
            pub fn try_alloc_str(&self, s: &str) -> Result<&mut str, $crate::AllocError> {
                let $t = self;
                $crate::typed::str($try?, s, $crate::typed::Mode::Try)
            }

            /// Copies a slice of `Copy` values into the arena with one
            /// `memcpy` (bumpalo's name for it is
            /// [`alloc_slice_copy`](Self::alloc_slice_copy)).
            ///
            #[doc = concat!("```\n", $setup, "\nlet small = arena.alloc_slice_fast(&[1u8, 2, 3]);\nsmall[0] = 9;\nassert_eq!(small, &[9, 2, 3]);\n", $end, "\n```")]
            #[inline]
            #[track_caller]
            pub fn alloc_slice_fast<T: Copy>(&self, src: &[T]) -> &mut [T] {
                let $p = self;
                match $crate::typed::slice_copy($plain, src, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, core::alloc::Layout::array::<T>(src.len()).ok()),
                }
            }

            /// Fallible [`alloc_slice_fast`](Self::alloc_slice_fast).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_slice_fast(&[1u16, 2]).unwrap(), &[1, 2]);\n", $end, "\n```")]
            #[inline]
            pub fn try_alloc_slice_fast<T: Copy>(&self, src: &[T]) -> Result<&mut [T], $crate::AllocError> {
                let $t = self;
                $crate::typed::slice_copy($try?, src, $crate::typed::Mode::Try)
            }

            /// [`alloc_slice_fast`](Self::alloc_slice_fast) under bumpalo's name.
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.alloc_slice_copy(&[1u32, 2, 3])[2], 3);\n", $end, "\n```")]
            #[inline]
            #[track_caller]
            pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
                self.alloc_slice_fast(src)
            }

            /// Fallible [`alloc_slice_copy`](Self::alloc_slice_copy).
            ///
            #[doc = concat!("```\n", $setup, "\nassert!(arena.try_alloc_slice_copy(&[0u8; 16]).is_ok());\n", $end, "\n```")]
            #[inline]
            pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], $crate::AllocError> {
                self.try_alloc_slice_fast(src)
            }

            /// Clones every element of `src` into the arena; the clones are
            /// dropped when their memory is freed.
            ///
            #[doc = concat!("```\n", $setup, "\nlet names = arena.alloc_slice_clone(&[String::from(\"a\"), String::from(\"b\")]);\nassert_eq!(names[1], \"b\");\n", $end, "\n```")]
            #[track_caller]
            pub fn alloc_slice_clone<T: Clone + $($bound)+>(&self, src: &[T]) -> &mut [T] {
                let $p = self;
                match $crate::typed::slice_from_iter($plain, src.len(), src.iter().cloned(), $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, core::alloc::Layout::array::<T>(src.len()).ok()),
                }
            }

            /// Fallible [`alloc_slice_clone`](Self::alloc_slice_clone).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_slice_clone(&[vec![1]]).unwrap()[0], [1]);\n", $end, "\n```")]
            pub fn try_alloc_slice_clone<T: Clone + $($bound)+>(
                &self,
                src: &[T],
            ) -> Result<&mut [T], $crate::AllocError> {
                let $t = self;
                $crate::typed::slice_from_iter($try?, src.len(), src.iter().cloned(), $crate::typed::Mode::Try)
            }

            /// Moves the items of an exact-size iterator into a slice in the
            /// arena.
            ///
            /// # Panics
            /// Also if the iterator yields fewer items than its `len()`.
            ///
            #[doc = concat!("```\n", $setup, "\nlet squares = arena.alloc_slice_fill_iter((0..5u32).map(|i| i * i));\nassert_eq!(squares, &[0, 1, 4, 9, 16]);\n", $end, "\n```")]
            #[track_caller]
            pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> &mut [T]
            where
                T: $($bound)+,
                I: IntoIterator<Item = T>,
                I::IntoIter: ExactSizeIterator,
            {
                let iter = iter.into_iter();
                let len = iter.len();
                let $p = self;
                match $crate::typed::slice_from_iter($plain, len, iter, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, core::alloc::Layout::array::<T>(len).ok()),
                }
            }

            /// Fallible [`alloc_slice_fill_iter`](Self::alloc_slice_fill_iter).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_slice_fill_iter(0..3u8).unwrap(), &[0, 1, 2]);\n", $end, "\n```")]
            pub fn try_alloc_slice_fill_iter<T, I>(&self, iter: I) -> Result<&mut [T], $crate::AllocError>
            where
                T: $($bound)+,
                I: IntoIterator<Item = T>,
                I::IntoIter: ExactSizeIterator,
            {
                let iter = iter.into_iter();
                let len = iter.len();
                let $t = self;
                $crate::typed::slice_from_iter($try?, len, iter, $crate::typed::Mode::Try)
            }

            /// A slice of `len` elements, element `i` being `f(i)`.
            ///
            #[doc = concat!("```\n", $setup, "\nlet evens = arena.alloc_slice_fill_with(4, |i| 2 * i);\nassert_eq!(evens, &[0, 2, 4, 6]);\n", $end, "\n```")]
            #[track_caller]
            pub fn alloc_slice_fill_with<T: $($bound)+, F: FnMut(usize) -> T>(&self, len: usize, f: F) -> &mut [T] {
                self.alloc_slice_fill_iter((0..len).map(f))
            }

            /// Fallible [`alloc_slice_fill_with`](Self::alloc_slice_fill_with).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_slice_fill_with(2, |i| i as u8).unwrap(), &[0, 1]);\n", $end, "\n```")]
            pub fn try_alloc_slice_fill_with<T: $($bound)+, F: FnMut(usize) -> T>(
                &self,
                len: usize,
                f: F,
            ) -> Result<&mut [T], $crate::AllocError> {
                self.try_alloc_slice_fill_iter((0..len).map(f))
            }

            /// A slice of `len` copies of `value`.
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.alloc_slice_fill_copy(3, 7u8), &[7, 7, 7]);\n", $end, "\n```")]
            #[track_caller]
            pub fn alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> &mut [T] {
                let $p = self;
                // SAFETY: `T: Copy` has no drop glue: nothing to register.
                match $crate::typed::slice_from_iter_no_drop($plain, len, (0..len).map(|_| value), $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, core::alloc::Layout::array::<T>(len).ok()),
                }
            }

            /// Fallible [`alloc_slice_fill_copy`](Self::alloc_slice_fill_copy).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_slice_fill_copy(2, 'x').unwrap(), &['x', 'x']);\n", $end, "\n```")]
            pub fn try_alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> Result<&mut [T], $crate::AllocError> {
                let $t = self;
                $crate::typed::slice_from_iter_no_drop($try?, len, (0..len).map(|_| value), $crate::typed::Mode::Try)
            }

            /// A slice of `len` clones of `value`.
            ///
            #[doc = concat!("```\n", $setup, "\nlet words = arena.alloc_slice_fill_clone(2, &String::from(\"hi\"));\nassert_eq!(words, &[\"hi\", \"hi\"]);\n", $end, "\n```")]
            #[track_caller]
            pub fn alloc_slice_fill_clone<T: Clone + $($bound)+>(&self, len: usize, value: &T) -> &mut [T] {
                self.alloc_slice_fill_iter((0..len).map(|_| value.clone()))
            }

            /// Fallible [`alloc_slice_fill_clone`](Self::alloc_slice_fill_clone).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_slice_fill_clone(1, &vec![3]).unwrap()[0], [3]);\n", $end, "\n```")]
            pub fn try_alloc_slice_fill_clone<T: Clone + $($bound)+>(
                &self,
                len: usize,
                value: &T,
            ) -> Result<&mut [T], $crate::AllocError> {
                self.try_alloc_slice_fill_iter((0..len).map(|_| value.clone()))
            }

            /// A slice of `len` default values.
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.alloc_slice_fill_default::<u16>(3), &[0, 0, 0]);\n", $end, "\n```")]
            #[track_caller]
            pub fn alloc_slice_fill_default<T: Default + $($bound)+>(&self, len: usize) -> &mut [T] {
                self.alloc_slice_fill_iter((0..len).map(|_| T::default()))
            }

            /// Fallible [`alloc_slice_fill_default`](Self::alloc_slice_fill_default).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_slice_fill_default::<String>(1).unwrap()[0], \"\");\n", $end, "\n```")]
            pub fn try_alloc_slice_fill_default<T: Default + $($bound)+>(
                &self,
                len: usize,
            ) -> Result<&mut [T], $crate::AllocError> {
                self.try_alloc_slice_fill_iter((0..len).map(|_| T::default()))
            }

            /// A mutable string buffer of `len` bytes, zero-filled (so it is
            /// valid UTF-8: `len` NUL characters), for writing in place.
            ///
            #[doc = concat!("```\n", $setup, "\nlet buf = arena.alloc_str_uninit(5);\n// SAFETY: ASCII bytes keep the buffer valid UTF-8.\nunsafe { buf.as_bytes_mut().copy_from_slice(b\"hello\") };\nassert_eq!(buf, \"hello\");\n", $end, "\n```")]
            #[track_caller]
            pub fn alloc_str_uninit(&self, len: usize) -> &mut str {
                let $p = self;
                match $crate::typed::str_zeroed($plain, len, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, core::alloc::Layout::array::<u8>(len).ok()),
                }
            }

            /// Fallible [`alloc_str_uninit`](Self::alloc_str_uninit).
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(arena.try_alloc_str_uninit(2).unwrap(), \"\\0\\0\");\n", $end, "\n```")]
            pub fn try_alloc_str_uninit(&self, len: usize) -> Result<&mut str, $crate::AllocError> {
                let $t = self;
                $crate::typed::str_zeroed($try?, len, $crate::typed::Mode::Try)
            }

            /// Raw memory for `layout`: non-null, aligned, uninitialized,
            /// valid until the arena frees it. A zero-sized layout gets a
            /// dangling, aligned pointer.
            ///
            #[doc = concat!("```\n", $setup, "\nuse std::alloc::Layout;\nlet p = arena.alloc_layout(Layout::from_size_align(64, 4096).unwrap());\nassert_eq!(p.as_ptr() as usize % 4096, 0);\n", $end, "\n```")]
            #[inline]
            #[track_caller]
            pub fn alloc_layout(&self, layout: core::alloc::Layout) -> core::ptr::NonNull<u8> {
                let $p = self;
                match $crate::typed::layout($plain, layout, $crate::typed::Mode::Plain) {
                    Ok(r) => r,
                    Err(e) => $crate::typed::fail(e, Some(layout)),
                }
            }

            /// Fallible [`alloc_layout`](Self::alloc_layout).
            ///
            #[doc = concat!("```\n", $setup, "\nassert!(arena.try_alloc_layout(std::alloc::Layout::new::<u64>()).is_ok());\n", $end, "\n```")]
            #[inline]
            pub fn try_alloc_layout(
                &self,
                layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<u8>, $crate::AllocError> {
                let $t = self;
                $crate::typed::layout($try?, layout, $crate::typed::Mode::Try)
            }
        }
    };
}
