//! [`ArenaBuilder`]: declarative arena configuration.

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arena::Arena;
use crate::error::{BuildError, BuildReason};
use crate::stats::{DiagnosticEvent, Sink, SinkDebug};
#[cfg(feature = "std")]
use crate::sync::SyncArena;

/// Default size of the first chunk.
pub const DEFAULT_CHUNK_SIZE: usize = 8 * 1024;
/// Default of [`ArenaBuilder::decommit_threshold`] (feature `virtual_memory`).
#[cfg(feature = "virtual_memory")]
pub const DEFAULT_DECOMMIT_THRESHOLD: usize = 1 << 20;
/// Default cap on the size that chunk growth doubles up to.
pub const DEFAULT_MAX_CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// Whether the arena will be used from one thread or shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ThreadSafety {
    /// One owner at a time: [`ArenaBuilder::build`] gives an [`Arena`]
    /// (`Send`, not `Sync`).
    #[default]
    SingleThreaded,
    /// Shared between threads: [`ArenaBuilder::build_sync`] gives a
    /// [`SyncArena`](crate::SyncArena); `build` refuses this setting rather
    /// than silently ignoring it.
    Shared,
}

/// The configuration an arena was built with.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) chunk_size: usize,
    pub(crate) max_chunk_size: usize,
    pub(crate) allocation_limit: Option<usize>,
    /// What a refusal at the limit does.
    pub(crate) limit_policy: crate::LimitPolicy,
    /// What a limit refusal's message tells the user to do.
    pub(crate) limit_advice: &'static str,
    /// The `SyncArena` this arena is a per-thread part of, if it is one:
    /// its limit (counted over all parts: chunk bytes are taken from it
    /// before a chunk is allocated and given back when the chunk is freed)
    /// and its counters.
    #[cfg(feature = "std")]
    pub(crate) sync: Option<crate::sync::SyncRef>,
    /// The id limit refusals carry (`LimitExceeded::is_from`): the
    /// `SyncArena`'s for a part, the arena's own otherwise (0 until set).
    pub(crate) owner: u64,
    pub(crate) sink: Option<Sink>,
    /// Feature `debug`: capture a backtrace when a chunk is taken.
    #[cfg(feature = "debug")]
    pub(crate) debug_backtrace: bool,
    /// Feature `virtual_memory`: see `ArenaBuilder::decommit_threshold`.
    #[cfg(feature = "virtual_memory")]
    pub(crate) decommit_threshold: usize,
    /// Feature `lockfree`: (buffer bytes, largest request) of a
    /// `SyncArena`'s shared lock-free buffer.
    #[cfg(feature = "lockfree")]
    pub(crate) lockfree_buffer: Option<(usize, usize)>,
}

/// Chunk bytes that a group of arenas may own together.
#[derive(Debug)]
pub(crate) struct SharedLimit {
    pub(crate) limit: usize,
    used: AtomicUsize,
}

impl SharedLimit {
    #[cfg(feature = "std")]
    pub(crate) fn new(limit: usize) -> Self {
        SharedLimit {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` whether or not they fit (an allocation allowed past
    /// the limit while its thread unwinds).
    pub(crate) fn take(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Takes `bytes` if they fit under the limit.
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok()
    }

    pub(crate) fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Config {
    /// The error for `requested` bytes refused at `limit`.
    pub(crate) fn limit_error(&self, requested: usize, limit: usize) -> crate::AllocError {
        crate::AllocError::limit_exceeded(
            requested,
            limit,
            self.limit_advice,
            matches!(self.limit_policy, crate::LimitPolicy::Unwind),
            self.owner,
        )
    }

    /// The limit shared with the other parts of a `SyncArena`, if any.
    #[inline]
    pub(crate) fn shared_limit(&self) -> Option<&SharedLimit> {
        #[cfg(feature = "std")]
        return self.sync.as_ref().and_then(|s| s.limit());
        #[cfg(not(feature = "std"))]
        return None;
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("chunk_size", &self.chunk_size)
            .field("max_chunk_size", &self.max_chunk_size)
            .field("allocation_limit", &self.allocation_limit)
            .field("limit_policy", &self.limit_policy)
            .field("diagnostics", &SinkDebug(&self.sink))
            .finish()
    }
}

/// Configures and builds an [`Arena`].
///
/// ```
/// use arena_b::Arena;
///
/// let arena = Arena::builder()
///     .chunk_size(64 * 1024)        // first chunk
///     .max_chunk_size(1 << 20)      // growth doubles up to 1 MiB chunks
///     .reserve_size(256 * 1024)     // allocated up front
///     .allocation_limit(16 << 20)   // try_* fails beyond 16 MiB of chunks
///     .diagnostics(|event| {
///         // forward to your logger or metrics
///         let _ = event;
///     })
///     .try_build()
///     .expect("valid settings");
/// assert!(arena.capacity() >= 256 * 1024);
/// ```
#[derive(Clone)]
#[must_use]
pub struct ArenaBuilder {
    chunk_size: usize,
    max_chunk_size: Option<usize>,
    reserve_size: usize,
    allocation_limit: Option<usize>,
    limit_policy: crate::LimitPolicy,
    limit_advice: &'static str,
    thread_safety: ThreadSafety,
    sink: Option<Sink>,
    #[cfg(feature = "debug")]
    debug_backtrace: bool,
    #[cfg(feature = "virtual_memory")]
    virtual_memory: Option<usize>,
    #[cfg(feature = "virtual_memory")]
    virtual_memory_strict: bool,
    #[cfg(feature = "virtual_memory")]
    decommit_threshold: usize,
    #[cfg(feature = "lockfree")]
    lockfree_buffer: Option<(usize, usize)>,
}

impl fmt::Debug for ArenaBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaBuilder")
            .field("chunk_size", &self.chunk_size)
            .field("max_chunk_size", &self.max_chunk_size)
            .field("reserve_size", &self.reserve_size)
            .field("allocation_limit", &self.allocation_limit)
            .field("thread_safety", &self.thread_safety)
            .field("diagnostics", &SinkDebug(&self.sink))
            .finish()
    }
}

impl Default for ArenaBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Largest chunk we will ask the system for: keeps `Layout` arithmetic far
/// from overflow.
pub(crate) const MAX_CHUNK: usize = isize::MAX as usize / 4;

impl ArenaBuilder {
    /// A builder with the defaults of [`Arena::new`].
    pub fn new() -> Self {
        ArenaBuilder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_chunk_size: None,
            reserve_size: 0,
            allocation_limit: None,
            limit_policy: crate::LimitPolicy::ReturnError,
            limit_advice: crate::limit::DEFAULT_ADVICE,
            thread_safety: ThreadSafety::SingleThreaded,
            sink: None,
            #[cfg(feature = "debug")]
            debug_backtrace: false,
            #[cfg(feature = "virtual_memory")]
            virtual_memory: None,
            #[cfg(feature = "virtual_memory")]
            virtual_memory_strict: false,
            #[cfg(feature = "virtual_memory")]
            decommit_threshold: DEFAULT_DECOMMIT_THRESHOLD,
            #[cfg(feature = "lockfree")]
            lockfree_buffer: None,
        }
    }

    /// Size in bytes of the first chunk allocated on demand (default 8 KiB).
    /// Later chunks double the arena's capacity up to
    /// [`max_chunk_size`](Self::max_chunk_size).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Upper bound of chunk growth (default 4 MiB, and never below
    /// `chunk_size`). An allocation larger than this still succeeds in a
    /// chunk of its own.
    pub fn max_chunk_size(mut self, bytes: usize) -> Self {
        self.max_chunk_size = Some(bytes);
        self
    }

    /// Bytes allocated up front as the first chunk (default 0: the first
    /// chunk is allocated by the first allocation). `reset_and_shrink`
    /// keeps this chunk.
    pub fn reserve_size(mut self, bytes: usize) -> Self {
        self.reserve_size = bytes;
        self
    }

    /// Most bytes of chunks the arena may own. An allocation that would need
    /// more fails: `try_*` methods return
    /// [`AllocErrorKind::LimitExceeded`](crate::AllocErrorKind::LimitExceeded),
    /// the plain ones panic.
    ///
    /// Collections in the arena (`allocator_api2::vec::Vec`, hashbrown
    /// maps) turn a refusal into `handle_alloc_error`, which aborts the
    /// process; [`limit_policy`](Self::limit_policy) can make them unwind
    /// instead.
    pub fn allocation_limit(mut self, bytes: usize) -> Self {
        self.allocation_limit = Some(bytes);
        self
    }

    /// What an allocation does at the [`allocation_limit`](Self::allocation_limit)
    /// (default [`LimitPolicy::ReturnError`](crate::LimitPolicy::ReturnError)):
    /// see [`LimitPolicy`](crate::LimitPolicy).
    ///
    /// ```
    /// use arena_b::{catch_limit, Arena, LimitPolicy};
    ///
    /// let arena = Arena::builder()
    ///     .allocation_limit(4096)
    ///     .limit_policy(LimitPolicy::Unwind)
    ///     .build();
    /// let mut map = hashbrown::HashMap::new_in(&arena);
    /// let err = catch_limit(|| {
    ///     for i in 0..100_000u64 {
    ///         map.insert(i, i);
    ///     }
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.limit(), 4096);
    /// ```
    pub fn limit_policy(mut self, policy: crate::LimitPolicy) -> Self {
        self.limit_policy = policy;
        self
    }

    /// What the message of a limit refusal tells the user to do (default:
    /// "raise ArenaBuilder::allocation_limit or reset the arena"). For
    /// crates that build arenas for their users and set the limit from a
    /// setting of their own, so the message names that setting.
    ///
    /// ```
    /// let arena = arena_b::Arena::builder()
    ///     .allocation_limit(1024)
    ///     .limit_advice("raise Config::scratch_bytes")
    ///     .build();
    /// let err = arena.try_alloc_slice_fast(&[0u8; 2048]).unwrap_err();
    /// assert!(err.to_string().ends_with("raise Config::scratch_bytes"));
    /// ```
    pub fn limit_advice(mut self, advice: &'static str) -> Self {
        self.limit_advice = advice;
        self
    }

    /// Feature `debug`: capture a backtrace each time the arena takes a
    /// chunk, so that [`Arena::leak_report`] says where the allocations
    /// that still hold memory came from. Costs a backtrace per chunk.
    ///
    /// ```
    /// let arena = arena_b::Arena::builder().debug_backtrace(true).build();
    /// arena.alloc(1u32);
    /// assert_eq!(arena.leak_report().unwrap().backtraces.len(), 1);
    /// ```
    #[cfg(feature = "debug")]
    pub fn debug_backtrace(mut self, capture: bool) -> Self {
        self.debug_backtrace = capture;
        self
    }

    /// Feature `virtual_memory`: reserve `reserve_bytes` of address space
    /// up front and use it as one contiguous region, committed as the bump
    /// pointer advances (see [`Arena::with_virtual_memory`]). Allocations
    /// beyond the reservation go to heap chunks as usual. If the
    /// reservation fails the arena uses heap chunks and reports
    /// [`DiagnosticEvent::VirtualMemoryUnavailable`], unless
    /// [`virtual_memory_strict`](Self::virtual_memory_strict) is set.
    ///
    /// ```
    /// let arena = arena_b::Arena::builder()
    ///     .virtual_memory(256 << 20)
    ///     .decommit_threshold(1 << 20)
    ///     .try_build()
    ///     .unwrap();
    /// arena.alloc([0u8; 4096]);
    /// ```
    #[cfg(feature = "virtual_memory")]
    pub fn virtual_memory(mut self, reserve_bytes: usize) -> Self {
        self.virtual_memory = Some(reserve_bytes);
        self
    }

    /// Feature `virtual_memory`: make a failed reservation a
    /// [`BuildError`] instead of a fallback to heap chunks.
    ///
    /// ```
    /// let err = arena_b::Arena::builder()
    ///     .virtual_memory(usize::MAX / 2) // more address space than exists
    ///     .virtual_memory_strict(true)
    ///     .try_build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("virtual memory"));
    /// ```
    #[cfg(feature = "virtual_memory")]
    pub fn virtual_memory_strict(mut self, strict: bool) -> Self {
        self.virtual_memory_strict = strict;
        self
    }

    /// Feature `virtual_memory`: a rewind or reset that leaves more than
    /// `bytes` committed above the bump pointer gives the pages beyond that
    /// back to the system (default 1 MiB). Smaller values return memory
    /// sooner at the cost of more system calls when the arena grows again.
    #[cfg(feature = "virtual_memory")]
    pub fn decommit_threshold(mut self, bytes: usize) -> Self {
        self.decommit_threshold = bytes;
        self
    }

    /// Feature `lockfree`: give the [`SyncArena`] a shared
    /// [`LockFreeAllocator`](crate::LockFreeAllocator) of `bytes` that
    /// serves allocations of up to `max_size` bytes (without destructors)
    /// from every thread while it is enabled (it starts enabled; see
    /// [`SyncArena::lockfree_allocator`]). Larger requests, values with
    /// destructors and requests that find it full go to the calling
    /// thread's part as usual.
    #[cfg(feature = "lockfree")]
    pub fn lockfree_buffer(mut self, bytes: usize, max_size: usize) -> Self {
        self.lockfree_buffer = Some((bytes, max_size));
        self
    }

    /// Single-threaded ([`build`](Self::build)) or shared between threads.
    pub fn thread_safety(mut self, mode: ThreadSafety) -> Self {
        self.thread_safety = mode;
        self
    }

    /// A callback that receives [`DiagnosticEvent`]s (chunks allocated and
    /// freed, limit reached, out of memory). It runs on the allocating
    /// thread, off the fast path. With feature `tracing` the same events are
    /// also emitted as `tracing` events.
    pub fn diagnostics(mut self, sink: impl Fn(&DiagnosticEvent) + Send + Sync + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Checks the settings and builds the arena.
    ///
    /// ```
    /// let err = arena_b::Arena::builder()
    ///     .chunk_size(1 << 20)
    ///     .max_chunk_size(4096)
    ///     .try_build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("max_chunk_size"));
    /// ```
    pub fn try_build(self) -> Result<Arena, BuildError> {
        if self.thread_safety == ThreadSafety::Shared {
            return Err(BuildError::new(BuildReason::SharedForBuild));
        }
        #[cfg(feature = "lockfree")]
        if self.lockfree_buffer.is_some() {
            return Err(BuildError::new(BuildReason::LockfreeForBuild));
        }
        let reserve = self.reserve_size;
        #[cfg(feature = "virtual_memory")]
        let (vm, strict) = (self.virtual_memory, self.virtual_memory_strict);
        let config = self.validate()?;
        #[cfg(feature = "virtual_memory")]
        if let Some(bytes) = vm {
            let initial = config.chunk_size.max(reserve);
            match crate::chunk::RawChunk::reserve_virtual(bytes, initial) {
                Ok(region) => {
                    return Arena::from_parts(config, 0, Some(region)).map_err(|error| {
                        BuildError::new(BuildReason::VirtualMemoryArena { error })
                    });
                }
                Err(error) if strict => {
                    return Err(BuildError::new(BuildReason::VirtualMemoryStrict {
                        bytes,
                        error,
                    }));
                }
                Err(reason) => crate::stats::report(
                    config.sink.as_ref(),
                    DiagnosticEvent::VirtualMemoryUnavailable {
                        requested: bytes,
                        reason,
                    },
                ),
            }
        }
        Arena::from_config(config, reserve).map_err(|error| {
            BuildError::new(BuildReason::Reserve {
                bytes: reserve,
                error,
            })
        })
    }

    /// Checks the settings and builds a [`SyncArena`] (every thread that
    /// allocates gets a sub-arena with these settings; `allocation_limit`
    /// bounds the chunks of all threads together).
    ///
    /// ```
    /// let arena = arena_b::Arena::builder().chunk_size(64 * 1024).try_build_sync().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| arena.alloc(1u32));
    ///     s.spawn(|| arena.alloc(2u32));
    /// });
    /// assert_eq!(arena.threads(), 2);
    /// ```
    #[cfg(feature = "std")]
    pub fn try_build_sync(self) -> Result<SyncArena, BuildError> {
        #[cfg(feature = "virtual_memory")]
        if self.virtual_memory.is_some() {
            return Err(BuildError::new(BuildReason::VirtualMemoryForSync));
        }
        if self.reserve_size != 0 {
            return Err(BuildError::new(BuildReason::ReserveForSync));
        }
        #[cfg(feature = "lockfree")]
        if let Some((bytes, _)) = self.lockfree_buffer {
            if bytes == 0 || bytes > MAX_CHUNK {
                return Err(BuildError::new(BuildReason::LockfreeSize {
                    bytes,
                    max: MAX_CHUNK,
                }));
            }
        }
        SyncArena::from_config(self.validate()?)
    }

    /// Builds a [`SyncArena`], panicking with the [`BuildError`] message on
    /// an invalid setting. See [`try_build_sync`](Self::try_build_sync).
    #[track_caller]
    #[cfg(feature = "std")]
    pub fn build_sync(self) -> SyncArena {
        match self.try_build_sync() {
            Ok(arena) => arena,
            Err(e) => panic!("{e}"),
        }
    }

    fn validate(self) -> Result<Config, BuildError> {
        if self.chunk_size == 0 {
            return Err(BuildError::new(BuildReason::ChunkSizeZero));
        }
        if self.chunk_size > MAX_CHUNK {
            return Err(BuildError::new(BuildReason::ChunkSizeTooLarge {
                size: self.chunk_size,
                max: MAX_CHUNK,
            }));
        }
        let max_chunk_size = match self.max_chunk_size {
            Some(max) if max < self.chunk_size => {
                return Err(BuildError::new(BuildReason::MaxBelowChunk {
                    max,
                    chunk: self.chunk_size,
                }))
            }
            Some(max) => max.min(MAX_CHUNK),
            None => DEFAULT_MAX_CHUNK_SIZE.max(self.chunk_size),
        };
        if self.reserve_size > MAX_CHUNK {
            return Err(BuildError::new(BuildReason::ReserveTooLarge {
                reserve: self.reserve_size,
                max: MAX_CHUNK,
            }));
        }
        if let Some(limit) = self.allocation_limit {
            if self.reserve_size > limit {
                return Err(BuildError::new(BuildReason::ReserveOverLimit {
                    reserve: self.reserve_size,
                    limit,
                }));
            }
        }
        Ok(Config {
            chunk_size: self.chunk_size,
            max_chunk_size,
            allocation_limit: self.allocation_limit,
            limit_policy: self.limit_policy,
            limit_advice: self.limit_advice,
            #[cfg(feature = "std")]
            sync: None,
            owner: 0,
            sink: self.sink,
            #[cfg(feature = "debug")]
            debug_backtrace: self.debug_backtrace,
            #[cfg(feature = "virtual_memory")]
            decommit_threshold: self.decommit_threshold,
            #[cfg(feature = "lockfree")]
            lockfree_buffer: self.lockfree_buffer,
        })
    }

    /// Builds the arena, panicking with the [`BuildError`] message on an
    /// invalid setting. See [`try_build`](Self::try_build).
    #[track_caller]
    pub fn build(self) -> Arena {
        match self.try_build() {
            Ok(arena) => arena,
            Err(e) => panic!("{e}"),
        }
    }
}
