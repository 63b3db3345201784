//! # arena-tower
//!
//! A tower [`Layer`](tower_layer::Layer) that gives every HTTP request its
//! own arena: handlers do their scratch allocation (parsed input, temporary
//! maps and vectors, even the response bytes) in a bump arena that is
//! reclaimed in bulk, destructors and all, once the response is done.
//!
//! ```no_run
//! use arena_tower::{ArenaLayer, RequestArena};
//! use axum::{routing::post, Router};
//!
//! async fn words(arena: RequestArena, body: String) -> String {
//!     // Scratch data lives in the request's arena.
//!     let mut lengths = allocator_api2::vec::Vec::new_in(&arena);
//!     for word in body.split_whitespace() {
//!         lengths.push(word.len());
//!     }
//!     format!("{} words, longest {}", lengths.len(), lengths.iter().max().unwrap_or(&0))
//! }
//!
//! # async fn run() {
//! let app = Router::new()
//!     .route("/words", post(words))
//!     .layer(ArenaLayer::new().max_request_bytes(1 << 20));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! ## Why an arena per request, and not a checkpoint per worker
//! The tempting design, one arena per tokio worker thread with a checkpoint
//! taken when a request starts and rewound when it ends, is unsound:
//!
//! - requests on one worker interleave at every `.await` and finish in any
//!   order, so rewinding request A's checkpoint frees the memory request B
//!   allocated after it, while B still uses it;
//! - a task moves between workers, so "this worker's arena" changes under a
//!   running handler;
//! - a response body outlives the handler that built it, and a handler can
//!   move data into a spawned task that outlives the response.
//!
//! So each request leases a whole [`arena_b::SyncArena`] that no other
//! request touches, and the arena is reset (destructors run) and returned to
//! the pool only when **both** hold:
//!
//! 1. the response has ended: the handler answered, failed or was dropped
//!    (by default), or, with [`ArenaLayer::track_body`], its body yielded
//!    its last frame or an error, or was dropped (hyper drops a body
//!    unpolled when the client goes away); the first of these counts, once;
//! 2. no [`RequestArena`] handle remains: a handler may clone one into a
//!    spawned task, or into a [`bytes::Bytes`] made by
//!    [`RequestArena::alloc_bytes`]; the arena then lives until the last
//!    one is dropped.
//!
//! Both conditions are one reference count: every [`RequestArena`] is a
//! counted reference to the lease, the layer holds one until the response
//! ends, and the release is the drop of the last. `SyncArena::reset` takes
//! `&mut self`, which that last drop has, so no reference into the arena
//! can survive the reset.
//!
//! ## Where the response ends
//! By default ([`ResponseEnd`]) the response ends when the inner service
//! has answered: the body passes through untouched (axum does not box it
//! again), and `ended` is `"responded"`. Nothing in a body can point into
//! the arena without holding a handle (bodies are `'static`; an
//! [`RequestArena::alloc_bytes`] buffer owns one), so this is as sound as
//! tracking the body; what it gives up is the report of how the body
//! ended (complete, error, client gone) and the warning about handles that
//! outlive it. [`ArenaLayer::track_body`] ([`BodyEnd`]) wraps the body in
//! an [`ArenaBody`] to get them back, at the cost of one wrapper per
//! response (and axum boxing it once more).
//!
//! ## Finding the handle
//! A handler takes [`RequestArena`] as an axum extractor, or calls
//! [`RequestArena::current`] from anywhere in the request's future: the
//! layer marks its request current on the thread for each poll, so neither
//! needs the request's extensions map. Code that wants the handle from the
//! extensions (a hyper service that moves the request elsewhere) opts in
//! with [`ArenaLayer::request_extension`].
//!
//! ## The pool
//! A lease pops the current thread's cache of idle arenas (a few, most
//! recently used first: no lock, no atomic read-modify-write), then the
//! thread's shard, then the other shards, before it builds an arena; a
//! release pushes back the same way (see [`PoolStats`]). All idle arenas
//! together own at most [`ArenaLayer::max_retained_bytes`] (64 MiB by
//! default, whatever the core count); an arena that grew past
//! [`ArenaLayer::max_retained_arena_bytes`], or that holds parts for more
//! threads than [`ArenaLayer::max_retained_arena_threads`], gives all its
//! chunks back (`SyncArena::reset_and_shrink`) before it is pooled. The
//! memory model, with a worked example for 4, 16 and 64 workers, is in
//! `docs/advanced.md`.
//!
//! ## The byte limit
//! [`ArenaLayer::max_request_bytes`] bounds each request's arena. At the
//! limit, `try_*` methods return an error; anything else (a plain `alloc`,
//! or an arena `Vec` or hash map that must grow) unwinds with
//! [`arena_b::LimitExceeded`], and the layer ends *that request* with
//! [`ArenaLayer::over_limit_status`] (413 by default) and a `WARN`; the
//! server and every other request go on. Put `CatchPanicLayer` outside
//! `ArenaLayer` (see [`ArenaLayer`] for the order of layers).
//!
//! ## Streaming
//! A body that sends one [`RequestArena::alloc_bytes`] buffer per chunk
//! runs in bounded memory: the buffer of a chunk hyper has written is
//! reused by the next one that fits. A body that allocates while it
//! streams can hit the byte limit after its status is sent: with
//! [`ArenaLayer::track_body`] the body then ends with an error (HTTP/2
//! resets the stream); by default the unwind ends the connection's task,
//! so use `track_body` for such bodies, or allocate their data before the
//! handler answers.
//!
//! Memory at peak is about `max_request_bytes` times the requests in
//! flight, plus the idle arenas the pool keeps (`docs/advanced.md`). glibc's
//! `malloc` keeps large freed chunks mapped after such a peak (its mmap
//! threshold adapts upwards), so a process's RSS can stay at its
//! high-water mark while the pool's `retained_bytes` is small; a fixed
//! `MALLOC_MMAP_THRESHOLD_` or mimalloc gives that memory back.
//!
//! A `SyncArena` gives every thread that allocates from it a part (a
//! sub-arena) of its own, kept until the arena is dropped or shrunk. Under a
//! tokio runtime with a fixed set of worker threads that is bounded: a
//! pooled arena owns at most one part per worker, and a handler that moves
//! between workers allocates in the part of whichever it runs on. A handler
//! that allocates from `spawn_blocking` threads adds parts for those too
//! (and blocking threads come and go); such an arena soon exceeds the
//! retention size and is shrunk, which forgets every part.
//!
//! ## Tracing
//! Every release emits one `DEBUG` event, target `arena_tower`, inside the
//! request's span (the span current when the service was called, such as
//! `tower_http::trace::TraceLayer`'s, or the one the [`RequestArena`]
//! extractor ran in, if that is another), with the fields `bytes_allocated`,
//! `chunks`, `peak_bytes`, `pool_hit`, `held_us` and `ended` (see
//! [`ArenaLayer`] for their meaning). With
//! [`record_span_fields`](ArenaLayer::record_span_fields) on (the default),
//! the span's own `arena.bytes`, `arena.chunks`, `arena.peak_bytes` and
//! `arena.pool_hit` fields are filled in when the span declares them. With
//! [`ArenaLayer::track_body`], when the body ends while handles are still
//! alive, a `WARN` event says how many (by default the layer cannot tell
//! the handles a body holds from the ones that outlive it, so it says
//! nothing: a handle kept forever shows only as `PoolStats::in_flight`).
//!
//! ## Features
//! - `axum` (default): [`RequestArena`] is an axum extractor.
//! - `debug`: forwards `arena-b/debug`.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

// Read them in the order a request flows through them: `layer` (makes the
// service) → `service` (its call) → `future` (the response) → `body` (with
// `track_body`) → `end` (when the response is done) → `handle` (what
// handlers hold; found through `current` and `extract`) → `lease` (the
// arena the handles share, counted by `lease_ref`) → `pool` (keeps it
// between requests). rustfmt keeps the declarations sorted.
mod body;
mod current;
mod end;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod handle;
mod layer;
mod lease;
mod lease_ref;
mod pool;
mod service;

pub use arena_b;
pub use body::{ArenaBody, BoxError};
pub use end::{BodyEnd, EndAt, ResponseEnd};
#[cfg(feature = "axum")]
pub use extract::MissingArenaLayer;
pub use future::ResponseFuture;
pub use handle::RequestArena;
pub use layer::ArenaLayer;
pub use pool::PoolStats;
pub use service::ArenaService;
