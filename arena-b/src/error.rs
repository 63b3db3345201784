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
/// `alloc_str`, ...) panic with the same message instead, or call
/// [`std::alloc::handle_alloc_error`] when the system is out of memory.
///
/// ```
/// use arena_b::{Arena, AllocErrorKind};
///
/// let arena = Arena::builder().chunk_size(1024).allocation_limit(1024).build();
/// let err = arena.try_alloc_slice_fill_iter(0..10_000u32).unwrap_err();
/// assert_eq!(err.kind(), AllocErrorKind::LimitExceeded);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllocError {
    kind: AllocErrorKind,
    requested: usize,
}

impl AllocError {
    pub(crate) const fn new(kind: AllocErrorKind, requested: usize) -> Self {
        Self { kind, requested }
    }

    pub(crate) const fn overflow() -> Self {
        Self::new(AllocErrorKind::LayoutOverflow, usize::MAX)
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
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AllocErrorKind::LayoutOverflow => f.write_str(
                "arena-b: allocation size overflows isize::MAX; check the length you asked for",
            ),
            AllocErrorKind::LimitExceeded => write!(
                f,
                "arena-b: allocating {} bytes would exceed the arena's allocation limit; \
                 raise ArenaBuilder::allocation_limit or reset the arena",
                self.requested
            ),
            AllocErrorKind::OutOfMemory => write!(
                f,
                "arena-b: the system allocator could not provide a chunk for {} bytes",
                self.requested
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
