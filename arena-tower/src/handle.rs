//! [`RequestArena`]: the handle handlers allocate through.
//!
//! This module holds the crate's only `unsafe` code: the `Allocator`
//! forwarding and the owner of [`RequestArena::alloc_bytes`] buffers.
#![allow(unsafe_code)]

use core::alloc::Layout;
use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use allocator_api2::alloc::{AllocError, Allocator};
use arena_b::SyncArena;
use bytes::Bytes;

use crate::lease::Lease;

/// The arena of one request: a cheap, cloneable handle (`Send + Sync`) to a
/// pooled [`SyncArena`] that no other request uses.
///
/// [`ArenaLayer`](crate::ArenaLayer) puts one into every request's
/// extensions; with the default `axum` feature it is also an extractor.
/// It dereferences to [`SyncArena`], so the whole allocation API is there
/// (`alloc`, `try_alloc`, `alloc_str`, `alloc_slice_fast`, `scope`,
/// `stats`, ...), and `&RequestArena` is an
/// [`allocator_api2::alloc::Allocator`] for `Vec`, `String`, `Box` and
/// hashbrown maps. `reset` needs `&mut SyncArena`, which a handle never
/// gives out: the arena is reset only when the response has ended and every
/// handle is gone.
///
/// Allocation is a plain bump on the current thread's part of the arena,
/// so it is cheap to use across `.await` points: a handler future that
/// holds `&RequestArena` allocations stays `Send`.
///
/// ```
/// use allocator_api2::vec::Vec;
/// use arena_tower::{ArenaLayer, RequestArena};
/// use http::{Request, Response};
/// use http_body_util::{BodyExt, Full};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc = ServiceBuilder::new()
///     .layer(ArenaLayer::new())
///     .service(service_fn(|req: Request<String>| async move {
///         let arena = req.extensions().get::<RequestArena>().unwrap().clone();
///         let mut words = Vec::new_in(&arena);
///         words.extend(req.body().split_whitespace());
///         tokio::task::yield_now().await; // allocations live across awaits
///         let reply = arena.alloc_bytes(format!("{} words", words.len()).as_bytes());
///         Ok::<_, std::convert::Infallible>(Response::new(Full::new(reply)))
///     }));
/// let response = svc.oneshot(Request::new("a b c".to_string())).await.unwrap();
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(&body[..], b"3 words");
/// # }
/// ```
pub struct RequestArena {
    /// Taken only by the handle's drop, which hands it to
    /// `Lease::release_last`. (`ManuallyDrop` rather than `Option`: every
    /// allocation goes through this field, and a `None` check there costs.)
    lease: ManuallyDrop<Arc<Lease>>,
}

impl RequestArena {
    pub(crate) fn new(lease: Arc<Lease>) -> RequestArena {
        RequestArena {
            lease: ManuallyDrop::new(lease),
        }
    }

    #[inline(always)]
    pub(crate) fn lease(&self) -> &Arc<Lease> {
        &self.lease
    }

    /// The request's arena.
    #[inline(always)]
    pub fn arena(&self) -> &SyncArena {
        self.lease().arena()
    }

    /// Copies `data` into the arena and returns it as [`Bytes`], for a
    /// response body built in the arena. The `Bytes` (and its clones and
    /// slices) keep the arena alive: it is released only after the last of
    /// them is dropped, typically once hyper has written it. Empty input
    /// gives an empty `Bytes` that holds nothing.
    ///
    /// Panics like [`SyncArena::alloc_slice_fast`] when the request's byte
    /// limit is exceeded; see [`try_alloc_bytes`](Self::try_alloc_bytes).
    ///
    /// Do not store such a `Bytes` (or a `RequestArena` clone) inside the
    /// same arena, for example in a value given to `alloc`: it would keep
    /// its own arena alive, and the arena would never be released (a
    /// reference cycle, like an `Arc` that holds itself).
    ///
    /// ```
    /// # use arena_tower::{ArenaLayer, RequestArena};
    /// # use http::{Request, Response};
    /// # use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let svc = ServiceBuilder::new()
    ///     .layer(ArenaLayer::new())
    ///     .service(service_fn(|req: Request<()>| async move {
    ///         let arena = req.extensions().get::<RequestArena>().unwrap();
    ///         let body = arena.alloc_bytes(b"built in the arena");
    ///         Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(body)))
    ///     }));
    /// let response = svc.oneshot(Request::new(())).await.unwrap();
    /// # use http_body_util::BodyExt;
    /// let bytes = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(&bytes[..], b"built in the arena");
    /// # }
    /// ```
    #[track_caller]
    pub fn alloc_bytes(&self, data: &[u8]) -> Bytes {
        if data.is_empty() {
            return Bytes::new();
        }
        let copy = self.arena().alloc_slice_fast(data);
        self.bytes_from(copy)
    }

    /// Fallible [`alloc_bytes`](Self::alloc_bytes): an error when the
    /// request's byte limit would be exceeded.
    pub fn try_alloc_bytes(&self, data: &[u8]) -> Result<Bytes, arena_b::AllocError> {
        if data.is_empty() {
            return Ok(Bytes::new());
        }
        let layout = Layout::for_value(data);
        let ptr = self.arena().try_alloc_layout(layout)?;
        // SAFETY: `ptr` is a fresh block of `data.len()` bytes (align 1)
        // that nothing else refers to; `data` is a separate allocation.
        let copy = unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len());
            core::slice::from_raw_parts_mut(ptr.as_ptr(), data.len())
        };
        Ok(self.bytes_from(copy))
    }

    fn bytes_from(&self, data: &mut [u8]) -> Bytes {
        self.lease().bytes_owners.fetch_add(1, Ordering::AcqRel);
        let len = data.len();
        Bytes::from_owner(ArenaBytes {
            ptr: NonNull::from(data).cast(),
            len,
            handle: self.clone(),
        })
    }

    /// Whether this request's response has ended (its body finished, failed
    /// or was dropped). Handles that outlive the end keep the arena alive.
    pub fn response_ended(&self) -> bool {
        self.lease().ended()
    }
}

impl Deref for RequestArena {
    type Target = SyncArena;

    #[inline(always)]
    fn deref(&self) -> &SyncArena {
        self.lease().arena()
    }
}

impl Clone for RequestArena {
    fn clone(&self) -> Self {
        RequestArena::new(Arc::clone(&self.lease))
    }
}

impl Drop for RequestArena {
    fn drop(&mut self) {
        // SAFETY: `self.lease` is not used again: this is the handle's drop,
        // and nothing below touches `self`.
        let lease = unsafe { ManuallyDrop::take(&mut self.lease) };
        // Only the last handle can release; a cheap load filters the others
        // before `release_last`'s exact check.
        if Arc::strong_count(&lease) == 1 {
            Lease::release_last(lease);
        }
    }
}

impl fmt::Debug for RequestArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestArena")
            .field("arena", self.arena())
            .field("response_ended", &self.response_ended())
            .finish()
    }
}

/// The owner of an `alloc_bytes` buffer: a handle, so the arena outlives
/// the buffer, and the buffer's place in it.
struct ArenaBytes {
    ptr: NonNull<u8>,
    len: usize,
    handle: RequestArena,
}

// SAFETY: `ptr..ptr+len` is arena memory that only this owner refers to and
// that nobody writes after `bytes_from` (its `&mut` was given up there);
// reading it from any thread is fine: other threads' allocations in the same
// `SyncArena` never overlap it. `handle` is `Send + Sync`.
unsafe impl Send for ArenaBytes {}
// SAFETY: as for `Send`: shared access only reads the immutable bytes.
unsafe impl Sync for ArenaBytes {}

impl AsRef<[u8]> for ArenaBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` came from a `&mut [u8]` of `len` bytes in the arena
        // of `handle`; the arena is reset or dropped only after the last
        // handle, including this one, is dropped, and the bytes are never
        // written again (see `Send` above).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for ArenaBytes {
    fn drop(&mut self) {
        self.handle
            .lease()
            .bytes_owners
            .fetch_sub(1, Ordering::AcqRel);
    }
}

// SAFETY: every call is forwarded to `&SyncArena`'s implementation for the
// request's arena, which upholds the `Allocator` contract. Its blocks stay
// valid while the `&RequestArena` (and hence the handle, which keeps the
// arena from being reset or dropped) is alive; the handle itself never
// resets the arena.
unsafe impl Allocator for &RequestArena {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.arena().allocate(layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller; blocks of `&RequestArena` are
        // blocks of the same `&SyncArena`.
        unsafe { self.arena().deallocate(ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.arena().grow(ptr, old_layout, new_layout) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.arena().grow_zeroed(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.arena().shrink(ptr, old_layout, new_layout) }
    }
}
