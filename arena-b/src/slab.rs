//! Feature `slab`: size-class free lists for memory given back through the
//! `Allocator` interface.
//!
//! # Why
//! A bump allocator can only reuse the *last* block it handed out. A growing
//! `allocator_api2::vec::Vec` in an arena leaves a trail of dead buffers
//! (16, 32, 64, ... bytes) behind it, and a map that rehashes does the same.
//! With `slab`, a block freed (or shrunk) anywhere else goes onto a free list
//! of its size class, and the next allocation of that class takes it back:
//! many collections that grow and drop in a loop stop consuming the arena.
//!
//! # Why a generation
//! A rewind, scope exit or reset hands the memory above it out again, and a
//! free-list block up there would then be handed out twice. Every such move
//! advances the arena's slab generation; lists filled under an older
//! generation are dropped, never used. [`ThreadSlab`] (for a `SyncArena`)
//! checks the generation of the calling thread's part the same way.
//!
//! Blocks are linked through their first bytes (unaligned pointer reads and
//! writes, so any block of at least [`MIN_BLOCK`] bytes can be cached); a
//! cached block is only handed out for a layout whose size fits its class
//! and whose alignment its address meets.

#[allow(unused_imports)]
use crate::prelude::*;
use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::ptr::{self, NonNull};

use crate::arena::Arena;

/// Smallest block kept (a smaller one cannot hold the list link usefully).
pub const MIN_BLOCK: usize = 16;
/// Size classes: 16, 32, ..., 4096 bytes; bigger blocks go to the last.
const CLASSES: usize = 9;

/// Counters of a slab's reuse, from [`Arena::slab_stats`] or
/// [`ThreadSlab::stats`].
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let arena = arena_b::Arena::new();
/// let mut keep = Vec::new_in(&arena);
/// for round in 0..100u32 {
///     let mut tmp: Vec<u32, _> = Vec::with_capacity_in(16, &arena);
///     tmp.push(round);
///     keep.push(round); // keeps `tmp` from being the last block
/// }
/// assert!(arena.slab_stats().reused_blocks >= 98);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlabStats {
    /// Blocks handed out again from a free list.
    pub reused_blocks: u64,
    /// Their bytes (the sizes requested).
    pub reused_bytes: u64,
    /// Blocks put on a free list.
    pub cached_blocks: u64,
    /// Lists dropped because a rewind, scope exit or reset invalidated them.
    pub invalidations: u64,
}

/// The free lists of one slab.
pub(crate) struct FreeLists {
    heads: [Cell<*mut u8>; CLASSES],
    /// The owner arena's slab generation these lists belong to.
    generation: Cell<u64>,
    stats: Cell<SlabStats>,
}

impl fmt::Debug for FreeLists {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreeLists")
            .field("stats", &self.stats.get())
            .finish_non_exhaustive()
    }
}

impl Default for FreeLists {
    fn default() -> Self {
        FreeLists {
            heads: Default::default(),
            generation: Cell::new(0),
            stats: Cell::new(SlabStats::default()),
        }
    }
}

impl FreeLists {
    pub(crate) fn stats(&self) -> SlabStats {
        self.stats.get()
    }

    fn update(&self, f: impl FnOnce(&mut SlabStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Drops the lists if `arena` moved back since they were filled.
    #[inline]
    fn sync(&self, arena: &Arena) {
        let now = arena.slab_generation();
        if self.generation.get() != now {
            let had_blocks = self.heads.iter().any(|h| !h.get().is_null());
            for head in &self.heads {
                head.set(ptr::null_mut());
            }
            self.generation.set(now);
            if had_blocks {
                self.update(|s| s.invalidations += 1);
            }
        }
    }

    /// A cached block for `layout` from `arena`, if one fits.
    #[inline]
    pub(crate) fn take(&self, arena: &Arena, layout: Layout) -> Option<NonNull<u8>> {
        if layout.size() == 0 {
            return None; // zero-sized requests need no memory
        }
        let size = layout.size().max(MIN_BLOCK);
        if size > 1 << (CLASSES + 3) {
            return None;
        }
        // The smallest class whose blocks are all at least `size` bytes.
        let class = (size.next_power_of_two().trailing_zeros() - 4) as usize;
        self.sync(arena);
        let head = self.heads[class].get();
        if head.is_null() || !head.addr().is_multiple_of(layout.align()) {
            return None;
        }
        // SAFETY: `head` is a cached block of at least `MIN_BLOCK` bytes, in
        // this generation, whose first bytes hold the next link.
        let next = unsafe { head.cast::<*mut u8>().read_unaligned() };
        self.heads[class].set(next);
        self.update(|s| {
            s.reused_blocks += 1;
            s.reused_bytes += layout.size() as u64;
        });
        NonNull::new(head)
    }

    /// Caches the free block `[block, block + size)` of `arena`.
    ///
    /// # Safety
    /// The block is arena memory of `arena` (allocated through the
    /// allocator these lists serve, so from the same part of the arena)
    /// that nobody uses any more.
    pub(crate) unsafe fn give(&self, arena: &Arena, block: NonNull<u8>, size: usize) {
        if size < MIN_BLOCK {
            return;
        }
        self.sync(arena);
        // The largest class whose size the block covers.
        let class = ((usize::BITS - 1 - size.leading_zeros()) as usize - 4).min(CLASSES - 1);
        // SAFETY: the block is free and at least `MIN_BLOCK` bytes.
        unsafe {
            block
                .as_ptr()
                .cast::<*mut u8>()
                .write_unaligned(self.heads[class].get())
        };
        self.heads[class].set(block.as_ptr());
        self.update(|s| s.cached_blocks += 1);
    }
}

/// Feature `slab`: a per-thread allocator over a [`SyncArena`](crate::SyncArena)
/// with its own size-class free lists, so blocks freed by this thread's
/// collections are reused by this thread. It is neither `Send` nor `Sync`:
/// every block it caches belongs to the calling thread's part of the arena,
/// and a rewind of that part (a scope exit) advances a generation that drops
/// the cache before any block could be handed out twice.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let arena = arena_b::SyncArena::new();
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let slab = arena.thread_slab();
///         let mut keep = Vec::new_in(&slab);
///         for i in 0..100u64 {
///             let mut tmp: Vec<u64, _> = Vec::with_capacity_in(4, &slab);
///             tmp.push(i);
///             keep.push(i);
///         }
///         assert!(slab.stats().reused_blocks >= 98);
///     });
/// });
/// ```
pub struct ThreadSlab<'a> {
    part: &'a Arena,
    lists: FreeLists,
}

impl fmt::Debug for ThreadSlab<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadSlab")
            .field("stats", &self.lists.stats())
            .finish_non_exhaustive()
    }
}

impl<'a> ThreadSlab<'a> {
    pub(crate) fn new(part: &'a Arena) -> Self {
        ThreadSlab {
            part,
            lists: FreeLists::default(),
        }
    }

    /// Reuse counters of this slab.
    pub fn stats(&self) -> SlabStats {
        self.lists.stats()
    }

    pub(crate) fn part(&self) -> &'a Arena {
        self.part
    }

    pub(crate) fn lists(&self) -> &FreeLists {
        &self.lists
    }
}

// ----- `Arena`'s feature `slab` methods --------------------------------------

impl Arena {
    /// Feature `slab`: how often blocks given back through the `Allocator`
    /// interface were reused (see [`SlabStats`](crate::SlabStats)).
    #[cfg(feature = "slab")]
    pub fn slab_stats(&self) -> crate::slab::SlabStats {
        self.slab.stats()
    }

    #[cfg(feature = "slab")]
    pub(crate) fn slab(&self) -> &crate::slab::FreeLists {
        &self.slab
    }

    #[cfg(feature = "slab")]
    #[inline]
    pub(crate) fn slab_generation(&self) -> u64 {
        self.slab_generation.get()
    }
}
