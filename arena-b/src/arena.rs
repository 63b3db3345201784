//! [`Arena`]: the bump cursor, chunk growth, checkpoints, scopes and reset.
//!
//! # Layout of the state
//! Chunks live in a `Vec` ordered by use: chunks `0..current` are full (their
//! `used` is recorded when the cursor left them), chunk `current` holds the
//! cursor, and chunks after it are empty, kept for reuse. A *position*
//! (`Pos`) is a chunk index and an address in it; positions only grow as
//! memory is handed out, and every operation that frees memory (rewind,
//! scope exit, reset, and `Allocator` deallocation of the last block)
//! moves back to an earlier position and records it.
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

use core::alloc::Layout;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use smallvec::SmallVec;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::builder::{ArenaBuilder, Config};
use crate::chunk::{RawChunk, CHUNK_ALIGN};
use crate::cursor::Cursor;
use crate::drop_list::{DropList, DropMark};
use crate::error::AllocError;
use crate::owner_cell::{OwnerCell, OwnerPtr};
use crate::scope::Scope;
use crate::stats::{report, ArenaStats, ChunkUsage, DiagnosticEvent};
use crate::typed::{self, Bump};

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
struct RewindHistory {
    top_time: Cell<u64>,
    top_pos: Cell<Pos>,
    /// Older events, all with positions below `top_pos`.
    older: RefCell<Vec<(u64, Pos)>>,
}

impl RewindHistory {
    fn new() -> Self {
        RewindHistory {
            top_time: Cell::new(0),
            top_pos: Cell::new(Pos::ZERO),
            older: RefCell::new(Vec::new()),
        }
    }

    /// Is a checkpoint taken at epoch `time` at position `pos` still valid?
    /// It is unless a rewind stamped with a later epoch went below `pos`.
    fn is_valid(&self, time: u64, pos: Pos) -> bool {
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
    fn record(&self, time: u64, pos: Pos) {
        if pos != self.top_pos.get() {
            self.record_slow(pos);
            self.top_pos.set(pos);
        }
        self.top_time.set(time);
    }

    /// Makes room for a new top at `pos`: keeps the old top below it, or
    /// drops every event at or above it.
    #[cold]
    fn record_slow(&self, pos: Pos) {
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

/// A diagnostics event whose report is deferred until the arena's state is
/// consistent again (see [`Arena::grow`]).
#[must_use]
pub(crate) struct Pending(pub(crate) Option<DiagnosticEvent>);

/// How big a new chunk is.
#[derive(Clone, Copy)]
enum Growth {
    /// Double the arena's capacity, within `chunk_size..=max_chunk_size`
    /// (and at least the request).
    Policy,
    /// Exactly the request (rounded to the chunk alignment): `reserve_size`.
    Exact,
}

static NEXT_ARENA_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique arena id (never 0, never reused).
pub(crate) fn next_arena_id() -> u64 {
    NEXT_ARENA_ID.fetch_add(1, Ordering::Relaxed)
}

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

/// Counters kept off the hot path.
#[derive(Debug, Default)]
struct Counters {
    peak: OwnerCell,
    rewinds: OwnerCell,
    resets: OwnerCell,
    wasted: OwnerCell,
    capacity: OwnerCell,
    chunks: OwnerCell,
    #[cfg(feature = "stats")]
    allocations: OwnerCell,
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
    cursor: Cursor,
    drops: DropList,
    /// Start of the chunk the cursor is in (null before the first chunk).
    chunk_start: OwnerPtr,
    /// Index of that chunk.
    current: Cell<usize>,
    /// Bytes used in chunks `0..current`.
    used_before: OwnerCell,
    /// Odd while `chunk_start`, `used_before` and the cursor move to
    /// another chunk: a seqlock for readers on other threads
    /// (`bytes_allocated_shared`).
    chunk_seq: OwnerCell,
    /// Inline for the first few chunks, so a short-lived arena allocates
    /// nothing but its chunks.
    chunks: RefCell<SmallVec<[RawChunk; 4]>>,
    history: RewindHistory,
    /// Ticks whenever a checkpoint taken before may have become invalid: on
    /// every rewind and reset, and when a scope takes memory. A checkpoint
    /// whose epoch is current is valid without further checks.
    epoch: Cell<u64>,
    /// Number of scopes open on this arena, and the highest position any of
    /// them holds memory up to: rewinding below it would free scope memory.
    open_scopes: Cell<usize>,
    scope_high: Cell<Pos>,
    /// Bytes the last scope used (see `scope_hint`).
    scope_hint: Cell<usize>,
    /// Set while a rewind runs destructors (see `run_drops_until`).
    rewinding: Cell<bool>,
    /// Feature `virtual_memory`: a rewind or reset that leaves more than
    /// this many committed bytes above the cursor decommits them
    /// (`usize::MAX` without a reserved region: never).
    #[cfg(feature = "virtual_memory")]
    decommit_over: Cell<usize>,
    /// Feature `slab`: advanced by every move of the cursor back (rewind,
    /// scope exit, reset), which invalidates cached free blocks.
    #[cfg(feature = "slab")]
    slab_generation: Cell<u64>,
    #[cfg(feature = "slab")]
    slab: crate::slab::FreeLists,
    id: u64,
    counters: Counters,
    #[cfg(feature = "debug")]
    debug: crate::debug::DebugState,
    config: Config,
    /// `Arena` is not `Sync` (the `Cell`s say so too).
    _not_sync: PhantomData<Cell<()>>,
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
            #[cfg(feature = "virtual_memory")]
            decommit_over: Cell::new(usize::MAX),
            #[cfg(feature = "slab")]
            slab_generation: Cell::new(0),
            #[cfg(feature = "slab")]
            slab: Default::default(),
            id: next_arena_id(),
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
            let pending = arena.grow(layout, Growth::Exact)?;
            arena.report_pending(pending);
        }
        Ok(arena)
    }

    // ----- allocation -------------------------------------------------------

    /// Moves `value` into the arena and returns a mutable reference to it.
    ///
    /// If `T` needs drop, `value` is dropped when its memory is freed
    /// (rewind, scope exit, reset or the arena's drop).
    ///
    /// # Panics
    /// If the arena's allocation limit is reached; calls
    /// [`handle_alloc_error`](std::alloc::handle_alloc_error) if the
    /// system is out of memory. See [`try_alloc`](Self::try_alloc).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let v = arena.alloc(vec![1, 2, 3]);
    /// v.push(4);
    /// assert_eq!(v.len(), 4);
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc<T: Send + 'static>(&self, value: T) -> &mut T {
        match typed::try_alloc(self, value) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(Layout::new::<T>())),
        }
    }

    /// Like [`alloc`](Self::alloc), but returns an error instead of
    /// panicking when the memory cannot be had.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// assert_eq!(*arena.try_alloc(7u8).unwrap(), 7);
    /// ```
    #[inline(always)]
    pub fn try_alloc<T: Send + 'static>(&self, value: T) -> Result<&mut T, AllocError> {
        typed::try_alloc(self, value)
    }

    /// Allocates the value returned by `f`. `f` runs before the memory is
    /// taken, so it may itself allocate in this arena.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let big = arena.alloc_with(|| [7u8; 4096]);
    /// assert_eq!(big[4095], 7);
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc_with<T: Send + 'static, F: FnOnce() -> T>(&self, f: F) -> &mut T {
        self.alloc(f())
    }

    /// Fallible [`alloc_with`](Self::alloc_with).
    #[inline(always)]
    pub fn try_alloc_with<T: Send + 'static, F: FnOnce() -> T>(
        &self,
        f: F,
    ) -> Result<&mut T, AllocError> {
        self.try_alloc(f())
    }

    /// Moves `value` into the arena **without** registering its destructor:
    /// it is never dropped, its memory is simply reused after a reset. For
    /// types that borrow (`T` is not `'static`), where running a destructor
    /// at reset time could not be proven sound. For a type without drop
    /// glue this is exactly [`alloc`](Self::alloc).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// struct Node<'a> { value: u32, next: Option<&'a Node<'a>> }
    /// let a = arena.alloc_no_drop(Node { value: 1, next: None });
    /// let b = arena.alloc_no_drop(Node { value: 2, next: Some(a) });
    /// assert_eq!(b.next.unwrap().value, 1);
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn alloc_no_drop<T>(&self, value: T) -> &mut T {
        match self.try_alloc_no_drop(value) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(Layout::new::<T>())),
        }
    }

    /// Fallible [`alloc_no_drop`](Self::alloc_no_drop).
    #[inline(always)]
    pub fn try_alloc_no_drop<T>(&self, value: T) -> Result<&mut T, AllocError> {
        // SAFETY: not registering a destructor only leaks, which is safe.
        unsafe { typed::try_alloc_no_drop(self, value) }
    }

    /// Copies `s` into the arena.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let s = arena.alloc_str("hello");
    /// s.make_ascii_uppercase();
    /// assert_eq!(s, "HELLO");
    /// ```
    #[inline]
    #[track_caller]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        match typed::try_alloc_str(self, s) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<u8>(s.len()).ok()),
        }
    }

    /// Fallible [`alloc_str`](Self::alloc_str).
    #[inline]
    pub fn try_alloc_str(&self, s: &str) -> Result<&mut str, AllocError> {
        typed::try_alloc_str(self, s)
    }

    /// Copies a slice of `Copy` values into the arena with one `memcpy`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let small = arena.alloc_slice_fast(&[1u8, 2, 3]);
    /// small[0] = 9;
    /// assert_eq!(small, &[9, 2, 3]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn alloc_slice_fast<T: Copy>(&self, src: &[T]) -> &mut [T] {
        match typed::try_alloc_slice_copy(self, src) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(src.len()).ok()),
        }
    }

    /// Fallible [`alloc_slice_fast`](Self::alloc_slice_fast).
    #[inline]
    pub fn try_alloc_slice_fast<T: Copy>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        typed::try_alloc_slice_copy(self, src)
    }

    /// Clones every element of `src` into the arena. The clones are dropped
    /// when their memory is freed.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let names = arena.alloc_slice_clone(&[String::from("a"), String::from("b")]);
    /// assert_eq!(names[1], "b");
    /// ```
    #[track_caller]
    pub fn alloc_slice_clone<T: Clone + Send + 'static>(&self, src: &[T]) -> &mut [T] {
        match typed::try_alloc_slice_from_iter(self, src.len(), src.iter().cloned()) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(src.len()).ok()),
        }
    }

    /// Fallible [`alloc_slice_clone`](Self::alloc_slice_clone).
    pub fn try_alloc_slice_clone<T: Clone + Send + 'static>(
        &self,
        src: &[T],
    ) -> Result<&mut [T], AllocError> {
        typed::try_alloc_slice_from_iter(self, src.len(), src.iter().cloned())
    }

    /// Moves the items of an exact-size iterator into a slice in the arena.
    ///
    /// # Panics
    /// Also panics if the iterator yields fewer items than its `len()`.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let squares = arena.alloc_slice_fill_iter((0..5u32).map(|i| i * i));
    /// assert_eq!(squares, &[0, 1, 4, 9, 16]);
    /// ```
    #[track_caller]
    pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> &mut [T]
    where
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let iter = iter.into_iter();
        let len = iter.len();
        match typed::try_alloc_slice_from_iter(self, len, iter) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<T>(len).ok()),
        }
    }

    /// Fallible [`alloc_slice_fill_iter`](Self::alloc_slice_fill_iter).
    pub fn try_alloc_slice_fill_iter<T, I>(&self, iter: I) -> Result<&mut [T], AllocError>
    where
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let iter = iter.into_iter();
        let len = iter.len();
        typed::try_alloc_slice_from_iter(self, len, iter)
    }

    /// A mutable string buffer of `len` bytes, zero-filled (so it is valid
    /// UTF-8: `len` NUL characters) for in-place writing.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// let buf = arena.alloc_str_uninit(5);
    /// // SAFETY: ASCII bytes keep the buffer valid UTF-8.
    /// unsafe { buf.as_bytes_mut().copy_from_slice(b"hello") };
    /// assert_eq!(buf, "hello");
    /// ```
    #[track_caller]
    pub fn alloc_str_uninit(&self, len: usize) -> &mut str {
        match typed::try_alloc_str_zeroed(self, len) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Layout::array::<u8>(len).ok()),
        }
    }

    /// Fallible [`alloc_str_uninit`](Self::alloc_str_uninit).
    pub fn try_alloc_str_uninit(&self, len: usize) -> Result<&mut str, AllocError> {
        typed::try_alloc_str_zeroed(self, len)
    }

    /// Raw memory for `layout`: non-null, aligned, uninitialized, valid
    /// until the arena frees it. Zero-sized layouts get a dangling, aligned
    /// pointer.
    ///
    /// ```
    /// use std::alloc::Layout;
    /// let arena = arena_b::Arena::new();
    /// let p = arena.alloc_layout(Layout::from_size_align(64, 4096).unwrap());
    /// assert_eq!(p.as_ptr() as usize % 4096, 0);
    /// ```
    #[inline]
    #[track_caller]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match typed::try_alloc_layout(self, layout) {
            Ok(r) => r,
            Err(e) => typed::fail(e, Some(layout)),
        }
    }

    /// Fallible [`alloc_layout`](Self::alloc_layout).
    #[inline]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        typed::try_alloc_layout(self, layout)
    }

    // ----- checkpoints and scopes --------------------------------------------

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
    fn run_drops_until(&self, mark: DropMark, target: Pos) {
        struct Done<'a> {
            arena: &'a Arena,
            target: Pos,
        }
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.arena.rewinding.set(false);
                if std::thread::panicking() {
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
        let _done = Done {
            arena: self,
            target,
        };
        // SAFETY: the caller validated the checkpoint, so `mark` is still
        // linked: headers are only unlinked by rewinds to below the
        // checkpoint's position (recorded, which would have made it stale,
        // also when a destructor panicked), and nested rewinds that would
        // unlink headers are refused above. The caller of
        // `rewind_to_checkpoint` promises the values after it are unused.
        unsafe { self.drops.run_until(mark) };
    }

    /// The precise check, for a checkpoint older than the current epoch.
    #[cold]
    #[inline(never)]
    fn still_valid(&self, epoch: u64, pos: Pos) -> bool {
        !self.rewinding.get()
            && self.history.is_valid(epoch, pos)
            && (self.open_scopes.get() == 0 || pos >= self.scope_high.get())
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn refuse_checkpoint(&self, arena: u64, epoch: u64, pos: Pos) -> ! {
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

    // ----- reset, shrink, reserve --------------------------------------------

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
    pub fn reset(&mut self) {
        self.note_peak();
        // SAFETY: `&mut self` proves no reference into the arena is alive;
        // null is the bottom of the list.
        unsafe { self.drops.run_until(core::ptr::null_mut()) };
        let decommitted = self.move_to(Pos::ZERO);
        self.unbudget_idle_chunks();
        self.record_rewind(self.pos());
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

    fn free_chunks_after(&self, keep_through: usize) {
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

    /// Makes sure the next `bytes` bytes of allocations (padding included)
    /// need no new chunk, taking one now if the current chunk is too small.
    ///
    /// # Panics
    /// As [`alloc`](Self::alloc) when the chunk cannot be had.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.reserve_additional(1 << 20);
    /// let chunks = arena.chunk_usage().len();
    /// for i in 0..1000u64 { arena.alloc(i); }
    /// assert_eq!(arena.chunk_usage().len(), chunks);
    /// ```
    #[track_caller]
    pub fn reserve_additional(&self, bytes: usize) {
        if let Err(e) = self.try_reserve_additional(bytes) {
            typed::fail(e, Layout::array::<u8>(bytes).ok());
        }
    }

    /// Fallible [`reserve_additional`](Self::reserve_additional).
    pub fn try_reserve_additional(&self, bytes: usize) -> Result<(), AllocError> {
        if bytes == 0 || self.cursor.remaining() >= bytes {
            return Ok(());
        }
        let layout = Layout::from_size_align(bytes, 1).map_err(|_| AllocError::overflow())?;
        let pending = self.grow(layout, Growth::Policy)?;
        self.report_pending(pending);
        Ok(())
    }

    // ----- telemetry ---------------------------------------------------------

    /// Bytes handed out and not yet freed (padding and drop headers
    /// included; memory held by an open scope counts too).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.alloc(0u64);
    /// assert_eq!(arena.bytes_allocated(), 8);
    /// ```
    #[inline]
    pub fn bytes_allocated(&self) -> usize {
        let start = self.chunk_start.get();
        if start.is_null() {
            return 0;
        }
        self.used_before.get() + (self.cursor.ptr().addr() - start.addr())
    }

    /// Total bytes of the chunks the arena owns.
    ///
    /// ```
    /// assert_eq!(arena_b::Arena::with_capacity(4096).capacity(), 4096);
    /// ```
    pub fn capacity(&self) -> usize {
        self.counters.capacity.get()
    }

    /// Capacity and use of every chunk, in allocation order (free chunks,
    /// kept for reuse, last with `used == 0`).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.alloc(1u8);
    /// assert_eq!(arena.chunk_usage()[0].used, 1);
    /// ```
    pub fn chunk_usage(&self) -> Vec<ChunkUsage> {
        let chunks = self.chunks.borrow();
        let current = self.current.get();
        let here = self.pos();
        if here.ptr.is_null() {
            return chunks
                .iter()
                .map(|c| ChunkUsage {
                    capacity: c.capacity(),
                    used: 0,
                })
                .collect();
        }
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| ChunkUsage {
                capacity: c.capacity(),
                used: match i.cmp(&current) {
                    core::cmp::Ordering::Less => c.used,
                    core::cmp::Ordering::Equal => here.ptr.addr() - c.start().addr(),
                    core::cmp::Ordering::Greater => 0,
                },
            })
            .collect()
    }

    // ----- feature `debug` ---------------------------------------------------

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
    fn poison_freed(&self, to: Pos) {
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
    fn note_poisoned(&self, index: usize, end: usize, bytes: usize) {
        let mut chunks = self.chunks.borrow_mut();
        chunks[index].poisoned_to = chunks[index].poisoned_to.max(end);
        self.debug.poisoned.add(bytes);
    }

    // ----- feature `virtual_memory` ---------------------------------------------

    /// Feature `virtual_memory`: an arena whose memory is one reserved range
    /// of `reserve_bytes` of address space, committed as the bump pointer
    /// advances and decommitted above a threshold on rewind and reset (see
    /// [`ArenaBuilder::virtual_memory`]). If the range cannot be reserved
    /// (a low `ulimit -v`, an unsupported target) the arena uses heap
    /// chunks and reports [`DiagnosticEvent::VirtualMemoryUnavailable`] to
    /// the diagnostics sink and as a `tracing` warning;
    /// [`ArenaBuilder::virtual_memory_strict`] makes that an error.
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
    fn install_region(&self, region: RawChunk) {
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
    fn commit_more(
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
    fn decommit_above_cursor(&self) -> Option<DiagnosticEvent> {
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

    /// [`capacity`](Self::capacity) for a reader on another thread.
    pub(crate) fn capacity_shared(&self) -> usize {
        self.counters.capacity.get()
    }

    /// Restarts [`ArenaStats::peak_bytes`] from the bytes allocated now.
    ///
    /// ```
    /// let mut arena = arena_b::Arena::new();
    /// arena.alloc([0u8; 1000]);
    /// arena.reset();
    /// arena.reset_peak();
    /// assert_eq!(arena.stats().peak_bytes, 0);
    /// ```
    pub fn reset_peak(&self) {
        self.counters.peak.set(self.bytes_allocated());
    }

    /// A snapshot of the arena's counters.
    ///
    /// ```
    /// let mut arena = arena_b::Arena::new();
    /// arena.alloc(1u32);
    /// arena.reset();
    /// let stats = arena.stats();
    /// assert_eq!(stats.resets, 1);
    /// assert!(stats.peak_bytes >= 4);
    /// ```
    pub fn stats(&self) -> ArenaStats {
        self.note_peak();
        self.stats_shared()
    }

    /// The counters, read without writing anything: callable (by a
    /// `SyncArena`) from a thread that does not own this arena.
    pub(crate) fn stats_shared(&self) -> ArenaStats {
        let bytes_allocated = self.bytes_allocated_shared();
        ArenaStats {
            bytes_allocated,
            capacity: self.counters.capacity.get(),
            chunks: self.counters.chunks.get(),
            peak_bytes: self.counters.peak.get().max(bytes_allocated),
            rewinds: self.counters.rewinds.get() as u64,
            resets: self.counters.resets.get() as u64,
            wasted_tail_bytes: self.counters.wasted.get(),
            #[cfg(feature = "stats")]
            allocations: Some(self.counters.allocations.get() as u64),
            #[cfg(not(feature = "stats"))]
            allocations: None,
        }
    }

    /// [`bytes_allocated`](Self::bytes_allocated) for a reader on another
    /// thread: retries while the owner is moving to another chunk, so the
    /// three fields it reads belong together.
    pub(crate) fn bytes_allocated_shared(&self) -> usize {
        use core::sync::atomic::{fence, Ordering};
        loop {
            let before = self.chunk_seq.get();
            if before % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            fence(Ordering::Acquire);
            let start = self.chunk_start.get();
            let used = self.used_before.get();
            let ptr = self.cursor.ptr();
            fence(Ordering::Acquire);
            if self.chunk_seq.get() == before {
                return if start.is_null() {
                    0
                } else {
                    used + ptr.addr().saturating_sub(start.addr())
                };
            }
        }
    }

    /// Brackets a move of the cursor to another chunk (see `chunk_seq`).
    fn chunk_move<R>(&self, f: impl FnOnce() -> R) -> R {
        use core::sync::atomic::{fence, Ordering};
        let seq = self.chunk_seq.get();
        self.chunk_seq.set(seq + 1);
        fence(Ordering::Release);
        let r = f();
        fence(Ordering::Release);
        self.chunk_seq.set(seq + 2);
        r
    }

    // ----- internals ---------------------------------------------------------

    #[inline]
    fn note_peak(&self) {
        let now = self.bytes_allocated();
        if now > self.counters.peak.get() {
            self.counters.peak.set(now);
        }
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
        if pos.chunk == self.current.get() && !pos.ptr.is_null() {
            // SAFETY: `pos` is at or before the cursor in the current chunk, so
            // `[pos.ptr, end)` is inside the chunk and holds nothing anyone may
            // still use (the callers free it first).
            unsafe { self.cursor.set_ptr(pos.ptr) };
        } else {
            self.move_to_chunk(pos);
        }
        #[cfg(feature = "virtual_memory")]
        if self.cursor.remaining() > self.decommit_over.get() {
            return Pending(self.decommit_above_cursor());
        }
        Pending(None)
    }

    #[cold]
    #[inline(never)]
    fn move_to_chunk(&self, pos: Pos) {
        if pos.ptr.is_null() && self.chunk_start.get().is_null() {
            // Already at the start, with no chunk in use (a new arena, or a
            // `SyncArena` part after `reset`): stay out of the chunks, so
            // the next allocation takes one through `grow` (which budgets
            // it against a shared limit).
            return;
        }
        let chunks = self.chunks.borrow();
        let Some(chunk) = chunks.get(pos.chunk) else {
            debug_assert_eq!(pos, Pos::ZERO);
            return;
        };
        self.note_peak();
        let ptr = if pos.ptr.is_null() {
            chunk.start()
        } else {
            pos.ptr
        };
        debug_assert!(chunk.start() <= ptr && ptr <= chunk.end());
        self.chunk_move(|| {
            self.used_before
                .set(chunks[..pos.chunk].iter().map(|c| c.used).sum());
            self.current.set(pos.chunk);
            self.chunk_start.set(chunk.start());
            // SAFETY: `ptr` is in this chunk (or its start), at or before the
            // position being left, so `[ptr, end)` holds nothing anyone may
            // still use (the callers free it first); the arena owns the chunk.
            unsafe { self.cursor.set(ptr, chunk.end()) };
        });
    }

    /// Resizes the last block `[ptr, ptr + old_size)` of the arena's cursor in
    /// place if it is the last one (the `Allocator` impl). Giving bytes back
    /// moves the position backwards, which is recorded like a rewind: a
    /// checkpoint taken in between must not be accepted after the bytes are
    /// handed out again.
    #[inline]
    pub(crate) fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        let resized = self
            .cursor
            .resize_last(self.chunk_start.get(), ptr, old_size, new_size);
        if resized && new_size < old_size {
            #[cfg(feature = "debug")]
            {
                let here = self.cursor.ptr();
                // SAFETY: the block's tail `[here, here + old - new)` was just
                // given back; it is inside the current chunk, and `here`
                // carries the chunk's provenance.
                let bytes = unsafe { crate::debug::poison(here, here.add(old_size - new_size)) };
                self.note_poisoned(
                    self.current.get(),
                    here.addr() + (old_size - new_size),
                    bytes,
                );
            }
            self.record_rewind(self.pos());
        }
        resized
    }

    /// Records that memory after `pos` was freed (invalidates checkpoints
    /// past it).
    #[inline]
    pub(crate) fn record_rewind(&self, pos: Pos) {
        let epoch = self.epoch.get() + 1;
        self.epoch.set(epoch);
        self.history.record(epoch, pos);
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
    ) -> Result<((*mut u8, *mut u8), Pending), AllocError> {
        let padding = |ptr: *mut u8| ptr.addr().wrapping_neg() & (layout.align() - 1);
        let pending = if self.chunk_start.get().is_null()
            || padding(self.cursor.ptr()) + layout.size() > self.cursor.remaining()
        {
            let wanted = Layout::from_size_align(want.max(layout.size()), layout.align())
                .map_err(|_| AllocError::overflow())?;
            self.grow(wanted, Growth::Policy)?
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

    /// Hands a deferred diagnostics event to the sink.
    #[cold]
    pub(crate) fn report_pending(&self, pending: Pending) {
        if let Some(event) = pending.0 {
            report(self.config.sink.as_ref(), event);
        }
    }

    /// Moves the cursor to the start of a chunk where `layout` fits: a free
    /// one after the current chunk if any fits, else a new one.
    ///
    /// The "chunk allocated" event is returned, not reported: the sink is
    /// user code and may allocate in this arena, so callers report it only
    /// after their own bump or carve is done (a scope, for one, must not see
    /// the arena move between its check and its carve). Failures are
    /// reported here, after the chunk list is released: nothing changed.
    #[cold]
    #[inline(never)]
    fn grow(&self, layout: Layout, growth: Growth) -> Result<Pending, AllocError> {
        let mut chunks = self.chunks.borrow_mut();
        #[cfg(feature = "virtual_memory")]
        if let Some(event) = self.commit_more(&mut chunks, layout) {
            return Ok(Pending(Some(event)));
        }
        let has_current = !self.chunk_start.get().is_null();
        let next = if has_current {
            self.current.get() + 1
        } else {
            0
        };
        let mut event = None;
        // An idle chunk that fits, if the shared limit (if any) can take its
        // bytes again; else a new chunk, which falls back to the size needed.
        let reusable = (next..chunks.len())
            .find(|&j| chunks[j].fits(layout) && self.budget_reused(&mut chunks[j]));
        match reusable {
            Some(j) => chunks.swap(next, j),
            None => {
                let chunk = match self.new_chunk(layout, growth) {
                    Ok(chunk) => chunk,
                    Err((err, event)) => {
                        drop(chunks);
                        report(self.config.sink.as_ref(), event);
                        return Err(err);
                    }
                };
                let total = self.counters.capacity.get() + chunk.capacity();
                self.counters.capacity.set(total);
                event = Some(DiagnosticEvent::ChunkAllocated {
                    capacity: chunk.capacity(),
                    total_capacity: total,
                });
                chunks.push(chunk);
                self.counters.chunks.set(chunks.len());
                let last = chunks.len() - 1;
                chunks.swap(next, last);
            }
        }
        #[cfg(feature = "debug")]
        if self.config.debug_backtrace {
            chunks[next].opened_at = Some(std::backtrace::Backtrace::force_capture().to_string());
        }
        if has_current {
            self.note_peak();
            let current = self.current.get();
            let used = self.cursor.ptr().addr() - self.chunk_start.get().addr();
            chunks[current].used = used;
            self.counters.wasted.add(self.cursor.remaining());
        }
        let chunk = &chunks[next];
        let used_before = self.used_before.get()
            + if has_current {
                chunks[self.current.get()].used
            } else {
                0
            };
        self.chunk_move(|| {
            self.used_before.set(used_before);
            self.current.set(next);
            self.chunk_start.set(chunk.start());
            // SAFETY: the chunk is owned by the arena and, being after the old
            // current chunk (or the first), holds nothing.
            unsafe { self.cursor.set(chunk.start(), chunk.end()) };
        });
        Ok(Pending(event))
    }

    /// Allocates a chunk for `layout` following the growth policy and the
    /// allocation limit. A chunk the policy sizes that the limit or the
    /// system allocator refuses falls back to exactly what `layout` needs.
    fn new_chunk(
        &self,
        layout: Layout,
        growth: Growth,
    ) -> Result<RawChunk, (AllocError, DiagnosticEvent)> {
        let needed = layout.size();
        let total = self.counters.capacity.get();
        let grown = match growth {
            Growth::Policy => total.clamp(self.config.chunk_size, self.config.max_chunk_size),
            Growth::Exact => needed,
        };
        let round = |n: usize| {
            n.checked_add(CHUNK_ALIGN - 1)
                .map(|n| n & !(CHUNK_ALIGN - 1))
        };
        let oom = |chunk: usize| {
            (
                AllocError::out_of_memory(needed, chunk),
                DiagnosticEvent::OutOfMemory { requested: chunk },
            )
        };
        let refused = |limit: usize| {
            (
                self.config.limit_error(needed, limit),
                DiagnosticEvent::LimitReached {
                    requested: needed,
                    limit,
                },
            )
        };
        // A size that cannot even be rounded is one no system can provide.
        let exact = round(needed.max(1)).ok_or_else(|| oom(needed))?;
        let mut capacity = round(needed.max(grown)).ok_or_else(|| oom(needed))?;
        if let Some(limit) = self.config.allocation_limit {
            let room = limit.saturating_sub(total);
            if capacity > room {
                capacity = exact;
                if capacity > room {
                    return Err(refused(limit));
                }
            }
        }
        if let Some(shared) = &self.config.shared_limit {
            if !shared.try_take(capacity) {
                capacity = exact;
                if !shared.try_take(capacity) {
                    return Err(refused(shared.limit));
                }
            }
        }
        let mut chunk = match RawChunk::allocate(capacity, layout.align()) {
            Some(chunk) => chunk,
            None if capacity > exact => {
                // The policy's size may be more than the system has left.
                self.give_back_shared(capacity - exact);
                capacity = exact;
                RawChunk::allocate(capacity, layout.align()).ok_or_else(|| {
                    self.give_back_shared(capacity);
                    oom(capacity)
                })?
            }
            None => {
                self.give_back_shared(capacity);
                return Err(oom(capacity));
            }
        };
        chunk.budgeted = self.config.shared_limit.is_some();
        Ok(chunk)
    }

    /// An idle chunk is put to use again: if it was given back to the
    /// shared limit (by `reset`), take its bytes again. `false` if the
    /// limit has no room for it (the caller takes a new chunk of the size
    /// it needs instead).
    fn budget_reused(&self, chunk: &mut RawChunk) -> bool {
        let Some(shared) = &self.config.shared_limit else {
            return true;
        };
        if !chunk.budgeted {
            if !shared.try_take(chunk.capacity()) {
                return false;
            }
            chunk.budgeted = true;
        }
        true
    }

    /// After `reset`, with a limit shared with other arenas (a
    /// `SyncArena`'s parts): every chunk is idle, so its bytes go back to
    /// the limit and one thread's idle chunks do not count against
    /// another's allocations. The cursor leaves the first chunk too (the
    /// state of a new arena), so that the next allocation goes through
    /// `grow`, which takes a chunk's bytes again before using it.
    fn unbudget_idle_chunks(&self) {
        let Some(shared) = &self.config.shared_limit else {
            return;
        };
        let mut chunks = self.chunks.borrow_mut();
        for chunk in chunks.iter_mut().filter(|c| c.budgeted) {
            chunk.budgeted = false;
            shared.give_back(chunk.capacity());
        }
        self.chunk_move(|| {
            self.chunk_start.set(core::ptr::null_mut());
            self.used_before.set(0);
            self.current.set(0);
            // SAFETY: the empty window `[null, null)` hands out nothing.
            unsafe {
                self.cursor
                    .set(core::ptr::null_mut(), core::ptr::null_mut())
            };
        });
    }

    /// Returns chunk bytes to the limit shared with other arenas, if any.
    fn give_back_shared(&self, bytes: usize) {
        if let Some(shared) = &self.config.shared_limit {
            shared.give_back(bytes);
        }
    }
}

impl Bump for Arena {
    #[inline(always)]
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    #[inline(always)]
    fn drop_list(&self) -> &DropList {
        &self.drops
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> Result<(NonNull<u8>, Pending), AllocError> {
        let pending = self.grow(layout, Growth::Policy)?;
        let block = self
            .cursor
            .bump(layout)
            .expect("arena-b: a chunk chosen for a layout must fit it");
        Ok((block, pending))
    }

    #[inline(always)]
    fn report(&self, pending: Pending) {
        if pending.0.is_some() {
            self.report_pending(pending);
        }
    }

    #[cfg(feature = "stats")]
    #[inline(always)]
    fn count_alloc(&self) {
        self.counters.allocations.add(1);
    }
}

impl Arena {
    /// Adds the allocations a scope made (feature `stats`).
    #[cfg(feature = "stats")]
    pub(crate) fn count_allocs(&self, n: usize) {
        self.counters.allocations.add(n);
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
                if arena.config.shared_limit.is_some() {
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
