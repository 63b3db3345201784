//! Release edge cases, without an executor.

use std::convert::Infallible;

use arena_tower::{ArenaLayer, RequestArena};
use http::{Request, Response};
use http_body_util::Empty;
use tower::{Layer, Service};

mod common;
use common::block_on;

struct PanicsOnDrop;
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a destructor panics at the release");
    }
}

#[test]
fn a_destructor_panicking_at_the_release_does_not_escape_and_the_pool_recovers() {
    let layer = ArenaLayer::new();
    let mut svc = layer.layer(tower::service_fn(|req: Request<bool>| async move {
        let arena = req.extensions().get::<RequestArena>().unwrap();
        if *req.body() {
            arena.alloc(PanicsOnDrop);
        }
        arena.alloc(String::from("a value next to it"));
        Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new()))
    }));
    std::panic::set_hook(Box::new(|_| {}));
    for round in 0..20 {
        let response = block_on(svc.call(Request::new(round % 2 == 0))).unwrap();
        drop(response); // the release runs here; its panic is caught
        assert_eq!(layer.pool_stats().in_flight, 0, "round {round}");
    }
    let _ = std::panic::take_hook();
    assert!(layer.pool_stats().hits >= 5, "{:?}", layer.pool_stats());
}

#[test]
fn the_byte_limit_is_per_request_even_for_arenas_other_threads_used() {
    // Regression (review): chunks a pooled arena kept from a request on
    // another thread counted against the next request's limit.
    let layer = ArenaLayer::new()
        .shards(1)
        .max_request_bytes(100 * 1024)
        .max_retained_arena_bytes(1 << 20);
    let big = vec![7u8; 60 * 1024];
    std::thread::scope(|s| {
        s.spawn(|| assert!(layer.lease().try_alloc_bytes(&big).is_ok()));
    });
    let arena = layer.lease();
    assert!(layer.pool_stats().hits >= 1, "the same arena came back");
    assert!(
        arena.try_alloc_bytes(&big).is_ok(),
        "the limit counted another thread's chunks"
    );
    assert!(
        arena.try_alloc_bytes(&big).is_err(),
        "120 KiB in one request under a 100 KiB limit"
    );
}
