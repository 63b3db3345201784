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
        let arena = RequestArena::current().unwrap();
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
    // Another thread fills its part; the release happens here, so the
    // arena lands in this thread's cache for the next lease.
    let used_elsewhere = std::thread::scope(|s| {
        s.spawn(|| {
            let arena = layer.lease();
            assert!(arena.try_alloc_bytes(&big).is_ok());
            arena
        })
        .join()
        .unwrap()
    });
    drop(used_elsewhere);
    let arena = layer.lease();
    assert!(layer.pool_stats().hits >= 1, "the same arena came back");
    // Kept: a dropped buffer would be reused by the next `alloc_bytes`.
    let _first = arena
        .try_alloc_bytes(&big)
        .expect("the limit counted another thread's chunks");
    assert!(
        arena.try_alloc_bytes(&big).is_err(),
        "120 KiB in one request under a 100 KiB limit"
    );
}

/// A subscriber layer that panics on every `arena_tower` event whose
/// message contains `needle`, counting them.
struct PanicsOn {
    needle: &'static str,
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicsOn {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if event.metadata().target() == "arena_tower" && message.0.contains(self.needle) {
            self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("a subscriber panics on {:?}", self.needle);
        }
    }
}

fn panicking_subscriber(
    needle: &'static str,
) -> (
    tracing::Dispatch,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tracing_subscriber::prelude::*;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let layer = PanicsOn {
        needle,
        seen: std::sync::Arc::clone(&seen),
    };
    (
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
        seen,
    )
}

/// Review finding: a subscriber panicking inside the release report made
/// `Lease::drop` report again, and the second panic aborted the process.
#[test]
fn a_subscriber_panicking_on_the_release_event_neither_aborts_nor_loses_the_arena() {
    let (dispatch, seen) = panicking_subscriber("request arena released");
    let layer = ArenaLayer::new().shards(1);
    let _quiet = QuietPanics::new();
    tracing::dispatcher::with_default(&dispatch, || {
        for round in 0..10 {
            let arena = layer.lease();
            arena.alloc(String::from("dropped at the release"));
            drop(arena); // the report panics inside; the release goes on
            let stats = layer.pool_stats();
            assert_eq!(stats.in_flight, 0, "round {round}");
            assert_eq!(stats.retained_arenas, 1, "round {round}: pooled, once");
        }
    });
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        10,
        "one report per release"
    );
    assert_eq!(layer.pool_stats().hits, 9, "the arena came back every time");
}

#[test]
fn a_subscriber_panicking_while_a_handler_unwinds_does_not_abort() {
    let (dispatch, seen) = panicking_subscriber("request arena released");
    let layer = ArenaLayer::new();
    let _quiet = QuietPanics::new();
    tracing::dispatcher::with_default(&dispatch, || {
        let mut svc = layer.layer(tower::service_fn(|_req: Request<()>| async move {
            let arena = RequestArena::current().unwrap();
            arena.alloc(1u64);
            if true {
                panic!("the handler panics holding its handle");
            }
            Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new()))
        }));
        for _ in 0..5 {
            // The handles drop during the unwind; the release report panics
            // then, inside a destructor, which must not abort.
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                block_on(svc.call(Request::new(())))
            }));
            assert!(unwound.is_err());
        }
    });
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_eq!(layer.pool_stats().in_flight, 0);
}

#[test]
fn a_subscriber_panicking_on_the_outlived_warning_does_not_abort() {
    let (dispatch, seen) = panicking_subscriber("still alive");
    let layer = ArenaLayer::new().track_body();
    let _quiet = QuietPanics::new();
    tracing::dispatcher::with_default(&dispatch, || {
        let kept = std::sync::Mutex::new(None);
        let mut svc = layer.layer(tower::service_fn(|_req: Request<()>| {
            *kept.lock().unwrap() = RequestArena::current();
            async { Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new())) }
        }));
        let response = block_on(svc.call(Request::new(()))).unwrap();
        drop(response); // the handle kept above outlives it: WARN, which panics
        assert_eq!(layer.pool_stats().in_flight, 1);
        kept.lock().unwrap().take();
    });
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(layer.pool_stats().in_flight, 0);
}

/// Silences the panic hook for the test's own panics (the runtime prints
/// nothing for them), restoring it on drop.
struct QuietPanics;

impl QuietPanics {
    fn new() -> QuietPanics {
        std::panic::set_hook(Box::new(|_| {}));
        QuietPanics
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        let _ = std::panic::take_hook();
    }
}

/// Review finding: 2,000 requests that each touched their arena from a new
/// short-lived thread left the next lease's arena with 2,000 parts, never
/// shrunk (only bytes counted).
#[test]
fn an_arena_touched_from_many_threads_is_shrunk_before_it_is_pooled() {
    let layer = ArenaLayer::new().shards(2);
    for _ in 0..2000 {
        let arena = layer.lease();
        std::thread::scope(|s| {
            s.spawn(|| arena.scope(|s| *s.alloc(())));
        });
        drop(arena);
    }
    let next = layer.lease();
    assert!(next.threads() <= 2, "{} parts kept", next.threads());
    drop(next);
    // Configurable, and a part per worker is kept as it is.
    let layer = ArenaLayer::new().shards(1).max_retained_arena_threads(3);
    for _ in 0..50 {
        let arena = layer.lease();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| arena.alloc(1u8).to_owned());
            }
        });
    }
    assert!(layer.lease().threads() <= 3);
}

/// Review finding: an idle chunk a pooled arena kept from an earlier
/// request on another thread failed a small allocation far under the
/// limit, and the message named the idle chunk's size.
#[test]
fn a_small_allocation_far_under_the_limit_succeeds_beside_an_idle_chunk() {
    let layer = ArenaLayer::new()
        .shards(1)
        .max_request_bytes(65_536)
        .max_retained_arena_bytes(1 << 20);
    // Request 1, on this thread: a 50 KB chunk, idle once released.
    let first = layer.lease();
    let big = first.alloc_bytes(&[1u8; 50_000]);
    drop(big);
    drop(first);
    // Request 2 uses 28,000 bytes on another thread, then 100 on this one.
    let arena = layer.lease();
    assert_eq!(layer.pool_stats().hits, 1);
    std::thread::scope(|s| {
        s.spawn(|| arena.alloc_slice_fast(&[2u8; 28_000]).len());
    });
    let mut v: allocator_api2::vec::Vec<u8, _> = allocator_api2::vec::Vec::new_in(&arena);
    assert!(arena_b::fallible(|| v.try_reserve(100)).is_ok());
    assert_eq!(arena.alloc_slice_fast(&[3u8; 100]).len(), 100);
}
