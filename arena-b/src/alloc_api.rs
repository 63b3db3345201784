//! `&Arena` as an [`allocator_api2::alloc::Allocator`], so that
//! `allocator_api2::vec::Vec::new_in(&arena)`, `hashbrown` maps and the like
//! live in the arena.
//!
//! Deallocation and shrinking give the bytes back when the block is the last
//! one handed out; growing the last block extends it in place. Anything else
//! is left for the next rewind or reset, as a bump allocator does.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::{AllocError, Allocator};

use crate::arena::Arena;
use crate::typed;

/// ```
/// use allocator_api2::vec::Vec;
///
/// let arena = arena_b::Arena::new();
/// let mut v = Vec::new_in(&arena);
/// v.extend(0..1000u32);
/// assert_eq!(v.iter().sum::<u32>(), 499_500);
/// ```
// SAFETY: blocks come from `try_alloc_layout` (or, with feature `slab`, from
// free lists of blocks given back here, dropped at every rewind), which
// returns memory that no
// one else is handed until it is deallocated here (only then is the cursor
// moved back over it, and that move is recorded so no older checkpoint can
// be mistaken for valid) or the arena is rewound or reset. Reset needs `&mut
// Arena`, so it cannot happen while any `&Arena` (this allocator) exists;
// rewinding is `unsafe` and its caller promises the blocks are dead.
unsafe impl Allocator for &Arena {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        allocate(self, own_slab(self), layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller; the arena's own lists only
        // ever hold its own blocks.
        unsafe { deallocate(self, own_slab(self), ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { grow(self, own_slab(self), ptr, old_layout, new_layout) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { grow_zeroed(self, own_slab(self), ptr, old_layout, new_layout) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { shrink(self, own_slab(self), ptr, old_layout, new_layout) }
    }
}

/// Free lists of the size classes (feature `slab`), if any.
#[cfg(feature = "slab")]
type Slab<'a> = Option<&'a crate::slab::FreeLists>;
#[cfg(not(feature = "slab"))]
type Slab<'a> = Option<&'a core::convert::Infallible>;

#[inline(always)]
fn own_slab(arena: &Arena) -> Slab<'_> {
    #[cfg(feature = "slab")]
    return Some(arena.slab());
    #[cfg(not(feature = "slab"))]
    {
        let _ = arena;
        None
    }
}

// The operations, over an arena (or one thread's part of a `SyncArena`)
// and the free lists that serve it. A list only ever holds blocks of
// `arena` (the contract of `FreeLists::give`): `&SyncArena` passes no
// lists, since a block it frees may belong to another thread's part.

#[inline]
fn allocate(arena: &Arena, slab: Slab<'_>, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
    #[cfg(feature = "slab")]
    if let Some(lists) = slab {
        if let Some(block) = lists.take(arena, layout) {
            return Ok(NonNull::slice_from_raw_parts(block, layout.size()));
        }
    }
    let _ = slab;
    match typed::try_alloc_layout(arena, layout) {
        Ok(ptr) => Ok(NonNull::slice_from_raw_parts(ptr, layout.size())),
        Err(err) => Err(refuse(err)),
    }
}

/// The `Allocator` interface's answer to a refusal: under
/// [`LimitPolicy::Unwind`](crate::LimitPolicy::Unwind) a limit refusal
/// unwinds (collections would turn the error into an abort), else it is
/// the error.
#[cold]
#[inline(never)]
fn refuse(err: crate::AllocError) -> AllocError {
    crate::limit::unwind_if_set(&err, true);
    AllocError
}

/// # Safety
/// `ptr` is a block of `arena` allocated with `layout` and no longer used.
#[inline]
unsafe fn deallocate(arena: &Arena, slab: Slab<'_>, ptr: NonNull<u8>, layout: Layout) {
    if layout.size() != 0 && !arena.resize_last(ptr, layout.size(), 0) {
        #[cfg(feature = "slab")]
        if let Some(lists) = slab {
            // SAFETY: the caller gives the block up; it is `arena`'s.
            unsafe { lists.give(arena, ptr, layout.size()) };
        }
    }
    let _ = slab;
}

/// # Safety
/// As [`Allocator::grow`], for a block of `arena`.
unsafe fn grow(
    arena: &Arena,
    slab: Slab<'_>,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    debug_assert!(new_layout.size() >= old_layout.size());
    if old_layout.size() != 0
        && ptr.as_ptr().addr() % new_layout.align() == 0
        && arena.resize_last(ptr, old_layout.size(), new_layout.size())
    {
        return Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()));
    }
    let new = allocate(arena, slab, new_layout)?;
    // SAFETY: the caller guarantees `ptr` is valid for `old_layout.size()`
    // bytes; `new` is a fresh, disjoint block at least that large.
    unsafe {
        ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr().cast::<u8>(), old_layout.size());
        deallocate(arena, slab, ptr, old_layout);
    }
    Ok(new)
}

/// # Safety
/// As [`Allocator::grow_zeroed`], for a block of `arena`.
unsafe fn grow_zeroed(
    arena: &Arena,
    slab: Slab<'_>,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    // SAFETY: forwarded from the caller.
    let new = unsafe { grow(arena, slab, ptr, old_layout, new_layout)? };
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
/// As [`Allocator::shrink`], for a block of `arena`.
unsafe fn shrink(
    arena: &Arena,
    slab: Slab<'_>,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    debug_assert!(new_layout.size() <= old_layout.size());
    if ptr.as_ptr().addr() % new_layout.align() != 0 {
        let new = allocate(arena, slab, new_layout)?;
        // SAFETY: `ptr` is valid for `old_layout.size() >= new size` bytes;
        // `new` is a fresh, disjoint block.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr().cast::<u8>(), new_layout.size());
            deallocate(arena, slab, ptr, old_layout);
        }
        return Ok(new);
    }
    if old_layout.size() != 0 && !arena.resize_last(ptr, old_layout.size(), new_layout.size()) {
        #[cfg(feature = "slab")]
        if let Some(lists) = slab {
            let tail = old_layout.size() - new_layout.size();
            // SAFETY: the caller keeps only the first `new_layout.size()`
            // bytes; the tail is `arena`'s and free.
            unsafe { lists.give(arena, ptr.add(new_layout.size()), tail) };
        }
    }
    let _ = slab;
    Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()))
}

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
// SAFETY: every call is forwarded to `&Arena`'s implementation on the
// calling thread's sub-arena, which upholds the contract for its own blocks
// and leaves any other block alone (it only ever resizes its cursor's last
// block). Sub-arenas live until the `SyncArena` is dropped or shrunk, and
// that, like `reset`, needs `&mut SyncArena`, so no `&SyncArena` allocator
// exists then.
unsafe impl Allocator for &crate::SyncArena {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        allocate(self.local(), None, layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { deallocate(self.local(), None, ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { grow(self.local(), None, ptr, old_layout, new_layout) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { grow_zeroed(self.local(), None, ptr, old_layout, new_layout) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { shrink(self.local(), None, ptr, old_layout, new_layout) }
    }
}

/// Feature `slab`: `&ThreadSlab` allocates from the calling thread's part
/// of its `SyncArena`, reusing the blocks it cached.
// SAFETY: as for `&Arena`, on the thread's part the slab was made for; the
// slab is neither `Send` nor `Sync`, so every block it caches comes from
// that part, and its lists follow the part's slab generation.
#[cfg(feature = "slab")]
unsafe impl Allocator for &crate::slab::ThreadSlab<'_> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        allocate(self.part(), Some(self.lists()), layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { deallocate(self.part(), Some(self.lists()), ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { grow(self.part(), Some(self.lists()), ptr, old_layout, new_layout) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { grow_zeroed(self.part(), Some(self.lists()), ptr, old_layout, new_layout) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { shrink(self.part(), Some(self.lists()), ptr, old_layout, new_layout) }
    }
}
