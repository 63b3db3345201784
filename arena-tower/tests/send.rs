//! A handler future that holds arena allocations across `.await` is
//! `Send`: checked at compile time (and run once).

use std::convert::Infallible;

use arena_tower::{ArenaLayer, RequestArena};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use tower::{service_fn, ServiceBuilder, ServiceExt};

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

const _: fn() = || {
    assert_send_sync_clone::<RequestArena>();
    assert_send_sync_clone::<ArenaLayer>();
};

/// Allocations of every kind held across an `.await`.
async fn scratch(arena: RequestArena) -> usize {
    let mut numbers = allocator_api2::vec::Vec::new_in(&arena);
    numbers.extend(0..100u32);
    let mut map = hashbrown::HashMap::new_in(&arena);
    map.insert("key", 1u32);
    let text: &mut str = arena.alloc_str("held across an await");
    let boxed = allocator_api2::boxed::Box::new_in(5u64, &arena);
    tokio::task::yield_now().await;
    numbers.push(100);
    map.insert("other", 2);
    numbers.len() + map.len() + text.len() + *boxed as usize
}

#[test]
fn handler_future_holding_arena_allocations_is_send() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let svc = ServiceBuilder::new()
            .layer(ArenaLayer::new())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async move {
                let arena = RequestArena::current().unwrap();
                // `tokio::spawn` and `assert_send` both demand `Send`.
                let n = tokio::spawn(assert_send(scratch(arena))).await.unwrap();
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(n.to_string()))))
            }));
        let res = svc.oneshot(Request::new(Empty::new())).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"128");
    });
}

#[cfg(feature = "axum")]
/// An axum handler with the same allocations compiles, which needs its
/// future to be `Send`.
#[test]
fn axum_handler_with_arena_allocations_compiles() {
    async fn handler(arena: RequestArena) -> String {
        scratch(arena).await.to_string()
    }
    let _app: axum::Router = axum::Router::new()
        .route("/", axum::routing::get(handler))
        .layer(ArenaLayer::new());
}
