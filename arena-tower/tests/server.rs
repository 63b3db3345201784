//! `ArenaLayer` in a real axum server on loopback: concurrency and
//! reordering, disconnects, panics, handles kept by spawned tasks,
//! streaming, the byte limit.
#![cfg(feature = "axum")]

mod common;

use std::alloc::Layout;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use arena_tower::{ArenaLayer, RequestArena};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::{eventually, request, run, serve, Capture, Lcg};
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::field::Empty;

#[derive(Clone, Default)]
struct AppState {
    /// Completion order of `/pattern` requests.
    finished: Arc<AtomicUsize>,
    /// `/keep`: the spawned task waits for this.
    keep: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    /// `/keep`: set by the destructor of a value in the kept arena.
    kept_value_dropped: Arc<AtomicBool>,
}

/// The test app behind `layer`: an `ArenaLayer` of either `EndAt`.
fn app<L>(layer: L, state: AppState) -> Router
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<http::Request<axum::body::Body>> + Clone + Send + Sync + 'static,
    <L::Service as tower::Service<http::Request<axum::body::Body>>>::Response:
        axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<http::Request<axum::body::Body>>>::Error:
        Into<std::convert::Infallible> + 'static,
    <L::Service as tower::Service<http::Request<axum::body::Body>>>::Future: Send + 'static,
{
    Router::new()
        .route("/pattern/{id}", get(pattern))
        .route("/stream/{ticks}", get(stream))
        .route("/panic", get(panics))
        .route("/keep", get(keep))
        .route("/big/try", get(big_try))
        .route("/big/alloc", get(big_alloc))
        .with_state(state)
        .layer(layer)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                tracing::info_span!(
                    "request",
                    uri = %req.uri(),
                    arena.bytes = Empty,
                    arena.chunks = Empty,
                    arena.peak_bytes = Empty,
                    arena.pool_hit = Empty,
                )
            }),
        )
}

/// A 500 that carries the panic message.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
}

fn word(id: u64, round: u64, i: u64) -> u64 {
    (id << 40) ^ (round << 32) ^ i.wrapping_mul(0x9E37_79B9)
}

/// Fills the request's arena with a request-unique pattern over several
/// rounds separated by random sleeps, and checks all of it just before
/// answering.
async fn pattern(
    State(state): State<AppState>,
    arena: RequestArena,
    Path(id): Path<u64>,
) -> Result<String, (StatusCode, String)> {
    let mut rng = Lcg::new(id);
    let mut blocks: Vec<(u64, &[u64])> = Vec::new();
    let mut labels: Vec<&String> = Vec::new();
    let mut grown = allocator_api2::vec::Vec::new_in(&arena);
    let mut map = hashbrown::HashMap::new_in(&arena);
    for round in 0..6u64 {
        let n = 1 + rng.next() % 300;
        let words: Vec<u64> = (0..n).map(|i| word(id, round, i)).collect();
        blocks.push((round, &*arena.alloc_slice_fast(&words)));
        labels.push(&*arena.alloc(format!("request {id} round {round}")));
        grown.extend((0..n).map(|i| word(id, round + 100, i)));
        map.insert(round, word(id, round, 7));
        tokio::time::sleep(Duration::from_millis(rng.next() % 25)).await;
    }
    let mut sum = 0u64;
    for (round, block) in &blocks {
        for (i, &w) in block.iter().enumerate() {
            if w != word(id, *round, i as u64) {
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("request {id}: block {round} word {i} corrupted"),
                ));
            }
            sum = sum.wrapping_add(w);
        }
    }
    for (round, label) in labels.iter().enumerate() {
        if **label != format!("request {id} round {round}") {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("request {id}: label {round} corrupted"),
            ));
        }
    }
    let mut k = 0;
    for round in 0..6u64 {
        let n = blocks[round as usize].1.len() as u64;
        for i in 0..n {
            if grown[k] != word(id, round + 100, i) {
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("request {id}: vec corrupted"),
                ));
            }
            k += 1;
        }
        if map.get(&round) != Some(&word(id, round, 7)) {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("request {id}: map corrupted"),
            ));
        }
    }
    let order = state.finished.fetch_add(1, Ordering::SeqCst);
    Ok(format!("{id} {sum} {order}"))
}

fn expected_sum(id: u64) -> u64 {
    let mut rng = Lcg::new(id);
    let mut sum = 0u64;
    for round in 0..6u64 {
        let n = 1 + rng.next() % 300;
        for i in 0..n {
            sum = sum.wrapping_add(word(id, round, i));
        }
        rng.next();
    }
    sum
}

#[test]
fn concurrent_requests_each_keep_their_own_arena() {
    let capture = Capture::default();
    let layer = ArenaLayer::new();
    let state = AppState::default();
    run(&capture, async {
        let addr = serve(app(layer.clone(), state.clone())).await;
        for wave in 0..2u64 {
            let tasks: Vec<_> = (0..250u64)
                .map(|i| {
                    let id = wave * 1000 + i;
                    tokio::spawn(async move {
                        let (status, body) =
                            request(addr, "GET", &format!("/pattern/{id}"), "").await;
                        let body = String::from_utf8(body.to_vec()).unwrap();
                        assert_eq!(status, StatusCode::OK, "{body}");
                        let mut parts = body.split(' ');
                        assert_eq!(parts.next().unwrap().parse::<u64>().unwrap(), id);
                        assert_eq!(
                            parts.next().unwrap().parse::<u64>().unwrap(),
                            expected_sum(id)
                        );
                        parts.next().unwrap().parse::<usize>().unwrap()
                    })
                })
                .collect();
            let mut order = Vec::new();
            for task in tasks {
                order.push(task.await.unwrap());
            }
            // Completion order differs from start order.
            let inversions = order.windows(2).filter(|w| w[0] > w[1]).count();
            assert!(
                inversions > 10,
                "requests finished in start order: {order:?}"
            );
        }
        eventually("every arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    let stats = layer.pool_stats();
    assert_eq!(stats.leases, 500);
    assert!(
        stats.hits > 0,
        "the second wave reuses pooled arenas: {stats:?}"
    );
    assert!(
        stats.retained_bytes <= stats.retained_bytes_cap,
        "{stats:?}"
    );
    let releases = capture.releases();
    assert_eq!(releases.len(), 500);
    // The default `ResponseEnd`: each ends when its handler answers.
    assert!(releases
        .iter()
        .all(|e| e.field("ended") == Some("responded")));
    assert!(capture.outlived_warnings().is_empty());
}

/// A streaming body that yields `left` frames, one per `period`, built in
/// the request's arena. It holds a handle itself.
struct Ticks {
    arena: RequestArena,
    n: usize,
    left: usize,
    sleep: Pin<Box<tokio::time::Sleep>>,
    period: Duration,
}

impl http_body::Body for Ticks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        ready!(self.sleep.as_mut().poll(cx));
        let period = self.period;
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::now() + period);
        self.left -= 1;
        self.n += 1;
        let line = format!("tick {}\n", self.n);
        let bytes = self.arena.alloc_bytes(line.as_bytes());
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

use std::future::Future;

async fn stream(arena: RequestArena, Path(ticks): Path<usize>) -> Response {
    let period = if ticks > 100 {
        Duration::from_millis(5)
    } else {
        Duration::from_millis(1)
    };
    let body = Ticks {
        arena,
        n: 0,
        left: ticks,
        sleep: Box::pin(tokio::time::sleep(period)),
        period,
    };
    Response::new(axum::body::Body::new(body))
}

#[test]
fn streaming_response_is_built_in_the_arena() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    run(&capture, async {
        let addr = serve(app(layer.clone(), AppState::default())).await;
        let (status, body) = request(addr, "GET", "/stream/50", "").await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body.to_vec()).unwrap();
        let expected: String = (1..=50).map(|n| format!("tick {n}\n")).collect();
        assert_eq!(text, expected);
        eventually("the arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].field("ended"), Some("finished"));
    // The body's own handle and the `Bytes` frames are not "left behind".
    assert!(capture.outlived_warnings().is_empty());
}

#[test]
fn client_disconnecting_mid_stream_releases_the_arena() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    run(&capture, async {
        let addr = serve(app(layer.clone(), AppState::default())).await;
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /stream/100000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains("tick 3\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "server closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        assert_eq!(
            layer.pool_stats().in_flight,
            1,
            "the stream is still running"
        );
        drop(conn); // the client goes away mid-stream
        eventually("the dropped body releases the arena", || {
            layer.pool_stats().in_flight == 0
        })
        .await;
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].field("ended"), Some("body_dropped"));
}

async fn panics(arena: RequestArena) -> &'static str {
    arena.alloc(String::from("allocated before the panic"));
    panic!("handler panicked on purpose");
}

#[test]
fn panicking_handler_behind_catch_panic_releases_the_arena() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    run(&capture, async {
        let addr = serve(app(layer.clone(), AppState::default())).await;
        let (status, _) = request(addr, "GET", "/panic", "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        eventually("the arena is back", || layer.pool_stats().in_flight == 0).await;
        // The server keeps serving, from the pool.
        let (status, _) = request(addr, "GET", "/pattern/7", "").await;
        assert_eq!(status, StatusCode::OK);
        eventually("the arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 2);
    assert_eq!(releases[0].field("ended"), Some("handler_dropped"));
    // (The second request may lease on another worker, whose thread cache
    // does not hold the first one's arena: a pool hit is not certain.)
    assert_eq!(layer.pool_stats().leases, 2);
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn keep(State(state): State<AppState>, arena: RequestArena) -> &'static str {
    let release = state
        .keep
        .lock()
        .unwrap()
        .take()
        .expect("one /keep request");
    let flag = state.kept_value_dropped.clone();
    let kept = arena.clone();
    tokio::spawn(async move {
        let data = kept.alloc_str("still usable after the response");
        kept.alloc(SetOnDrop(flag));
        release.await.ok();
        assert_eq!(data, "still usable after the response");
        drop(kept);
    });
    "answered"
}

#[test]
fn handle_kept_by_a_spawned_task_delays_the_release() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    let state = AppState::default();
    let (tx, rx) = oneshot::channel();
    *state.keep.lock().unwrap() = Some(rx);
    run(&capture, async {
        let addr = serve(app(layer.clone(), state.clone())).await;
        let (status, body) = request(addr, "GET", "/keep", "").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"answered"[..]));
        eventually("the response's end is reported", || {
            !capture.outlived_warnings().is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            layer.pool_stats().in_flight,
            1,
            "the task still holds the arena"
        );
        assert!(!state.kept_value_dropped.load(Ordering::SeqCst));
        assert!(capture.releases().is_empty());
        tx.send(()).unwrap();
        eventually("the task's drop releases the arena", || {
            layer.pool_stats().in_flight == 0
        })
        .await;
    });
    assert!(
        state.kept_value_dropped.load(Ordering::SeqCst),
        "reset ran the destructor"
    );
    let warning = &capture.outlived_warnings()[0];
    assert_eq!(warning.field("handles"), Some("1"));
    assert_eq!(warning.span.as_deref(), Some("request"));
    assert_eq!(warning.span_field("uri"), Some("/keep"));
    let releases = capture.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].field("ended"), Some("handle_outlived"));
}

async fn big_try(arena: RequestArena) -> Result<&'static str, (StatusCode, String)> {
    arena.alloc_str("a little is fine");
    match arena.try_alloc_layout(Layout::from_size_align(1 << 20, 8).unwrap()) {
        Ok(_) => Ok("allocated"),
        Err(e) => Err((StatusCode::PAYLOAD_TOO_LARGE, e.to_string())),
    }
}

async fn big_alloc(arena: RequestArena) -> &'static str {
    arena.alloc_slice_fast(&vec![1u8; 1 << 20]);
    "allocated"
}

#[test]
fn request_over_the_byte_limit() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().max_request_bytes(64 * 1024);
    run(&capture, async {
        let addr = serve(app(layer.clone(), AppState::default())).await;
        let (status, body) = request(addr, "GET", "/big/try", "").await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:?}");
        // A plain allocation over the limit unwinds; the layer answers
        // 413 (CatchPanicLayer sits outside it), see tests/limit.rs.
        let (status, body) = request(addr, "GET", "/big/alloc", "").await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:?}");
        // Under the limit all is well.
        let (status, _) = request(addr, "GET", "/pattern/3", "").await;
        assert_eq!(status, StatusCode::OK);
        eventually("every arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    assert_eq!(capture.releases().len(), 3);
}

#[test]
fn extractor_without_the_layer_is_a_500_naming_arena_layer() {
    use tower::ServiceExt;
    let capture = Capture::default();
    run(&capture, async {
        let app: Router =
            Router::new().route("/", get(|_arena: RequestArena| async { "unreachable" }));
        let response = app
            .oneshot(
                http::Request::get("/")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("ArenaLayer"), "{text}");

        // `Option<RequestArena>` does not reject.
        let app: Router = Router::new().route(
            "/",
            get(|arena: Option<RequestArena>| async move { format!("{}", arena.is_some()) }),
        );
        let response = app
            .oneshot(
                http::Request::get("/")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let _ = response.into_response();
    });
}
