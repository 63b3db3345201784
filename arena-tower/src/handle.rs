//! [`RequestArena`]: the handle handlers allocate through.
//!
//! Its `unsafe` code is the `Allocator` forwarding, the owner of
//! [`RequestArena::alloc_bytes`] buffers, and the list of spare buffers that
//! a streaming response reuses (the crate's other `unsafe` code is the
//! reference count in `lease_ref.rs` and the current request in
//! `current.rs`).
#![allow(unsafe_code)]

use core::alloc::Layout;
use core::fmt;
use core::ops::Deref;
use core::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use arena_b::{LocalEpoch, SyncArena};
use bytes::Bytes;

use crate::lease_ref::LeaseRef;

/// The arena of one request: a cheap, cloneable handle (`Send + Sync`) to a
/// pooled [`SyncArena`] that no other request uses.
///
/// [`ArenaLayer`](crate::ArenaLayer) leases one for every request; a
/// handler gets it with the axum extractor (default feature `axum`) or
/// [`RequestArena::current`], and from the request's extensions with
/// [`ArenaLayer::request_extension`](crate::ArenaLayer::request_extension).
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
///         let arena = RequestArena::current().unwrap();
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
    /// The drop of the last reference releases the lease.
    lease: LeaseRef,
}

impl RequestArena {
    pub(crate) fn new(lease: LeaseRef) -> RequestArena {
        RequestArena { lease }
    }

    #[inline(always)]
    pub(crate) fn lease(&self) -> &LeaseRef {
        &self.lease
    }

    /// The arena of the request this thread is serving: `Some` inside the
    /// service and future an [`ArenaLayer`](crate::ArenaLayer) wraps (the
    /// inner service's `call`, and every poll of its future, which is where
    /// handlers run), `None` elsewhere: outside any request, in a task the
    /// handler spawned (clone the handle into it instead), or behind a
    /// layer that runs the handler in another task, such as
    /// `tower::buffer::Buffer` (put `ArenaLayer` inside it, or use
    /// [`ArenaLayer::request_extension`](crate::ArenaLayer::request_extension)).
    /// With nested layers, the innermost one's.
    ///
    /// ```
    /// use arena_tower::{ArenaLayer, RequestArena};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert!(RequestArena::current().is_none());
    /// let svc = ArenaLayer::new().layer(service_fn(|_req: http::Request<()>| async {
    ///     let arena = RequestArena::current().expect("inside the layer");
    ///     let n = *arena.alloc(41) + 1;
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(n.to_string()))
    /// }));
    /// let response = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(response.body(), "42");
    /// # }
    /// ```
    #[inline]
    pub fn current() -> Option<RequestArena> {
        crate::current::current()
    }

    /// The request's arena.
    #[inline(always)]
    pub fn arena(&self) -> &SyncArena {
        self.lease().arena()
    }

    /// The calling thread's part of the request's arena
    /// ([`SyncArena::local`]): for a hot loop that allocates a lot between
    /// two `.await`s, at a plain [`Arena`](arena_b::Arena)'s cost, without
    /// the thread look-up each allocation through the handle makes. What
    /// it allocates is the request's, released with it.
    ///
    /// `&Arena` is not `Send`: a handler's future (which axum wants `Send`)
    /// cannot hold it across an `.await`, so it is found again after one.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    /// use arena_tower::{ArenaLayer, RequestArena};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let svc = ArenaLayer::new().layer(service_fn(|_req: http::Request<()>| async {
    ///     let arena = RequestArena::current().expect("inside the layer");
    ///     let total: u64 = {
    ///         let part = arena.local(); // not held across an `.await`
    ///         let mut squares = Vec::new_in(part);
    ///         squares.extend((0..100u64).map(|i| i * i));
    ///         squares.iter().sum()
    ///     };
    ///     tokio::task::yield_now().await;
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(total.to_string()))
    /// }));
    /// let response = svc.oneshot(http::Request::new(())).await.unwrap();
    /// assert_eq!(response.body(), "328350");
    /// # }
    /// ```
    #[inline(always)]
    pub fn local(&self) -> &arena_b::Arena {
        self.arena().local()
    }

    /// Copies `data` into the arena and returns it as [`Bytes`], for a
    /// response body built in the arena. The `Bytes` (and its clones and
    /// slices) keep the arena alive: it is released only after the last of
    /// them is dropped, typically once hyper has written it. Empty input
    /// gives an empty `Bytes` that holds nothing.
    ///
    /// **Streaming:** buffers come in power-of-two sizes (at least 64
    /// bytes), and once every `Bytes` of a buffer is dropped (hyper has
    /// written the chunk), a later `alloc_bytes` of the same request on the
    /// same thread reuses it. So a streaming body that makes one buffer per
    /// chunk (`Body::from_stream` over `alloc_bytes`, as below) runs in
    /// bounded memory however many chunks it sends: roughly the chunks
    /// hyper holds in flight (a dozen or so), plus up to 16 spare buffers
    /// per thread that served the stream, each up to twice its chunk. Give
    /// `max_request_bytes` room for about 64 of the largest chunk.
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
    ///     .service(service_fn(|_req: Request<()>| async move {
    ///         let arena = RequestArena::current().unwrap();
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
        let epoch = self.arena().local_epoch();
        let (ptr, capacity) = match self.lease().spare.take(data.len(), epoch) {
            Some(spare) => spare,
            None => {
                let capacity = buffer_size(data.len());
                (self.arena().alloc_layout(buffer_layout(capacity)), capacity)
            }
        };
        // SAFETY: `ptr` is a block of `capacity >= data.len()` bytes of this
        // request's arena that nothing else refers to (fresh, or a spare
        // whose `Bytes` are all gone, allocated by this thread in this
        // epoch); `data` is a separate allocation.
        unsafe { self.bytes_in(ptr, capacity, epoch, data) }
    }

    /// Fallible [`alloc_bytes`](Self::alloc_bytes): an error when the
    /// request's byte limit would be exceeded.
    pub fn try_alloc_bytes(&self, data: &[u8]) -> Result<Bytes, arena_b::AllocError> {
        if data.is_empty() {
            return Ok(Bytes::new());
        }
        let epoch = self.arena().local_epoch();
        let (ptr, capacity) = match self.lease().spare.take(data.len(), epoch) {
            Some(spare) => spare,
            None => {
                let capacity = buffer_size(data.len());
                (
                    self.arena().try_alloc_layout(buffer_layout(capacity))?,
                    capacity,
                )
            }
        };
        // SAFETY: as in `alloc_bytes`.
        Ok(unsafe { self.bytes_in(ptr, capacity, epoch, data) })
    }

    /// Copies `data` into the block `ptr` of `capacity` bytes, allocated by
    /// this thread in `epoch`, and wraps it.
    ///
    /// # Safety
    /// `ptr` is a block of `capacity >= data.len()` bytes of this request's
    /// arena, writable, that nothing else refers to and that does not
    /// overlap `data`.
    unsafe fn bytes_in(
        &self,
        ptr: NonNull<u8>,
        capacity: usize,
        epoch: LocalEpoch,
        data: &[u8],
    ) -> Bytes {
        // SAFETY: per the contract.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        self.lease().bytes_owners.fetch_add(1, Ordering::AcqRel);
        Bytes::from_owner(ArenaBytes {
            ptr,
            len: data.len(),
            capacity,
            epoch,
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
    #[inline]
    fn clone(&self) -> Self {
        RequestArena::new(self.lease.clone())
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
    /// The block's size (a size class, at least `len`).
    capacity: usize,
    /// The allocating thread's epoch of memory reuse when the block was
    /// made: the block may be reused only there, while it holds.
    epoch: LocalEpoch,
    handle: RequestArena,
}

// SAFETY: `ptr..ptr+len` is arena memory that only this owner (and the
// `Bytes` made from it) refers to, written once in `bytes_in` before the
// owner exists and only read while it lives; reading it from any thread is
// fine: nothing else in the `SyncArena` overlaps it. The block is written
// again only by a later owner, after this one gave it back (see
// `SpareBuffers`). `handle` is `Send + Sync`.
unsafe impl Send for ArenaBytes {}
// SAFETY: as for `Send`: shared access only reads the bytes.
unsafe impl Sync for ArenaBytes {}

impl AsRef<[u8]> for ArenaBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is a block of at least `len` initialized bytes in
        // the arena of `handle`, which is reset or dropped only after the
        // last handle, including this one, is dropped; the block is not
        // written while this owner lives (see `Send` above).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for ArenaBytes {
    fn drop(&mut self) {
        let lease = self.handle.lease();
        // SAFETY: the last `Bytes` of this block is gone (this owner is
        // dropped once, after all of them: `bytes` releases its owner with a
        // Release decrement and an Acquire load, so their reads happen
        // before this), so nothing refers to it; it is a block of `capacity`
        // bytes of this lease's arena, which lives at least until
        // `self.handle` is dropped below.
        unsafe { lease.spare.give(self.ptr, self.capacity, self.epoch) };
        lease.bytes_owners.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Blocks of `alloc_bytes` buffers whose `Bytes` were all dropped, kept for
/// the next `alloc_bytes` of the same request. A streaming response that
/// makes one buffer per chunk then runs in the memory of the chunks in
/// flight, not of every chunk it sent (a bump arena frees nothing before
/// the release). Emptied at the release, before the arena is reset.
///
/// # Why a block is reused only by the thread that made it, in its epoch
/// The arena itself may hand a block's memory out again: a rewind of the
/// part that holds it (a handler can reach its thread's part through
/// `Scope::arena` and rewind it; the rewind's contract covers the memory
/// the *handler* allocated, and a handler that dropped its `Bytes` has met
/// it) frees it, while this list still holds it. So each block carries the
/// `LocalEpoch` of the thread that allocated it, and `take` hands out only
/// blocks whose epoch is the caller's current one: the same thread (whose
/// part only it rewinds, so nothing races with the check) and no rewind or
/// reset of that part since.
pub(crate) struct SpareBuffers {
    /// Spare blocks by the epoch they were made in, then by size class.
    lists: Mutex<Vec<EpochSpares>>,
    /// Spare blocks in all lists, read without the lock by `take` (most
    /// requests never have a spare).
    count: AtomicUsize,
}

/// The spare blocks of one epoch: `by_class[c]` holds blocks of
/// `MIN_BUFFER << c` bytes.
struct EpochSpares {
    epoch: LocalEpoch,
    by_class: Vec<Vec<SparePtr>>,
}

/// The start of a spare block.
struct SparePtr(NonNull<u8>);

// SAFETY: a spare is memory of the lease's arena that nothing refers to;
// whoever takes it from the list (under the lock) owns it alone.
unsafe impl Send for SparePtr {}

/// The smallest buffer `alloc_bytes` makes.
const MIN_BUFFER: usize = 64;

/// The size class of a buffer for `len` bytes: the next power of two (at
/// least `MIN_BUFFER`), so that a stream whose chunks vary or grow in size
/// finds a spare that fits instead of leaving every block behind.
/// Above [`MAX_CLASSED`] a buffer is exactly `len` bytes and is not kept
/// as a spare: rounding up could pass `isize::MAX` (on 32-bit targets, for
/// a slice just over 1 GiB), where no `Layout` exists.
fn buffer_size(len: usize) -> usize {
    if len > MAX_CLASSED {
        len
    } else {
        len.next_power_of_two().max(MIN_BUFFER)
    }
}

/// The largest buffer size class: a power of two no greater than
/// `isize::MAX`.
const MAX_CLASSED: usize = 1 << (usize::BITS - 2);

/// The index of the class of a `buffer_size` (a power of two).
fn class_of(size: usize) -> usize {
    (size.trailing_zeros() - MIN_BUFFER.trailing_zeros()) as usize
}

fn buffer_layout(size: usize) -> Layout {
    // A `buffer_size` is the length of a slice (at most `isize::MAX`) or a
    // power of two no greater than `MAX_CLASSED`, so it always fits; the
    // block must never be smaller than `size`.
    Layout::from_size_align(size, 1).expect("arena-tower: a buffer size fits a Layout")
}

impl EpochSpares {
    fn is_empty(&self) -> bool {
        self.by_class.iter().all(Vec::is_empty)
    }
}

impl SpareBuffers {
    pub(crate) fn new() -> SpareBuffers {
        SpareBuffers {
            lists: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EpochSpares>> {
        // Nothing panics under this lock; a poisoned one is still consistent.
        self.lists.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A spare block of at least `len` bytes made in `epoch` (the caller's
    /// current one, on the caller's thread), taken out of the list:
    /// `(start, size)`. Spares of the caller's part from an older epoch are
    /// forgotten: their memory may be the arena's again.
    fn take(&self, len: usize, epoch: LocalEpoch) -> Option<(NonNull<u8>, usize)> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut lists = self.lock();
        let mut forgotten = 0;
        lists.retain(|l| {
            let stale = l.epoch != epoch && l.epoch.same_part(&epoch);
            if stale {
                forgotten += l.by_class.iter().map(Vec::len).sum::<usize>();
            }
            !stale
        });
        let mut taken = None;
        let classed = len <= MAX_CLASSED;
        if let Some(list) = lists.iter_mut().find(|l| classed && l.epoch == epoch) {
            let first = class_of(buffer_size(len));
            taken = list
                .by_class
                .iter_mut()
                .enumerate()
                .skip(first)
                .find_map(|(c, blocks)| blocks.pop().map(|SparePtr(ptr)| (ptr, MIN_BUFFER << c)));
        }
        let gone = forgotten + usize::from(taken.is_some());
        self.count.fetch_sub(gone, Ordering::AcqRel);
        taken
    }

    /// Keeps the block `[ptr, ptr + size)` (a `buffer_size`), made in
    /// `epoch`, for reuse. (Keeping it costs nothing but its entry: the
    /// arena would not hand its memory out before the release either.)
    ///
    /// # Safety
    /// The block is memory of this lease's arena that nothing refers to any
    /// more.
    unsafe fn give(&self, ptr: NonNull<u8>, size: usize, epoch: LocalEpoch) {
        if size > MAX_CLASSED {
            // Not a size class: left for the reset, as any block.
            return;
        }
        let class = class_of(size);
        let mut lists = self.lock();
        // This epoch's list, or an empty one (its vectors' capacity kept
        // from an earlier request), or a new one.
        let i = match lists.iter().position(|l| l.epoch == epoch) {
            Some(i) => i,
            None => match lists.iter().position(EpochSpares::is_empty) {
                Some(i) => {
                    lists[i].epoch = epoch;
                    i
                }
                None => {
                    lists.push(EpochSpares {
                        epoch,
                        by_class: Vec::new(),
                    });
                    lists.len() - 1
                }
            },
        };
        let list = &mut lists[i];
        if list.by_class.len() <= class {
            list.by_class.resize_with(class + 1, Vec::new);
        }
        list.by_class[class].push(SparePtr(ptr));
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets every spare block: the arena is about to be reset (the
    /// blocks will be handed out again by the arena itself). The lists keep
    /// their capacity for the next request.
    pub(crate) fn clear(&mut self) {
        if *self.count.get_mut() == 0 {
            return;
        }
        let lists = self.lists.get_mut().unwrap_or_else(PoisonError::into_inner);
        for list in lists.iter_mut() {
            list.by_class.iter_mut().for_each(Vec::clear);
        }
        *self.count.get_mut() = 0;
    }
}

arena_b::__forward_allocator! {
    /// `&RequestArena` is the request's `&SyncArena` as an allocator.
    // SAFETY: every call goes to `&SyncArena`'s implementation for the
    // request's arena, whose blocks stay valid while the `&RequestArena`
    // (and hence the handle, which keeps the arena from being reset or
    // dropped) is alive; the handle itself never resets the arena.
    impl [] for RequestArena, to |handle| handle.arena()
}

// SAFETY: the request's arena is reset or dropped only after its last
// handle is gone, so blocks handed out through a `&'a RequestArena` stay
// valid (and unshared) for `'a` whether or not they are given back.
unsafe impl<'a> arena_b::ArenaAllocator<'a> for &'a RequestArena {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_sizes_never_round_past_what_a_layout_holds() {
        assert_eq!(buffer_size(1), MIN_BUFFER);
        assert_eq!(buffer_size(MIN_BUFFER + 1), 2 * MIN_BUFFER);
        assert_eq!(buffer_size(MAX_CLASSED), MAX_CLASSED);
        // Just above the largest class (on 32-bit targets: a slice just
        // over 1 GiB) the buffer is exactly the data's size, not rounded
        // past `isize::MAX`, and its layout is as big as the data.
        let len = MAX_CLASSED + 1;
        assert_eq!(buffer_size(len), len);
        assert_eq!(buffer_layout(buffer_size(len)).size(), len);
        let largest = isize::MAX as usize;
        assert_eq!(buffer_layout(buffer_size(largest)).size(), largest);
    }
}
