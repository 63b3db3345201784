//! The release event, the span fields and the end reasons, checked with a
//! capturing subscriber, in process.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use arena_tower::{ArenaBody, ArenaLayer, RequestArena};
use bytes::Bytes;
use common::Capture;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_http::trace::TraceLayer;
use tracing::field::Empty as EmptyField;
use tracing::Level;

/// Runs `f` on a current-thread runtime with `capture` as the subscriber.
fn traced<F: std::future::Future>(capture: &Capture, f: F) -> F::Output {
    let _guard = tracing::dispatcher::set_default(&capture.dispatch());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn span_for(req: &Request<Empty<Bytes>>) -> tracing::Span {
    tracing::info_span!(
        "request",
        uri = %req.uri(),
        arena.bytes = EmptyField,
        arena.chunks = EmptyField,
        arena.peak_bytes = EmptyField,
        arena.pool_hit = EmptyField,
    )
}

/// A handler that allocates `n` u64s in its arena.
async fn alloc_n(req: Request<Empty<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let n: usize = req
        .uri()
        .path()
        .trim_start_matches('/')
        .parse()
        .unwrap_or(0);
    let arena = RequestArena::current().unwrap();
    arena.alloc_slice_fast(&vec![7u64; n]);
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

#[test]
fn release_event_and_span_fields() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        let mut svc = ServiceBuilder::new()
            .layer(TraceLayer::new_for_http().make_span_with(span_for))
            .layer(layer.clone())
            .service(service_fn(alloc_n));
        for _ in 0..2 {
            let req = Request::get("/1000").body(Empty::new()).unwrap();
            let res = svc.ready().await.unwrap().call(req).await.unwrap();
            res.into_body().collect().await.unwrap();
        }
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 2);
    for (i, event) in releases.iter().enumerate() {
        assert_eq!(event.level, Level::DEBUG);
        assert_eq!(event.span.as_deref(), Some("request"));
        assert_eq!(event.span_field("uri"), Some("/1000"));
        let bytes: usize = event.field("bytes_allocated").unwrap().parse().unwrap();
        assert!((8000..9000).contains(&bytes), "{event:?}");
        let chunks: usize = event.field("chunks").unwrap().parse().unwrap();
        assert!(chunks >= 1);
        let peak: usize = event.field("peak_bytes").unwrap().parse().unwrap();
        assert!(peak >= bytes);
        event.field("held_us").unwrap().parse::<u64>().unwrap();
        assert_eq!(event.field("ended"), Some("finished"));
        let hit = if i == 0 { "false" } else { "true" };
        assert_eq!(event.field("pool_hit"), Some(hit));
        // The span's declared fields were recorded before the event.
        assert_eq!(
            event.span_field("arena.bytes"),
            Some(bytes.to_string().as_str())
        );
        assert_eq!(
            event.span_field("arena.chunks"),
            Some(chunks.to_string().as_str())
        );
        assert_eq!(
            event.span_field("arena.peak_bytes"),
            Some(peak.to_string().as_str())
        );
        assert_eq!(event.span_field("arena.pool_hit"), Some(hit));
    }
    assert!(capture.outlived_warnings().is_empty());
    let stats = layer.pool_stats();
    assert_eq!(
        (stats.leases, stats.hits, stats.misses, stats.in_flight),
        (2, 1, 1, 0)
    );
}

#[test]
fn span_recording_can_be_turned_off() {
    let capture = Capture::default();
    traced(&capture, async {
        let svc = ServiceBuilder::new()
            .layer(TraceLayer::new_for_http().make_span_with(span_for))
            .layer(ArenaLayer::new().track_body().record_span_fields(false))
            .service(service_fn(alloc_n));
        let res = svc
            .oneshot(Request::get("/10").body(Empty::new()).unwrap())
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].span_field("arena.bytes"), None);
    assert!(releases[0].field("bytes_allocated").is_some());
}

#[test]
fn body_dropped_unpolled() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        let svc = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(alloc_n));
        let res = svc
            .oneshot(Request::get("/10").body(Empty::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(layer.pool_stats().in_flight, 1);
        drop(res);
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    assert_eq!(capture.releases()[0].field("ended"), Some("body_dropped"));
}

#[test]
fn empty_body_ends_at_once() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        let svc = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }));
        let res = svc.oneshot(Request::new(Empty::new())).await.unwrap();
        // Ended (and released) before anyone polls the empty body.
        assert!(res.body().is_ended());
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    assert_eq!(capture.releases()[0].field("ended"), Some("finished"));
}

/// The `ended` field of each release event, in order.
fn release_ends(capture: &Capture) -> Vec<String> {
    capture
        .releases()
        .iter()
        .map(|e| e.field("ended").unwrap().to_owned())
        .collect()
}

/// Calls, through `$layer` (of either end type), a handler that allocates
/// and then fails.
macro_rules! call_failing_handler {
    ($layer:expr) => {{
        let failing = ServiceBuilder::new()
            .layer($layer.clone())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async move {
                RequestArena::current().unwrap().alloc(1u8);
                Err::<Response<Empty<Bytes>>, _>("handler failed")
            }));
        let err = failing
            .oneshot(Request::new(Empty::new()))
            .await
            .unwrap_err();
        assert_eq!(err, "handler failed");
    }};
}

#[test]
fn handler_error_and_dropped_future() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        call_failing_handler!(layer);

        let pending = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async {
                std::future::pending::<()>().await;
                Ok::<Response<Empty<Bytes>>, Infallible>(Response::new(Empty::new()))
            }));
        let future = pending.oneshot(Request::new(Empty::new()));
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(10), future).await;
        assert!(timed_out.is_err());
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    assert_eq!(
        release_ends(&capture),
        ["handler_failed", "handler_dropped"]
    );
}

/// The same ends without `track_body`, where the response future hands
/// the inner future's output back as it is (its fast path).
#[test]
fn handler_error_and_answer_without_body_tracking() {
    let capture = Capture::default();
    let layer = ArenaLayer::new();
    traced(&capture, async {
        call_failing_handler!(layer);

        let answering = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async {
                tokio::task::yield_now().await;
                RequestArena::current().unwrap().alloc(2u8);
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }));
        let res = answering.oneshot(Request::new(Empty::new())).await.unwrap();
        drop(res);
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    assert_eq!(release_ends(&capture), ["handler_failed", "responded"]);
}

/// A handler future whose own destructor panics once it has answered (on
/// the default layer's fast path, where it is dropped before the end is
/// recorded): the unwind leaves no request current, the arena is released
/// and the release says the handler's future was dropped.
#[test]
fn handler_future_panicking_in_drop_after_its_answer() {
    struct AnswerThenPanicOnDrop;
    impl std::future::Future for AnswerThenPanicOnDrop {
        type Output = Result<Response<Empty<Bytes>>, Infallible>;
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
            RequestArena::current().unwrap().alloc(1u8);
            Poll::Ready(Ok(Response::new(Empty::new())))
        }
    }
    impl Drop for AnswerThenPanicOnDrop {
        fn drop(&mut self) {
            std::panic::panic_any(7u32);
        }
    }
    let capture = Capture::default();
    let layer = ArenaLayer::new();
    traced(&capture, async {
        let svc = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Empty<Bytes>>| {
                AnswerThenPanicOnDrop
            }));
        let mut future = svc.oneshot(Request::new(Empty::new()));
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = std::future::Future::poll(Pin::new(&mut future), &mut cx);
        }));
        let payload = polled.unwrap_err();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&7));
        assert!(RequestArena::current().is_none());
        drop(future);
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    assert_eq!(release_ends(&capture), ["handler_dropped"]);
}

/// A body whose second frame is an error.
struct Failing(u8);

impl http_body::Body for Failing {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        self.0 += 1;
        Poll::Ready(Some(if self.0 == 1 {
            Ok(Frame::data(Bytes::from_static(b"first")))
        } else {
            Err("broken body")
        }))
    }
}

#[test]
fn body_error_ends_the_response() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        let svc = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Failing(0)))
            }));
        let res = svc.oneshot(Request::new(Empty::new())).await.unwrap();
        let mut body = res.into_body();
        assert!(body.frame().await.unwrap().is_ok());
        assert_eq!(layer.pool_stats().in_flight, 1);
        assert!(body.frame().await.unwrap().is_err());
        // Released at the error, before the body is dropped.
        assert!(body.is_ended());
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    assert_eq!(capture.releases()[0].field("ended"), Some("body_error"));
}

#[test]
fn frames_trailers_and_size_hint_are_forwarded() {
    traced(&Capture::default(), async {
        let svc = ServiceBuilder::new()
            .layer(ArenaLayer::new().track_body())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async move {
                let arena = RequestArena::current().unwrap();
                let data = arena.alloc_bytes(b"0123456789");
                let mut trailers = http::HeaderMap::new();
                trailers.insert("x-check", "ok".parse().unwrap());
                let body = Frames(vec![Frame::trailers(trailers), Frame::data(data)]);
                Ok::<_, Infallible>(Response::new(body))
            }));
        let res = svc.oneshot(Request::new(Empty::new())).await.unwrap();
        let collected = res.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-check"], "ok");
        assert_eq!(&collected.to_bytes()[..], b"0123456789");

        let svc = ServiceBuilder::new()
            .layer(ArenaLayer::new().track_body())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"12345"))))
            }));
        let res: Response<ArenaBody<Full<Bytes>>> =
            svc.oneshot(Request::new(Empty::new())).await.unwrap();
        assert_eq!(http_body::Body::size_hint(res.body()).exact(), Some(5));
        assert!(!http_body::Body::is_end_stream(res.body()));
    });
}

/// A body that yields the frames of a `Vec`, last first.
struct Frames(Vec<Frame<Bytes>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

#[test]
fn handle_outlives_the_response() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rx = std::sync::Mutex::new(Some(rx));
        let svc = ServiceBuilder::new()
            .layer(TraceLayer::new_for_http().make_span_with(span_for))
            .layer(layer.clone())
            .service(service_fn(move |_req: Request<Empty<Bytes>>| {
                let rx = rx.lock().unwrap().take().unwrap();
                async move {
                    let arena = RequestArena::current().unwrap();
                    tokio::spawn(async move {
                        rx.await.ok();
                        drop(arena);
                    });
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                }
            }));
        let res = svc
            .oneshot(Request::get("/kept").body(Empty::new()).unwrap())
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
        assert_eq!(layer.pool_stats().in_flight, 1);
        assert_eq!(capture.outlived_warnings().len(), 1);
        tx.send(()).unwrap();
        for _ in 0..100 {
            if layer.pool_stats().in_flight == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    let warning = &capture.outlived_warnings()[0];
    assert_eq!(warning.level, Level::WARN);
    assert_eq!(warning.field("handles"), Some("1"));
    assert_eq!(warning.span_field("uri"), Some("/kept"));
    let releases = capture.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].field("ended"), Some("handle_outlived"));
    assert_eq!(releases[0].span_field("uri"), Some("/kept"));
}

#[test]
fn alloc_bytes_keeps_the_arena_until_dropped() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        let svc = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async move {
                let arena = RequestArena::current().unwrap();
                let body = arena.alloc_bytes(b"hello arena");
                Ok::<_, Infallible>(Response::new(Full::new(body)))
            }));
        let res = svc.oneshot(Request::new(Empty::new())).await.unwrap();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        // The body has ended, but the `Bytes` still points into the arena.
        assert_eq!(layer.pool_stats().in_flight, 1);
        let slice = bytes.slice(6..);
        drop(bytes);
        assert_eq!(&slice[..], b"arena");
        assert_eq!(layer.pool_stats().in_flight, 1);
        drop(slice);
        assert_eq!(layer.pool_stats().in_flight, 0);
    });
    // `Bytes` owners are not handles left behind.
    assert!(capture.outlived_warnings().is_empty());
    assert_eq!(capture.releases()[0].field("ended"), Some("finished"));
}

#[cfg(feature = "debug")]
#[test]
fn debug_feature_reports_the_arena_contents_at_release() {
    let capture = Capture::default();
    traced(&capture, async {
        let svc = ServiceBuilder::new()
            .layer(TraceLayer::new_for_http().make_span_with(span_for))
            .layer(ArenaLayer::new().track_body())
            .service(service_fn(|_req: Request<Empty<Bytes>>| async move {
                let arena = RequestArena::current().unwrap();
                arena.alloc(String::from("pending drop"));
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }));
        svc.oneshot(Request::get("/debug").body(Empty::new()).unwrap())
            .await
            .unwrap();
    });
    let reports = capture.arena_events("request arena debug report");
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.span_field("uri"), Some("/debug"));
    assert!(report.field("debug_stats").unwrap().contains("DebugStats"));
    assert!(
        report
            .field("leak_report")
            .unwrap()
            .contains("1 value(s) awaiting drop"),
        "{report:?}"
    );
    assert!(capture.arena_events("request arena corrupted").is_empty());
}

/// Review finding: with the arena layer outside `TraceLayer`
/// (`.layer(TraceLayer..).layer(ArenaLayer..)` in axum), the release event
/// landed outside the request's span and its `arena.*` fields stayed empty.
#[cfg(feature = "axum")]
#[test]
fn the_release_lands_in_the_request_span_with_the_arena_layer_outside_trace_layer() {
    use axum::routing::get;
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    traced(&capture, async {
        async fn handler(arena: RequestArena) -> &'static str {
            arena.alloc_slice_fast(&[7u64; 100]);
            "ok"
        }
        let app = axum::Router::new()
            .route("/", get(handler))
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
                    tracing::info_span!(
                        "request",
                        uri = %req.uri(),
                        arena.bytes = EmptyField,
                        arena.chunks = EmptyField,
                        arena.peak_bytes = EmptyField,
                        arena.pool_hit = EmptyField,
                    )
                }),
            )
            .layer(layer.clone()); // outside TraceLayer
        for _ in 0..2 {
            let req = Request::get("/").body(axum::body::Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            res.into_body().collect().await.unwrap();
        }
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 2);
    for event in &releases {
        assert_eq!(event.span.as_deref(), Some("request"), "{event:?}");
        let bytes = event.field("bytes_allocated").unwrap();
        assert_eq!(event.span_field("arena.bytes"), Some(bytes));
        assert_eq!(event.field("ended"), Some("finished"));
    }
}
