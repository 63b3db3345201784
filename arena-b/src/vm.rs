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
