//! [`Arena`]: the struct, its construction, reset and drop. The rest of
//! its code is split by role: `alloc.rs` (the allocation methods and the
//! fast path's owner), `checkpoint.rs` (positions, the rewind history,
//! checkpoints and rewinds), `grow.rs` (chunk growth, budgets, moves
//! between chunks); scope bookkeeping is in `scope.rs`, telemetry in
//! `stats.rs`, and each feature's methods in the feature's module.
//!
//! # Layout of the state
//! Chunks live in a `Vec` ordered by use: chunks `0..current` are full (their
//! `used` is recorded when the cursor left them), chunk `current` holds the
//! cursor, and chunks after it are empty, kept for reuse. A *position*
//! (`Pos`) is a chunk index and an address in it; positions only grow as
//! memory is handed out, and every operation that frees memory (rewind,
//! scope exit, reset, and `Allocator` deallocation of the last block)
//! moves back to an earlier position and records it.

#[allow(unused_imports)]
use crate::prelude::*;
mod alloc;
mod checkpoint;
mod grow;

pub use checkpoint::Checkpoint;
pub(crate) use checkpoint::{Pos, RewindHistory};
pub(crate) use grow::Growth;

use core::alloc::Layout;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use core::sync::atomic::{AtomicU64, Ordering};
use smallvec::SmallVec;

use crate::builder::{ArenaBuilder, Config};
use crate::chunk::{RawChunk, CHUNK_ALIGN};
use crate::cursor::Cursor;
use crate::drop_list::{DropList, DropMark};
use crate::error::AllocError;
use crate::owner_cell::{OwnerCell, OwnerPtr};
use crate::stats::{report, DiagnosticEvent};
use crate::typed::{self, Bump};

/// A diagnostics event whose report is deferred until the arena's state is
/// consistent again (see [`Arena::grow`]).
#[must_use]
pub(crate) struct Pending(pub(crate) Option<DiagnosticEvent>);

static NEXT_ARENA_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique arena id (never 0, never reused).
pub(crate) fn next_arena_id() -> u64 {
    NEXT_ARENA_ID.fetch_add(1, Ordering::Relaxed)
}

/// Counters kept off the hot path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) peak: OwnerCell,
    pub(crate) rewinds: OwnerCell,
    pub(crate) resets: OwnerCell,
    pub(crate) wasted: OwnerCell,
    pub(crate) capacity: OwnerCell,
    pub(crate) chunks: OwnerCell,
    /// Moves of the cursor from a full chunk to another.
    pub(crate) switches: OwnerCell,
    #[cfg(feature = "stats")]
    pub(crate) allocations: OwnerCell,
}

/// A bump allocator: hands out memory by moving a pointer through chunks,
/// and frees everything at once.
///
/// `Arena` is `Send` but not `Sync`: one thread allocates at a time, every
/// allocation method takes `&self`, and references into the arena live as
/// long as that borrow.
///
/// ```
/// use arena_b::Arena;
///
/// let arena = Arena::new();
/// let numbers: Vec<&u32> = (0..1000).map(|i| &*arena.alloc(i)).collect();
/// assert_eq!(*numbers[999], 999);
/// let name = arena.alloc_str("hello world");
/// name.make_ascii_uppercase();
/// assert_eq!(name, "HELLO WORLD");
/// // All of it is freed when the arena is dropped, or by `reset`.
/// ```
///
/// # Destructors
/// Values whose type needs drop are dropped, newest first, when their
/// memory is freed: by [`rewind_to_checkpoint`](Self::rewind_to_checkpoint),
/// the end of a [`scope`](Self::scope), [`reset`](Self::reset) or the
/// arena's drop. That is only sound for types that own what they hold, so
/// [`alloc`](Self::alloc) and friends ask for `T: Send + 'static`. Types
/// that borrow (for example tree nodes that point at other nodes in the
/// arena) go through [`alloc_no_drop`](Self::alloc_no_drop), whose
/// destructor never runs: give them arena-backed fields (`&'a str`,
/// `&'a [T]`, an `allocator_api2` `Vec` in the arena) so nothing leaks.
pub struct Arena {
    pub(crate) cursor: Cursor,
    pub(crate) drops: DropList,
    /// Start of the chunk the cursor is in (null before the first chunk).
    pub(crate) chunk_start: OwnerPtr,
    /// Index of that chunk.
    pub(crate) current: Cell<usize>,
    /// Bytes used in chunks `0..current`.
    pub(crate) used_before: OwnerCell,
    /// Odd while `chunk_start`, `used_before` and the cursor move to
    /// another chunk: a seqlock for readers on other threads
    /// (`bytes_allocated_shared`).
    pub(crate) chunk_seq: OwnerCell,
    /// Inline for the first few chunks, so a short-lived arena allocates
    /// nothing but its chunks.
    pub(crate) chunks: RefCell<SmallVec<[RawChunk; 4]>>,
    pub(crate) history: RewindHistory,
    /// Ticks whenever a checkpoint taken before may have become invalid: on
    /// every rewind and reset, and when a scope takes memory. A checkpoint
    /// whose epoch is current is valid without further checks.
    pub(crate) epoch: Cell<u64>,
    /// Number of scopes open on this arena, and the highest position any of
    /// them holds memory up to: rewinding below it would free scope memory.
    pub(crate) open_scopes: Cell<usize>,
    pub(crate) scope_high: Cell<Pos>,
    /// Bytes the last scope used (see `scope_hint`).
    pub(crate) scope_hint: Cell<usize>,
    /// Set while a rewind runs destructors (see `run_drops_until`).
    pub(crate) rewinding: Cell<bool>,
    /// Ticks at every `rewind_to_checkpoint` and `reset`: the only moves
    /// back that can hand out again memory someone else still holds
    /// (scope exits and `Allocator` frees give back only their own
    /// blocks). See `SyncArena::local_epoch`.
    pub(crate) reuse_generation: Cell<u64>,
    /// Feature `virtual_memory`: a rewind or reset that leaves more than
    /// this many committed bytes above the cursor decommits them
    /// (`usize::MAX` without a reserved region: never).
    #[cfg(feature = "virtual_memory")]
    pub(crate) decommit_over: Cell<usize>,
    /// Feature `slab`: advanced by every move of the cursor back (rewind,
    /// scope exit, reset), which invalidates cached free blocks.
    #[cfg(feature = "slab")]
    pub(crate) slab_generation: Cell<u64>,
    #[cfg(feature = "slab")]
    pub(crate) slab: crate::slab::FreeLists,
    pub(crate) id: u64,
    pub(crate) counters: Counters,
    #[cfg(feature = "debug")]
    pub(crate) debug: crate::debug::DebugState,
    pub(crate) config: Config,
    /// `Arena` is not `Sync` (the `Cell`s say so too).
    pub(crate) _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: the arena owns its chunks and the values in them. Values with a
// destructor, which may run on the thread the arena is moved to, are
// `Send` (every drop-registering method of `Arena` requires it; `Scope`
// values are dropped before the scope's borrow of the arena ends). All raw
// pointers point into chunks owned by this arena. The only thread-local
// state is the optional chunk cache (feature `thread_local`), which owns the
// chunks it holds outright; freeing a chunk from any thread is fine.
unsafe impl Send for Arena {}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("bytes_allocated", &self.bytes_allocated())
            .field("capacity", &self.capacity())
            .field("chunks", &self.chunks.borrow().len())
            .field("config", &self.config)
            .finish()
    }
}

impl crate::limit::Refuses for Arena {
    fn refusal_id(&self) -> u64 {
        self.config.owner
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    /// An empty arena with the default settings. Allocates nothing until
    /// the first allocation.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// assert_eq!(arena.capacity(), 0);
    /// ```
    pub fn new() -> Arena {
        ArenaBuilder::new().build()
    }

    /// An arena whose first chunk of `bytes` bytes is allocated now.
    ///
    /// ```
    /// let arena = arena_b::Arena::with_capacity(1 << 16);
    /// assert_eq!(arena.capacity(), 1 << 16);
    /// ```
    pub fn with_capacity(bytes: usize) -> Arena {
        ArenaBuilder::new().reserve_size(bytes).build()
    }

    /// A builder for custom settings.
    ///
    /// ```
    /// let arena = arena_b::Arena::builder().chunk_size(1 << 20).build();
    /// # drop(arena);
    /// ```
    pub fn builder() -> ArenaBuilder {
        ArenaBuilder::new()
    }

    pub(crate) fn from_config(config: Config, reserve: usize) -> Result<Arena, AllocError> {
        Self::from_parts(
            config,
            reserve,
            #[cfg(feature = "virtual_memory")]
            None,
        )
    }

    /// [`from_config`](Self::from_config), with feature `virtual_memory`'s
    /// reserved region as the first chunk.
    pub(crate) fn from_parts(
        config: Config,
        reserve: usize,
        #[cfg(feature = "virtual_memory")] virtual_region: Option<RawChunk>,
    ) -> Result<Arena, AllocError> {
        let id = next_arena_id();
        let mut config = config;
        if config.owner == 0 {
            config.owner = id;
        }
        let arena = Arena {
            cursor: Cursor::empty(),
            drops: DropList::new(),
            chunk_start: OwnerPtr::new(core::ptr::null_mut()),
            current: Cell::new(0),
            used_before: OwnerCell::new(0),
            chunk_seq: OwnerCell::new(0),
            chunks: RefCell::new(SmallVec::new()),
            history: RewindHistory::new(),
            epoch: Cell::new(0),
            open_scopes: Cell::new(0),
            scope_high: Cell::new(Pos::ZERO),
            scope_hint: Cell::new(0),
            rewinding: Cell::new(false),
            reuse_generation: Cell::new(0),
            #[cfg(feature = "virtual_memory")]
            decommit_over: Cell::new(usize::MAX),
            #[cfg(feature = "slab")]
            slab_generation: Cell::new(0),
            #[cfg(feature = "slab")]
            slab: Default::default(),
            id,
            counters: Counters::default(),
            #[cfg(feature = "debug")]
            debug: Default::default(),
            config,
            _not_sync: PhantomData,
        };
        #[cfg(feature = "virtual_memory")]
        if let Some(region) = virtual_region {
            arena.install_region(region);
        }
        if reserve > 0 {
            let layout = Layout::from_size_align(reserve, 1).map_err(|_| AllocError::overflow())?;
            let pending = arena.grow(layout, Growth::Exact, crate::typed::Mode::Try)?;
            arena.report_pending(pending);
        }
        Ok(arena)
    }

    /// Frees everything (destructors run) and keeps the chunks for reuse.
    ///
    /// ```
    /// let mut arena = arena_b::Arena::new();
    /// arena.alloc_str("x".repeat(100_000).as_str());
    /// let capacity = arena.capacity();
    /// arena.reset();
    /// assert_eq!(arena.bytes_allocated(), 0);
    /// assert_eq!(arena.capacity(), capacity);
    /// ```
    #[inline]
    pub fn reset(&mut self) {
        self.note_peak();
        self.reset_unsampled();
    }

    /// [`reset`](Self::reset) without sampling the peak first: for a
    /// `SyncArena`'s reuse, which clears the peak right after.
    #[inline(always)]
    pub(crate) fn reset_unsampled(&mut self) {
        // SAFETY: `&mut self` proves no reference into the arena is alive;
        // null is the bottom of the list.
        unsafe { self.drops.run_until(core::ptr::null_mut()) };
        let decommitted = self.move_to(Pos::ZERO);
        self.unbudget_idle_chunks();
        self.record_rewind(self.pos());
        self.reuse_generation.set(self.reuse_generation.get() + 1);
        self.counters.resets.add(1);
        self.report(decommitted);
    }

    /// [`reset`](Self::reset), then gives every chunk but the first back to
    /// the system (the first is the `reserve_size` chunk, if one was set).
    ///
    /// ```
    /// let mut arena = arena_b::Arena::with_capacity(4096);
    /// arena.alloc_slice_fill_iter(0..100_000u32);
    /// arena.reset_and_shrink();
    /// assert_eq!(arena.capacity(), 4096);
    /// ```
    pub fn reset_and_shrink(&mut self) {
        self.reset();
        self.free_chunks_after(0);
    }

    /// Gives back to the system the chunks that hold nothing (kept for reuse
    /// after a rewind or reset).
    ///
    /// ```
    /// let mut arena = arena_b::Arena::new();
    /// let cp = arena.checkpoint();
    /// arena.alloc_slice_fill_iter(0..100_000u32);
    /// // SAFETY: the slice is not used again.
    /// unsafe { arena.rewind_to_checkpoint(cp) };
    /// arena.shrink_to_fit();
    /// assert_eq!(arena.chunk_usage().len(), 1);
    /// ```
    pub fn shrink_to_fit(&self) {
        self.free_chunks_after(self.current.get());
    }

    pub(crate) fn free_chunks_after(&self, keep_through: usize) {
        let freed: SmallVec<[RawChunk; 4]> = {
            let mut chunks = self.chunks.borrow_mut();
            if chunks.len() <= keep_through + 1 {
                return;
            }
            chunks.drain(keep_through + 1..).collect()
        };
        let bytes: usize = freed.iter().map(RawChunk::capacity).sum();
        self.counters
            .chunks
            .set(self.counters.chunks.get() - freed.len());
        self.counters
            .capacity
            .set(self.counters.capacity.get() - bytes);
        let count = freed.len();
        let budgeted: usize = freed
            .iter()
            .filter(|c| c.budgeted)
            .map(RawChunk::capacity)
            .sum();
        drop(freed);
        self.give_back_shared(budgeted);
        report(
            self.config.sink.as_ref(),
            DiagnosticEvent::ChunksFreed { count, bytes },
        );
    }

    /// Hands a deferred diagnostics event to the sink.
    #[cold]
    pub(crate) fn report_pending(&self, pending: Pending) {
        if let Some(event) = pending.0 {
            report(self.config.sink.as_ref(), event);
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        /// Gives the chunks' bytes back to a shared limit even if a
        /// destructor below panics (the chunks themselves are freed by the
        /// `chunks` field either way).
        struct GiveBack<'a>(&'a Arena);
        impl Drop for GiveBack<'_> {
            fn drop(&mut self) {
                let arena = self.0;
                if arena.config.shared_limit().is_some() {
                    let budgeted: usize = arena
                        .chunks
                        .borrow()
                        .iter()
                        .filter(|c| c.budgeted)
                        .map(RawChunk::capacity)
                        .sum();
                    arena.give_back_shared(budgeted);
                }
            }
        }
        let _give_back = GiveBack(self);
        // SAFETY: the arena is going away; nothing can reference its values.
        unsafe { self.drops.run_until(core::ptr::null_mut()) };
    }
}
