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
// SAFETY: blocks come from `try_alloc_layout`, which returns memory that no
// one else is handed until it is deallocated here (only then is the cursor
// moved back over it, and that move is recorded so no older checkpoint can
// be mistaken for valid) or the arena is rewound or reset. Reset needs `&mut
// Arena`, so it cannot happen while any `&Arena` (this allocator) exists;
// rewinding is `unsafe` and its caller promises the blocks are dead.
unsafe impl Allocator for &Arena {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let ptr = typed::try_alloc_layout(*self, layout)?;
        Ok(NonNull::slice_from_raw_parts(ptr, layout.size()))
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            self.resize_last(ptr, layout.size(), 0);
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() >= old_layout.size());
        if old_layout.size() != 0
            && ptr.as_ptr().addr() % new_layout.align() == 0
            && self.resize_last(ptr, old_layout.size(), new_layout.size())
        {
            return Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()));
        }
        let new = self.allocate(new_layout)?;
        // SAFETY: the caller guarantees `ptr` is valid for `old_layout.size()`
        // bytes; `new` is a fresh, disjoint block at least that large.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr().cast::<u8>(), old_layout.size());
            self.deallocate(ptr, old_layout);
        }
        Ok(new)
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        let new = unsafe { self.grow(ptr, old_layout, new_layout)? };
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

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() <= old_layout.size());
        if ptr.as_ptr().addr() % new_layout.align() != 0 {
            let new = self.allocate(new_layout)?;
            // SAFETY: `ptr` is valid for `old_layout.size() >= new size` bytes;
            // `new` is a fresh, disjoint block.
            unsafe {
                ptr::copy_nonoverlapping(
                    ptr.as_ptr(),
                    new.as_ptr().cast::<u8>(),
                    new_layout.size(),
                );
                self.deallocate(ptr, old_layout);
            }
            return Ok(new);
        }
        if old_layout.size() != 0 {
            self.resize_last(ptr, old_layout.size(), new_layout.size());
        }
        Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()))
    }
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
// block). Sub-arenas live until the `SyncArena` is dropped, and `reset`
// needs `&mut SyncArena`, so no `&SyncArena` allocator exists then.
unsafe impl Allocator for &crate::SyncArena {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.local().allocate(layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.local().deallocate(ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.local().grow(ptr, old_layout, new_layout) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.local().grow_zeroed(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.local().shrink(ptr, old_layout, new_layout) }
    }
}
