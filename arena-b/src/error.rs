//! Errors returned by the fallible (`try_*`) allocation methods and by
//! [`ArenaBuilder::try_build`](crate::ArenaBuilder::try_build).

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
/// [`std::alloc::handle_alloc_error`] when the system is out of memory, or,
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
}

impl AllocError {
    pub(crate) const fn new(kind: AllocErrorKind, requested: usize) -> Self {
        Self {
            kind,
            requested,
            detail: 0,
            advice: "",
            unwind: false,
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
    ) -> Self {
        Self {
            kind: AllocErrorKind::LimitExceeded,
            requested,
            detail: limit,
            advice,
            unwind,
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

impl std::error::Error for AllocError {}

impl From<AllocError> for allocator_api2::alloc::AllocError {
    fn from(_: AllocError) -> Self {
        allocator_api2::alloc::AllocError
    }
}

/// An [`ArenaBuilder`](crate::ArenaBuilder) setting was invalid.
///
/// ```
/// use arena_b::Arena;
///
/// let err = Arena::builder().chunk_size(0).try_build().unwrap_err();
/// assert!(err.to_string().contains("chunk_size"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    message: String,
}

impl BuildError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arena-b: invalid ArenaBuilder setting: {}", self.message)
    }
}

impl std::error::Error for BuildError {}
