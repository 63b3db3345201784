//! Errors returned by the fallible (`try_*`) allocation methods and by
//! [`ArenaBuilder::try_build`](crate::ArenaBuilder::try_build).

#[allow(unused_imports)]
use crate::prelude::*;
use core::fmt;

/// Why an allocation could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllocErrorKind {
    /// The requested size overflowed `isize::MAX` (for example a slice
    /// length times the element size).
    LayoutOverflow,
    /// Serving the request would have taken the arena past the
    /// [`allocation_limit`](crate::ArenaBuilder::allocation_limit) it was
    /// built with.
    LimitExceeded,
    /// The system allocator returned null.
    OutOfMemory,
}

/// An allocation failed; [`kind`](AllocError::kind) says why.
///
/// Returned by every `try_*` method. The plain methods (`alloc`,
/// `alloc_str`, ...) panic with the same message instead, call
/// [`alloc::alloc::handle_alloc_error`] when the system is out of memory, or,
/// under [`LimitPolicy::Unwind`](crate::LimitPolicy::Unwind), unwind with a
/// [`LimitExceeded`](crate::LimitExceeded) at the allocation limit.
///
/// Making one never allocates (the numbers are kept, and formatted only by
/// `Display`), so the error path works when the system allocator is out of
/// memory.
///
/// ```
/// use arena_b::{Arena, AllocErrorKind};
///
/// let arena = Arena::builder().chunk_size(1024).allocation_limit(1024).build();
/// let err = arena.try_alloc_slice_fill_iter(0..10_000u32).unwrap_err();
/// assert_eq!(err.kind(), AllocErrorKind::LimitExceeded);
/// assert_eq!(err.limit(), Some(1024));
/// assert!(err.to_string().contains("ArenaBuilder::allocation_limit"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllocError {
    kind: AllocErrorKind,
    requested: usize,
    /// The limit (`LimitExceeded`) or the chunk size asked of the system
    /// (`OutOfMemory`).
    detail: usize,
    /// What to do about a `LimitExceeded` (names the setting).
    advice: &'static str,
    /// The arena's [`LimitPolicy`](crate::LimitPolicy) is `Unwind`.
    unwind: bool,
    /// The id of the arena that refused (see `Config::owner`).
    owner: u64,
}

impl AllocError {
    pub(crate) const fn new(kind: AllocErrorKind, requested: usize) -> Self {
        Self {
            kind,
            requested,
            detail: 0,
            advice: "",
            unwind: false,
            owner: 0,
        }
    }

    pub(crate) const fn overflow() -> Self {
        Self::new(AllocErrorKind::LayoutOverflow, usize::MAX)
    }

    /// `requested` bytes would take the arena past `limit`.
    pub(crate) const fn limit_exceeded(
        requested: usize,
        limit: usize,
        advice: &'static str,
        unwind: bool,
        owner: u64,
    ) -> Self {
        Self {
            kind: AllocErrorKind::LimitExceeded,
            requested,
            detail: limit,
            advice,
            unwind,
            owner,
        }
    }

    /// The system allocator could not provide a chunk of `chunk` bytes for
    /// a request of `requested` bytes.
    pub(crate) const fn out_of_memory(requested: usize, chunk: usize) -> Self {
        Self {
            kind: AllocErrorKind::OutOfMemory,
            requested,
            detail: chunk,
            advice: "",
            unwind: false,
            owner: 0,
        }
    }

    /// Why the allocation failed.
    pub const fn kind(&self) -> AllocErrorKind {
        self.kind
    }

    /// The number of bytes that were requested (`usize::MAX` when the size
    /// itself overflowed).
    pub const fn requested(&self) -> usize {
        self.requested
    }

    /// The allocation limit that refused the request, for
    /// [`AllocErrorKind::LimitExceeded`].
    pub const fn limit(&self) -> Option<usize> {
        match self.kind {
            AllocErrorKind::LimitExceeded => Some(self.detail),
            _ => None,
        }
    }

    /// The size of the chunk the system allocator could not provide, for
    /// [`AllocErrorKind::OutOfMemory`].
    pub const fn chunk_size(&self) -> Option<usize> {
        match self.kind {
            AllocErrorKind::OutOfMemory => Some(self.detail),
            _ => None,
        }
    }

    /// The arena that refused is set to unwind at its limit.
    pub(crate) const fn unwinds(&self) -> bool {
        self.unwind
    }

    pub(crate) const fn advice(&self) -> &'static str {
        self.advice
    }

    pub(crate) const fn owner(&self) -> u64 {
        self.owner
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AllocErrorKind::LayoutOverflow => f.write_str(
                "arena-b: allocation size overflows isize::MAX; check the length you asked for",
            ),
            AllocErrorKind::LimitExceeded => {
                crate::limit::write_limit_message(f, self.requested, self.detail, self.advice)
            }
            AllocErrorKind::OutOfMemory => write!(
                f,
                "arena-b: the system allocator could not provide a chunk of {} bytes (for a \
                 request of {} bytes)",
                self.detail, self.requested
            ),
        }
    }
}

impl core::error::Error for AllocError {}

impl From<AllocError> for allocator_api2::alloc::AllocError {
    fn from(_: AllocError) -> Self {
        allocator_api2::alloc::AllocError
    }
}

/// An arena could not be built: an [`ArenaBuilder`](crate::ArenaBuilder)
/// setting was invalid, or the memory it asks for up front could not be
/// had. Like [`AllocError`], making one never allocates.
///
/// ```
/// use arena_b::Arena;
///
/// let err = Arena::builder().chunk_size(0).try_build().unwrap_err();
/// assert!(err.to_string().contains("chunk_size"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(BuildReason);

/// Why a build failed; the numbers are formatted by `Display` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Some reasons belong to optional features.
#[cfg_attr(
    not(all(feature = "lockfree", feature = "virtual_memory")),
    allow(dead_code)
)]
pub(crate) enum BuildReason {
    SharedForBuild,
    LockfreeForBuild,
    VirtualMemoryForSync,
    ReserveForSync,
    ChunkSizeZero,
    ChunkSizeTooLarge {
        size: usize,
        max: usize,
    },
    MaxBelowChunk {
        max: usize,
        chunk: usize,
    },
    ReserveTooLarge {
        reserve: usize,
        max: usize,
    },
    ReserveOverLimit {
        reserve: usize,
        limit: usize,
    },
    LockfreeSize {
        bytes: usize,
        max: usize,
    },
    LockfreeMemory {
        bytes: usize,
    },
    Memory {
        what: &'static str,
        bytes: usize,
    },
    Reserve {
        bytes: usize,
        error: AllocError,
    },
    VirtualMemoryStrict {
        bytes: usize,
        error: VirtualMemoryError,
    },
    VirtualMemoryArena {
        error: AllocError,
    },
}

impl BuildError {
    pub(crate) const fn new(reason: BuildReason) -> Self {
        Self(reason)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BuildReason::*;
        f.write_str("arena-b: cannot build: ")?;
        match self.0 {
            SharedForBuild => f.write_str(
                "thread_safety(ThreadSafety::Shared) asks for a SyncArena: call build_sync (or \
                 try_build_sync) instead of build",
            ),
            LockfreeForBuild => f.write_str(
                "lockfree_buffer applies to a SyncArena: call build_sync (or try_build_sync)",
            ),
            VirtualMemoryForSync => f.write_str(
                "virtual_memory applies to an Arena; a SyncArena's per-thread parts use heap \
                 chunks",
            ),
            ReserveForSync => f.write_str(
                "reserve_size applies to an Arena; a SyncArena's per-thread parts take their \
                 first chunk (chunk_size) when the thread first allocates",
            ),
            ChunkSizeZero => f.write_str("chunk_size must be greater than 0"),
            ChunkSizeTooLarge { size, max } => write!(
                f,
                "chunk_size {size} is larger than the supported maximum {max}"
            ),
            MaxBelowChunk { max, chunk } => write!(
                f,
                "max_chunk_size ({max}) must be at least chunk_size ({chunk})"
            ),
            ReserveTooLarge { reserve, max } => write!(
                f,
                "reserve_size {reserve} is larger than the supported maximum {max}"
            ),
            ReserveOverLimit { reserve, limit } => write!(
                f,
                "reserve_size ({reserve}) exceeds allocation_limit ({limit})"
            ),
            LockfreeSize { bytes, max } => write!(
                f,
                "a lock-free buffer (lockfree_buffer, LockFreeAllocator) of {bytes} bytes: its \
                 size must be between 1 and {max} bytes"
            ),
            LockfreeMemory { bytes } => write!(
                f,
                "the system allocator could not provide a lock-free buffer (lockfree_buffer, \
                 LockFreeAllocator) of {bytes} bytes; ask for a smaller one"
            ),
            Memory { what, bytes } => write!(
                f,
                "the system allocator could not provide {bytes} bytes for {what}"
            ),
            Reserve { bytes, error } => {
                write!(f, "could not reserve {bytes} bytes (reserve_size): {error}")
            }
            VirtualMemoryStrict { bytes, error } => write!(
                f,
                "could not reserve {bytes} bytes of virtual memory ({error}); \
                 virtual_memory_strict(true) forbids the fallback to heap chunks"
            ),
            VirtualMemoryArena { error } => write!(f, "{error}"),
        }
    }
}

impl core::error::Error for BuildError {}

/// Why feature `virtual_memory` could not reserve or commit its region,
/// from [`DiagnosticEvent::VirtualMemoryUnavailable`](crate::DiagnosticEvent::VirtualMemoryUnavailable)
/// and a strict build's [`BuildError`]. Plain data (no allocation).
///
/// ```
/// # #[cfg(feature = "virtual_memory")] {
/// let err = arena_b::Arena::builder()
///     .virtual_memory(usize::MAX / 2)
///     .virtual_memory_strict(true)
///     .try_build()
///     .unwrap_err();
/// assert!(err.to_string().contains("virtual memory"));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VirtualMemoryError {
    operation: &'static str,
    bytes: usize,
    os_error: Option<i32>,
}

impl VirtualMemoryError {
    #[cfg_attr(not(feature = "virtual_memory"), allow(dead_code))]
    pub(crate) const fn new(operation: &'static str, bytes: usize, os_error: Option<i32>) -> Self {
        Self {
            operation,
            bytes,
            os_error,
        }
    }

    /// What failed (`"mmap"`, `"mprotect"`, ...).
    pub const fn operation(&self) -> &'static str {
        self.operation
    }

    /// The size of the failed request.
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// The operating system's error code, if it gave one.
    pub const fn os_error(&self) -> Option<i32> {
        self.os_error
    }
}

impl fmt::Display for VirtualMemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} bytes failed", self.operation, self.bytes)?;
        if let Some(code) = self.os_error {
            write!(f, " (os error {code})")?;
        }
        Ok(())
    }
}

impl core::error::Error for VirtualMemoryError {}

/// The error of a `try_alloc_try_with`: the memory could not be had, or
/// the closure that builds the value failed.
///
/// ```
/// use arena_b::{AllocOrInitError, Arena};
///
/// let arena = Arena::new();
/// let r = arena.try_alloc_try_with(|| "x".parse::<u32>());
/// assert!(matches!(r, Err(AllocOrInitError::Init(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocOrInitError<E> {
    /// Allocating failed; the closure did not run.
    Alloc(AllocError),
    /// The closure returned this error; nothing was kept.
    Init(E),
}

impl<E> From<AllocError> for AllocOrInitError<E> {
    fn from(e: AllocError) -> Self {
        AllocOrInitError::Alloc(e)
    }
}

impl<E: fmt::Display> fmt::Display for AllocOrInitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocOrInitError::Alloc(e) => fmt::Display::fmt(e, f),
            AllocOrInitError::Init(e) => write!(f, "arena-b: building the value failed: {e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for AllocOrInitError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            AllocOrInitError::Alloc(e) => Some(e),
            AllocOrInitError::Init(e) => Some(e),
        }
    }
}
