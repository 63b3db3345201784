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
//! 1. the response has ended: its body yielded its last frame or an error,
//!    or was dropped (hyper drops a body unpolled when the client goes
//!    away), or the handler failed or was dropped before it answered; the
//!    first of these counts, once;
//! 2. no [`RequestArena`] handle remains: a handler may clone one into a
//!    spawned task, or into a [`bytes::Bytes`] made by
//!    [`RequestArena::alloc_bytes`]; the arena then lives until the last
//!    one is dropped.
//!
//! Both conditions are one reference count: the handle is an `Arc`, the body
//! holds one clone until its end, and the release is the `Drop` of the last.
//! `SyncArena::reset` takes `&mut self`, which that `Drop` has, so no
//! reference into the arena can survive the reset.
//!
//! ## The pool
//! Arenas are kept in a pool sharded by thread (see [`PoolStats`]): a lease
//! is a pop from the current thread's stack of idle arenas, a release a
//! push to the releasing thread's; an empty shard steals from the others
//! before building a new arena. Arenas that grew past
//! [`ArenaLayer::max_retained_arena_bytes`], or that hold parts for more
//! threads than [`ArenaLayer::max_retained_arena_threads`], give all their
//! chunks back (`SyncArena::reset_and_shrink`) before they are pooled, and
//! a full shard drops the arena, so the pool never retains more than
//! `shards × retained_per_shard × max_retained_arena_bytes` bytes.
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
//! reused by the next one that fits.
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
//! `arena.pool_hit` fields are filled in when the span declares them. When
//! the response ends while handles are still alive, a `WARN` event says how
//! many.
//!
//! ## Features
//! - `axum` (default): [`RequestArena`] is an axum extractor.
//! - `debug`: forwards `arena-b/debug`.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

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
