//! Positions, the rewind history, checkpoints and rewinds.
//!
//! # Why checkpoints cannot go stale silently
//! A checkpoint remembers the position and the drop-list head at the time it
//! was taken. Rewinding to it is only sound if no rewind since then went to
//! an earlier position (which would have run destructors the checkpoint
//! still points at, and let the memory be handed out again). The arena keeps
//! the history of rewinds as a stack increasing in both time and position
//! (`RewindHistory`), so "did any rewind after time `t` go below position
//! `p`?" is a binary search. The stack is capped (merging its two oldest
//! events, which only makes the check stricter). A checkpoint of the
//! current epoch skips the search.

use super::*;
#[allow(unused_imports)]
use crate::prelude::*;

/// A place in the arena: chunk index and the cursor address in that chunk
/// (null stands for the start of chunk 0, before it exists). Ordered by
/// chunk, then address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) chunk: usize,
    pub(crate) ptr: *mut u8,
}

impl Pos {
    pub(crate) const ZERO: Pos = Pos {
        chunk: 0,
        ptr: core::ptr::null_mut(),
    };
}

impl PartialOrd for Pos {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pos {
    #[inline]
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (self.chunk, self.ptr.addr()).cmp(&(other.chunk, other.ptr.addr()))
    }
}

/// Rewinds since the oldest live checkpoint, increasing in time and position.
///
/// The newest event (`top`) lives in `Cell`s so that the common loop
/// (checkpoint, allocate, rewind to the same place) never touches the `Vec`.
/// Before any rewind `top` is a virtual event at time 0 and position zero,
/// which invalidates nothing.
#[derive(Debug)]
pub(crate) struct RewindHistory {
    top_time: Cell<u64>,
    top_pos: Cell<Pos>,
    /// Older events, all with positions below `top_pos`.
    older: RefCell<Vec<(u64, Pos)>>,
}

impl RewindHistory {
    pub(crate) fn new() -> Self {
        RewindHistory {
            top_time: Cell::new(0),
            top_pos: Cell::new(Pos::ZERO),
            older: RefCell::new(Vec::new()),
        }
    }

    /// Is a checkpoint taken at epoch `time` at position `pos` still valid?
    /// It is unless a rewind stamped with a later epoch went below `pos`.
    pub(crate) fn is_valid(&self, time: u64, pos: Pos) -> bool {
        // The first event after `time` has the lowest position of all events
        // after `time` (positions increase along the stack).
        let older = self.older.borrow();
        let first_after = older.partition_point(|&(t, _)| t <= time);
        let lowest = match older.get(first_after) {
            Some(&(_, p)) => p,
            None if self.top_time.get() > time => self.top_pos.get(),
            None => return true,
        };
        lowest >= pos
    }

    #[inline]
    pub(crate) fn record(&self, time: u64, pos: Pos) {
        if pos != self.top_pos.get() {
            self.record_slow(pos);
            self.top_pos.set(pos);
        }
        self.top_time.set(time);
    }

    /// Makes room for a new top at `pos`: keeps the old top below it, or
    /// drops every event at or above it.
    #[cold]
    pub(crate) fn record_slow(&self, pos: Pos) {
        let mut older = self.older.borrow_mut();
        let top = (self.top_time.get(), self.top_pos.get());
        if top.1 < pos {
            if older.len() == HISTORY_CAP {
                // Merge the two oldest events into one at the later time and
                // the lower position: checks only get stricter (a checkpoint
                // between them may be refused), never laxer.
                older[1].1 = older[0].1;
                older.remove(0);
            }
            older.push(top);
        } else {
            while older.last().is_some_and(|&(_, p)| p >= pos) {
                older.pop();
            }
        }
    }
}

/// Most events kept below the newest in the rewind history.
const HISTORY_CAP: usize = 64;

/// A saved allocation state of an [`Arena`], from [`Arena::checkpoint`].
///
/// Give it back to [`Arena::rewind_to_checkpoint`] to free everything
/// allocated since. A checkpoint of another arena, or one that an earlier
/// rewind, scope exit or reset went back past, is refused with a panic.
/// Checkpoints are plain data: copying one is free.
#[derive(Clone, Copy)]
pub struct Checkpoint {
    arena: u64,
    epoch: u64,
    pos: Pos,
    drops: DropMark,
}

// SAFETY: `drops` is only dereferenced by the arena whose id matches, after
// it has checked that the checkpoint is still valid; as plain data a
// checkpoint can go anywhere.
unsafe impl Send for Checkpoint {}
// SAFETY: as for `Send`; a checkpoint has no interior mutability.
unsafe impl Sync for Checkpoint {}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("arena", &self.arena)
            .field("chunk", &self.pos.chunk)
            .finish_non_exhaustive()
    }
}

impl Arena {
    /// Saves the current allocation state.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let keep = arena.alloc(1u32);
    /// let cp = arena.checkpoint();
    /// arena.alloc([0u8; 512]);
    /// // SAFETY: nothing allocated after `cp` is used afterwards.
    /// unsafe { arena.rewind_to_checkpoint(cp) };
    /// assert_eq!(*keep, 1);
    /// ```
    #[inline]
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            arena: self.id,
            epoch: self.epoch.get(),
            pos: self.pos(),
            drops: self.drops.mark(),
        }
    }

    /// Frees everything allocated since `checkpoint` was taken: destructors
    /// run (newest first) and the memory is handed out again.
    ///
    /// # Safety
    /// - No reference (or pointer) to memory allocated from this arena after
    ///   `checkpoint` was taken may be used after this call. This includes
    ///   memory obtained through `&Arena`'s `Allocator` implementation.
    /// - The destructors of values allocated after `checkpoint` must not
    ///   reach one another (they run newest first, so an older value's
    ///   destructor would see a newer one already dropped). Safe code
    ///   cannot build such values (`alloc` asks for `'static`), but a leaked
    ///   `&'static Arena` can.
    /// - It must not be called from inside a callback of an allocation
    ///   method of this arena (an iterator of `alloc_slice_fill_iter`, a
    ///   `Clone` of `alloc_slice_clone`, the diagnostics sink or a `tracing`
    ///   subscriber). A call from a destructor that a rewind of this arena
    ///   is running is refused with a panic.
    /// - Memory counts as allocated when it is handed out: a collection
    ///   allocated before the checkpoint whose buffer grew in place after
    ///   it loses that growth.
    ///
    /// # Panics
    /// If `checkpoint` belongs to another arena; if the arena went back
    /// past it since it was taken (it would point at freed state): by an
    /// earlier rewind, a scope exit or a reset, or through the `Allocator`
    /// interface, by freeing the last block or shrinking it in place (a
    /// collection in the arena that was dropped or shrank after the
    /// checkpoint: its memory ended where the checkpoint starts); if a
    /// scope that is still open holds memory after it; or if called from a
    /// destructor that a rewind of this arena is running. These are
    /// checked, never undefined behaviour.
    #[inline(always)]
    #[track_caller]
    pub unsafe fn rewind_to_checkpoint(&self, checkpoint: Checkpoint) {
        #[cfg(feature = "debug")]
        self.debug.checks.add(1);
        if checkpoint.arena != self.id
            || (checkpoint.epoch != self.epoch.get()
                && !self.still_valid(checkpoint.epoch, checkpoint.pos))
        {
            self.refuse_checkpoint(checkpoint.arena, checkpoint.epoch, checkpoint.pos);
        }
        #[cfg(feature = "stats")]
        self.note_peak();
        if self.drops.mark() != checkpoint.drops {
            self.run_drops_until(checkpoint.drops, checkpoint.pos);
        }
        // The books first (cursor, then the rewind history at the position
        // the cursor landed on), the report after: the diagnostics sink is
        // user code, and may allocate here or panic (see
        // `docs/architecture.md`).
        let decommitted = self.move_to(checkpoint.pos);
        self.record_rewind(self.pos());
        self.reuse_generation.set(self.reuse_generation.get() + 1);
        #[cfg(feature = "stats")]
        self.counters.rewinds.add(1);
        self.report(decommitted);
    }

    /// Runs the destructors linked after `mark` for a rewind to `target`.
    ///
    /// A destructor is user code and could rewind this arena again,
    /// unlinking headers this loop still walks towards. So a rewind that
    /// would run destructors while another one does is refused (whatever
    /// its checkpoint's epoch), and `rewinding` also sends every other
    /// rewind to the precise check, which refuses it. If a destructor
    /// panics, the guard still records the rewind to `target`: headers
    /// above it are gone, so no checkpoint above it may be accepted (the
    /// cursor stays where it is, since linked values still live there, and
    /// rewinding to the same checkpoint again runs the rest).
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn run_drops_until(&self, mark: DropMark, target: Pos) {
        struct Done<'a> {
            arena: &'a Arena,
            target: Pos,
            /// Every destructor returned (a flag, not `thread::panicking`,
            /// which `no_std` cannot ask and which is also true for a
            /// rewind that completes inside another panic's unwind).
            finished: bool,
        }
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.arena.rewinding.set(false);
                if !self.finished {
                    self.arena.record_rewind(self.target);
                }
            }
        }
        assert!(
            !self.rewinding.get(),
            "arena-b: rewind_to_checkpoint was called from a destructor that a rewind of the \
             same arena is running; rewind after it returns"
        );
        self.rewinding.set(true);
        self.epoch.set(self.epoch.get() + 1);
        let mut done = Done {
            arena: self,
            target,
            finished: false,
        };
        // SAFETY: the caller validated the checkpoint, so `mark` is still
        // linked: headers are only unlinked by rewinds to below the
        // checkpoint's position (recorded, which would have made it stale,
        // also when a destructor panicked), and nested rewinds that would
        // unlink headers are refused above. The caller of
        // `rewind_to_checkpoint` promises the values after it are unused.
        unsafe { self.drops.run_until(mark) };
        done.finished = true;
    }

    /// The precise check, for a checkpoint older than the current epoch.
    #[cold]
    #[inline(never)]
    pub(crate) fn still_valid(&self, epoch: u64, pos: Pos) -> bool {
        !self.rewinding.get()
            && self.history.is_valid(epoch, pos)
            && (self.open_scopes.get() == 0 || pos >= self.scope_high.get())
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn refuse_checkpoint(&self, arena: u64, epoch: u64, pos: Pos) -> ! {
        #[cfg(feature = "debug")]
        self.debug.detections.add(1);
        assert!(
            arena == self.id,
            "arena-b: rewind_to_checkpoint was given a checkpoint of another arena"
        );
        assert!(
            !self.rewinding.get(),
            "arena-b: rewind_to_checkpoint was called from a destructor that a rewind of the \
             same arena is running; rewind after it returns"
        );
        assert!(
            self.history.is_valid(epoch, pos),
            "arena-b: this checkpoint is stale: since it was taken the arena went back past it (a \
             rewind, a scope exit, a reset, or an `Allocator` deallocation or in-place shrink of \
             the last block, as when a collection in the arena shrinks or is dropped); take a new \
             checkpoint after that"
        );
        panic!(
            "arena-b: cannot rewind to a checkpoint taken before a scope that is still open \
             holds memory; rewind after the scope returns"
        )
    }

    /// The current position.
    #[inline(always)]
    pub(crate) fn pos(&self) -> Pos {
        Pos {
            chunk: self.current.get(),
            ptr: self.cursor.ptr(),
        }
    }

    /// Moves the cursor back to `pos`, an earlier position. A diagnostics
    /// event (feature `virtual_memory`: pages decommitted) comes back
    /// unreported: the caller records the rewind first, then reports.
    #[inline]
    pub(crate) fn move_to(&self, pos: Pos) -> Pending {
        debug_assert!(pos <= self.pos());
        #[cfg(feature = "debug")]
        self.poison_freed(pos);
        #[cfg(feature = "slab")]
        self.slab_generation.set(self.slab_generation.get() + 1);
        // The start of the current chunk (`Pos::ZERO` of a one-chunk arena,
        // every reset of a pooled arena) stays in the chunk, too.
        let ptr = if pos.ptr.is_null() && pos.chunk == self.current.get() {
            self.chunk_start.get()
        } else {
            pos.ptr
        };
        if pos.chunk == self.current.get() && !ptr.is_null() {
            // SAFETY: `ptr` is at or before the cursor in the current chunk
            // (or the chunk's start), so `[ptr, end)` is inside the chunk and
            // holds nothing anyone may still use (the callers free it first).
            unsafe { self.cursor.set_ptr(ptr) };
        } else {
            self.move_to_chunk(pos);
        }
        #[cfg(feature = "virtual_memory")]
        if self.cursor.remaining() > self.decommit_over.get() {
            return Pending(self.decommit_above_cursor());
        }
        Pending(None)
    }

    /// Records that memory after `pos` was freed (invalidates checkpoints
    /// past it).
    #[inline]
    pub(crate) fn record_rewind(&self, pos: Pos) {
        let epoch = self.epoch.get() + 1;
        self.epoch.set(epoch);
        self.history.record(epoch, pos);
    }
}
