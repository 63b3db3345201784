//! [`Scope`]: temporary allocations freed when a closure returns or unwinds.
//!
//! # How a scope stays sound with `&self`
//! [`Arena::scope`] takes `&self`, so the arena can keep allocating while
//! the scope is open, and that memory must survive the scope. The scope
//! therefore never frees the arena's memory directly. It *carves* blocks
//! from the arena (the arena's cursor moves past them) and bumps a private
//! cursor through them. On exit it drops its values and, if the arena has
//! handed out nothing since the scope's first carve that is still held
//! (its `bytes_allocated` is what it was right after the scope's last
//! carve: a collection that grew and was freed again does not count),
//! moves the arena back to where the scope's first carve started: full
//! reuse at the cost of a few stores. Otherwise the scope's blocks are
//! abandoned until the arena is rewound or reset.
//!
//! # Why bounded blocks
//! A block is what the scope needs, at least the last scope's usage (so a
//! loop of scopes takes one block per iteration), doubling as the scope
//! grows: not the rest of the chunk. The arena's own allocations made
//! while a scope is open then land after the block in the same chunk, and
//! what an abandoned scope wastes is its own blocks, not a chunk per
//! iteration (a loop of scopes that each leave an outer allocation behind
//! once grew the arena by a doubling chunk per iteration).
//!
//! Nested scopes carve from the arena too, so the rule is the same at every
//! depth: an inner scope that gives its blocks back leaves the arena where
//! the outer scope's own carve left it.
//!
//! References handed out by a scope borrow the `&Scope` given to the
//! closure, whose lifetime is higher-ranked: they cannot leave the closure.

#[allow(unused_imports)]
use crate::prelude::*;
use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::arena::Growth;
use crate::arena::{Arena, Pending, Pos};
use crate::cursor::Cursor;
use crate::drop_list::DropList;
use crate::error::AllocError;
use crate::typed::{Bump, Mode};

/// Temporary allocations inside [`Arena::scope`]: freed, destructors run,
/// when the closure returns or unwinds.
///
/// ```
/// let arena = arena_b::Arena::new();
/// let len = arena.scope(|scope| {
///     let temp = scope.alloc("temporary data");
///     assert_eq!(temp, &"temporary data");
///     let words = scope.alloc_slice_clone(&[String::from("a"), String::from("b")]);
///     words.len()
/// });
/// assert_eq!(len, 2);
/// ```
///
/// References from a scope cannot escape it:
///
/// ```compile_fail
/// let arena = arena_b::Arena::new();
/// let escaped = arena.scope(|scope| scope.alloc(1u32));
/// ```
pub struct Scope<'a> {
    arena: &'a Arena,
    cursor: Cursor,
    /// Start of the block the cursor is in (null before the first carve):
    /// a block before it is not the cursor's (the `Allocator` interface).
    block_start: Cell<*mut u8>,
    drops: DropList,
    /// Arena position right before the first carve: where the exit moves
    /// the arena back to (meaningless while `carved` is 0).
    restore: Cell<Pos>,
    /// The arena's `bytes_allocated` right after this scope's last carve.
    expected_bytes: Cell<usize>,
    /// Bytes carved so far.
    carved: Cell<usize>,
    /// False once the arena held memory for someone else between two
    /// carves of this scope: then its memory after `restore` is not all ours.
    can_restore: Cell<bool>,
    /// Feature `stats`: allocations made through this scope, added to the
    /// arena's count when the scope ends (one local add per allocation
    /// instead of a trip through the arena pointer).
    #[cfg(feature = "stats")]
    allocations: Cell<usize>,
    /// Invariant in `'a`; not `Send` or `Sync` (also via `&Arena`).
    _marker: PhantomData<fn(&'a ()) -> &'a ()>,
}

/// The smallest block a scope carves.
const MIN_CARVE: usize = 256;

alloc_api! {
    impl ['s] Scope<'s>,
    bound = ['static],
    plain = |this| this,
    try = |this| Ok::<_, AllocError>(this),
    setup = "let outer = arena_b::Arena::new();\nouter.scope(|arena| {",
    end = "});",
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("remaining_in_block", &self.cursor.remaining())
            .finish_non_exhaustive()
    }
}

impl<'a> Scope<'a> {
    pub(crate) fn open(arena: &'a Arena) -> Scope<'a> {
        arena.scope_opened();
        Scope {
            arena,
            cursor: Cursor::empty(),
            block_start: Cell::new(core::ptr::null_mut()),
            drops: DropList::new(),
            restore: Cell::new(Pos::ZERO),
            expected_bytes: Cell::new(0),
            carved: Cell::new(0),
            can_restore: Cell::new(true),
            #[cfg(feature = "stats")]
            allocations: Cell::new(0),
            _marker: PhantomData,
        }
    }

    /// A nested scope: its allocations are freed when `f` returns, and this
    /// scope's stay.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.scope(|outer| {
    ///     let kept = outer.alloc(1u32);
    ///     outer.scope(|inner| {
    ///         inner.alloc_slice_fill_iter(0..1000u32);
    ///     });
    ///     assert_eq!(*kept, 1);
    /// });
    /// ```
    pub fn scope<R>(&self, f: impl FnOnce(&Scope<'_>) -> R) -> R {
        let inner = Scope::open(self.arena);
        f(&inner)
    }

    /// The arena this scope allocates from.
    pub fn arena(&self) -> &'a Arena {
        self.arena
    }
}

impl<'a> Bump<'a> for &'a Scope<'_> {
    #[inline(always)]
    fn cursor(self) -> &'a Cursor {
        &self.cursor
    }

    #[inline(always)]
    fn drop_list(self) -> &'a DropList {
        &self.drops
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(self, layout: Layout, mode: Mode) -> Result<(NonNull<u8>, Pending), AllocError> {
        let arena = self.arena;
        let carved = self.carved.get();
        if carved == 0 {
            self.restore.set(arena.pos());
        } else if arena.bytes_allocated() != self.expected_bytes.get() {
            // The arena holds memory for someone else after our last carve:
            // from now on its memory after `restore` is not all ours.
            self.can_restore.set(false);
        }
        // The first block: what the last scope used; then doubling.
        let want = if carved == 0 {
            arena.scope_hint().max(MIN_CARVE)
        } else {
            carved
        };
        let ((start, end), pending) = arena.carve(layout, want, mode)?;
        self.carved.set(carved + (end.addr() - start.addr()));
        self.expected_bytes.set(arena.bytes_allocated());
        arena.scope_holds(arena.pos());
        self.block_start.set(start);
        // SAFETY: the block was carved from the arena's cursor, which now
        // starts past it, so nobody else will hand it out while we live.
        unsafe { self.cursor.set(start, end) };
        let block = self
            .cursor
            .bump(layout)
            .expect("arena-b: a block chosen for a layout must fit it");
        // The caller reports `pending` once its value is in place; the sink
        // (user code) may then allocate in the arena: that changes its
        // `bytes_allocated`, and this scope will not give back.
        Ok((block, pending))
    }

    /// Scope allocations count in the arena's `stats` too, from the
    /// scope's end.
    #[cfg(feature = "stats")]
    #[inline(always)]
    fn count_alloc(self) {
        self.allocations.set(self.allocations.get() + 1);
    }

    #[inline(always)]
    fn report(self, pending: Pending) {
        if pending.0.is_some() {
            self.arena.report_pending(pending);
        }
    }

    #[inline]
    fn give_back_last(self, ptr: NonNull<u8>, size: usize) {
        self.resize_last(ptr, size, 0);
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        /// Hands memory back even if a destructor below panics.
        struct GiveBack<'s, 'a>(&'s Scope<'a>);
        impl Drop for GiveBack<'_, '_> {
            fn drop(&mut self) {
                let scope = self.0;
                let arena = scope.arena;
                #[cfg(feature = "stats")]
                arena.count_allocs(scope.allocations.get());
                let carved = scope.carved.get();
                let mut pending = Pending(None);
                let restored = (carved > 0
                    && scope.can_restore.get()
                    && arena.bytes_allocated() == scope.expected_bytes.get())
                .then(|| {
                    pending = arena.scope_rewind(scope.restore.get());
                    scope.restore.get()
                });
                // The next scope's first block: what this one used.
                arena.set_scope_hint(carved - scope.cursor.remaining());
                arena.scope_closed(restored);
                // The books are closed: now the sink (user code) may run.
                arena.report(pending);
            }
        }
        let give_back = GiveBack(self);
        // SAFETY: the scope is ending: no reference to its values survives
        // (they borrow the `&Scope` of the closure, which has returned).
        unsafe { self.drops.run_until(core::ptr::null_mut()) };
        drop(give_back);
    }
}

impl Scope<'_> {
    /// Resizes the last block of the scope's cursor in place (the
    /// `Allocator` interface).
    #[inline]
    pub(crate) fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        self.cursor
            .resize_last(self.block_start.get(), ptr, old_size, new_size)
    }
}

// ----- the arena's side of scopes ------------------------------------------

impl Arena {
    /// Runs `f` with a [`Scope`]: everything allocated through the scope is
    /// freed (destructors run) when `f` returns or unwinds.
    ///
    /// The scope's references cannot escape `f` (they borrow a lifetime that
    /// only exists inside it), and the arena stays usable inside `f`: what
    /// the arena hands out meanwhile is not freed by the scope. Scopes nest.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let outer = arena.alloc(1u64);
    /// let sum = arena.scope(|scope| {
    ///     let temp = scope.alloc_slice_fill_iter(0..100u32);
    ///     temp.iter().sum::<u32>()
    /// });
    /// assert_eq!(sum, 4950);
    /// assert_eq!(*outer, 1);
    /// ```
    pub fn scope<R>(&self, f: impl FnOnce(&Scope<'_>) -> R) -> R {
        let scope = Scope::open(self);
        f(&scope)
    }

    /// A scope opens (it holds nothing until its first carve).
    pub(crate) fn scope_opened(&self) {
        self.open_scopes.set(self.open_scopes.get() + 1);
    }

    /// An open scope holds memory up to `held`. Checkpoints taken before
    /// now need the precise check from here on.
    pub(crate) fn scope_holds(&self, held: Pos) {
        self.epoch.set(self.epoch.get() + 1);
        if held > self.scope_high.get() {
            self.scope_high.set(held);
        }
    }

    /// A scope closed; if it gave memory back down to `restored`, no open
    /// scope holds anything above that.
    pub(crate) fn scope_closed(&self, restored: Option<Pos>) {
        let open = self.open_scopes.get() - 1;
        self.open_scopes.set(open);
        if open == 0 {
            self.scope_high.set(Pos::ZERO);
        } else if let Some(pos) = restored {
            if pos < self.scope_high.get() {
                self.scope_high.set(pos);
            }
        }
    }

    /// A scope's exit gives the arena back everything after `pos`. The
    /// diagnostics event comes back for the scope to report once it has
    /// closed its own books (`scope_closed`).
    pub(crate) fn scope_rewind(&self, pos: Pos) -> Pending {
        self.note_peak();
        let decommitted = self.move_to(pos);
        self.record_rewind(self.pos());
        self.counters.rewinds.add(1);
        decommitted
    }

    /// Hands a scope a block of the arena: room for `layout` at its
    /// (aligned) start, and up to `want` bytes in all if the current chunk
    /// has them; a chunk where `want` fits if `layout` does not fit here.
    /// The caller reports the returned [`Pending`] event once its own state
    /// is consistent.
    ///
    /// A bounded block, not the rest of the chunk: the arena's own
    /// allocations made while the scope is open then fit after it, in the
    /// same chunk, instead of each scope forcing the arena into a new one.
    pub(crate) fn carve(
        &self,
        layout: Layout,
        want: usize,
        mode: Mode,
    ) -> Result<((*mut u8, *mut u8), Pending), AllocError> {
        let padding = |ptr: *mut u8| ptr.addr().wrapping_neg() & (layout.align() - 1);
        let pending = if self.chunk_start.get().is_null()
            || padding(self.cursor.ptr()) + layout.size() > self.cursor.remaining()
        {
            let wanted = Layout::from_size_align(want.max(layout.size()), layout.align())
                .map_err(|_| AllocError::overflow())?;
            self.grow(wanted, Growth::Policy, mode)?
        } else {
            Pending(None)
        };
        let ptr = self.cursor.ptr();
        let start = padding(ptr);
        let size = layout.size().max(want.min(self.cursor.remaining() - start));
        // SAFETY: `start + size <= remaining` (the chunk fits `layout` after
        // the padding, and `size` is at most what is left), so both
        // pointers stay inside the current chunk's free window, which the
        // scope owns once the cursor has moved past it.
        unsafe {
            let block = ptr.add(start);
            self.cursor.set_ptr(block.add(size));
            Ok(((block, block.add(size)), pending))
        }
    }

    /// How many bytes the last scope of this arena used: the first block
    /// the next one asks for (a loop of scopes then takes one block per
    /// iteration).
    pub(crate) fn scope_hint(&self) -> usize {
        self.scope_hint.get()
    }

    pub(crate) fn set_scope_hint(&self, bytes: usize) {
        self.scope_hint.set(bytes);
    }
}
