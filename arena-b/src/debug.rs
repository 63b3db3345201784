//! Feature `debug`: catching uses of freed arena memory.
//!
//! # Why poison
//! A bump allocator frees by moving a pointer back. A reference kept past a
//! rewind (the promise `rewind_to_checkpoint`'s caller broke) still points
//! at readable, unchanged memory, so the bug stays silent until that memory
//! is handed out again. With `debug`, every byte the arena takes back (by a
//! rewind, a scope exit that gives its memory back, a reset, an
//! `Allocator` deallocation or shrink of the last block, or the reset of a
//! `LockFreeAllocator` buffer (feature `lockfree`), a `SyncArena`'s
//! shared one included) is overwritten with
//! [`POISON`] at once, so a stale read sees `0xDE` bytes instead of
//! plausible data, and [`Arena::validate`](crate::Arena::validate) finds
//! stale *writes*: bytes above the bump pointer that are no longer poison.
//! Memory the arena cannot take back yet (a block freed in the middle, a
//! scope that could not give its memory back) is not poisoned until a
//! rewind or reset reaches it.
//!
//! Built with AddressSanitizer and `--cfg arena_b_asan` (as `scripts/sanitize`
//! does), freed ranges are also poisoned for ASan and unpoisoned when handed
//! out again, so a use after rewind is reported at the faulting access.
//!
//! A `SyncArena`'s `validate` and `debug_stats` cover its per-thread parts;
//! its shared lock-free buffer is poisoned on reset but neither checked for
//! stale writes nor counted.
//!
//! Stale checkpoints need no extra machinery: every checkpoint carries the
//! arena's epoch, and refusals are counted in [`DebugStats::detections`].

#[allow(unused_imports)]
use crate::prelude::*;
use core::fmt;

use crate::arena::{Arena, Pos};
use crate::owner_cell::OwnerCell;

/// The byte freed arena memory is filled with under feature `debug`.
pub const POISON: u8 = 0xDE;

/// Counters of the `debug` checks of one arena, from
/// [`Arena::debug_stats`](crate::Arena::debug_stats).
///
/// ```
/// let arena = arena_b::Arena::new();
/// arena.alloc(1u32);
/// arena.validate().unwrap();
/// let stats = arena.debug_stats();
/// assert_eq!(stats.checks, 1);
/// assert_eq!(stats.detections, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DebugStats {
    /// Checks run: `validate` calls and checkpoint validations.
    pub checks: u64,
    /// Problems found: writes into freed memory, and refused (stale or
    /// foreign) checkpoints.
    pub detections: u64,
    /// Non-empty [`LeakReport`]s produced.
    pub leak_reports: u64,
    /// Bytes overwritten with [`POISON`] so far.
    pub poisoned_bytes: u64,
}

/// Freed arena memory that was written after it was freed, from
/// [`Arena::validate`](crate::Arena::validate).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Corruption {
    /// Index of the chunk (in [`Arena::chunk_usage`](crate::Arena::chunk_usage) order).
    pub chunk: usize,
    /// Offset of the first bad byte from the chunk's start.
    pub offset: usize,
    /// Bytes of freed memory that are no longer poison, in that chunk.
    pub bytes: usize,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arena-b: {} byte(s) of freed memory in chunk {} were written after being freed \
             (first at offset {}): a reference outlived a rewind, scope or reset",
            self.bytes, self.chunk, self.offset
        )
    }
}

impl core::error::Error for Corruption {}

/// What an arena still holds, from
/// [`Arena::leak_report`](crate::Arena::leak_report): memory that was never
/// rewound, reset or freed by a scope.
///
/// ```
/// let arena = arena_b::Arena::new();
/// arena.alloc(String::from("still here"));
/// let report = arena.leak_report().expect("the arena holds a value");
/// assert_eq!(report.values_pending_drop, 1);
/// assert!(report.to_string().contains("1 value"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeakReport {
    /// Bytes still allocated.
    pub bytes: usize,
    /// Values whose destructor has not run yet.
    pub values_pending_drop: usize,
    /// Chunks holding that memory.
    pub chunks: usize,
    /// Scopes still open.
    pub open_scopes: usize,
    /// With [`ArenaBuilder::debug_backtrace`](crate::ArenaBuilder::debug_backtrace):
    /// where the allocations that opened each chunk still in use came from.
    pub backtraces: Vec<String>,
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arena still holds {} byte(s) in {} chunk(s), {} value(s) awaiting drop, {} open \
             scope(s)",
            self.bytes, self.chunks, self.values_pending_drop, self.open_scopes
        )?;
        for (i, bt) in self.backtraces.iter().enumerate() {
            write!(f, "\nchunk {i} opened at:\n{bt}")?;
        }
        Ok(())
    }
}

/// Per-arena debug counters: written by the owner thread, readable from
/// any (a `SyncArena` sums its parts).
#[derive(Debug, Default)]
pub(crate) struct DebugState {
    pub(crate) checks: OwnerCell,
    pub(crate) detections: OwnerCell,
    pub(crate) leak_reports: OwnerCell,
    pub(crate) poisoned: OwnerCell,
}

impl DebugState {
    pub(crate) fn stats(&self) -> DebugStats {
        DebugStats {
            checks: self.checks.get() as u64,
            detections: self.detections.get() as u64,
            leak_reports: self.leak_reports.get() as u64,
            poisoned_bytes: self.poisoned.get() as u64,
        }
    }
}

impl core::ops::AddAssign for DebugStats {
    fn add_assign(&mut self, other: DebugStats) {
        self.checks += other.checks;
        self.detections += other.detections;
        self.leak_reports += other.leak_reports;
        self.poisoned_bytes += other.poisoned_bytes;
    }
}

/// Fills `[start, end)` with [`POISON`] and poisons it for ASan.
///
/// # Safety
/// `[start, end)` is inside one live chunk, writable through `start`'s
/// provenance, and freed: nobody may use it until it is handed out again.
pub(crate) unsafe fn poison(start: *mut u8, end: *mut u8) -> usize {
    let len = end.addr().saturating_sub(start.addr());
    if len == 0 {
        return 0;
    }
    // SAFETY: the caller guarantees the range is writable and unused. ASan
    // must not see the fill as a use of poisoned memory: unpoison first.
    unsafe {
        crate::asan::unpoison(start, len);
        core::ptr::write_bytes(start, POISON, len);
        crate::asan::poison(start, len);
    }
    len
}

/// Offset and count of the bytes in `[start, end)` that are not poison.
///
/// # Safety
/// `[start, end)` is inside one live chunk, readable, and no one writes it
/// meanwhile.
pub(crate) unsafe fn check_poison(start: *const u8, end: *const u8) -> Option<(usize, usize)> {
    let len = end.addr().saturating_sub(start.addr());
    if len == 0 || crate::asan::ENABLED {
        // Under ASan the region is poisoned for it: reading would be
        // reported, and ASan already checks every access.
        return None;
    }
    // SAFETY: see the function's contract.
    let bytes = unsafe { core::slice::from_raw_parts(start, len) };
    let first = bytes.iter().position(|&b| b != POISON)?;
    let bad = bytes[first..].iter().filter(|&&b| b != POISON).count();
    Some((first, bad))
}

// ----- `Arena`'s feature `debug` methods -------------------------------------

impl Arena {
    /// Feature `debug`: checks that freed memory (everything a rewind, scope
    /// exit, reset or `Allocator` deallocation gave back and that has not
    /// been handed out again) still holds the [`POISON`](crate::POISON)
    /// pattern, that is, nobody wrote through a reference that outlived its
    /// memory.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let cp = arena.checkpoint();
    /// let stale: *mut u64 = arena.alloc(1u64);
    /// // SAFETY: `stale` is not used again... except below, on purpose.
    /// unsafe { arena.rewind_to_checkpoint(cp) };
    /// assert_eq!(unsafe { stale.cast::<u8>().read() }, arena_b::POISON);
    /// unsafe { stale.write(7) }; // a write after rewind
    /// let err = arena.validate().unwrap_err();
    /// assert_eq!(err.bytes, 8);
    /// assert_eq!(arena.debug_stats().detections, 1);
    /// ```
    #[cfg(feature = "debug")]
    pub fn validate(&self) -> Result<(), crate::debug::Corruption> {
        self.debug.checks.add(1);
        let chunks = self.chunks.borrow();
        let current = self.current.get();
        let here = self.cursor.ptr();
        for (i, chunk) in chunks.iter().enumerate() {
            let from = match i.cmp(&current) {
                _ if here.is_null() => chunk.start(),
                core::cmp::Ordering::Less => chunk.start().wrapping_add(chunk.used),
                core::cmp::Ordering::Equal => here,
                core::cmp::Ordering::Greater => chunk.start(),
            };
            if chunk.poisoned_to <= from.addr() {
                continue;
            }
            let to = from.with_addr(chunk.poisoned_to);
            // SAFETY: `[from, to)` is inside this chunk (`poisoned_to` never
            // passes its end) and freed: nothing hands it out while we read
            // (`&self` on a `!Sync` arena, and no callback runs here).
            if let Some((first, bytes)) = unsafe { crate::debug::check_poison(from, to) } {
                self.debug.detections.add(1);
                return Err(crate::debug::Corruption {
                    chunk: i,
                    offset: from.addr() - chunk.start().addr() + first,
                    bytes,
                });
            }
        }
        Ok(())
    }

    /// Feature `debug`: counters of checks, detections and leak reports.
    /// See [`validate`](Self::validate).
    #[cfg(feature = "debug")]
    pub fn debug_stats(&self) -> crate::debug::DebugStats {
        self.debug.stats()
    }

    /// Feature `debug`: what the arena still holds (memory never rewound,
    /// reset or freed by a scope), or `None` if it holds nothing. With
    /// [`ArenaBuilder::debug_backtrace`](crate::ArenaBuilder::debug_backtrace),
    /// the report says where the allocations that opened each chunk in use
    /// came from. See [`LeakReport`](crate::LeakReport).
    #[cfg(feature = "debug")]
    pub fn leak_report(&self) -> Option<crate::debug::LeakReport> {
        let bytes = self.bytes_allocated();
        let values_pending_drop = self.drops.count();
        if bytes == 0 && values_pending_drop == 0 && self.open_scopes.get() == 0 {
            return None;
        }
        self.debug.leak_reports.add(1);
        let chunks = self.chunks.borrow();
        let in_use = if self.chunk_start.get().is_null() {
            0
        } else {
            self.current.get() + 1
        };
        let backtraces = chunks[..in_use]
            .iter()
            .filter_map(|c| c.opened_at.clone())
            .collect();
        Some(crate::debug::LeakReport {
            bytes,
            values_pending_drop,
            chunks: in_use,
            open_scopes: self.open_scopes.get(),
            backtraces,
        })
    }

    /// The debug counters, read from another thread (a `SyncArena`).
    #[cfg(feature = "debug")]
    pub(crate) fn debug_stats_shared(&self) -> crate::debug::DebugStats {
        self.debug.stats()
    }

    /// Fills with poison everything between `to` and the current position
    /// (it is being freed), across chunks.
    #[cfg(feature = "debug")]
    #[cold]
    pub(crate) fn poison_freed(&self, to: Pos) {
        let here = self.cursor.ptr();
        if here.is_null() {
            return;
        }
        let current = self.current.get();
        let mut chunks = self.chunks.borrow_mut();
        let mut total = 0;
        for i in to.chunk..=current {
            let chunk = &mut chunks[i];
            let start = if i == to.chunk && !to.ptr.is_null() {
                to.ptr
            } else {
                chunk.start()
            };
            let end = if i == current {
                here
            } else {
                chunk.start().wrapping_add(chunk.used)
            };
            // SAFETY: `[start, end)` is the part of chunk `i` between the
            // position being returned to and the current one: inside the
            // chunk, with the chunk's provenance (`to.ptr` and `here` derive
            // from it), and freed by the caller.
            let bytes = unsafe { crate::debug::poison(start, end) };
            if bytes > 0 {
                chunk.poisoned_to = chunk.poisoned_to.max(end.addr());
            }
            total += bytes;
        }
        drop(chunks);
        self.debug.poisoned.add(total);
    }

    /// Records a poisoned range ending at `end` in chunk `index`.
    #[cfg(feature = "debug")]
    pub(crate) fn note_poisoned(&self, index: usize, end: usize, bytes: usize) {
        let mut chunks = self.chunks.borrow_mut();
        chunks[index].poisoned_to = chunks[index].poisoned_to.max(end);
        self.debug.poisoned.add(bytes);
    }
}
