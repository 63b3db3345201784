//! [`ArenaLayer`]: the layer and its settings.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::end::End;
use crate::handle::RequestArena;
use crate::pool::{Config, Pool, PoolStats};
use crate::service::ArenaService;

/// Default first chunk of each thread's part of a request arena: 8 KiB.
pub(crate) const DEFAULT_CHUNK_SIZE: usize = arena_b::DEFAULT_CHUNK_SIZE;
/// Default number of arenas each pool shard keeps.
pub(crate) const DEFAULT_RETAINED_PER_SHARD: usize = 64;
/// Default size above which an arena is shrunk before it is pooled: 256 KiB.
pub(crate) const DEFAULT_MAX_RETAINED_ARENA_BYTES: usize = 256 * 1024;

/// A tower [`Layer`] that gives every request its own pooled arena; see the
/// [crate docs](crate) for why and how.
///
/// Cloning the layer (axum clones it for every route) shares its pool. The
/// setters build a new pool, so call them before the layer is cloned or
/// used.
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
/// | `ended` | `finished`, `body_error`, `body_dropped` (the body was dropped before its end: the client went away, or the server did not send it, as for `HEAD`, 204 and 304 responses), `handler_failed`, `handler_dropped` or `handle_outlived` |
#[derive(Clone)]
pub struct ArenaLayer {
    pool: Arc<Pool>,
}

impl ArenaLayer {
    /// A layer with the default settings: 8 KiB first chunks, no byte
    /// limit, 64 arenas kept per shard, arenas above 256 KiB shrunk before
    /// pooling, span fields recorded, one shard per available CPU.
    pub fn new() -> ArenaLayer {
        ArenaLayer::with_config(Config::default())
    }

    #[track_caller]
    fn with_config(config: Config) -> ArenaLayer {
        ArenaLayer {
            pool: Arc::new(Pool::new(config)),
        }
    }

    #[track_caller]
    fn set(self, f: impl FnOnce(&mut Config)) -> ArenaLayer {
        let mut config = self.pool.config.clone();
        f(&mut config);
        ArenaLayer::with_config(config)
    }

    /// Size of the first chunk of each thread's part of a request's arena
    /// (default 8 KiB); later chunks double. Panics if 0.
    #[track_caller]
    pub fn chunk_size(self, bytes: usize) -> ArenaLayer {
        self.set(|c| c.chunk_size = bytes)
    }

    /// Most bytes of chunks one request's arena may own (default: no
    /// limit). Beyond it `try_alloc` and friends return an
    /// [`AllocError`](arena_b::AllocError) and `alloc` panics with a message
    /// that says so; behind `tower_http::catch_panic::CatchPanicLayer` that
    /// panic becomes a 500. Collections that use `&RequestArena` as their
    /// allocator (`allocator_api2`'s `Vec`, hashbrown maps) call
    /// `handle_alloc_error` when an allocation fails, which aborts the
    /// process: under a limit, grow them with `try_reserve` first.
    #[track_caller]
    pub fn max_request_bytes(self, bytes: usize) -> ArenaLayer {
        self.set(|c| c.max_request_bytes = Some(bytes))
    }

    /// How many idle arenas each shard of the pool keeps (default 64); an
    /// arena released to a full shard is dropped. 0 disables pooling.
    #[track_caller]
    pub fn retained_per_shard(self, arenas: usize) -> ArenaLayer {
        self.set(|c| c.retained_per_shard = arenas)
    }

    /// The largest arena (bytes of chunks, over all its threads' parts) the
    /// pool keeps as is (default 256 KiB). A bigger one gives all its
    /// chunks back to the system (`SyncArena::reset_and_shrink`) before it
    /// is pooled.
    #[track_caller]
    pub fn max_retained_arena_bytes(self, bytes: usize) -> ArenaLayer {
        self.set(|c| c.max_retained_arena_bytes = bytes)
    }

    /// Whether the release also records `arena.bytes`, `arena.chunks`,
    /// `arena.peak_bytes` and `arena.pool_hit` into the request's span
    /// (default on; a span that does not declare a field ignores it).
    #[track_caller]
    pub fn record_span_fields(self, on: bool) -> ArenaLayer {
        self.set(|c| c.record_span_fields = on)
    }

    /// Number of pool shards (default: the available parallelism). Threads
    /// are assigned shards round-robin; give at least one per runtime
    /// worker. Panics if 0.
    #[track_caller]
    pub fn shards(self, shards: usize) -> ArenaLayer {
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
        let handle = self.pool.lease(tracing::Span::current());
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
        self.pool.stats()
    }
}

impl Default for ArenaLayer {
    fn default() -> Self {
        ArenaLayer::new()
    }
}

impl fmt::Debug for ArenaLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaLayer")
            .field("pool", &self.pool)
            .finish()
    }
}

impl<S> Layer<S> for ArenaLayer {
    type Service = ArenaService<S>;

    fn layer(&self, inner: S) -> ArenaService<S> {
        ArenaService::new(inner, Arc::clone(&self.pool))
    }
}
