//! `arena-tower` benchmarks, in process (no sockets): every contender in one
//! binary, so the ratios come from one run.
//!
//! * `layer_overhead` (criterion): `lease_release` (`ArenaLayer::lease()`
//!   and the drop of its handle: the pool's lease, the reset, the pool's
//!   release) next to `tls_bump_pool` (the hand-rolled pool users write
//!   instead: a thread-local `Vec<bumpalo::Bump>`, pop, reset, push) and
//!   `bump_new` (`Bump::new()` and its drop), each with one allocation.
//! * Interleaved rounds (`support/ratios.rs`: ratios taken within each
//!   round, robust to this machine's bursts of load), through axum's
//!   `Router::oneshot`:
//!   - `axum_empty`: an empty route with a no-op layer
//!     (`tower::layer::util::Identity`, the reference), the same with a
//!     handler that takes axum's cheapest extractor (`http::Method`: what
//!     any extractor costs in axum), with `ArenaLayer`, and with
//!     `ArenaLayer` and a handler that takes the `RequestArena` extractor:
//!     the `+ns` column is the layer's cost per request;
//!   - `axum_scratch`, `axum_tree`, `axum_word_count`, `axum_csv`: handlers
//!     (see `support/workloads.rs`) on `request_arena` (`ArenaLayer` and the
//!     extractor, the reference), `request_arena_local` (the same through
//!     `RequestArena::local`), `tls_bump_pool`, `bump_new` (a
//!     `bumpalo::Bump::new()` in the handler) and `std_system` (std
//!     collections on the system allocator); then, in a second run of this
//!     binary that the first starts itself with mimalloc as the global
//!     allocator (`ARENA_BENCH_GLOBAL=mimalloc`, `support/global.rs`),
//!     `request_arena_mimalloc` against `tls_bump_pool_mimalloc` and
//!     `std_mimalloc`.
//!
//! Arguments: criterion's (`--quick`: 3 rounds of 300 instead of 11 of
//! 3,000); a name filters both parts.
//!
//! Futures are polled with a no-op waker: nothing here ever waits.

#![allow(missing_docs)]

#[path = "support/global.rs"]
mod global;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/ratios.rs"]
mod ratios;
#[path = "support/workloads.rs"]
mod workloads;

use std::hint::black_box;
use std::time::Duration;

use allocator_api2::alloc::Global;
use arena_tower::{ArenaLayer, RequestArena};
use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use criterion::Criterion;
use http::Request;
use tower::ServiceExt;

use harness::{block_on, with_pooled_bump};
use workloads::{csv_body, parse_work, scratch_body, scratch_work, tree_body, tree_work};
use workloads::{word_count_work, TEXT};

#[global_allocator]
static GLOBAL: global::Switch = global::Switch;

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group
}

/// `router` as `axum::serve` runs it: its handlers turned into routes once
/// (`with_state`). Called directly, a `Router<()>` does that on every
/// request, cloning every layer into a new box.
fn serving(router: Router) -> Router {
    router.with_state(())
}

/// One POST (or GET) of `body` through `router`, answered 200.
fn request(router: &Router, method: http::Method, body: &'static str) {
    let request = Request::builder()
        .method(method)
        .uri("/work")
        .body(Body::from(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = block_on(router.clone().oneshot(request)).unwrap();
    assert!(response.status().is_success());
    drop(black_box(response));
}

fn layer_overhead(c: &mut Criterion) {
    let mut group = group(c, "layer_overhead");
    let layer = ArenaLayer::new();
    group.bench_function("lease_release", |b| {
        b.iter(|| {
            let arena = layer.lease();
            black_box(arena.alloc(black_box(1u64)));
        });
    });
    group.bench_function("tls_bump_pool", |b| {
        b.iter(|| {
            with_pooled_bump(|bump| {
                black_box(bump.alloc(black_box(1u64)));
            })
        });
    });
    group.bench_function("bump_new", |b| {
        b.iter(|| {
            let bump = bumpalo::Bump::new();
            black_box(bump.alloc(black_box(1u64)));
        });
    });

    group.finish();
}

/// The contenders of a handler group for `$work` on `$body`, as axum
/// routers, compared in interleaved rounds (`support/ratios.rs`): on the
/// system allocator `request_arena` (the reference), `request_arena_local`
/// (the same through `RequestArena::local`), `tls_bump_pool`,
/// `bump_new` and `std_system`; with mimalloc as the global allocator,
/// `request_arena_mimalloc`, `request_arena_local_mimalloc`,
/// `tls_bump_pool_mimalloc` and `std_mimalloc`.
macro_rules! handler_group {
    ($plan:expr, $name:literal, $work:ident, $body:expr) => {{
        async fn arena_handler(arena: RequestArena, body: String) -> String {
            $work(&body, &arena)
        }
        // Through this thread's part (`RequestArena::local`): no thread
        // look-up per allocation, as in the hand-rolled pool.
        async fn arena_local_handler(arena: RequestArena, body: String) -> String {
            $work(&body, arena.local())
        }
        async fn pool_handler(body: String) -> String {
            with_pooled_bump(|bump| $work(&body, bump))
        }
        async fn bump_new_handler(body: String) -> String {
            let bump = bumpalo::Bump::new();
            $work(&body, &bump)
        }
        async fn std_handler(body: String) -> String {
            $work(&body, Global)
        }
        let body: &'static str = $body;
        // Every contender gives the same answer.
        let expected = $work(body, Global);
        assert_eq!($work(body, &arena_b::Arena::new()), expected);
        let arena_router = || {
            Router::new()
                .route("/work", post(arena_handler))
                .layer(ArenaLayer::new())
        };
        let arena_local_router = || {
            Router::new()
                .route("/work", post(arena_local_handler))
                .layer(ArenaLayer::new())
        };
        let routers = if global::is_mimalloc() {
            vec![
                ("request_arena_mimalloc", arena_router()),
                ("request_arena_local_mimalloc", arena_local_router()),
                // The hand-rolled pool on mimalloc too: what an arena can
                // gain over mimalloc on this handler at best.
                (
                    "tls_bump_pool_mimalloc",
                    Router::new().route("/work", post(pool_handler)),
                ),
                (
                    "std_mimalloc",
                    Router::new().route("/work", post(std_handler)),
                ),
            ]
        } else {
            vec![
                ("request_arena", arena_router()),
                ("request_arena_local", arena_local_router()),
                (
                    "tls_bump_pool",
                    Router::new().route("/work", post(pool_handler)),
                ),
                (
                    "bump_new",
                    Router::new().route("/work", post(bump_new_handler)),
                ),
                (
                    "std_system",
                    Router::new().route("/work", post(std_handler)),
                ),
            ]
        };
        let routers: Vec<_> = routers
            .into_iter()
            .map(|(name, router)| (name, serving(router)))
            .collect();
        let mut contenders: Vec<ratios::Contender<'_>> = routers
            .iter()
            .map(|(name, router)| ratios::Contender {
                name,
                run: Box::new(move || request(router, http::Method::POST, body)),
            })
            .collect();
        let allocator = if global::is_mimalloc() {
            "mimalloc"
        } else {
            "system allocator"
        };
        ratios::compare(&format!("{} ({allocator})", $name), $plan, &mut contenders);
    }};
}

/// The layer's own cost: an empty route behind a no-op layer, `ArenaLayer`,
/// and `ArenaLayer` with the extractor.
fn axum_empty(plan: ratios::Plan) {
    async fn empty() {}
    async fn empty_extract(arena: RequestArena) {
        black_box(&arena);
    }
    // A handler with an extractor as cheap as axum has (a clone of the
    // request's method): what any extractor costs in axum, without ours.
    async fn empty_method(method: http::Method) {
        black_box(&method);
    }
    let routers = [
        (
            "identity",
            Router::new()
                .route("/work", get(empty))
                .layer(tower::layer::util::Identity::new()),
        ),
        (
            "identity_extract_method",
            Router::new()
                .route("/work", get(empty_method))
                .layer(tower::layer::util::Identity::new()),
        ),
        (
            "arena_layer",
            Router::new()
                .route("/work", get(empty))
                .layer(ArenaLayer::new()),
        ),
        (
            "arena_layer_extract",
            Router::new()
                .route("/work", get(empty_extract))
                .layer(ArenaLayer::new()),
        ),
    ]
    .map(|(name, router)| (name, serving(router)));
    let mut contenders: Vec<ratios::Contender<'_>> = routers
        .iter()
        .map(|(name, router)| ratios::Contender {
            name,
            run: Box::new(move || request(router, http::Method::GET, "")),
        })
        .collect();
    ratios::compare("axum_empty", plan, &mut contenders);
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The handler groups, unless the arguments filter for benches whose names
/// none of them contains.
fn handlers() {
    // Name filters: the arguments that are neither options nor the value
    // of a criterion option that takes one (`--measurement-time 3`).
    const WITH_VALUE: [&str; 8] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--save-baseline",
        "--baseline",
        "--profile-time",
    ];
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with("--") {
            filters.push(arg);
        }
    }
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let plan = ratios::Plan::from_args();
    if wanted("axum_empty") && !global::is_mimalloc() {
        axum_empty(plan);
    }
    if wanted("axum_scratch") {
        handler_group!(plan, "axum_scratch", scratch_work, leak(scratch_body()));
    }
    if wanted("axum_tree") {
        handler_group!(plan, "axum_tree", tree_work, leak(tree_body()));
    }
    if wanted("axum_word_count") {
        handler_group!(plan, "axum_word_count", word_count_work, TEXT);
    }
    if wanted("axum_csv") {
        handler_group!(plan, "axum_csv", parse_work, leak(csv_body()));
    }
}

fn main() {
    if !global::is_mimalloc() {
        let mut c = Criterion::default().configure_from_args();
        layer_overhead(&mut c);
        c.final_summary();
    }
    handlers();
    if !global::is_mimalloc() {
        // The mimalloc contenders: this binary again, on mimalloc, with the
        // same arguments (filters, `--quick`, `--bench`).
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args_os().skip(1))
            .env(global::GLOBAL_VAR, "mimalloc")
            .status()
            .expect("benches/tower: cannot run itself on mimalloc");
        std::process::exit(status.code().unwrap_or(1));
    }
}
