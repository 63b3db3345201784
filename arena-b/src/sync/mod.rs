//! [`SyncArena`]: one arena shared by many threads.
//!
//! # Why per-thread sub-arenas
//! A shared bump pointer needs an atomic read-modify-write (or a lock) per
//! allocation, and every thread then fights over one cache line. Instead,
//! each thread that allocates gets its own sub-arena (a plain [`Arena`])
//! inside the `SyncArena`, the design protobuf's C++ arena uses. A
//! thread-local cache holds `(arena id, sub-arena)` for the last `SyncArena`
//! the thread used, so the common case is a thread-local load, one
//! comparison and a plain bump: no atomic RMW, no lock.
//!
//! A miss (first use on a thread, or switching between arenas) walks the
//! arena's list of sub-arenas for the current thread's, and registers a new
//! one if there is none: a lock-free push onto an append-only list (nothing
//! is removed while the `SyncArena` is shared, so there is no ABA). Parts
//! are freed only with `&mut SyncArena`: by its drop, and by
//! `reset_and_shrink`, which first gives the arena a fresh id. Ids are
//! unique for the life of the process, so the cache entry of a dropped or
//! shrunk `SyncArena` never matches a live one and is never dereferenced.
//!
//! Telemetry (`bytes_allocated`, `stats`) sums the sub-arenas while their
//! owners keep allocating: the fields read are atomics that only their
//! owner writes (see `owner_cell`), and the few that change together when a
//! sub-arena moves to another chunk are read under a seqlock.

#[allow(unused_imports)]
use crate::prelude::*;
use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};

// Under `--cfg loom` the shard list, the thread-local cache and thread ids
// come from loom, so `tests/loom_sync.rs` explores every interleaving of
// registration (`scripts/loom`).
#[cfg(loom)]
use loom::{
    sync::atomic::AtomicPtr,
    thread::{self, ThreadId},
    thread_local,
};
#[cfg(not(loom))]
use std::{
    sync::atomic::AtomicPtr,
    thread::{self, ThreadId},
};

use crate::arena::{next_arena_id, Arena};
use crate::builder::{Config, SharedLimit};
use crate::error::AllocError;
use crate::scope::Scope;

mod bump;
mod telemetry;
use bump::SyncBump;

/// What the threads share, in one allocation: the list of parts, the
/// limit they take their chunks' bytes from, and the count of allocations
/// that unwound at that limit.
pub(crate) struct Shared {
    /// Newest shard first.
    head: AtomicPtr<Shard>,
    /// `allocation_limit`, counted over every part (`None`: no limit).
    limit: Option<SharedLimit>,
    /// Allocations that unwound at the limit since the last reset.
    limit_unwinds: AtomicU64,
}

/// A part's access to its `SyncArena`'s [`Shared`].
///
/// It points at the `SyncArena`'s shared allocation (made by
/// `Box::into_raw`, freed by the `SyncArena`'s drop), which outlives every
/// part: parts are dropped only by the `SyncArena` (its drop,
/// `reset_and_shrink`) before that allocation is freed.
#[derive(Clone, Copy)]
pub(crate) struct SyncRef(NonNull<Shared>);

// SAFETY: `Shared` is `Sync` (atomics only); a `SyncRef` is a shared
// reference to one that lives as long as every holder (see above).
unsafe impl Send for SyncRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for SyncRef {}

impl SyncRef {
    fn shared(&self) -> &Shared {
        // SAFETY: the `Shared` outlives every holder of this reference (see
        // the type's docs) and is only ever accessed through `&`.
        unsafe { self.0.as_ref() }
    }

    /// The limit of all the parts, if any.
    #[inline]
    pub(crate) fn limit(&self) -> Option<&SharedLimit> {
        self.shared().limit.as_ref()
    }

    /// An allocation of a part is about to unwind at the limit.
    pub(crate) fn note_limit_unwind(&self) {
        self.shared().limit_unwinds.fetch_add(1, Ordering::Release);
    }
}

impl fmt::Debug for SyncRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncRef")
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

/// One thread's sub-arena.
struct Shard {
    /// Only ever used by the thread `owner` (through the thread-local cache
    /// or a list walk that matched `owner`), except for the owner-written
    /// atomics other threads read through `shards()` (`capacity_shared`,
    /// `bytes_allocated_shared`, `stats_shared`, `debug_stats_shared`), and
    /// for the walks under `&mut SyncArena`: `parts_mut` (resets, `debug`
    /// checks), `free_shards` (`reset_and_shrink`) and `drop`.
    arena: Arena,
    owner: ThreadId,
    /// Next older shard; immutable once the shard is published.
    next: *mut Shard,
}

#[cfg(not(loom))]
thread_local! {
    /// The last `SyncArena` this thread allocated from: its id and this
    /// thread's shard in it.
    static LAST: Cell<(u64, *const Shard)> = const { Cell::new((0, ptr::null())) };
}

#[cfg(loom)]
thread_local! {
    static LAST: Cell<(u64, *const Shard)> = Cell::new((0, ptr::null()));
}

/// An arena shared between threads (`Send + Sync`).
///
/// Every thread that allocates gets its own sub-arena, so allocation is a
/// plain bump with no atomic read-modify-write and no lock; see the module
/// docs. Memory and destructors are released together, by
/// [`reset`](Self::reset) or when the `SyncArena` is dropped.
///
/// ```
/// use std::sync::Arc;
/// use arena_b::SyncArena;
///
/// let arena = Arc::new(SyncArena::new());
/// let handles: Vec<_> = (0..4)
///     .map(|_| {
///         let arena = Arc::clone(&arena);
///         std::thread::spawn(move || {
///             // A scope's references cannot leave it: return the copied `&'static str`.
///             arena.scope(|scope| *scope.alloc("thread-local data"))
///         })
///     })
///     .collect();
/// for handle in handles {
///     assert_eq!(handle.join().unwrap(), "thread-local data");
/// }
/// ```
pub struct SyncArena {
    id: u64,
    /// Newest shard first. Boxed so that `SyncArena` itself has no interior
    /// mutability: `&SyncArena` then tells the compiler that `id` cannot
    /// change, and a loop of allocations keeps `id` in a register instead of
    /// loading it for every thread-cache check (17 instructions per `u64`
    /// allocation instead of 18, `scripts/callgrind-hot-path`). Keep every
    /// other field free of `Cell`s and atomics for the same reason.
    /// From `Box::into_raw` (`Box::leak`), freed in `drop`. A raw pointer,
    /// not a `Box`: parts hold `SyncRef`s into it, which moving a `Box` (a
    /// unique pointer) would invalidate.
    shared: NonNull<Shared>,
    config: Config,
    /// Feature `lockfree`: a shared buffer that serves small allocations
    /// while enabled (`ArenaBuilder::lockfree_buffer`).
    #[cfg(feature = "lockfree")]
    lockfree: Option<Box<crate::LockFreeAllocator>>,
}

// SAFETY: a shard's `Arena` is only used by its owner thread (found through
// the thread-local cache, keyed by this arena's unique id, or by matching
// `owner`), except for atomic telemetry reads and for `reset`/`drop`, which
// have exclusive access. The `&Arena` a thread can reach (through a `Scope`
// it runs, for one) is `!Send`, so it cannot carry the sub-arena to another
// thread. Values with destructors are `Send` (the allocation methods require
// it), so dropping them on any thread is fine.
unsafe impl Send for SyncArena {}
// SAFETY: as for `Send`: shared access only ever reaches the calling
// thread's own shard, plus atomics.
unsafe impl Sync for SyncArena {}

impl fmt::Debug for SyncArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncArena")
            .field("threads", &self.shards().count())
            .field("bytes_allocated", &self.bytes_allocated())
            .finish_non_exhaustive()
    }
}

impl Default for SyncArena {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncArena {
    /// An empty shared arena with the default settings. Allocates a few
    /// words (the list of parts); no memory for values until a thread
    /// allocates.
    pub fn new() -> SyncArena {
        crate::ArenaBuilder::new().build_sync()
    }

    pub(crate) fn from_config(mut config: Config) -> Result<SyncArena, crate::BuildError> {
        let out_of_memory = |bytes| {
            crate::BuildError::new(crate::error::BuildReason::Memory {
                what: "a SyncArena",
                bytes,
            })
        };
        // The limit bounds all threads' parts together, not each one.
        let shared = Shared {
            head: AtomicPtr::new(ptr::null_mut()),
            limit: config.allocation_limit.take().map(SharedLimit::new),
            limit_unwinds: AtomicU64::new(0),
        };
        let shared =
            crate::chunk::try_box(shared).ok_or(out_of_memory(core::mem::size_of::<Shared>()))?;
        let shared = NonNull::from(Box::leak(shared));
        config.sync = Some(SyncRef(shared));
        let arena = SyncArena {
            id: next_arena_id(),
            shared,
            #[cfg(feature = "lockfree")]
            lockfree: None,
            config,
        };
        #[cfg(feature = "lockfree")]
        let arena = {
            let mut arena = arena;
            if let Some((bytes, max)) = arena.config.lockfree_buffer {
                // On an error `arena` drops, which frees `shared`.
                let buffer = crate::LockFreeAllocator::try_with_max_size(bytes, max)?;
                arena.lockfree = Some(crate::chunk::try_box(buffer).ok_or(out_of_memory(
                    core::mem::size_of::<crate::LockFreeAllocator>(),
                ))?);
            }
            arena
        };
        Ok(arena)
    }

    /// The calling thread's part of this arena: the plain [`Arena`] that
    /// this thread's allocations go to (made on first use; if the system
    /// cannot give the few words that takes, `handle_alloc_error`; see
    /// [`try_local`](Self::try_local)).
    ///
    /// Every allocation through the `SyncArena` first finds the calling
    /// thread's part (a thread-local look-up and a compare). A hot loop can
    /// find it once and allocate through it directly, at [`Arena`]'s cost.
    /// What it allocates belongs to this `SyncArena` like any other of its
    /// allocations: counted in its stats and limit, freed by its reset.
    ///
    /// The part is bound to this thread: `&Arena` is not `Send` (`Arena` is
    /// not `Sync`), so it cannot reach another thread, and a `Send` future
    /// cannot hold it across an `.await` (where its task could move); take
    /// it again after the `.await`. Parts are freed only with `&mut self`,
    /// so the part outlives the borrow.
    ///
    /// Other tasks of the same thread allocate in the same part: take a
    /// [`checkpoint`](Arena::checkpoint) and rewind to it in one stretch of
    /// code with no `.await` between, or the rewind frees what they
    /// allocated meanwhile (breaking its `unsafe` contract).
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let mut arena = arena_b::SyncArena::new();
    /// let part = arena.local();
    /// let mut squares = Vec::new_in(part);
    /// squares.extend((0..100u64).map(|i| i * i));
    /// assert_eq!(squares[9], 81);
    /// assert!(arena.bytes_allocated() >= 800); // the SyncArena's bytes
    /// drop(squares);
    /// arena.reset();
    /// assert_eq!(arena.bytes_allocated(), 0);
    /// ```
    #[inline(always)]
    pub fn local(&self) -> &Arena {
        let (id, shard) = LAST.with(Cell::get);
        if id == self.id {
            // SAFETY: the cache holds this arena's current id, so `shard` is
            // this thread's shard of this (live: we have `&self`) arena;
            // shards are only freed by its drop or by `reset_and_shrink`,
            // which changes the id before freeing them.
            unsafe { &(*shard).arena }
        } else {
            self.local_slow_or_fail()
        }
    }

    /// This thread's sub-arena if the thread cache holds it.
    #[inline(always)]
    pub(crate) fn cached_local(&self) -> Option<&Arena> {
        let (id, shard) = LAST.with(Cell::get);
        // SAFETY: as in `local`.
        (id == self.id).then(|| unsafe { &(*shard).arena })
    }

    /// [`local`](Self::local), or the error of making this thread's part
    /// (it takes a few words from the system on a thread's first use).
    ///
    /// ```
    /// let arena = arena_b::SyncArena::new();
    /// let part = arena.try_local()?;
    /// assert_eq!(*part.try_alloc(7u32)?, 7);
    /// # Ok::<(), arena_b::AllocError>(())
    /// ```
    #[inline(always)]
    pub fn try_local(&self) -> Result<&Arena, AllocError> {
        let (id, shard) = LAST.with(Cell::get);
        if id == self.id {
            // SAFETY: as in `local`.
            Ok(unsafe { &(*shard).arena })
        } else {
            self.local_slow()
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn local_slow_or_fail(&self) -> &Arena {
        match self.local_slow() {
            Ok(arena) => arena,
            Err(e) => crate::typed::fail(e, Some(Layout::new::<Shard>())),
        }
    }

    #[cold]
    #[inline(never)]
    fn local_slow(&self) -> Result<&Arena, AllocError> {
        let me = thread::current().id();
        // Compare owners through raw pointers, not references: the pointer
        // cached below must keep the provenance of the list itself (from
        // `Box::into_raw`), not that of a shared reference, which `reset`'s
        // access through that provenance would invalidate.
        let found = self
            .shard_ptrs()
            // SAFETY: `owner` of a published shard never changes (see
            // `shard_ptrs`).
            .find(|&p| unsafe { (*p).owner } == me);
        let shard = match found {
            Some(shard) => shard,
            None => self.register(me)?,
        };
        LAST.with(|c| c.set((self.id, shard)));
        // SAFETY: `shard` is a published shard of this arena owned by this
        // thread; shards live until the arena is dropped or shrunk, both of
        // which need `&mut self`.
        Ok(unsafe { &(*shard).arena })
    }

    /// Publishes a new shard for thread `owner`; an error if the system
    /// allocator cannot give its few words.
    fn register(&self, owner: ThreadId) -> Result<*mut Shard, AllocError> {
        let mut config = self.config.clone();
        // Refusals of the part are this `SyncArena`'s (see `LimitExceeded::is_from`).
        config.owner = self.id;
        let arena = Arena::from_config(config, 0)?;
        let shard = crate::chunk::try_box(Shard {
            arena,
            owner,
            next: ptr::null_mut(),
        })
        .ok_or(AllocError::out_of_memory(
            core::mem::size_of::<Shard>(),
            core::mem::size_of::<Shard>(),
        ))?;
        let shard = Box::into_raw(shard);
        let head = &self.shared_ref().head;
        let mut next = head.load(Ordering::Acquire);
        loop {
            // SAFETY: `shard` is ours until the CAS below publishes it.
            unsafe { (*shard).next = next };
            match head.compare_exchange_weak(next, shard, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(shard),
                Err(now) => next = now,
            }
        }
    }

    /// Pointers to every published shard, newest first, with the
    /// provenance of `Box::into_raw`. Each shard's `next` is read before the
    /// shard is yielded, so the caller may free it (`drop`).
    ///
    /// Published shards are fully initialized before the Release CAS that
    /// made them reachable (paired with the Acquire loads here), their
    /// `owner` and `next` never change, and they live until the arena is
    /// dropped or `reset_and_shrink` frees them (both need `&mut self`).
    #[inline]
    fn shard_ptrs(&self) -> impl Iterator<Item = *mut Shard> {
        let mut next = self.shared_ref().head.load(Ordering::Acquire);
        core::iter::from_fn(move || {
            let shard = next;
            if shard.is_null() {
                return None;
            }
            // SAFETY: `shard` is published and live (see above).
            next = unsafe { (*shard).next };
            Some(shard)
        })
    }

    /// Every thread's part, mutably, newest first: for the work that needs
    /// `&mut SyncArena` (resets, `debug` checks).
    #[inline]
    fn parts_mut(&mut self) -> impl Iterator<Item = &mut Arena> {
        // SAFETY: each shard came from `Box::into_raw` (mutable provenance)
        // and is live (see `shard_ptrs`); `&mut self` means no thread is
        // using any of them, and each is yielded once, so the `&mut`s do not
        // overlap (the walk reads only `next`, a field outside them).
        self.shard_ptrs()
            .map(|shard| unsafe { &mut (*shard).arena })
    }

    /// Every published shard, newest first.
    #[inline]
    fn shards(&self) -> impl Iterator<Item = &Shard> {
        // SAFETY: see `shard_ptrs`. Through this shared reference other
        // threads only read `owner` and `next` and the owner-written atomics
        // of the sub-arena; its other fields are touched only by the owner
        // thread, or under `&mut SyncArena`.
        self.shard_ptrs().map(|p| unsafe { &*p })
    }

    /// What the threads share (see `SyncRef`).
    #[inline]
    fn shared_ref(&self) -> &Shared {
        // SAFETY: `shared` came from `Box::leak` and is freed only by
        // `drop`; it is only ever accessed through `&`.
        unsafe { self.shared.as_ref() }
    }

    /// The calling thread's handle for allocating: its part, or (feature
    /// `lockfree`, while the shared buffer is enabled) the arena, whose
    /// part is found only when the buffer cannot serve, so that threads
    /// the buffer serves never get a part of their own.
    #[inline(always)]
    fn handle(&self) -> SyncBump<'_> {
        #[cfg(feature = "lockfree")]
        if let Some(buffer) = self.enabled_buffer() {
            return SyncBump::Shared(self, buffer);
        }
        SyncBump::Part(self.local())
    }

    /// [`handle`](Self::handle), or the error of making this thread's part.
    #[inline(always)]
    fn try_handle(&self) -> Result<SyncBump<'_>, AllocError> {
        #[cfg(feature = "lockfree")]
        if let Some(buffer) = self.enabled_buffer() {
            return Ok(SyncBump::Shared(self, buffer));
        }
        Ok(SyncBump::Part(self.try_local()?))
    }

    /// Feature `lockfree`: the shared buffer, if there is one and it is
    /// enabled.
    #[cfg(feature = "lockfree")]
    #[inline(always)]
    fn enabled_buffer(&self) -> Option<&crate::LockFreeAllocator> {
        self.lockfree.as_deref().filter(|b| b.is_enabled())
    }

    /// The calling thread's epoch of memory reuse in this arena: it changes
    /// when the thread's part is rewound to a checkpoint or reset. Memory
    /// that this thread allocated from the arena is not handed out again by
    /// the arena as long as `local_epoch()` on this thread returns the value
    /// it returned when the memory was allocated (scope exits and
    /// `Allocator` frees give back only their own blocks), so a holder can
    /// recycle such memory itself, on this thread, while the epoch holds.
    ///
    /// ```
    /// let arena = arena_b::SyncArena::new();
    /// let epoch = arena.local_epoch();
    /// arena.alloc(1u64);
    /// arena.scope(|s| *s.alloc(2u64));
    /// assert_eq!(arena.local_epoch(), epoch);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert_ne!(arena.local_epoch(), epoch, "another thread, another part"));
    /// });
    /// ```
    pub fn local_epoch(&self) -> LocalEpoch {
        let part = self.local();
        LocalEpoch {
            part: part.id,
            generation: part.reuse_generation.get(),
        }
    }

    /// Allocations that unwound at the allocation limit since the last
    /// reset (`LimitPolicy::Unwind`), on any thread: a layer that catches
    /// the unwinds of its own request can tell whether one happened out of
    /// its reach (in a spawned task, say).
    ///
    /// ```
    /// use arena_b::{catch_limit, Arena, LimitPolicy};
    /// let mut arena = Arena::builder()
    ///     .allocation_limit(4096)
    ///     .limit_policy(LimitPolicy::Unwind)
    ///     .build_sync();
    /// assert!(catch_limit(|| arena.alloc_slice_fast(&[0u8; 8192]).len()).is_err());
    /// assert_eq!(arena.limit_unwinds(), 1);
    /// arena.reset();
    /// assert_eq!(arena.limit_unwinds(), 0);
    /// ```
    #[inline]
    pub fn limit_unwinds(&self) -> u64 {
        self.shared_ref().limit_unwinds.load(Ordering::Acquire)
    }

    /// Feature `lockfree`: the shared lock-free buffer small allocations go
    /// to while it is enabled, if the arena was built with
    /// [`ArenaBuilder::lockfree_buffer`](crate::ArenaBuilder::lockfree_buffer).
    ///
    /// ```
    /// let arena = arena_b::Arena::builder().lockfree_buffer(64 * 1024, 128).build_sync();
    /// let buffer = arena.lockfree_allocator().unwrap();
    /// arena.alloc(1u64); // served by the shared buffer
    /// buffer.disable();
    /// arena.alloc(2u64); // served by this thread's part
    /// assert_eq!(buffer.cache_hit_rate(), 1.0);
    /// assert_eq!(arena.threads(), 1);
    /// ```
    #[cfg(feature = "lockfree")]
    pub fn lockfree_allocator(&self) -> Option<&crate::LockFreeAllocator> {
        self.lockfree.as_deref()
    }

    /// A scope on this thread's part of the arena: freed when `f` returns
    /// or unwinds. Many threads may run scopes at once.
    pub fn scope<R>(&self, f: impl FnOnce(&Scope<'_>) -> R) -> R {
        self.local().scope(f)
    }

    /// Frees everything, on every thread's part (destructors run), keeping
    /// the chunks for reuse.
    pub fn reset(&mut self) {
        self.shared_ref().limit_unwinds.store(0, Ordering::Relaxed);
        for part in self.parts_mut() {
            part.reset();
        }
        // After the parts' destructors, which might still read it (with
        // `debug`, the reset poisons it).
        #[cfg(feature = "lockfree")]
        if let Some(buffer) = &mut self.lockfree {
            buffer.reset();
        }
    }

    /// What a pool does between two users of the arena, in one walk over
    /// the threads' parts: [`reset`](Self::reset) and
    /// [`reset_peak`](Self::reset_peak), or, when the arena owns more than
    /// `max_capacity` bytes of chunks or parts for more than `max_threads`
    /// threads, [`reset_and_shrink`](Self::reset_and_shrink). Returns the
    /// bytes of chunks it keeps.
    ///
    /// ```
    /// let mut arena = arena_b::Arena::builder().chunk_size(4096).build_sync();
    /// arena.alloc_slice_fill_copy(1000, 0u8);
    /// assert_eq!(arena.reset_for_reuse(64 * 1024, 8), 4096); // kept
    /// assert_eq!(arena.bytes_allocated(), 0);
    /// arena.alloc_slice_fill_copy(100_000, 0u8);
    /// assert_eq!(arena.reset_for_reuse(64 * 1024, 8), 0); // too big: shrunk
    /// ```
    #[inline]
    pub fn reset_for_reuse(&mut self, max_capacity: usize, max_threads: usize) -> usize {
        self.shared_ref().limit_unwinds.store(0, Ordering::Relaxed);
        let (mut capacity, mut threads) = (self.shared_buffer_capacity(), 0);
        let mut too_big = capacity > max_capacity;
        for arena in self.parts_mut() {
            capacity += arena.capacity_shared();
            threads += 1;
            if too_big || capacity > max_capacity || threads > max_threads {
                // Freed below as it is: a reset would first merge its
                // chunks into one (a new allocation of their total size).
                too_big = true;
                break;
            }
            // The peak is cleared, so not sampled first.
            arena.reset_unsampled();
            arena.clear_peak();
        }
        if too_big {
            // The parts reset already only give their chunks back.
            self.reset_and_shrink();
            return self.capacity();
        }
        #[cfg(feature = "lockfree")]
        if let Some(buffer) = &mut self.lockfree {
            buffer.reset();
        }
        capacity
    }

    /// Frees everything, like [`reset`](Self::reset), and gives every
    /// chunk back to the system, forgetting the per-thread parts too
    /// (those of threads that have exited would otherwise stay until the
    /// arena is dropped). What a pool does before keeping an arena that grew
    /// large. A shared lock-free buffer (feature `lockfree`) is kept, empty.
    ///
    /// ```
    /// let mut arena = arena_b::SyncArena::new();
    /// arena.alloc_slice_fast(&[0u8; 100_000]);
    /// arena.reset_and_shrink();
    /// assert_eq!((arena.capacity(), arena.threads()), (0, 0));
    /// arena.alloc(1u8);
    /// ```
    pub fn reset_and_shrink(&mut self) {
        // Threads' caches may hold the old id with a pointer to a part
        // about to be freed: a fresh id makes them miss. It is taken first,
        // so that a destructor panicking below cannot leave the old id
        // (and with it a dangling cache entry) in place.
        self.id = next_arena_id();
        self.shared_ref().limit_unwinds.store(0, Ordering::Relaxed);
        self.free_shards();
        // After the parts' destructors, as in `reset`.
        #[cfg(feature = "lockfree")]
        if let Some(buffer) = &mut self.lockfree {
            buffer.reset();
        }
    }

    /// Drops every part (running destructors) and empties the list.
    fn free_shards(&mut self) {
        let mut shards = self.shard_ptrs();
        // Unlink first: if a destructor panics, the rest are leaked, never
        // freed twice.
        self.shared_ref()
            .head
            .store(ptr::null_mut(), Ordering::Relaxed);
        for shard in &mut shards {
            // SAFETY: we own every shard (made by `Box::into_raw`, freed
            // once, here, after `shard_ptrs` has read its `next`); `&mut
            // self` excludes other users, and the list no longer holds it.
            drop(unsafe { Box::from_raw(shard) });
        }
    }

    /// Restarts `peak_bytes` from the bytes allocated now, on every
    /// thread's part: for a pooled arena whose next user wants its own
    /// high-water mark.
    ///
    /// ```
    /// let mut arena = arena_b::SyncArena::new();
    /// arena.alloc_slice_fast(&[0u8; 10_000]);
    /// arena.reset();
    /// arena.reset_peak();
    /// assert_eq!(arena.stats().peak_bytes, 0);
    /// ```
    pub fn reset_peak(&mut self) {
        for part in self.parts_mut() {
            part.reset_peak();
        }
    }

    /// Feature `slab`: an allocator for this thread's part of the arena
    /// that reuses the blocks its collections give back. See
    /// [`ThreadSlab`](crate::ThreadSlab).
    #[cfg(feature = "slab")]
    pub fn thread_slab(&self) -> crate::slab::ThreadSlab<'_> {
        crate::slab::ThreadSlab::new(self.local())
    }

    /// Number of threads that have allocated from this arena.
    #[inline]
    pub fn threads(&self) -> usize {
        self.shards().count()
    }
}

impl Drop for SyncArena {
    fn drop(&mut self) {
        /// Frees the shared allocation after the parts, even if a
        /// destructor of theirs panics.
        struct FreeShared(NonNull<Shared>);
        impl Drop for FreeShared {
            fn drop(&mut self) {
                // SAFETY: made by `Box::leak` in `from_config`, freed once,
                // here, after every part that refers to it is gone
                // (`free_shards` unlinks them first; the ones a panicking
                // destructor left are leaked and never touch it again).
                drop(unsafe { Box::from_raw(self.0.as_ptr()) });
            }
        }
        let _free = FreeShared(self.shared);
        self.free_shards();
    }
}

impl crate::limit::Refuses for SyncArena {
    fn refusal_id(&self) -> u64 {
        self.id
    }
}

/// The calling thread's epoch of memory reuse in a [`SyncArena`], from
/// [`SyncArena::local_epoch`]: its part, and how many times that part was
/// rewound or reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalEpoch {
    part: u64,
    generation: u64,
}

impl LocalEpoch {
    /// Whether both are epochs of the same thread's part of the same arena
    /// (the one may be older than the other).
    ///
    /// ```
    /// let arena = arena_b::SyncArena::new();
    /// let a = arena.local_epoch();
    /// assert!(a.same_part(&arena.local_epoch()));
    /// ```
    pub fn same_part(&self, other: &LocalEpoch) -> bool {
        self.part == other.part
    }
}
