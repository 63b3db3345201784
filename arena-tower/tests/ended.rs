//! `ended` in the release event for responses that were sent completely,
//! against real servers on loopback (HTTP/1 and HTTP/2). The review found
//! bodies with a declared length and bodies ending in trailers (every gRPC
//! response) reported as `body_dropped` ("the client went away"): hyper
//! stops polling after the last frame it needs.
#![cfg(feature = "axum")]

mod common;

use std::convert::Infallible;

use arena_tower::{ArenaLayer, BodyEnd, RequestArena};
use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::{eventually, raw_get, request, request_h2, run, serve, Capture};
use http_body::Frame;
use http_body_util::StreamBody;

/// `n` chunks of 100 bytes with an explicit `content-length`.
async fn sized(arena: RequestArena, Path(n): Path<usize>) -> Response {
    let parts = futures_util::stream::iter(
        (0..n).map(move |_| Ok::<_, Infallible>(arena.alloc_bytes(&[b'x'; 100]))),
    );
    Response::builder()
        .header(http::header::CONTENT_LENGTH, n * 100)
        .body(Body::from_stream(parts))
        .unwrap()
}

/// Two data frames, then trailers.
async fn trailers(arena: RequestArena) -> Response {
    let mut map = http::HeaderMap::new();
    map.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = vec![
        Ok::<_, Infallible>(Frame::data(arena.alloc_bytes(b"hello "))),
        Ok(Frame::data(Bytes::from_static(b"world"))),
        Ok(Frame::trailers(map)),
    ];
    Response::new(Body::new(StreamBody::new(futures_util::stream::iter(
        frames,
    ))))
}

fn app(layer: ArenaLayer<BodyEnd>) -> Router {
    Router::new()
        .route("/sized/{n}", get(sized))
        .route("/trailers", get(trailers))
        .layer(layer)
}

fn ended(capture: &Capture) -> Vec<String> {
    capture
        .releases()
        .iter()
        .map(|e| e.field("ended").unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn a_streamed_body_with_content_length_sent_completely_is_finished() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    run(&capture, async {
        let addr = serve(app(layer.clone())).await;
        for n in [1, 3, 50] {
            let (status, body) = request(addr, "GET", &format!("/sized/{n}"), "").await;
            assert_eq!((status.as_u16(), body.len()), (200, n * 100));
        }
        let (status, body, _) = request_h2(addr, "/sized/20").await;
        assert_eq!((status.as_u16(), body.len()), (200, 2000));
        eventually("every arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    assert_eq!(ended(&capture), ["finished"; 4]);
}

#[test]
fn a_body_ending_in_trailers_is_finished_over_http2_and_http1() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    run(&capture, async {
        let addr = serve(app(layer.clone())).await;
        let (status, body, trailers) = request_h2(addr, "/trailers").await;
        assert_eq!((status.as_u16(), &body[..]), (200, &b"hello world"[..]));
        assert_eq!(trailers.unwrap()["grpc-status"], "0");
        // HTTP/1, chunked with trailers (the client says it takes them).
        let raw = raw_get(addr, "/trailers", "te: trailers\r\n", |out| {
            out.ends_with(b"\r\n\r\n") && out.windows(5).any(|w| w == b"\r\n0\r\n")
        })
        .await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("hello ") && text.contains("world"), "{text}");
        eventually("every arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    assert_eq!(ended(&capture), ["finished"; 2]);
}

#[test]
fn a_head_response_is_body_dropped_as_documented() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().track_body();
    run(&capture, async {
        let addr = serve(app(layer.clone())).await;
        let (status, body) = request(addr, "HEAD", "/sized/3", "").await;
        assert_eq!((status.as_u16(), body.len()), (200, 0));
        eventually("every arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    assert_eq!(ended(&capture), ["body_dropped"]);
}
