//! Feature `virtual_memory`: one reserved address range that the arena
//! commits as its bump pointer advances.
//!
//! # Why
//! A heap-chunked arena that grows to 1 GiB makes a few dozen chunk
//! switches and leaves a tail unused in each. Reserving the address range
//! once (`mmap` with `PROT_NONE`, which costs no memory) and committing pages
//! (`mprotect` to read/write) as the cursor reaches them gives one
//! contiguous region: no chunk switches, no tails, and a rewind or reset can
//! give the pages above a threshold back to the system (`madvise(DONTNEED)`
//! then `PROT_NONE`), which a heap chunk cannot do without being freed.
//!
//! Reservation can fail (`ulimit -v`, a 32-bit address space, Miri, a
//! non-Unix target); the builder then falls back to heap chunks and says so
//! through the diagnostics sink and a `tracing` warning, or, with
//! `virtual_memory_strict`, refuses to build.
//!
//! This module holds the system calls (through `rustix`); the arena keeps
//! the region as its first chunk (see `chunk::RawChunk::reserve_virtual`).

pub(crate) use crate::error::VirtualMemoryError;

use core::alloc::Layout;

use smallvec::SmallVec;

use crate::arena::Arena;
use crate::chunk::RawChunk;
use crate::stats::DiagnosticEvent;

/// Granularity of commits and decommits.
#[cfg(all(unix, not(miri)))]
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

#[cfg(not(all(unix, not(miri))))]
pub(crate) fn page_size() -> usize {
    4096
}

/// Reserves `len` bytes of address space, inaccessible until committed.
#[cfg(all(unix, not(miri)))]
pub(crate) fn reserve(len: usize) -> Result<core::ptr::NonNull<u8>, VirtualMemoryError> {
    use rustix::mm::{mmap_anonymous, MapFlags, ProtFlags};
    // SAFETY: a fresh anonymous private mapping at an address the kernel
    // picks touches no existing memory.
    let ptr = unsafe {
        mmap_anonymous(
            core::ptr::null_mut(),
            len,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )
    }
    .map_err(|e| VirtualMemoryError::new("mmap", len, Some(e.raw_os_error())))?;
    core::ptr::NonNull::new(ptr.cast()).ok_or(VirtualMemoryError::new("mmap", len, None))
}

#[cfg(not(all(unix, not(miri))))]
pub(crate) fn reserve(len: usize) -> Result<core::ptr::NonNull<u8>, VirtualMemoryError> {
    Err(VirtualMemoryError::new(
        "mmap (not supported on this target)",
        len,
        None,
    ))
}

/// Makes `[ptr, ptr + len)` readable and writable.
///
/// # Safety
/// The range is page-aligned and inside a region from [`reserve`].
#[cfg(all(unix, not(miri)))]
pub(crate) unsafe fn commit(ptr: *mut u8, len: usize) -> bool {
    use rustix::mm::{mprotect, MprotectFlags};
    // SAFETY: forwarded from the caller: the range is our reservation.
    unsafe { mprotect(ptr.cast(), len, MprotectFlags::READ | MprotectFlags::WRITE) }.is_ok()
}

/// Gives `[ptr, ptr + len)` back to the system and makes it inaccessible.
///
/// # Safety
/// The range is page-aligned, inside a region from [`reserve`], and holds
/// nothing anyone will read.
#[cfg(all(unix, not(miri)))]
pub(crate) unsafe fn decommit(ptr: *mut u8, len: usize) {
    use rustix::mm::{madvise, mprotect, Advice, MprotectFlags};
    // Linux's MADV_DONTNEED frees the pages at once; POSIX's is a hint.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let advice = Advice::LinuxDontNeed;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let advice = Advice::DontNeed;
    // SAFETY: forwarded from the caller. Failure leaves the pages committed,
    // which is only a lost saving, so the results are ignored.
    unsafe {
        let _ = madvise(ptr.cast(), len, advice);
        let _ = mprotect(ptr.cast(), len, MprotectFlags::empty());
    }
}

/// Unmaps a whole region.
///
/// # Safety
/// `[ptr, ptr + len)` is a region from [`reserve`], unmapped once.
#[cfg(all(unix, not(miri)))]
pub(crate) unsafe fn release(ptr: *mut u8, len: usize) {
    use rustix::mm::munmap;
    // SAFETY: forwarded from the caller.
    let _ = unsafe { munmap(ptr.cast(), len) };
}

// Without a reservation there is never a region to work on.
#[cfg(not(all(unix, not(miri))))]
pub(crate) unsafe fn commit(_: *mut u8, _: usize) -> bool {
    false
}
#[cfg(not(all(unix, not(miri))))]
pub(crate) unsafe fn decommit(_: *mut u8, _: usize) {}
#[cfg(not(all(unix, not(miri))))]
pub(crate) unsafe fn release(_: *mut u8, _: usize) {}

// ----- `Arena`'s feature `virtual_memory` methods ----------------------------

impl Arena {
    /// Feature `virtual_memory`: an arena whose memory is one reserved range
    /// of `reserve_bytes` of address space, committed as the bump pointer
    /// advances and decommitted above a threshold on rewind and reset (see
    /// [`ArenaBuilder::virtual_memory`](crate::ArenaBuilder::virtual_memory)). If the range cannot be reserved
    /// (a low `ulimit -v`, an unsupported target) the arena uses heap
    /// chunks and reports [`DiagnosticEvent::VirtualMemoryUnavailable`] to
    /// the diagnostics sink and as a `tracing` warning;
    /// [`ArenaBuilder::virtual_memory_strict`](crate::ArenaBuilder::virtual_memory_strict)
    /// makes that an error.
    ///
    /// ```
    /// let arena = arena_b::Arena::with_virtual_memory(1 << 30); // 1 GiB of address space
    /// let big = arena.alloc_slice_fill_iter(0..1_000_000usize);
    /// assert_eq!(big[999_999], 999_999);
    /// # #[cfg(not(miri))] {
    /// assert_eq!(arena.chunk_usage().len(), 1, "one contiguous region");
    /// assert!(arena.virtual_memory_committed_bytes().unwrap() >= 8_000_000);
    /// # }
    /// ```
    #[cfg(feature = "virtual_memory")]
    #[track_caller]
    pub fn with_virtual_memory(reserve_bytes: usize) -> Arena {
        Arena::builder().virtual_memory(reserve_bytes).build()
    }

    /// Feature `virtual_memory`: bytes committed in the arena's reserved
    /// region, or `None` if it has none (built without one, or reservation
    /// failed and it fell back to heap chunks).
    ///
    /// ```
    /// assert_eq!(arena_b::Arena::new().virtual_memory_committed_bytes(), None);
    /// ```
    #[cfg(feature = "virtual_memory")]
    pub fn virtual_memory_committed_bytes(&self) -> Option<usize> {
        let chunks = self.chunks.borrow();
        chunks
            .first()
            .filter(|c| c.reserved() > 0)
            .map(RawChunk::capacity)
    }

    /// Makes `region` the first chunk and the cursor's window.
    #[cfg(feature = "virtual_memory")]
    pub(crate) fn install_region(&self, region: RawChunk) {
        let mut chunks = self.chunks.borrow_mut();
        debug_assert!(chunks.is_empty());
        self.counters.capacity.set(region.capacity());
        self.counters.chunks.set(1);
        self.chunk_move(|| {
            self.chunk_start.set(region.start());
            // SAFETY: the region is committed up to `end()`, owned by the
            // arena from now on, and holds nothing.
            unsafe { self.cursor.set(region.start(), region.end()) };
        });
        chunks.push(region);
        self.decommit_over.set(self.config.decommit_threshold);
    }

    /// If the cursor is in the reserved region and `layout` fits in what is
    /// still reserved, commits enough (at least doubling, in pages) and
    /// widens the cursor's window. Returns the diagnostics event to report.
    #[cfg(feature = "virtual_memory")]
    pub(crate) fn commit_more(
        &self,
        chunks: &mut SmallVec<[RawChunk; 4]>,
        layout: Layout,
    ) -> Option<DiagnosticEvent> {
        let start = self.chunk_start.get();
        let region = chunks.get_mut(self.current.get())?;
        if start.is_null() || region.reserved() == 0 {
            return None;
        }
        let ptr = self.cursor.ptr().addr();
        let offset = ptr - start.addr();
        let padding = ptr.wrapping_neg() & (layout.align() - 1);
        let needed = offset.checked_add(padding)?.checked_add(layout.size())?;
        if needed > region.reserved() {
            return None;
        }
        let page = region.align();
        let committed = region.capacity();
        let wanted = needed.max(committed.saturating_mul(2)).max(64 * 1024);
        let len = wanted
            .checked_add(page - 1)
            .map_or(usize::MAX, |n| n & !(page - 1))
            .min(region.reserved());
        let added = len - committed;
        if let Some(limit) = self.config.allocation_limit {
            if self.counters.capacity.get() + added > limit {
                return None;
            }
        }
        if !region.commit_to(len) {
            return None;
        }
        let total = self.counters.capacity.get() + added;
        self.counters.capacity.set(total);
        // SAFETY: the region is now committed up to `end()`; the window keeps
        // its start, and only grows at its end into memory nobody holds.
        unsafe { self.cursor.set(self.cursor.ptr(), region.end()) };
        Some(DiagnosticEvent::VirtualMemoryCommitted {
            committed: len,
            reserved: region.reserved(),
        })
    }

    /// Decommits the reserved region's pages more than the threshold above
    /// the cursor (after a rewind or reset).
    /// Returns the event to report once the caller's books are done.
    #[cfg(feature = "virtual_memory")]
    #[cold]
    #[inline(never)]
    pub(crate) fn decommit_above_cursor(&self) -> Option<DiagnosticEvent> {
        let mut chunks = self.chunks.borrow_mut();
        let start = self.chunk_start.get();
        let region = chunks.get_mut(self.current.get())?;
        if start.is_null() || region.reserved() == 0 {
            return None;
        }
        let page = region.align();
        let keep = (self.cursor.ptr().addr() - start.addr())
            .saturating_add(self.config.decommit_threshold)
            .saturating_add(page - 1)
            & !(page - 1);
        let committed = region.capacity();
        if keep >= committed {
            return None;
        }
        // SAFETY: everything past the cursor is free (the caller just moved
        // the cursor back over it), and `keep` is past the cursor.
        unsafe { region.decommit_from(keep) };
        self.counters
            .capacity
            .set(self.counters.capacity.get() - (committed - keep));
        // SAFETY: the window shrinks to the committed part, still past the
        // cursor.
        unsafe { self.cursor.set(self.cursor.ptr(), region.end()) };
        Some(DiagnosticEvent::VirtualMemoryDecommitted {
            committed: keep,
            released: committed - keep,
        })
    }
}
