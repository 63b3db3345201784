//! What an allocation does at an arena's allocation limit:
//! [`LimitPolicy`], the [`LimitExceeded`] unwind payload, [`catch_limit`]
//! and [`fallible`].
//!
//! # Why unwinding is on offer
//! `try_*` methods return an [`AllocError`](crate::AllocError), and that is
//! the whole story for code that calls them. Collections are another
//! matter: `allocator_api2::vec::Vec`, hashbrown maps and the like turn an
//! error from their allocator into
//! [`handle_alloc_error`](alloc::alloc::handle_alloc_error), which on stable
//! Rust *aborts the process*. So a limit meant to bound one request's (or
//! one job's) memory would let that request kill the whole server through
//! an ordinary `vec.push(x)`.
//!
//! Under [`LimitPolicy::Unwind`], an allocation that hits the limit through
//! the `Allocator` interface, or through a plain (non-`try_`) method,
//! unwinds instead, with a [`LimitExceeded`] payload and without running
//! the panic hook (nothing is printed). Whoever owns the unit of work
//! catches it: [`catch_limit`] here, or `arena-tower`'s layer, which turns
//! it into an HTTP error status for that one request. Any collection left
//! half-grown is dropped by the unwind like on any panic; collections
//! handle a failing allocator without corrupting themselves.
//!
//! The `Allocator` interface cannot tell `vec.try_reserve(n)` from
//! `vec.push(x)`: both ask it for memory the same way. Code that wants a
//! collection's `try_*` methods to see an `Err` under the unwinding policy
//! runs them inside [`fallible`].

#[allow(unused_imports)]
use crate::prelude::*;
#[cfg(feature = "std")]
use core::cell::Cell;
use core::fmt;

/// What an arena does when an allocation would take it past its
/// [`allocation_limit`](crate::ArenaBuilder::allocation_limit); set with
/// [`ArenaBuilder::limit_policy`](crate::ArenaBuilder::limit_policy). Only
/// the limit is concerned: the system running out of memory is still
/// [`handle_alloc_error`](alloc::alloc::handle_alloc_error).
///
/// | | `try_*` methods | plain methods (`alloc`, ...) | `Allocator` interface (collections) |
/// | --- | --- | --- | --- |
/// | `ReturnError` (default) | `Err(AllocError)` | panic with the error's message | `Err`, which collections turn into an abort |
/// | `Unwind` | `Err(AllocError)` | unwind with [`LimitExceeded`] | unwind with [`LimitExceeded`] (`Err` inside [`fallible`]) |
///
/// ```
/// use allocator_api2::vec::Vec;
/// use arena_b::{catch_limit, Arena, LimitPolicy};
///
/// let arena = Arena::builder()
///     .allocation_limit(64 * 1024)
///     .limit_policy(LimitPolicy::Unwind)
///     .build();
/// let result = catch_limit(|| {
///     let mut v = Vec::new_in(&arena);
///     for i in 0..1_000_000u64 {
///         v.push(i); // would abort the process under `ReturnError`
///     }
///     v.len()
/// });
/// let err = result.unwrap_err();
/// assert_eq!(err.limit(), 64 * 1024);
/// // The arena is still usable, and `try_*` methods still return errors.
/// assert!(arena.try_alloc_slice_fast(&[0u8; 100_000]).is_err());
/// assert_eq!(*arena.alloc(7u8), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LimitPolicy {
    /// Every refusal is an error: `try_*` methods and the `Allocator`
    /// interface return it, plain methods panic with its message.
    #[default]
    ReturnError,
    /// Refusals through plain methods and the `Allocator` interface unwind
    /// with a [`LimitExceeded`] payload (see the module docs); `try_*`
    /// methods still return the error.
    Unwind,
}

/// The payload an allocation unwinds with when it hits the allocation
/// limit of an arena set to [`LimitPolicy::Unwind`]. Catch it with
/// [`catch_limit`], or recognise it in a `catch_unwind` payload with
/// [`LimitExceeded::from_payload`].
///
/// ```
/// use arena_b::{Arena, LimitExceeded, LimitPolicy};
///
/// let arena = Arena::builder()
///     .allocation_limit(4096)
///     .limit_policy(LimitPolicy::Unwind)
///     .build();
/// let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
///     arena.alloc_slice_fast(&[0u8; 10_000]);
/// }))
/// .unwrap_err();
/// let limit = LimitExceeded::from_payload(&*payload).expect("a limit, not another panic");
/// assert_eq!((limit.requested(), limit.limit()), (10_000, 4096));
/// assert!(limit.to_string().contains("allocation limit of 4096 bytes"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitExceeded {
    requested: usize,
    limit: usize,
    advice: &'static str,
    /// The id of the arena that refused.
    owner: u64,
}

impl LimitExceeded {
    pub(crate) fn from_error(err: &crate::AllocError) -> LimitExceeded {
        LimitExceeded {
            requested: err.requested(),
            limit: err.limit().unwrap_or(0),
            advice: err.advice(),
            owner: err.owner(),
        }
    }

    /// Whether `arena` refused this allocation (a layer that catches the
    /// unwind of its own arena lets every other one go on unwinding).
    ///
    /// ```
    /// use arena_b::{catch_limit, Arena, LimitPolicy};
    /// let build = || Arena::builder().allocation_limit(4096).limit_policy(LimitPolicy::Unwind).build();
    /// let (a, b) = (build(), build());
    /// let err = catch_limit(|| a.alloc_slice_fast(&[0u8; 8192]).len()).unwrap_err();
    /// assert!(err.is_from(&a));
    /// assert!(!err.is_from(&b));
    /// ```
    pub fn is_from(&self, arena: &impl crate::limit::Refuses) -> bool {
        self.owner != 0 && self.owner == arena.refusal_id()
    }

    /// Bytes the refused allocation needed.
    pub const fn requested(&self) -> usize {
        self.requested
    }

    /// The limit it would have exceeded.
    pub const fn limit(&self) -> usize {
        self.limit
    }

    /// The payload of a caught panic, if it is a `LimitExceeded`.
    pub fn from_payload(payload: &(dyn core::any::Any + Send)) -> Option<&LimitExceeded> {
        payload.downcast_ref::<LimitExceeded>()
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_limit_message(f, self.requested, self.limit, self.advice)
    }
}

impl core::error::Error for LimitExceeded {}

/// The one wording of a limit refusal, for [`AllocError`](crate::AllocError)
/// and [`LimitExceeded`].
pub(crate) fn write_limit_message(
    f: &mut fmt::Formatter<'_>,
    requested: usize,
    limit: usize,
    advice: &str,
) -> fmt::Result {
    write!(
        f,
        "arena-b: allocating {requested} bytes would exceed the arena's allocation limit of \
         {limit} bytes; "
    )?;
    f.write_str(if advice.is_empty() {
        DEFAULT_ADVICE
    } else {
        advice
    })
}

/// What a limit refusal tells the user to do, unless the arena was built
/// with other advice ([`ArenaBuilder::limit_advice`](crate::ArenaBuilder::limit_advice)).
pub(crate) const DEFAULT_ADVICE: &str = "raise ArenaBuilder::allocation_limit or reset the arena";

/// Runs `f`, turning an unwind with a [`LimitExceeded`] payload into
/// `Err`. Any other panic continues unwinding unchanged.
///
/// `f` is treated as unwind-safe: after a limit unwind, what `f` was
/// building has been dropped, and the arena's own state is consistent
/// (the refusal happens before anything changes), so the arena can be
/// used, rewound or reset as usual.
///
/// ```
/// use arena_b::{catch_limit, LimitPolicy, SyncArena};
///
/// let arena: SyncArena = arena_b::Arena::builder()
///     .allocation_limit(8192)
///     .limit_policy(LimitPolicy::Unwind)
///     .build_sync();
/// assert_eq!(catch_limit(|| arena.alloc(1u32).to_owned()), Ok(1));
/// assert!(catch_limit(|| arena.alloc_str(&"x".repeat(10_000)).len()).is_err());
/// ```
#[cfg(feature = "std")]
pub fn catch_limit<R>(f: impl FnOnce() -> R) -> Result<R, LimitExceeded> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(payload) => match payload.downcast::<LimitExceeded>() {
            Ok(limit) => Err(*limit),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// Depth of `fallible` calls on this thread.
    static FALLIBLE: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` with limit refusals through the `Allocator` interface returned
/// as errors on this thread, whatever the arena's [`LimitPolicy`]: inside,
/// `vec.try_reserve(n)` and `map.try_reserve(n)` see `Err` at the limit.
/// Plain methods still unwind, and a collection method that cannot fail
/// (`push`, `insert`) would abort on the error, so call only `try_*`
/// methods of collections inside.
///
/// ```
/// use allocator_api2::vec::Vec;
/// use arena_b::{fallible, Arena, LimitPolicy};
///
/// let arena = Arena::builder()
///     .allocation_limit(16 * 1024)
///     .limit_policy(LimitPolicy::Unwind)
///     .build();
/// let mut v: Vec<u8, _> = Vec::new_in(&arena);
/// assert!(fallible(|| v.try_reserve(1 << 20)).is_err());
/// assert!(fallible(|| v.try_reserve(1000)).is_ok());
/// ```
#[cfg(feature = "std")]
pub fn fallible<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = FALLIBLE.try_with(|d| d.set(d.get() - 1));
        }
    }
    FALLIBLE.with(|d| d.set(d.get() + 1));
    let _leave = Leave;
    f()
}

/// Whether this thread is inside [`fallible`].
pub(crate) fn in_fallible() -> bool {
    #[cfg(feature = "std")]
    return FALLIBLE.try_with(|d| d.get() > 0).unwrap_or(false);
    #[cfg(not(feature = "std"))]
    return false;
}

/// Whether this thread is unwinding (never known without `std`).
#[inline]
pub(crate) fn panicking() -> bool {
    #[cfg(feature = "std")]
    return std::thread::panicking();
    #[cfg(not(feature = "std"))]
    return false;
}

/// Unwinds with `limit` as the payload.
#[cold]
#[inline(never)]
pub(crate) fn unwind(limit: LimitExceeded) -> ! {
    // `resume_unwind` skips the panic hook: a refusal the caller catches is
    // not a bug report, and a library prints nothing.
    #[cfg(feature = "std")]
    std::panic::resume_unwind(alloc::boxed::Box::new(limit));
    // Without `std` there is no payload to carry: a plain panic with the
    // refusal's message.
    #[cfg(not(feature = "std"))]
    panic!("{limit}")
}

/// An arena type whose refusals [`LimitExceeded::is_from`] can recognise:
/// [`Arena`](crate::Arena) and [`SyncArena`](crate::SyncArena).
pub trait Refuses: sealed::Sealed {
    /// The id a refusal of this arena carries.
    #[doc(hidden)]
    fn refusal_id(&self) -> u64;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Arena {}
    #[cfg(feature = "std")]
    impl Sealed for crate::SyncArena {}
}
