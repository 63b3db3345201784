//! `max_request_bytes` at its edge, against real servers on loopback: a
//! request that grows an arena collection past the limit gets the
//! configured status, and the server (the process) goes on answering. The
//! review found the first such request aborted the process.
#![cfg(feature = "axum")]

mod common;

use std::alloc::Layout;

use allocator_api2::vec::Vec as ArenaVec;
use arena_tower::{ArenaLayer, RequestArena};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use common::{eventually, request, run, serve, Capture};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::field::Empty;

const LIMIT: usize = 64 * 1024;

/// Copies the body into an arena `Vec`, `times` times over: the ordinary
/// way a handler outgrows its arena.
async fn copy_body(arena: RequestArena, body: Bytes) -> String {
    let times = body.first().map_or(1, |&b| usize::from(b - b'0').max(1));
    let mut copy = ArenaVec::new_in(&arena);
    for _ in 0..times {
        copy.extend_from_slice(&body);
    }
    format!("{} bytes", copy.len())
}

/// Counts the body's bytes in an arena hash map.
async fn count_bytes(arena: RequestArena, body: Bytes) -> String {
    let mut counts = hashbrown::HashMap::new_in(&arena);
    for (i, b) in body.iter().enumerate() {
        *counts.entry((i, *b)).or_insert(0u32) += 1;
    }
    format!("{} keys", counts.len())
}

/// `try_reserve` and `try_*` methods still see errors.
async fn tries(arena: RequestArena) -> (StatusCode, String) {
    let err = arena
        .try_alloc_layout(Layout::from_size_align(1 << 20, 8).unwrap())
        .unwrap_err();
    let mut v: ArenaVec<u8, _> = ArenaVec::new_in(&arena);
    let reserve = arena_b::fallible(|| v.try_reserve(1 << 20));
    assert!(reserve.is_err());
    (StatusCode::PAYLOAD_TOO_LARGE, err.to_string())
}

#[derive(Clone, Copy, Debug)]
enum CatchPanic {
    Absent,
    Outside,
    Inside,
}

fn app(layer: ArenaLayer, catch: CatchPanic) -> Router {
    let routes = Router::new()
        .route("/copy", post(copy_body))
        .route("/count", post(count_bytes))
        .route("/tries", post(tries));
    let routes = match catch {
        CatchPanic::Inside => routes.layer(CatchPanicLayer::new()).layer(layer),
        _ => routes.layer(layer),
    };
    let routes = match catch {
        CatchPanic::Outside => routes.layer(CatchPanicLayer::new()),
        _ => routes,
    };
    routes.layer(
        TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
            tracing::info_span!("request", uri = %req.uri(), arena.bytes = Empty)
        }),
    )
}

/// Over-limit requests, each followed by 100 normal ones, three rounds.
async fn over_limit_then_normal(addr: std::net::SocketAddr, path: &str, expect: StatusCode) {
    let big = format!("9{}", "x".repeat(20 * 1024)); // copied 9 times: 180 KiB
    for round in 0..3 {
        let (status, body) = request(addr, "POST", path, &big).await;
        assert_eq!(status, expect, "round {round}: {body:?}");
        for i in 0..100 {
            let (status, body) = request(addr, "POST", path, "1 small body").await;
            assert_eq!(status, StatusCode::OK, "round {round}, request {i}");
            assert!(!body.is_empty());
        }
    }
}

fn check_server(catch: CatchPanic) {
    let capture = Capture::default();
    let layer = ArenaLayer::new().max_request_bytes(LIMIT);
    run(&capture, async {
        let addr = serve(app(layer.clone(), catch)).await;
        // Past the limit the layer answers; CatchPanicLayer inside it
        // catches the unwind first and answers 500. Either way the server
        // (this process) lives.
        let expect = match catch {
            CatchPanic::Inside => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::PAYLOAD_TOO_LARGE,
        };
        over_limit_then_normal(addr, "/copy", expect).await;
        over_limit_then_normal(addr, "/count", expect).await;
        eventually("every arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    let releases = capture.releases();
    let over: Vec<_> = releases
        .iter()
        .filter(|e| e.field("ended") == Some("over_limit"))
        .collect();
    match catch {
        CatchPanic::Inside => assert!(over.is_empty()),
        _ => {
            assert_eq!(over.len(), 6, "{over:?}");
            let warnings: Vec<_> = capture
                .events()
                .into_iter()
                .filter(|e| e.target == "arena_tower" && e.fields.contains_key("max_request_bytes"))
                .collect();
            assert_eq!(warnings.len(), 6);
            for w in &warnings {
                assert_eq!(w.level, tracing::Level::WARN);
                assert_eq!(w.span.as_deref(), Some("request"), "in the request's span");
                assert_eq!(w.field("max_request_bytes"), Some("65536"));
                assert!(w.field("requested").unwrap().parse::<usize>().unwrap() > 0);
                assert_eq!(w.field("status"), Some("413"));
            }
        }
    }
    assert_eq!(releases.len(), 3 * 2 * 101, "every request released once");
}

#[test]
fn over_the_limit_without_catch_panic_layer_answers_413_and_the_server_goes_on() {
    check_server(CatchPanic::Absent);
}

#[test]
fn over_the_limit_with_catch_panic_layer_outside_answers_413() {
    check_server(CatchPanic::Outside);
}

#[test]
fn over_the_limit_with_catch_panic_layer_inside_answers_500_and_the_server_goes_on() {
    check_server(CatchPanic::Inside);
}

#[test]
fn the_status_is_configurable_and_try_methods_still_return_errors_naming_the_setting() {
    let capture = Capture::default();
    let layer = ArenaLayer::new()
        .max_request_bytes(LIMIT)
        .over_limit_status(StatusCode::SERVICE_UNAVAILABLE);
    run(&capture, async {
        let addr = serve(app(layer.clone(), CatchPanic::Absent)).await;
        over_limit_then_normal(addr, "/copy", StatusCode::SERVICE_UNAVAILABLE).await;
        let (status, body) = request(addr, "POST", "/tries", "").await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("raise ArenaLayer::max_request_bytes") && !text.contains("reset"),
            "the message names the setting the user configured: {text}"
        );
        assert!(text.contains("limit of 65536 bytes"), "{text}");
    });
}

#[test]
fn a_service_whose_call_hits_the_limit_gets_the_status() {
    use tower::{Layer, ServiceExt};
    let layer = ArenaLayer::new().max_request_bytes(LIMIT);
    let svc = layer.layer(tower::service_fn(|_req: http::Request<()>| {
        // Allocates in `call`, before the future exists.
        let arena = RequestArena::current().unwrap();
        arena.alloc_slice_fast(&vec![0u8; 2 * LIMIT]);
        async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
    }));
    let response = common::block_on(svc.oneshot(http::Request::new(()))).unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    drop(response);
    assert_eq!(layer.pool_stats().in_flight, 0);
}

#[test]
fn other_panics_are_not_caught_by_the_layer() {
    use tower::{Layer, ServiceExt};
    let layer = ArenaLayer::new().max_request_bytes(LIMIT);
    let svc = layer.layer(tower::service_fn(|_req: http::Request<()>| async {
        if true {
            std::panic::panic_any(42u32);
        }
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::block_on(svc.oneshot(http::Request::new(())))
    }))
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    assert_eq!(layer.pool_stats().in_flight, 0);
}

/// Without `max_request_bytes`, or under `LimitPolicy::ReturnError`, the
/// layer does not catch at all (nothing of the request's arena can unwind
/// with a limit). A regression test of what that must keep: a panic in the
/// service's `call`, in its future or in a tracked body goes through
/// unchanged, and the arena still goes back.
#[test]
fn without_a_limit_panics_go_through_uncaught_and_the_arena_goes_back() {
    use tower::{Layer, ServiceExt};
    fn payload_of(f: impl FnOnce()) -> u32 {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        *payload
            .downcast_ref::<u32>()
            .expect("the handler's own payload")
    }
    let layer = ArenaLayer::new();
    // In `call`, before any future exists.
    let in_call = layer.layer(tower::service_fn(|_req: http::Request<()>| {
        std::panic::panic_any(1u32);
        #[allow(unreachable_code)]
        std::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(
            String::new(),
        )))
    }));
    assert_eq!(
        payload_of(|| drop(common::block_on(in_call.oneshot(http::Request::new(()))))),
        1
    );
    assert_eq!(layer.pool_stats().in_flight, 0);
    // In the future.
    let in_future = layer.layer(tower::service_fn(|_req: http::Request<()>| async {
        if true {
            std::panic::panic_any(2u32);
        }
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    assert_eq!(
        payload_of(|| drop(common::block_on(in_future.oneshot(http::Request::new(()))))),
        2
    );
    assert_eq!(layer.pool_stats().in_flight, 0);
    assert!(
        RequestArena::current().is_none(),
        "no request is left current after the unwinds"
    );
    // In a tracked body's poll.
    struct PanickingBody;
    impl http_body::Body for PanickingBody {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::panic::panic_any(3u32)
        }
    }
    let tracked = ArenaLayer::new().track_body();
    let in_body = tracked.layer(tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(PanickingBody))
    }));
    let response = common::block_on(in_body.oneshot(http::Request::new(()))).unwrap();
    let mut body = response.into_body();
    assert_eq!(
        payload_of(|| {
            let _ = common::block_on(http_body_util::BodyExt::frame(&mut body));
        }),
        3
    );
    drop(body);
    assert_eq!(tracked.pool_stats().in_flight, 0);
    // A plain allocation over the limit under `ReturnError` panics with the
    // refusal's message, which is not caught either.
    let returns = ArenaLayer::new()
        .max_request_bytes(LIMIT)
        .limit_policy(arena_b::LimitPolicy::ReturnError);
    let over = returns.layer(tower::service_fn(|_req: http::Request<()>| async {
        let arena = RequestArena::current().expect("inside the layer");
        arena.alloc_slice_fill_copy(2 * LIMIT, 0u8);
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(common::block_on(over.oneshot(http::Request::new(()))))
    }))
    .unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .expect("the refusal's message");
    assert!(message.contains("max_request_bytes"), "{message}");
    assert_eq!(returns.pool_stats().in_flight, 0);
}

/// Review finding (a real server): a `Drop` that allocated in the arena
/// while the limit's unwind ran it unwound again, which aborts the process.
#[test]
fn a_destructor_that_allocates_during_the_limit_unwind_does_not_abort_the_server() {
    struct AllocOnDrop(RequestArena, usize);
    impl Drop for AllocOnDrop {
        fn drop(&mut self) {
            self.0.alloc_slice_fast(&vec![0u8; self.1]);
        }
    }
    async fn drop_alloc(arena: RequestArena) -> String {
        let _guard = AllocOnDrop(arena.clone(), 600_000);
        let mut v = ArenaVec::new_in(&arena);
        for i in 0..10_000_000u64 {
            v.push(i);
        }
        format!("{}", v.len())
    }
    let capture = Capture::default();
    let layer = ArenaLayer::new().max_request_bytes(LIMIT);
    run(&capture, async {
        let app = Router::new()
            .route("/", post(drop_alloc))
            .layer(layer.clone());
        let addr = serve(app).await;
        for _ in 0..5 {
            let (status, _) = request(addr, "POST", "/", "").await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        }
        eventually("every arena is back", || layer.pool_stats().in_flight == 0).await;
    });
}

/// Review finding: a limit hit in a task the handler spawned, feeding a
/// streaming body through a channel, made the stream end cleanly (a 200
/// with a silently truncated body) and logged nothing.
#[test]
fn a_limit_hit_in_a_spawned_task_ends_its_body_with_an_error_and_a_warning() {
    async fn chan_over(arena: RequestArena) -> axum::body::Body {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            loop {
                let chunk = arena.alloc_slice_fast(&[b'c'; 8192]);
                if tx.send(Bytes::copy_from_slice(chunk)).await.is_err() {
                    break;
                }
            }
        });
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            Some((Ok::<_, std::convert::Infallible>(rx.recv().await?), rx))
        });
        axum::body::Body::from_stream(chunks)
    }
    let capture = Capture::default();
    let layer = ArenaLayer::new().max_request_bytes(LIMIT).track_body();
    run(&capture, async {
        let app = Router::new()
            .route("/", get(chan_over))
            .layer(layer.clone())
            .layer(TraceLayer::new_for_http().make_span_with(
                |req: &http::Request<_>| tracing::info_span!("request", uri = %req.uri()),
            ));
        let addr = serve(app).await;
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get("/")
            .header(http::header::HOST, "localhost")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(response.into_body()).await;
        assert!(body.is_err(), "the cut-short body must not look complete");
        eventually("the arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].field("ended"), Some("over_limit"));
    let warned = capture
        .events()
        .into_iter()
        .any(|e| e.target == "arena_tower" && e.fields.contains_key("unwinds"));
    assert!(warned, "the release says an unwind happened out of reach");
}

/// Review finding: the layer answered 413 for any `LimitExceeded`, also one
/// from another arena the handler used on its own.
#[test]
fn another_arenas_limit_is_not_the_requests() {
    use tower::{Layer, ServiceExt};
    let layer = ArenaLayer::new().max_request_bytes(LIMIT);
    let svc = layer.layer(tower::service_fn(|_req: http::Request<()>| async {
        let own = arena_b::Arena::builder()
            .allocation_limit(1024)
            .limit_policy(arena_b::LimitPolicy::Unwind)
            .build();
        own.alloc_slice_fast(&[0u8; 4096]);
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::block_on(svc.oneshot(http::Request::new(())))
    }))
    .unwrap_err();
    assert!(arena_b::LimitExceeded::from_payload(&*payload).is_some());
    assert_eq!(layer.pool_stats().in_flight, 0);
}

/// A value whose destructor allocates `bytes` from the request's arena.
struct AllocOnDrop(RequestArena, usize);

impl Drop for AllocOnDrop {
    fn drop(&mut self) {
        self.0
            .alloc_layout(Layout::from_size_align(self.1, 1).unwrap());
    }
}

/// A handler future that holds an `AllocOnDrop` and, when polled,
/// allocates `poll_bytes` (past the limit, or not) before it answers.
struct Greedy {
    held: Option<AllocOnDrop>,
    poll_bytes: usize,
    drop_bytes: usize,
}

impl std::future::Future for Greedy {
    type Output = Result<http::Response<http_body_util::Empty<Bytes>>, std::convert::Infallible>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let arena = RequestArena::current().expect("polled inside the layer");
        let drop_bytes = self.drop_bytes;
        self.held = Some(AllocOnDrop(arena.clone(), drop_bytes));
        arena.alloc_layout(Layout::from_size_align(self.poll_bytes, 1).unwrap());
        std::task::Poll::Ready(Ok(http::Response::new(http_body_util::Empty::new())))
    }
}

fn status_of_greedy(poll_bytes: usize, drop_bytes: usize) -> StatusCode {
    use tower::{Layer, Service};
    let layer = ArenaLayer::new().max_request_bytes(LIMIT);
    let mut svc = layer.layer(tower::service_fn(move |_req: http::Request<()>| Greedy {
        held: None,
        poll_bytes,
        drop_bytes,
    }));
    let response = common::block_on(svc.call(http::Request::new(()))).unwrap();
    let status = response.status();
    drop(response);
    assert_eq!(layer.pool_stats().in_flight, 0);
    status
}

#[test]
fn a_destructor_over_the_limit_after_the_limit_unwind_still_gets_the_limit_status() {
    // The handler's future unwinds at the limit; dropping it runs a
    // destructor that allocates past the limit again, no longer unwinding.
    assert_eq!(
        status_of_greedy(LIMIT * 2, LIMIT + 1),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[test]
fn a_destructor_over_the_limit_after_the_answer_gets_the_limit_status() {
    // The handler answers within the limit; its future's destructor then
    // goes past it.
    assert_eq!(
        status_of_greedy(LIMIT / 2, LIMIT),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(status_of_greedy(16, 16), StatusCode::OK);
}

/// `bytes` in slices of 1,000 on this thread.
fn fill(arena: &RequestArena, bytes: usize) -> Result<(), String> {
    for done in (0..bytes).step_by(1000) {
        arena
            .try_alloc_slice_fill_copy(1000, 2u8)
            .map_err(|e| format!("after {done} bytes: {e}"))?;
    }
    Ok(())
}

#[test]
fn a_pooled_arena_serves_what_a_fresh_one_does() {
    // The second request allocates 9 KB here and 12 KB on another thread
    // (its task moved), 21 KB under a 64 KiB limit. After a first request
    // of 50 KB, its pooled arena kept a 48 KiB chunk that the second
    // request, charged for the whole chunk once it moves in, would leave
    // too little of the limit to for the other thread's first chunk: the
    // pool keeps arenas up to half the limit only.
    let second = |arena: &RequestArena| -> Result<(), String> {
        fill(arena, 9_000)?;
        let other = arena.clone();
        std::thread::scope(|s| s.spawn(move || fill(&other, 12_000)).join().unwrap())
    };
    let layer = ArenaLayer::new().max_request_bytes(64 * 1024).shards(1);
    assert_eq!(second(&layer.lease()), Ok(()), "on a fresh arena");
    let layer = ArenaLayer::new().max_request_bytes(64 * 1024).shards(1);
    let first = layer.lease();
    fill(&first, 50_000).unwrap();
    drop(first);
    assert_eq!(second(&layer.lease()), Ok(()), "on the pooled arena");
}
