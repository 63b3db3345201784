//! Destructors of arena values whose type needs drop.
//!
//! Each such value is allocated with a small header in front of it, and the
//! headers form an intrusive singly linked list, newest first. Freeing a
//! region (rewind, scope exit, reset, drop) pops and runs every header
//! linked after the point it returns to, so destructors run newest first.
//! Types without drop glue never get a header: [`core::mem::needs_drop`] is
//! a compile-time constant, so they pay nothing.
//!
//! Why only `T: 'static`: a destructor runs when the *arena* frees the
//! value, which the borrow checker cannot relate to the lifetimes inside
//! `T`. A destructor that reads a borrowed `&'a U` could then read freed
//! memory (the reason `arena::Arena` was removed from Rust before 1.0; see
//! rust-lang/rfcs#737). Values that borrow use the `*_no_drop` methods,
//! whose destructor never runs.

use core::cell::Cell;
use core::ptr::{self, NonNull};

/// The header in front of a value that needs drop.
#[repr(C)]
pub(crate) struct DropHeader {
    next: *mut DropHeader,
    /// Drops the value(s) behind this header.
    drop_fn: unsafe fn(NonNull<DropHeader>),
    /// Number of initialized elements (1 for a single value).
    len: usize,
}

/// A header followed by its value(s): `T` for a single value, `[T; n]` for
/// a slice (the slice form is laid out by hand, see [`slice_layout`]).
#[repr(C)]
pub(crate) struct DropNode<T> {
    header: DropHeader,
    value: T,
}

impl<T> DropNode<T> {
    /// Where the value goes in the node at `node`.
    ///
    /// # Safety
    /// `node` points into (or one past) an allocation big enough for a
    /// `DropNode<T>`.
    #[inline(always)]
    pub(crate) unsafe fn value_ptr(node: NonNull<DropNode<T>>) -> *mut T {
        // SAFETY: per the contract the field is inside the allocation.
        unsafe { ptr::addr_of_mut!((*node.as_ptr()).value) }
    }
}

/// Layout of a header followed by `len` elements of `T`, and the offset of
/// the first element.
pub(crate) fn slice_layout<T>(len: usize) -> Option<(core::alloc::Layout, usize)> {
    let header = core::alloc::Layout::new::<DropHeader>();
    let items = core::alloc::Layout::array::<T>(len).ok()?;
    let (layout, offset) = header.extend(items).ok()?;
    Some((layout.pad_to_align(), offset))
}

/// Drops the `len` initialized elements behind `header`.
///
/// # Safety
/// `header` must have been initialized by [`DropList::push_slice`] for
/// element type `T`, with `len` elements initialized, and not dropped yet.
unsafe fn drop_slice<T>(header: NonNull<DropHeader>) {
    let (_, offset) = slice_layout::<T>(0).expect("layout of an empty slice");
    // SAFETY: per the contract the header is live and followed, at `offset`,
    // by `len` initialized `T`s inside the same allocation.
    unsafe {
        let len = (*header.as_ptr()).len;
        let first = header.as_ptr().cast::<u8>().add(offset).cast::<T>();
        ptr::drop_in_place(ptr::slice_from_raw_parts_mut(first, len));
    }
}

/// The list head. `Cell`-based: every method takes `&self` and none holds a
/// borrow while user code (a destructor) runs.
#[derive(Debug)]
pub(crate) struct DropList {
    head: Cell<*mut DropHeader>,
}

/// A position in a [`DropList`], as saved by a checkpoint.
pub(crate) type DropMark = *mut DropHeader;

impl DropList {
    pub(crate) const fn new() -> Self {
        DropList {
            head: Cell::new(ptr::null_mut()),
        }
    }

    /// Values (or slices) whose destructor has not run yet.
    #[cfg(feature = "debug")]
    pub(crate) fn count(&self) -> usize {
        let mut n = 0;
        let mut header = self.head.get();
        while !header.is_null() {
            n += 1;
            // SAFETY: every header linked into the list is live until it is
            // popped, and `next` links only such headers.
            header = unsafe { (*header).next };
        }
        n
    }

    #[inline]
    pub(crate) fn mark(&self) -> DropMark {
        self.head.get()
    }

    /// Writes the header of the node at `node`, whose value is already in
    /// place, and links it; returns the value.
    ///
    /// # Safety
    /// `node` must be valid for writes of `DropNode<T>`, suitably aligned,
    /// hold an initialized value (written through [`DropNode::value_ptr`]),
    /// and stay allocated (and untouched by anyone else) until this list
    /// runs it in [`DropList::run_until`].
    #[inline]
    pub(crate) unsafe fn link<T>(&self, node: NonNull<DropNode<T>>) -> NonNull<T> {
        let node = node.as_ptr();
        // SAFETY: per the contract `node` is valid for writes and aligned,
        // and its value is initialized.
        unsafe {
            ptr::addr_of_mut!((*node).header).write(DropHeader {
                next: self.head.get(),
                drop_fn: drop_slice::<T>,
                len: 1,
            });
            self.head.set(ptr::addr_of_mut!((*node).header));
            NonNull::new_unchecked(ptr::addr_of_mut!((*node).value))
        }
    }

    /// Links a header for a slice of `T` at `node` with no element
    /// initialized yet; the caller then initializes elements one by one and
    /// calls [`SliceFill::push`] after each, so a panic in between drops
    /// exactly the initialized prefix when the memory is freed.
    ///
    /// # Safety
    /// `node` must be valid for writes of the layout given by
    /// [`slice_layout::<T>`] for the final length, suitably aligned, and stay
    /// allocated until this list runs it.
    pub(crate) unsafe fn push_slice<T>(&self, node: NonNull<u8>) -> SliceFill<T> {
        let header = node.cast::<DropHeader>();
        let (_, offset) = slice_layout::<T>(0).expect("layout of an empty slice");
        // SAFETY: per the contract the header is writable and aligned, and the
        // elements start at `offset` inside the same allocation.
        unsafe {
            header.as_ptr().write(DropHeader {
                next: self.head.get(),
                drop_fn: drop_slice::<T>,
                len: 0,
            });
            self.head.set(header.as_ptr());
            SliceFill {
                header,
                first: node.add(offset).cast::<T>(),
            }
        }
    }

    /// Runs and unlinks every destructor linked after `mark`, newest first.
    ///
    /// Each header is unlinked before its destructor runs, so a destructor
    /// that panics leaves a consistent list (the rest run when the memory is
    /// freed later, or leak, never twice), and one that allocates in the
    /// same arena links after the current head and is run by this same loop.
    ///
    /// # Safety
    /// `mark` must be null or a header still linked in this list, and every
    /// value linked after it must be about to be freed (nobody may use it
    /// afterwards).
    #[inline]
    pub(crate) unsafe fn run_until(&self, mark: DropMark) {
        // Most resets and rewinds have nothing to drop: no call for them.
        if self.head.get() != mark {
            // SAFETY: the caller's promise, passed on.
            unsafe { self.run_until_slow(mark) }
        }
    }

    /// [`run_until`](Self::run_until)'s loop, out of line.
    ///
    /// # Safety
    /// As for `run_until`.
    #[inline(never)]
    unsafe fn run_until_slow(&self, mark: DropMark) {
        loop {
            let head = self.head.get();
            if head == mark {
                break;
            }
            let header = NonNull::new(head).expect("drop list mark not in this list");
            // SAFETY: `head` is a linked, initialized header (the list only
            // links initialized headers), and `mark` is further down the list.
            unsafe {
                self.head.set((*head).next);
                ((*head).drop_fn)(header);
            }
        }
    }
}

/// In-progress initialization of a slice whose header is already linked.
pub(crate) struct SliceFill<T> {
    header: NonNull<DropHeader>,
    first: NonNull<T>,
}

impl<T> SliceFill<T> {
    /// Pointer to element `i`.
    #[inline]
    pub(crate) fn first(&self) -> NonNull<T> {
        self.first
    }

    /// Writes element number `len` (the current length) and counts it.
    ///
    /// # Safety
    /// The allocation must have room for one more element.
    #[inline]
    pub(crate) unsafe fn push(&mut self, value: T) {
        // SAFETY: the header is live (linked by `push_slice`) and, per the
        // contract, element `len` is in bounds.
        unsafe {
            let len = &mut (*self.header.as_ptr()).len;
            self.first.as_ptr().add(*len).write(value);
            *len += 1;
        }
    }

    /// Number of initialized elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        // SAFETY: the header is live.
        unsafe { (*self.header.as_ptr()).len }
    }
}
