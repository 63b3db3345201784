//! [`ArenaLayer`]: the layer and its settings.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tower_layer::Layer;

use crate::end::{BodyEnd, End, ResponseEnd};
use crate::handle::RequestArena;
use crate::pool::{Config, Pool, PoolOwner, PoolStats};
use crate::service::ArenaService;

/// Default first chunk of each thread's part of a request arena: 8 KiB.
pub(crate) const DEFAULT_CHUNK_SIZE: usize = arena_b::DEFAULT_CHUNK_SIZE;
/// Default number of arenas each pool shard keeps.
pub(crate) const DEFAULT_RETAINED_PER_SHARD: usize = 64;
/// Default cap on the bytes of all idle arenas of a pool: 64 MiB.
pub(crate) const DEFAULT_MAX_RETAINED_BYTES: usize = 64 << 20;
/// Default size above which an arena is shrunk before it is pooled: 256 KiB.
pub(crate) const DEFAULT_MAX_RETAINED_ARENA_BYTES: usize = 256 * 1024;

/// A tower [`Layer`] that gives every request its own pooled arena; see the
/// [crate docs](crate) for why and how.
///
/// Cloning the layer (axum clones it for every route) shares its pool,
/// which is built when the layer is first used. A setter gives the layer a
/// pool of its own, so call the setters before the layer is cloned or
/// used. Each setter checks its value and panics with a message that names
/// it when it cannot work.
///
/// # Where it goes
/// Put `ArenaLayer` *inside* the layer that makes the request's span
/// (`TraceLayer`), so the release event lands in that span and fills its
/// `arena.*` fields; in axum, where each `.layer` wraps the ones before it,
/// add it first. (When it is outside, handlers that take the
/// [`RequestArena`] extractor still report in their span; handlers that
/// find the handle with [`RequestArena::current`] or in the request's
/// extensions do not.) In axum,
/// `Router::layer` applies only to the routes added before it: add the
/// routes first.
/// Put `CatchPanicLayer` *outside* `ArenaLayer` (after it): a request
/// over its byte limit then reaches the layer, which answers
/// [`over_limit_status`](Self::over_limit_status); a `CatchPanicLayer`
/// inside would catch it first and answer 500 (its custom handler can
/// recognise [`arena_b::LimitExceeded::from_payload`]).
///
/// ```no_run
/// use arena_tower::{ArenaLayer, RequestArena};
/// use axum::{routing::get, Router};
/// use tower_http::trace::TraceLayer;
///
/// async fn hello(arena: RequestArena) -> String {
///     arena.alloc_str("hello from the arena").to_string()
/// }
///
/// # async fn run() {
/// let arenas = ArenaLayer::new()
///     .chunk_size(16 * 1024)                 // first chunk per thread and request
///     .max_request_bytes(4 << 20)            // try_alloc fails, alloc panics beyond 4 MiB
///     .retained_per_shard(32)                // arenas pooled per shard
///     .max_retained_arena_bytes(256 * 1024); // bigger arenas shrink before pooling
/// let app = Router::new()
///     .route("/", get(hello))
///     .layer(arenas.clone())
///     .layer(TraceLayer::new_for_http());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
/// axum::serve(listener, app).await.unwrap();
/// println!("{:?}", arenas.pool_stats());
/// # }
/// ```
///
/// # Tracing
/// Each release emits a `DEBUG` event (target `arena_tower`) in the span
/// that was current when the request was called, with:
///
/// | field | meaning |
/// | --- | --- |
/// | `bytes_allocated` | bytes the request allocated (and had not freed in a scope) |
/// | `chunks` | chunks its arena owns |
/// | `peak_bytes` | the request's high-water mark of bytes allocated (sampled when chunks change, at scope exits and at the release) |
/// | `pool_hit` | whether the arena came from the pool |
/// | `held_us` | microseconds from the lease to the release |
/// | `ended` | `responded` (the default: the handler answered; the body is not tracked), `handler_failed`, `handler_dropped`, `over_limit`; with [`track_body`](Self::track_body): `finished`, `body_error`, `body_dropped` (the body was dropped before its end: the client went away, or the server did not send it, as for `HEAD`, 204 and 304 responses) or `handle_outlived` |
///
/// # Where the response ends
/// The type parameter `E` ([`EndAt`](crate::EndAt)) says when the layer
/// considers the response done: [`ResponseEnd`] (the default) when the
/// handler has answered, [`BodyEnd`] ([`track_body`](Self::track_body))
/// when the body has. Both are sound: the arena is reset only once no
/// handle and no `alloc_bytes` buffer is left. `BodyEnd` adds the body's
/// `ended` reasons and leak warnings at the cost of a wrapped body, which
/// axum boxes (one allocation per response).
pub struct ArenaLayer<E = ResponseEnd> {
    config: Config,
    /// Built on first use; shared by the clones made after the last setter.
    pool: Arc<OnceLock<Arc<PoolOwner>>>,
    end: PhantomData<fn() -> E>,
}

impl<E> Clone for ArenaLayer<E> {
    fn clone(&self) -> Self {
        ArenaLayer {
            config: self.config.clone(),
            pool: Arc::clone(&self.pool),
            end: PhantomData,
        }
    }
}

/// Set once any `ArenaLayer` exists in the process: the extractor's
/// rejection then says that the layer is there but does not wrap the route.
static LAYER_CONFIGURED: AtomicBool = AtomicBool::new(false);

/// Whether an `ArenaLayer` was made in this process.
pub(crate) fn layer_exists() -> bool {
    LAYER_CONFIGURED.load(Ordering::Relaxed)
}

impl ArenaLayer {
    /// A layer with the default settings: 8 KiB first chunks, no byte
    /// limit (over a limit: 413), at most 64 MiB of idle arenas pooled (64
    /// per shard), arenas above 256 KiB or with parts for more threads than
    /// shards shrunk before pooling, span fields recorded, one shard per
    /// available CPU, the response's end at the handler's answer
    /// ([`ResponseEnd`]).
    pub fn new() -> ArenaLayer {
        LAYER_CONFIGURED.store(true, Ordering::Relaxed);
        ArenaLayer {
            config: Config::default(),
            pool: Arc::default(),
            end: PhantomData,
        }
    }

    /// Tracks the response body ([`BodyEnd`]): the response ends when its
    /// body does, which the release reports (`finished`, `body_error`,
    /// `body_dropped`), handles that outlive the body are reported with a
    /// `WARN`, and a body that hits `max_request_bytes` while it streams
    /// ends with an error. The body is wrapped in an
    /// [`ArenaBody`](crate::ArenaBody), which axum boxes again: one heap
    /// allocation per response and a little time per frame (see
    /// `docs/performance.md`).
    ///
    /// ```
    /// use arena_tower::{ArenaBody, ArenaLayer};
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = ArenaLayer::new().track_body();
    /// let svc = layer.layer(service_fn(|_req: Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from_static(b"hi"))))
    /// }));
    /// let response: Response<ArenaBody<Full<bytes::Bytes>>> = svc.oneshot(Request::new(())).await.unwrap();
    /// assert_eq!(layer.pool_stats().in_flight, 1); // until the body ends
    /// drop(response);
    /// assert_eq!(layer.pool_stats().in_flight, 0);
    /// # }
    /// ```
    pub fn track_body(self) -> ArenaLayer<BodyEnd> {
        ArenaLayer {
            config: self.config,
            pool: Arc::default(),
            end: PhantomData,
        }
    }
}

impl<E> ArenaLayer<E> {
    /// Applies a setting, checks the whole configuration, and gives the
    /// layer a pool of its own (built on first use).
    #[track_caller]
    fn set(mut self, f: impl FnOnce(&mut Config)) -> ArenaLayer<E> {
        f(&mut self.config);
        if let Err(message) = self.config.validate() {
            panic!("arena-tower: {message}");
        }
        self.pool = Arc::default();
        self
    }

    /// The pool, built by the first user.
    fn owner(&self) -> &Arc<PoolOwner> {
        self.pool
            .get_or_init(|| Arc::new(PoolOwner(Arc::new(Pool::new(self.config.clone())))))
    }

    fn pool(&self) -> &Arc<Pool> {
        &self.owner().0
    }

    /// Size of the first chunk of each thread's part of a request's arena
    /// (default 8 KiB, and never above
    /// [`max_request_bytes`](Self::max_request_bytes)); later chunks
    /// double. Panics if 0 or above 1 GiB.
    #[track_caller]
    pub fn chunk_size(self, bytes: usize) -> ArenaLayer<E> {
        self.set(|c| c.chunk_size = bytes)
    }

    /// Most bytes of chunks one request's arena may own (default: no
    /// limit). What happens at the limit:
    ///
    /// - `try_alloc` and the other `try_*` methods return an
    ///   [`AllocError`](arena_b::AllocError) that names this setting;
    /// - a plain method (`alloc`, `alloc_str`, `alloc_bytes`, ...) or a
    ///   collection growing in the arena (`allocator_api2`'s `Vec`,
    ///   hashbrown maps) unwinds with an [`arena_b::LimitExceeded`]
    ///   (under the default [`limit_policy`](Self::limit_policy)), and the
    ///   layer ends *that request*: the handler's future is dropped, the
    ///   client gets [`over_limit_status`](Self::over_limit_status) (413 by
    ///   default) with an empty body, a `WARN` in the request's span names
    ///   the limit and the size asked, and the release event says
    ///   `ended = "over_limit"`. Every other request, and the process, go
    ///   on. A response body that hits the limit while it streams ends
    ///   with an error instead (its status is already sent) when the layer
    ///   tracks bodies ([`track_body`](Self::track_body)); by default the
    ///   unwind ends the connection's task (the client sees the body cut
    ///   off) and the release `WARN`s that an unwind was not answered.
    /// - `vec.try_reserve(n)` goes through the same allocator interface as
    ///   `vec.push(x)` and cannot be told apart from it, so it ends the
    ///   request too; inside [`arena_b::fallible`] it returns `Err`.
    /// - The unwind is a panic for everything it passes through: a
    ///   `std::sync::Mutex` held across the allocation is poisoned, and
    ///   shared state may be left half updated. Inside critical sections
    ///   use `try_*` methods or [`arena_b::fallible`].
    /// - Only the request's own future (and its `call`, and its response
    ///   body) is covered. In a task the handler spawns the unwind ends that
    ///   task (`JoinHandle::await` gives a `JoinError` whose
    ///   `into_panic()` is the `LimitExceeded`: resume it with
    ///   `std::panic::resume_unwind` to have the layer answer); a body fed
    ///   by such a task then ends with an error rather than look complete,
    ///   and the release logs a `WARN`. While a thread is already unwinding
    ///   (a destructor that allocates during the limit's own unwind), the
    ///   arena lets the allocation go past the limit: a second unwind would
    ///   abort the process.
    /// - The layer reuses the inner service after its `call` unwound at the
    ///   limit (as `CatchPanicLayer` does after any panic).
    ///
    /// Without this unwinding (`limit_policy(LimitPolicy::ReturnError)`),
    /// a collection that cannot grow calls `handle_alloc_error`, which
    /// aborts the whole process.
    ///
    /// ```
    /// use arena_tower::ArenaLayer;
    /// let layer = ArenaLayer::new().max_request_bytes(1 << 20);
    /// let arena = layer.lease();
    /// let err = arena.try_alloc_layout(std::alloc::Layout::new::<[u8; 2 << 20]>()).unwrap_err();
    /// assert!(err.to_string().contains("ArenaLayer::max_request_bytes"));
    /// ```
    #[track_caller]
    pub fn max_request_bytes(self, bytes: usize) -> ArenaLayer<E> {
        self.set(|c| c.max_request_bytes = Some(bytes))
    }

    /// The status a request over [`max_request_bytes`](Self::max_request_bytes)
    /// is answered with (default `413 Payload Too Large`; `503 Service
    /// Unavailable` suits a limit that protects the server rather than
    /// judging the request). Panics unless it is a 4xx or 5xx status.
    ///
    /// ```
    /// let layer = arena_tower::ArenaLayer::new()
    ///     .max_request_bytes(4 << 20)
    ///     .over_limit_status(http::StatusCode::SERVICE_UNAVAILABLE);
    /// # drop(layer);
    /// ```
    #[track_caller]
    pub fn over_limit_status(self, status: http::StatusCode) -> ArenaLayer<E> {
        self.set(|c| c.over_limit_status = status)
    }

    /// What an allocation at [`max_request_bytes`](Self::max_request_bytes)
    /// does (default [`LimitPolicy::Unwind`](arena_b::LimitPolicy::Unwind):
    /// the request ends with [`over_limit_status`](Self::over_limit_status)).
    /// `LimitPolicy::ReturnError` keeps arena-b's plain behaviour: plain
    /// methods panic with a message, and collections abort the process.
    #[track_caller]
    pub fn limit_policy(self, policy: arena_b::LimitPolicy) -> ArenaLayer<E> {
        self.set(|c| c.limit_policy = policy)
    }

    /// How many idle arenas each shard of the pool keeps (default 64); an
    /// arena released to a full shard is dropped. Each thread also keeps up
    /// to 4 (fewer if this is less) in a cache of its own. 0 disables
    /// pooling.
    #[track_caller]
    pub fn retained_per_shard(self, arenas: usize) -> ArenaLayer<E> {
        self.set(|c| c.retained_per_shard = arenas)
    }

    /// The most bytes of chunks the pool's idle arenas own together, over
    /// every thread and shard (default 64 MiB, whatever the core count):
    /// a released arena that would exceed it is dropped instead of
    /// pooled. The memory model, with worked examples, is in
    /// `docs/advanced.md`.
    ///
    /// ```
    /// let layer = arena_tower::ArenaLayer::new().max_retained_bytes(16 << 20);
    /// assert_eq!(layer.pool_stats().retained_bytes_cap, 16 << 20);
    /// ```
    #[track_caller]
    pub fn max_retained_bytes(self, bytes: usize) -> ArenaLayer<E> {
        self.set(|c| c.max_retained_bytes = bytes)
    }

    /// Also puts each request's handle into its extensions (default off),
    /// for code that reads `req.extensions().get::<RequestArena>()`, or
    /// that runs the handler in another task than the layer's future (a
    /// `tower::buffer::Buffer` between them): the handle is otherwise
    /// found through [`RequestArena::current`], which is set only while the
    /// layer polls the request. Costs two small heap allocations per
    /// request (the extensions map and its entry).
    ///
    /// ```
    /// let layer = arena_tower::ArenaLayer::new().request_extension(true);
    /// # drop(layer);
    /// ```
    #[track_caller]
    pub fn request_extension(self, on: bool) -> ArenaLayer<E> {
        self.set(|c| c.request_extension = on)
    }

    /// The largest arena (bytes of chunks, over all its threads' parts) the
    /// pool keeps as is (default 256 KiB, and never more than half of
    /// [`max_request_bytes`](Self::max_request_bytes)). A bigger one gives
    /// all its chunks back to the system (`SyncArena::reset_and_shrink`)
    /// before it is pooled.
    ///
    /// Why the half: the byte limit counts chunks, and a request that moves
    /// into a pooled arena's idle chunk is charged the whole chunk, however
    /// little of it the request uses. An arena kept at up to half the limit
    /// leaves the request at least the other half for chunks of its own (on
    /// another thread, after its task moved), so a request that a fresh
    /// arena serves is not refused on a pooled one.
    #[track_caller]
    pub fn max_retained_arena_bytes(self, bytes: usize) -> ArenaLayer<E> {
        self.set(|c| c.max_retained_arena_bytes = bytes)
    }

    /// The most threads a pooled arena keeps parts for (default: the shard
    /// count, which defaults to the available parallelism, tokio's default
    /// worker count). Every thread that allocates from a request's arena
    /// gets a part of it (a sub-arena), kept until the arena is shrunk; a
    /// handler that touches its arena from `spawn_blocking` or short-lived
    /// threads adds a part per thread. An arena with more parts than this
    /// is shrunk (every part forgotten) before it is pooled. Panics if 0.
    ///
    /// ```
    /// let layer = arena_tower::ArenaLayer::new().max_retained_arena_threads(8);
    /// # drop(layer);
    /// ```
    #[track_caller]
    pub fn max_retained_arena_threads(self, threads: usize) -> ArenaLayer<E> {
        self.set(|c| c.max_retained_arena_threads = Some(threads))
    }

    /// Whether the release also records `arena.bytes`, `arena.chunks`,
    /// `arena.peak_bytes` and `arena.pool_hit` into the request's span
    /// (default on; a span that does not declare a field ignores it).
    #[track_caller]
    pub fn record_span_fields(self, on: bool) -> ArenaLayer<E> {
        self.set(|c| c.record_span_fields = on)
    }

    /// Number of pool shards (default: the available parallelism, at most
    /// 1024). Threads are assigned shards round-robin; give at least one per
    /// runtime worker. Panics if 0 or above 1024.
    #[track_caller]
    pub fn shards(self, shards: usize) -> ArenaLayer<E> {
        self.set(|c| c.shards = shards)
    }

    /// Leases an arena from the pool outside an HTTP request (a background
    /// job, a test, a benchmark): it has no response to wait for, so it is
    /// reset and pooled as soon as its last handle is dropped. The release
    /// event is emitted in the span current here.
    ///
    /// ```
    /// let layer = arena_tower::ArenaLayer::new();
    /// let arena = layer.lease();
    /// assert_eq!(*arena.alloc(41u64) + 1, 42);
    /// assert_eq!(layer.pool_stats().in_flight, 1);
    /// drop(arena);
    /// assert_eq!(layer.pool_stats().in_flight, 0);
    /// assert_eq!(layer.lease().bytes_allocated(), 0, "reset before reuse");
    /// ```
    pub fn lease(&self) -> RequestArena {
        let handle = self.pool().lease(crate::lease::current_span());
        handle.lease().mark_end(End::Finished);
        handle
    }

    /// The pool's counters: leases, hits, misses, arenas in flight, and
    /// what it retains.
    ///
    /// ```
    /// let layer = arena_tower::ArenaLayer::new().retained_per_shard(8);
    /// let stats = layer.pool_stats();
    /// assert_eq!((stats.leases, stats.in_flight, stats.retained_bytes), (0, 0, 0));
    /// ```
    pub fn pool_stats(&self) -> PoolStats {
        self.pool().stats()
    }
}

impl Default for ArenaLayer {
    fn default() -> Self {
        ArenaLayer::new()
    }
}

impl<E> fmt::Debug for ArenaLayer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaLayer")
            .field("config", &self.config)
            .field("pool", &self.pool.get())
            .finish()
    }
}

impl<S, E> Layer<S> for ArenaLayer<E> {
    type Service = ArenaService<S, E>;

    fn layer(&self, inner: S) -> ArenaService<S, E> {
        ArenaService::new(inner, Arc::clone(self.owner()))
    }
}
