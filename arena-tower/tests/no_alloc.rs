//! "No heap allocation for the lease in steady state": a lease and its
//! release, alone and inside an in-process request, counted with a
//! counting global allocator (per thread, so the test harness's other
//! threads do not interfere).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;

use arena_tower::{ArenaLayer, RequestArena};
use http::{Request, Response};
use http_body_util::Empty;
use tower::{Layer, Service};

mod common;
use common::block_on;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + bytes as u64));
}

// SAFETY: forwards to the system allocator; the thread-local counter needs
// no allocation (const-initialized `Cell`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = FREES.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_closed_pool_lets_this_threads_cached_arenas_go_at_its_next_release() {
    // Frees (counted, not sized: with arena-b's `thread_local` feature a
    // chunk goes to the thread's chunk cache instead) when the last lease
    // of a closed pool is released: `cached` arenas sit in this thread's
    // cache beside it.
    let frees_at_last_release = |cached: usize| {
        let layer = ArenaLayer::new();
        let leases: Vec<_> = (0..=cached).map(|_| layer.lease()).collect();
        for lease in &leases {
            lease.alloc_slice_fill_copy(100, 1u8);
        }
        let mut leases = leases.into_iter();
        let last = leases.next().unwrap();
        drop(leases); // `cached` arenas in this thread's cache
        drop(layer); // the pool closes
        let before = FREES.with(Cell::get);
        drop(last);
        FREES.with(Cell::get) - before
    };
    let alone = frees_at_last_release(0);
    let with_three = frees_at_last_release(3);
    assert!(
        with_three >= 2 * alone,
        "{with_three} frees with three cached arenas, {alone} without: the cached arenas stayed"
    );
}

#[test]
fn a_closed_pool_lets_this_threads_cached_arenas_go_when_the_thread_serves_another_pool() {
    // Frees when a new layer first leases on this thread, after a closed
    // pool left `cached` arenas in this thread's cache.
    let frees_at_new_pool = |cached: usize| {
        let layer = ArenaLayer::new();
        let leases: Vec<_> = (0..cached).map(|_| layer.lease()).collect();
        for lease in &leases {
            lease.alloc_slice_fill_copy(100, 1u8);
        }
        drop(leases);
        drop(layer); // the pool closes, its arenas still in this thread's cache
        let other = ArenaLayer::new();
        let before = FREES.with(Cell::get);
        drop(other.lease());
        FREES.with(Cell::get) - before
    };
    let none = frees_at_new_pool(0);
    let with_three = frees_at_new_pool(3);
    assert!(
        with_three >= none + 3,
        "{with_three} frees with three cached arenas, {none} without: the cached arenas stayed"
    );
}

#[test]
fn a_closed_pool_lets_this_threads_cached_arenas_go_when_the_thread_switches_pools() {
    // `b` has a slot before `a` closes; leasing from `b` again (a switch
    // from `a`'s slot to `b`'s) lets `a`'s cached arenas go.
    let b = ArenaLayer::new();
    drop(b.lease());
    let a = ArenaLayer::new();
    let leases: Vec<_> = (0..3).map(|_| a.lease()).collect();
    for lease in &leases {
        lease.alloc_slice_fill_copy(100, 1u8);
    }
    drop(leases);
    drop(a); // the pool closes, three arenas in this thread's cache
    let before = FREES.with(Cell::get);
    drop(b.lease());
    let frees = FREES.with(Cell::get) - before;
    assert!(
        frees >= 3,
        "{frees} frees: the closed pool's cached arenas stayed"
    );
}

#[test]
fn a_lease_and_its_release_allocate_nothing_after_warm_up() {
    let layer = ArenaLayer::new();
    let round = || {
        let arena = layer.lease();
        let x = arena.alloc(7u64);
        let words = arena.alloc_str("scratch");
        assert_eq!((*x, &*words), (7, "scratch"));
        let copy = arena.clone();
        drop(arena);
        drop(copy);
    };
    for _ in 0..10 {
        round();
    }
    let before = allocations();
    for _ in 0..100_000 {
        round();
    }
    assert_eq!(
        allocations() - before,
        0,
        "heap allocations in 100,000 leases"
    );
    let stats = layer.pool_stats();
    assert_eq!(stats.in_flight, 0);
    assert!(stats.hits >= 100_000);
}

#[test]
fn leases_of_a_few_layers_interleaved_on_one_thread_allocate_nothing_after_warm_up() {
    // One router per layer, their requests interleaved on one worker: each
    // layer's pool keeps its own part of the thread's cache, so switching
    // between them neither allocates nor sends arenas to the shards.
    let layers: Vec<ArenaLayer> = (0..4).map(|_| ArenaLayer::new()).collect();
    let round = || {
        for layer in &layers {
            let arena = layer.lease();
            assert_eq!(*arena.alloc(7u64), 7);
        }
    };
    for _ in 0..10 {
        round();
    }
    let before = allocations();
    for _ in 0..10_000 {
        round();
    }
    assert_eq!(
        allocations() - before,
        0,
        "heap allocations in 10,000 rounds of leases from four layers"
    );
    for layer in &layers {
        let stats = layer.pool_stats();
        assert_eq!(stats.misses, 1, "one arena per layer: {stats:?}");
        assert_eq!(stats.retained_arenas, 1, "{stats:?}");
    }
}

#[test]
fn a_request_through_the_layer_allocates_only_what_the_service_does() {
    // The layer adds no allocation of its own: no extension, no body
    // wrapper, no `Arc`.
    let handler = |_req: Request<()>| async move {
        let arena = RequestArena::current().unwrap();
        arena.alloc([1u64; 16]);
        Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new()))
    };
    let layer = ArenaLayer::new();
    let mut svc = layer.layer(tower::service_fn(handler));
    let mut request = || {
        let fut = svc.call(Request::new(()));
        let res = block_on(fut).unwrap();
        drop(res);
    };
    for _ in 0..10 {
        request();
    }
    let before = allocations();
    for _ in 0..10_000 {
        request();
    }
    let per_request = (allocations() - before) as f64 / 10_000.0;
    // The same request without the layer (and without the arena).
    let mut plain = tower::service_fn(|_req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new()))
    });
    let before = allocations();
    for _ in 0..10_000 {
        drop(block_on(plain.call(Request::new(()))).unwrap());
    }
    let baseline = (allocations() - before) as f64 / 10_000.0;
    assert_eq!(
        per_request, baseline,
        "the layer added allocations per request ({per_request} vs {baseline})"
    );
    assert_eq!(layer.pool_stats().in_flight, 0);
}

/// Heap allocations of `rounds` requests through `router`, after warm-up,
/// the request (and its body) made and the response dropped included.
///
/// `with_state(())` first, as `axum::serve` does: a `Router<()>` called
/// directly converts its handlers into routes on every request, which
/// clones each layer into a new box.
fn allocations_through(router: axum::Router, body: &'static str, rounds: u64) -> u64 {
    use tower::ServiceExt;
    let router = router.with_state(());
    let request = || {
        let req = Request::post("/")
            .body(axum::body::Body::from(bytes::Bytes::from_static(
                body.as_bytes(),
            )))
            .unwrap();
        let response = block_on(router.clone().oneshot(req)).unwrap();
        assert!(response.status().is_success());
    };
    for _ in 0..10 {
        request();
    }
    let before = allocations();
    for _ in 0..rounds {
        request();
    }
    allocations() - before
}

/// Issue 16: through axum, end to end, a request with `ArenaLayer`
/// allocates exactly what it does with a no-op layer, and a handler's
/// scratch data in the request arena adds nothing either.
#[test]
fn through_axum_the_layer_allocates_what_a_no_op_layer_does() {
    use axum::routing::post;
    use tower::layer::util::Identity;

    async fn empty() {}
    /// Scratch work in the request's arena when there is one.
    async fn words(arena: Option<RequestArena>, body: String) -> &'static str {
        if let Some(arena) = arena {
            let mut words = allocator_api2::vec::Vec::new_in(&arena);
            for word in body.split(' ') {
                let word = arena.alloc_str(word);
                word.make_ascii_uppercase();
                words.push(&*word);
            }
            assert_eq!(words.len(), 4);
        }
        "ok"
    }
    const BODY: &str = "four words of scratch";
    let rounds = 1000;
    let empty_identity = axum::Router::new()
        .route("/", post(empty))
        .layer(Identity::new());
    let empty_arena = axum::Router::new()
        .route("/", post(empty))
        .layer(ArenaLayer::new());
    assert_eq!(
        allocations_through(empty_arena, BODY, rounds),
        allocations_through(empty_identity, BODY, rounds),
        "an empty route: ArenaLayer vs a no-op layer"
    );
    let layer = ArenaLayer::new();
    let words_identity = axum::Router::new()
        .route("/", post(words))
        .layer(Identity::new());
    let words_arena = axum::Router::new()
        .route("/", post(words))
        .layer(layer.clone());
    assert_eq!(
        allocations_through(words_arena, BODY, rounds),
        allocations_through(words_identity, BODY, rounds),
        "scratch in the request arena: no heap allocation"
    );
    let stats = layer.pool_stats();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.misses, 1, "one arena served every request: {stats:?}");
}

/// Review finding: `retained_per_shard(10_000_000)` took 470 MB when the
/// layer was built (every slot of every shard allocated up front), and
/// `shards(1_000_000)` 2 GB.
#[test]
fn pool_slots_are_not_allocated_up_front() {
    let before = BYTES.with(Cell::get);
    let layer = ArenaLayer::new().shards(64).retained_per_shard(10_000_000);
    let stats = layer.pool_stats(); // builds the pool
    let arena = layer.lease();
    drop(arena);
    let used = BYTES.with(Cell::get) - before;
    assert_eq!(stats.shards, 64);
    assert!(
        used < 256 * 1024,
        "{used} bytes to build a pool and lease once"
    );
}

#[test]
fn bad_settings_panic_with_a_message_naming_them() {
    fn message(f: impl FnOnce() -> ArenaLayer + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).unwrap_err();
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| payload.downcast_ref::<&str>().unwrap().to_string())
    }
    type Setting = Box<dyn FnOnce() -> ArenaLayer + std::panic::UnwindSafe>;
    let cases: [(&str, Setting); 7] = [
        (
            "max_request_bytes(0)",
            Box::new(|| ArenaLayer::new().max_request_bytes(0)),
        ),
        ("shards(0)", Box::new(|| ArenaLayer::new().shards(0))),
        (
            "shards(18446744073709551615)",
            Box::new(|| ArenaLayer::new().shards(usize::MAX)),
        ),
        (
            "shards(1000000)",
            Box::new(|| ArenaLayer::new().shards(1_000_000)),
        ),
        (
            "chunk_size(1099511627776)",
            Box::new(|| ArenaLayer::new().chunk_size(1 << 40)),
        ),
        (
            "chunk_size(0)",
            Box::new(|| ArenaLayer::new().chunk_size(0)),
        ),
        (
            "over_limit_status(200 OK)",
            Box::new(|| ArenaLayer::new().over_limit_status(http::StatusCode::OK)),
        ),
    ];
    for (setting, f) in cases {
        let text = message(f);
        assert!(text.contains(setting), "{setting}: {text}");
        assert!(!text.contains("capacity overflow"), "{text}");
    }
    // Huge counts are fine: nothing is allocated for them.
    let layer = ArenaLayer::new().retained_per_shard(usize::MAX);
    drop(layer.lease());
    assert_eq!(layer.pool_stats().retained_arenas, 1);
}
