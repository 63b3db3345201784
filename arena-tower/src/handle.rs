//! [`RequestArena`]: the handle handlers allocate through.
//!
//! This module holds the crate's only `unsafe` code: the `Allocator`
//! forwarding, the owner of [`RequestArena::alloc_bytes`] buffers, and the
//! list of spare buffers that a streaming response reuses.
#![allow(unsafe_code)]

use core::alloc::Layout;
use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
    /// **Streaming:** once every `Bytes` of a buffer is dropped (hyper has
    /// written the chunk), its memory is reused by a later `alloc_bytes` of
    /// the same request that fits in it. So a streaming body that makes one
    /// buffer per chunk (`Body::from_stream` over `alloc_bytes`, as below)
    /// runs in the memory of the chunks in flight, however many it sends.
    ///
    /// Over the request's byte limit this ends the request like any plain
    /// allocation (see [`ArenaLayer::max_request_bytes`](crate::ArenaLayer::max_request_bytes));
    /// [`try_alloc_bytes`](Self::try_alloc_bytes) returns the error instead.
    ///
    /// Do not store such a `Bytes` (or a `RequestArena` clone) inside the
    /// same arena, for example in a value given to `alloc`: it would keep
    /// its own arena alive, and the arena would never be released (a
    /// reference cycle, like an `Arc` that holds itself).
    ///
    /// A stream of chunks, in bounded memory:
    ///
    /// ```
    /// use arena_tower::RequestArena;
    /// use axum::body::Body;
    ///
    /// async fn numbers(arena: RequestArena) -> Body {
    ///     let chunks = futures_util::stream::unfold(0u32, move |i| {
    ///         let arena = arena.clone();
    ///         async move {
    ///             (i < 100_000).then(|| {
    ///                 let line = format!("{i}\n");
    ///                 (Ok::<_, std::convert::Infallible>(arena.alloc_bytes(line.as_bytes())), i + 1)
    ///             })
    ///         }
    ///     });
    ///     Body::from_stream(chunks)
    /// }
    /// # let _ = numbers;
    /// ```
    ///
    /// A whole body:
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
        let (ptr, capacity) = match self.lease().spare.take(data.len()) {
            Some(spare) => spare,
            None => (
                NonNull::from(self.arena().alloc_slice_fast(data)).cast(),
                data.len(),
            ),
        };
        // SAFETY: `ptr` is a block of at least `data.len()` bytes of this
        // request's arena that nothing else refers to (fresh, or a spare
        // whose `Bytes` are all gone); `data` is a separate allocation.
        unsafe { self.bytes_in(ptr, capacity, data) }
    }

    /// Fallible [`alloc_bytes`](Self::alloc_bytes): an error when the
    /// request's byte limit would be exceeded.
    pub fn try_alloc_bytes(&self, data: &[u8]) -> Result<Bytes, arena_b::AllocError> {
        if data.is_empty() {
            return Ok(Bytes::new());
        }
        let (ptr, capacity) = match self.lease().spare.take(data.len()) {
            Some(spare) => spare,
            None => (
                self.arena().try_alloc_layout(Layout::for_value(data))?,
                data.len(),
            ),
        };
        // SAFETY: as in `alloc_bytes`.
        Ok(unsafe { self.bytes_in(ptr, capacity, data) })
    }

    /// Copies `data` into the block `ptr` of `capacity` bytes and wraps it.
    ///
    /// # Safety
    /// `ptr` is a block of `capacity >= data.len()` bytes of this request's
    /// arena, writable, that nothing else refers to and that does not
    /// overlap `data`.
    unsafe fn bytes_in(&self, ptr: NonNull<u8>, capacity: usize, data: &[u8]) -> Bytes {
        // SAFETY: per the contract.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        self.lease().bytes_owners.fetch_add(1, Ordering::AcqRel);
        Bytes::from_owner(ArenaBytes {
            ptr,
            len: data.len(),
            capacity,
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
    /// The block's size (a reused spare may be larger than `len`).
    capacity: usize,
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
        let lease = self.handle.lease();
        // SAFETY: the last `Bytes` of this block is gone (this owner is
        // dropped once, after all of them), so nothing refers to it; it is
        // a block of `capacity` bytes of this lease's arena, which lives at
        // least until `self.handle` is dropped below.
        unsafe { lease.spare.give(self.ptr, self.capacity) };
        lease.bytes_owners.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Blocks of `alloc_bytes` buffers whose `Bytes` were all dropped, kept for
/// the next `alloc_bytes` of the same request. A streaming response that
/// makes one buffer per chunk then runs in the memory of the chunks in
/// flight, not of every chunk it sent (a bump arena frees nothing before
/// the release). Emptied at the release, before the arena is reset.
pub(crate) struct SpareBuffers {
    blocks: Mutex<Vec<Spare>>,
    /// `blocks.len()`, read without the lock by `take` (most requests never
    /// have a spare).
    count: AtomicUsize,
}

/// A spare block: its start and size.
struct Spare(NonNull<u8>, usize);

// SAFETY: a spare is memory of the lease's arena that nothing refers to;
// whoever takes it from the list (under the lock) owns it alone.
unsafe impl Send for Spare {}

/// Most spare blocks kept per request; more are left in the arena until
/// the release.
const MAX_SPARES: usize = 64;

impl SpareBuffers {
    pub(crate) fn new() -> SpareBuffers {
        SpareBuffers {
            blocks: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Spare>> {
        // Nothing panics under this lock; a poisoned one is still consistent.
        self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The smallest spare block of at least `len` bytes, taken out of the
    /// list: `(start, size)`.
    fn take(&self, len: usize) -> Option<(NonNull<u8>, usize)> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut blocks = self.lock();
        let best = (0..blocks.len())
            .filter(|&i| blocks[i].1 >= len)
            .min_by_key(|&i| blocks[i].1)?;
        let Spare(ptr, size) = blocks.swap_remove(best);
        self.count.store(blocks.len(), Ordering::Release);
        Some((ptr, size))
    }

    /// Keeps the block `[ptr, ptr + size)` for reuse, if there is room.
    ///
    /// # Safety
    /// The block is memory of this lease's arena that nothing refers to any
    /// more.
    unsafe fn give(&self, ptr: NonNull<u8>, size: usize) {
        let mut blocks = self.lock();
        if blocks.len() < MAX_SPARES {
            blocks.push(Spare(ptr, size));
            self.count.store(blocks.len(), Ordering::Release);
        }
    }

    /// Forgets every spare block: the arena is about to be reset (the
    /// blocks will be handed out again by the arena itself).
    pub(crate) fn clear(&mut self) {
        let blocks = self
            .blocks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        blocks.clear();
        *self.count.get_mut() = 0;
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
