//! [`ArenaBox`]: a value in an arena that owns it and runs its destructor.
//!
//! # Why a box
//! An arena runs the destructors it registered when it frees their memory,
//! which the borrow checker cannot relate to the lifetimes inside a value:
//! that is why `alloc` asks for `T: 'static`, and why a value that borrows
//! (a tree node pointing at other nodes) goes through `alloc_no_drop`,
//! whose destructor never runs. A value that borrows *and* owns heap data
//! (`struct Node<'a> { name: String, children: Vec<&'a Node<'a>> }`) would
//! leak its `String` there. An `ArenaBox<'a, T>` is the third way: the
//! value lives in the arena, the box borrows the arena for `'a` and owns
//! the value, and dropping the box runs the destructor. The borrow checker
//! orders that drop before the arena can be reset or dropped, and before
//! anything the value borrows goes away, so there is no bound on `T`.

#[allow(unused_imports)]
use crate::prelude::*;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use allocator_api2::alloc::Allocator;

/// A value in an arena, owned by this box: dropping the box runs the
/// value's destructor (the memory itself is the arena's, reclaimed with
/// it). Made by `alloc_box` on any arena type or by [`ArenaBox::new_in`].
///
/// ```
/// use arena_b::{Arena, ArenaBox};
///
/// struct Node<'a> {
///     name: String,                  // owns heap data: must be dropped
///     children: Vec<&'a Node<'a>>,   // borrows other nodes in the arena
/// }
///
/// let arena = Arena::new();
/// let leaf: ArenaBox<'_, Node<'_>> = arena.alloc_box(Node { name: "leaf".into(), children: vec![] });
/// let root = arena.alloc_box(Node { name: "root".into(), children: vec![&*leaf] });
/// assert_eq!(root.children[0].name, "leaf");
/// drop(root); // runs `Node`'s destructor: the `String` and the `Vec` are freed
/// ```
///
/// A box cannot outlive its arena:
///
/// ```compile_fail
/// let escaped = {
///     let arena = arena_b::Arena::new();
///     arena.alloc_box(String::from("gone"))
/// };
/// ```
pub struct ArenaBox<'a, T> {
    value: NonNull<T>,
    /// Borrows the arena for `'a` and owns a `T` (for the drop check, and
    /// covariant in both, like `Box<T>`).
    _owns: PhantomData<(&'a (), T)>,
}

// SAFETY: the box is the only handle on its value (like `Box<T>`); the
// memory is the arena's, which nothing else hands out while `'a` lasts.
unsafe impl<T: Send> Send for ArenaBox<'_, T> {}
// SAFETY: as for `Send`; `&ArenaBox` only gives `&T`.
unsafe impl<T: Sync> Sync for ArenaBox<'_, T> {}

/// An allocator whose memory stays valid for `'a` without being given
/// back, whatever happens to the allocator value: `&'a Arena`,
/// `&'a Scope<'_>`, `&'a SyncArena` (and `arena-tower`'s `&'a RequestArena`).
/// What [`ArenaBox::new_in`] and
/// [`String::into_str`](crate::collections::String::into_str) need.
///
/// # Safety
/// Every block the allocator hands out stays valid, and is handed to nobody
/// else, for all of `'a`, even if it is never deallocated.
pub unsafe trait ArenaAllocator<'a>: Allocator + Copy {}

// SAFETY: an arena's memory lives until it is reset (`&mut`, so not during
// `'a`), rewound (`unsafe`, whose caller promises the blocks are dead) or
// dropped (not during `'a`).
unsafe impl<'a> ArenaAllocator<'a> for &'a crate::Arena {}
// SAFETY: a scope's memory lives until the scope ends, which cannot happen
// while it is borrowed for `'a`.
unsafe impl<'a> ArenaAllocator<'a> for &'a crate::Scope<'_> {}
// SAFETY: as for `&Arena`: every part lives until the `SyncArena` is reset,
// shrunk or dropped, all of which need it exclusively.
#[cfg(feature = "std")]
unsafe impl<'a> ArenaAllocator<'a> for &'a crate::SyncArena {}

impl<'a, T> ArenaBox<'a, T> {
    /// Moves `value` into `alloc`'s memory.
    ///
    /// # Panics
    /// If the memory cannot be had (the arena's limit or the system); under
    /// `LimitPolicy::Unwind` a limit refusal unwinds. The arenas'
    /// `try_alloc_box` returns the error instead.
    ///
    /// ```
    /// use arena_b::{ArenaBox, SyncArena};
    /// let arena = SyncArena::new();
    /// let b = ArenaBox::new_in(vec![1, 2, 3], &arena);
    /// assert_eq!(b.len(), 3);
    /// ```
    #[track_caller]
    pub fn new_in<A: ArenaAllocator<'a>>(value: T, alloc: A) -> ArenaBox<'a, T> {
        let layout = core::alloc::Layout::new::<T>();
        let ptr = match alloc.allocate(layout) {
            Ok(block) => block.cast::<T>(),
            Err(_) => panic!(
                "arena-b: ArenaBox::new_in could not allocate {} bytes (the arena's limit or \
                 the system); the arena's try_alloc_box returns the error instead",
                layout.size()
            ),
        };
        // SAFETY: `ptr` is a fresh block for a `T` that `A` keeps valid and
        // unshared for `'a` (the `ArenaAllocator` contract).
        unsafe {
            ptr.as_ptr().write(value);
            ArenaBox::from_raw(ptr)
        }
    }

    /// Takes ownership of the value at `value`.
    ///
    /// # Safety
    /// `value` is an initialized `T` in memory valid for `'a` that nothing
    /// else refers to or will drop.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(value: NonNull<T>) -> ArenaBox<'a, T> {
        ArenaBox {
            value,
            _owns: PhantomData,
        }
    }

    /// Moves the value out of the arena (its memory stays the arena's).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let b = arena.alloc_box(String::from("out"));
    /// let s: String = arena_b::ArenaBox::into_inner(b);
    /// assert_eq!(s, "out");
    /// ```
    pub fn into_inner(this: ArenaBox<'a, T>) -> T {
        let this = core::mem::ManuallyDrop::new(this);
        // SAFETY: the value is initialized and ours; the box is forgotten,
        // so it is read once and never dropped.
        unsafe { this.value.as_ptr().read() }
    }

    /// Gives up the box without running the destructor: the value stays in
    /// the arena, like one from `alloc_no_drop`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let b = arena.alloc_box(7u32);
    /// let r: &mut u32 = arena_b::ArenaBox::leak(b);
    /// *r += 1;
    /// assert_eq!(*r, 8);
    /// ```
    pub fn leak(this: ArenaBox<'a, T>) -> &'a mut T {
        let this = core::mem::ManuallyDrop::new(this);
        // SAFETY: the memory is valid for `'a` and nothing else refers to
        // it; the box is forgotten, so this is the only handle left.
        unsafe { &mut *this.value.as_ptr() }
    }
}

impl<T> Deref for ArenaBox<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the box owns an initialized value valid while it lives.
        unsafe { self.value.as_ref() }
    }
}

impl<T> DerefMut for ArenaBox<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` is unique.
        unsafe { self.value.as_mut() }
    }
}

impl<T> Drop for ArenaBox<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the value is initialized and owned by this box alone;
        // it is dropped once, here (`into_inner` and `leak` forget the box).
        unsafe { core::ptr::drop_in_place(self.value.as_ptr()) }
    }
}

impl<T: fmt::Debug> fmt::Debug for ArenaBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for ArenaBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: PartialEq> PartialEq for ArenaBox<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
