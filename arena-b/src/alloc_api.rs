//! The [`allocator_api2::alloc::Allocator`] implementations, so that
//! `allocator_api2::vec::Vec::new_in(&arena)`, `hashbrown` maps and the like
//! live in an arena: `&Arena`, `&Scope`, `&SyncArena` and (feature `slab`)
//! `&ThreadSlab`.
//!
//! The operations are written once, over [`Blocks`]: something that hands
//! out blocks and can resize its *last* block in place. Deallocation and
//! shrinking give the bytes back when the block is the last one handed out;
//! growing the last block extends it in place. Anything else is left for
//! the next rewind, scope exit or reset, as a bump allocator does (or, with
//! feature `slab`, goes to a free list of its size class).
//! [`forward_allocator!`] writes the trait's five methods for each type.

#[allow(unused_imports)]
use crate::prelude::*;
use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::AllocError;

use crate::arena::Arena;
use crate::scope::Scope;
use crate::typed;

/// What the `Allocator` operations need of their owner.
pub(crate) trait Blocks {
    /// A fresh block for `layout`.
    fn alloc_block(&self, layout: Layout) -> Result<NonNull<u8>, crate::AllocError>;
    /// Resizes `[ptr, ptr + old_size)` in place if it is the last block
    /// handed out and the new size fits; whether it did.
    fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool;
    /// `[ptr, ptr + size)`, a block (or a block's tail) that is not the
    /// last, is free: keep it for reuse if there is a free list.
    ///
    /// # Safety
    /// The range was handed out by this owner and is no longer used.
    #[inline(always)]
    unsafe fn free_middle(&self, ptr: NonNull<u8>, size: usize) {
        let _ = (ptr, size);
    }
}

impl<B: Blocks> Blocks for &B {
    #[inline(always)]
    fn alloc_block(&self, layout: Layout) -> Result<NonNull<u8>, crate::AllocError> {
        (**self).alloc_block(layout)
    }

    #[inline(always)]
    fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        (**self).resize_last(ptr, old_size, new_size)
    }

    #[inline(always)]
    unsafe fn free_middle(&self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).free_middle(ptr, size) }
    }
}

/// An arena, or one thread's part of a `SyncArena`, with the free lists
/// that serve it (feature `slab`), if any. A list only ever holds blocks of
/// `arena` (the contract of `FreeLists::give`): `&SyncArena` passes no
/// lists, since a block it frees may belong to another thread's part.
pub(crate) struct ArenaBlocks<'a> {
    pub(crate) arena: &'a Arena,
    #[cfg(feature = "slab")]
    pub(crate) slab: Option<&'a crate::slab::FreeLists>,
}

impl<'a> ArenaBlocks<'a> {
    /// `arena` with its own free lists (feature `slab`).
    #[inline(always)]
    pub(crate) fn own(arena: &'a Arena) -> Self {
        ArenaBlocks {
            arena,
            #[cfg(feature = "slab")]
            slab: Some(arena.slab()),
        }
    }

    /// `arena` without free lists.
    #[cfg(feature = "std")]
    #[inline(always)]
    pub(crate) fn plain(arena: &'a Arena) -> Self {
        ArenaBlocks {
            arena,
            #[cfg(feature = "slab")]
            slab: None,
        }
    }
}

impl Blocks for ArenaBlocks<'_> {
    #[inline(always)]
    fn alloc_block(&self, layout: Layout) -> Result<NonNull<u8>, crate::AllocError> {
        #[cfg(feature = "slab")]
        if let Some(lists) = self.slab {
            if let Some(block) = lists.take(self.arena, layout) {
                return Ok(block);
            }
        }
        typed::layout(self.arena, layout, typed::Mode::Allocator)
    }

    #[inline(always)]
    fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        self.arena.resize_last(ptr, old_size, new_size)
    }

    #[inline(always)]
    unsafe fn free_middle(&self, ptr: NonNull<u8>, size: usize) {
        #[cfg(feature = "slab")]
        if let Some(lists) = self.slab {
            // SAFETY: the caller gives the range up; it is `arena`'s, and
            // the lists only serve `arena`.
            unsafe { lists.give(self.arena, ptr, size) };
        }
        let _ = (ptr, size);
    }
}

/// A scope's blocks come from its own cursor; the last one resizes in
/// place (the arena's position does not move, so no checkpoint is
/// affected).
impl Blocks for Scope<'_> {
    #[inline(always)]
    fn alloc_block(&self, layout: Layout) -> Result<NonNull<u8>, crate::AllocError> {
        typed::layout(self, layout, typed::Mode::Allocator)
    }

    #[inline(always)]
    fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        self.resize_last(ptr, old_size, new_size)
    }
}

/// The `Allocator` interface's answer to a refusal. (Under
/// [`LimitPolicy::Unwind`](crate::LimitPolicy::Unwind) a limit refusal has
/// already unwound in the slow path, since collections would turn the error
/// into an abort; what reaches here is the error.)
#[cold]
#[inline(never)]
pub(crate) fn refuse(_err: crate::AllocError) -> AllocError {
    AllocError
}

#[inline(always)]
pub(crate) fn allocate<B: Blocks>(b: &B, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
    match b.alloc_block(layout) {
        Ok(ptr) => Ok(NonNull::slice_from_raw_parts(ptr, layout.size())),
        Err(err) => Err(refuse(err)),
    }
}

/// # Safety
/// `ptr` is a block of `b` allocated with `layout` and no longer used.
#[inline(always)]
pub(crate) unsafe fn deallocate<B: Blocks>(b: &B, ptr: NonNull<u8>, layout: Layout) {
    if layout.size() != 0 && !b.resize_last(ptr, layout.size(), 0) {
        // SAFETY: forwarded from the caller.
        unsafe { b.free_middle(ptr, layout.size()) };
    }
}

/// # Safety
/// As [`Allocator::grow`](allocator_api2::alloc::Allocator::grow), for a
/// block of `b`.
pub(crate) unsafe fn grow<B: Blocks>(
    b: &B,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    debug_assert!(new_layout.size() >= old_layout.size());
    if old_layout.size() != 0
        && ptr.as_ptr().addr().is_multiple_of(new_layout.align())
        && b.resize_last(ptr, old_layout.size(), new_layout.size())
    {
        return Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()));
    }
    let new = allocate(b, new_layout)?;
    // SAFETY: the caller guarantees `ptr` is valid for `old_layout.size()`
    // bytes; `new` is a fresh, disjoint block at least that large.
    unsafe {
        ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr().cast::<u8>(), old_layout.size());
        deallocate(b, ptr, old_layout);
    }
    Ok(new)
}

/// # Safety
/// As [`Allocator::grow_zeroed`](allocator_api2::alloc::Allocator::grow_zeroed),
/// for a block of `b`.
pub(crate) unsafe fn grow_zeroed<B: Blocks>(
    b: &B,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    // SAFETY: forwarded from the caller.
    let new = unsafe { grow(b, ptr, old_layout, new_layout)? };
    // SAFETY: `new` is valid for `new_layout.size()` bytes, of which the
    // first `old_layout.size()` were kept.
    unsafe {
        new.as_ptr()
            .cast::<u8>()
            .add(old_layout.size())
            .write_bytes(0, new_layout.size() - old_layout.size());
    }
    Ok(new)
}

/// # Safety
/// As [`Allocator::shrink`](allocator_api2::alloc::Allocator::shrink), for
/// a block of `b`.
pub(crate) unsafe fn shrink<B: Blocks>(
    b: &B,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    debug_assert!(new_layout.size() <= old_layout.size());
    if !ptr.as_ptr().addr().is_multiple_of(new_layout.align()) {
        let new = allocate(b, new_layout)?;
        // SAFETY: `ptr` is valid for `old_layout.size() >= new size` bytes;
        // `new` is a fresh, disjoint block.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr().cast::<u8>(), new_layout.size());
            deallocate(b, ptr, old_layout);
        }
        return Ok(new);
    }
    if old_layout.size() != 0 && !b.resize_last(ptr, old_layout.size(), new_layout.size()) {
        let tail = old_layout.size() - new_layout.size();
        // SAFETY: the caller keeps only the first `new_layout.size()` bytes;
        // the tail is `b`'s and free.
        unsafe { b.free_middle(ptr.add(new_layout.size()), tail) };
    }
    Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()))
}

/// Implements `allocator_api2::alloc::Allocator` for `&$ty` by forwarding
/// every method to the operations of this module over the [`Blocks`] that
/// `$blocks` makes of `$this` (an expression that may `?` an
/// `allocator_api2::alloc::AllocError`, except in `deallocate`, where a
/// failure to make the owner leaves the block alone). An optional
/// `free |this| expr` gives `deallocate` its own `Option` of the owner
/// (a cheaper look-up that may decline: the block then stays where it is).
///
/// The second form, `impl [..] for Type, to |this| expr`, forwards to the
/// allocator `expr` (a handle type, such as `arena-tower`'s `RequestArena`,
/// to the arena it holds).
///
/// One definition, so that the five methods of every allocator type cannot
/// drift apart. Exported (hidden) for `arena-tower`.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_allocator {
    ($(#[$attr:meta])* impl [$($gen:tt)*] for $ty:ty, to |$this:ident| $target:expr) => {
        $(#[$attr])*
        // SAFETY: every call goes to the `Allocator` implementation of
        // `$target`, whose blocks the invocation says stay valid while the
        // handle does.
        unsafe impl<$($gen)*> $crate::allocator_api2::alloc::Allocator for &$ty {
            #[inline(always)]
            fn allocate(
                &self,
                layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                $crate::allocator_api2::alloc::Allocator::allocate(&$target, layout)
            }

            #[inline(always)]
            unsafe fn deallocate(&self, ptr: core::ptr::NonNull<u8>, layout: core::alloc::Layout) {
                let $this: &$ty = self;
                // SAFETY: forwarded from the caller.
                unsafe { $crate::allocator_api2::alloc::Allocator::deallocate(&$target, ptr, layout) }
            }

            unsafe fn grow(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old_layout: core::alloc::Layout,
                new_layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                // SAFETY: forwarded from the caller.
                unsafe { $crate::allocator_api2::alloc::Allocator::grow(&$target, ptr, old_layout, new_layout) }
            }

            unsafe fn grow_zeroed(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old_layout: core::alloc::Layout,
                new_layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                // SAFETY: forwarded from the caller.
                unsafe {
                    $crate::allocator_api2::alloc::Allocator::grow_zeroed(&$target, ptr, old_layout, new_layout)
                }
            }

            unsafe fn shrink(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old_layout: core::alloc::Layout,
                new_layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, $crate::allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                // SAFETY: forwarded from the caller.
                unsafe { $crate::allocator_api2::alloc::Allocator::shrink(&$target, ptr, old_layout, new_layout) }
            }
        }
    };
    ($(#[$attr:meta])* impl [$($gen:tt)*] for $ty:ty, |$this:ident| $blocks:expr) => {
        $crate::__forward_allocator! {
            $(#[$attr])*
            impl [$($gen)*] for $ty, |$this| $blocks,
            free |$this| {
                let blocks = || -> Result<_, allocator_api2::alloc::AllocError> { Ok($blocks) };
                blocks().ok()
            }
        }
    };
    ($(#[$attr:meta])* impl [$($gen:tt)*] for $ty:ty, |$this:ident| $blocks:expr,
        free |$fthis:ident| $free:expr) => {
        $(#[$attr])*
        // SAFETY: each invocation says why its `$blocks` hands out blocks
        // that stay valid and unshared while the allocator lives; the
        // operations of this module keep the rest of the contract for any
        // `Blocks` that does.
        unsafe impl<$($gen)*> allocator_api2::alloc::Allocator for &$ty {
            #[inline(always)]
            fn allocate(
                &self,
                layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                $crate::alloc_api::allocate(&$blocks, layout)
            }

            #[inline(always)]
            unsafe fn deallocate(&self, ptr: core::ptr::NonNull<u8>, layout: core::alloc::Layout) {
                let $fthis: &$ty = self;
                if let Some(blocks) = $free {
                    // SAFETY: forwarded from the caller.
                    unsafe { $crate::alloc_api::deallocate(&blocks, ptr, layout) }
                }
            }

            unsafe fn grow(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old_layout: core::alloc::Layout,
                new_layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                // SAFETY: forwarded from the caller.
                unsafe { $crate::alloc_api::grow(&$blocks, ptr, old_layout, new_layout) }
            }

            unsafe fn grow_zeroed(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old_layout: core::alloc::Layout,
                new_layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                // SAFETY: forwarded from the caller.
                unsafe { $crate::alloc_api::grow_zeroed(&$blocks, ptr, old_layout, new_layout) }
            }

            unsafe fn shrink(
                &self,
                ptr: core::ptr::NonNull<u8>,
                old_layout: core::alloc::Layout,
                new_layout: core::alloc::Layout,
            ) -> Result<core::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
                let $this: &$ty = self;
                // SAFETY: forwarded from the caller.
                unsafe { $crate::alloc_api::shrink(&$blocks, ptr, old_layout, new_layout) }
            }
        }
    };
}

crate::__forward_allocator! {
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let arena = arena_b::Arena::new();
    /// let mut v = Vec::new_in(&arena);
    /// v.extend(0..1000u32);
    /// assert_eq!(v.iter().sum::<u32>(), 499_500);
    /// ```
    // SAFETY: blocks come from `try_alloc_layout` (or, with feature `slab`,
    // from free lists of blocks given back here, dropped at every rewind),
    // which returns memory that no one else is handed until it is
    // deallocated here (only then is the cursor moved back over it, and that
    // move is recorded so no older checkpoint can be mistaken for valid) or
    // the arena is rewound or reset. Reset needs `&mut Arena`, so it cannot
    // happen while any `&Arena` (this allocator) exists; rewinding is
    // `unsafe` and its caller promises the blocks are dead.
    impl [] for Arena, |arena| ArenaBlocks::own(arena)
}

crate::__forward_allocator! {
    /// Temporaries in the scope itself: freed with the scope, and a
    /// collection that is the scope's last block grows, shrinks and is
    /// freed in place.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let arena = arena_b::Arena::new();
    /// let longest = arena.scope(|scope| {
    ///     let mut words = Vec::new_in(scope);
    ///     words.extend("a scope holds its own temporaries".split(' '));
    ///     words.iter().map(|w| w.len()).max()
    /// });
    /// assert_eq!(longest, Some(11));
    /// assert_eq!(arena.bytes_allocated(), 0, "all given back");
    /// ```
    // SAFETY: blocks come from the scope's cursor, whose window the scope
    // carved from the arena and holds until it ends; a collection using
    // `&Scope` borrows the scope, so it cannot outlive it. Blocks are given
    // back (the cursor moved back) only when they are the cursor's last,
    // which is the contract of `deallocate`/`shrink`.
    impl ['s] for Scope<'s>, |scope| scope
}

#[cfg(feature = "std")]
crate::__forward_allocator! {
    /// `&SyncArena` allocates from the calling thread's part of the arena;
    /// freeing or resizing a block in place only happens when it is that
    /// part's last block (a block from another thread is left for `reset`).
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let arena = arena_b::SyncArena::new();
    /// std::thread::scope(|s| {
    ///     for t in 0..2u32 {
    ///         let arena = &arena;
    ///         s.spawn(move || {
    ///             let mut v = Vec::new_in(arena);
    ///             v.extend(0..1000u32);
    ///             assert_eq!(v[999], 999);
    ///         });
    ///     }
    /// });
    /// ```
    // SAFETY: every call is forwarded to the calling thread's sub-arena,
    // which upholds the contract for its own blocks and leaves any other
    // block alone (it only ever resizes its cursor's last block, and a
    // block of another part is never before that part's chunk start).
    // Sub-arenas live until the `SyncArena` is dropped or shrunk, and that,
    // like `reset`, needs `&mut SyncArena`, so no `&SyncArena` allocator
    // exists then.
    //
    // A free looks up the calling thread's part without making one (a thread
    // without a part, or whose cache holds another arena, cannot be freeing
    // its part's last block, or leaves it for `reset`): small enough that a
    // collection's drop inlines it.
    impl [] for crate::SyncArena, |arena| ArenaBlocks::plain(arena.try_local().map_err(refuse)?),
    free |arena| arena.cached_local().map(ArenaBlocks::plain)
}

#[cfg(feature = "slab")]
crate::__forward_allocator! {
    /// Feature `slab`: `&ThreadSlab` allocates from the calling thread's
    /// part of its `SyncArena`, reusing the blocks it cached.
    // SAFETY: as for `&Arena`, on the thread's part the slab was made for;
    // the slab is neither `Send` nor `Sync`, so every block it caches comes
    // from that part, and its lists follow the part's slab generation.
    impl ['s] for crate::slab::ThreadSlab<'s>, |slab| ArenaBlocks {
        arena: slab.part(),
        slab: Some(slab.lists()),
    }
}
