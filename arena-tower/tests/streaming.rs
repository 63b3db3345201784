//! A streaming response built the documented way (`Body::from_stream`, one
//! `alloc_bytes` per chunk) runs in memory that does not grow with the
//! number of chunks, against a real server on loopback. The review found
//! every chunk kept until the end (200,000 chunks of 1 KiB: 196 MiB), and
//! under a byte limit a panic inside hyper and a truncated body.
#![cfg(feature = "axum")]

mod common;

use arena_tower::{ArenaLayer, RequestArena};
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use common::{eventually, request, run, serve, Capture};
use tracing::field::Empty;

const CHUNK: usize = 1024;

/// `chunks` chunks of 1 KiB, each copied into the arena with `alloc_bytes`.
async fn stream(arena: RequestArena, Path(chunks): Path<usize>) -> Body {
    let parts = futures_util::stream::unfold(0usize, move |i| {
        let arena = arena.clone();
        async move {
            if i == chunks {
                return None;
            }
            let line = [b'a' + (i % 26) as u8; CHUNK];
            let chunk = arena.alloc_bytes(&line);
            Some((Ok::<_, std::convert::Infallible>(chunk), i + 1))
        }
    });
    Body::from_stream(parts)
}

fn app(layer: ArenaLayer) -> Router {
    Router::new()
        .route("/stream/{chunks}", get(stream))
        .layer(layer)
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &http::Request<_>| {
                    tracing::info_span!(
                        "request",
                        uri = %req.uri(),
                        arena.bytes = Empty,
                        arena.peak_bytes = Empty,
                    )
                },
            ),
        )
}

#[test]
fn twenty_thousand_chunks_stream_in_bounded_memory_under_a_one_mib_limit() {
    let capture = Capture::default();
    // 20 MB of chunks through an arena limited to 1 MiB.
    let layer = ArenaLayer::new().max_request_bytes(1 << 20);
    let chunks = 20_000;
    run(&capture, async {
        let addr = serve(app(layer.clone())).await;
        let (status, body) = request(addr, "GET", &format!("/stream/{chunks}"), "").await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), chunks * CHUNK, "the whole body arrived");
        for (i, chunk) in body.chunks(CHUNK).enumerate() {
            assert!(
                chunk.iter().all(|&b| b == b'a' + (i % 26) as u8),
                "chunk {i}"
            );
        }
        eventually("the arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    let releases = capture.releases();
    assert_eq!(releases.len(), 1);
    let release = &releases[0];
    assert_eq!(release.field("ended"), Some("responded"));
    let peak: usize = release.field("peak_bytes").unwrap().parse().unwrap();
    let bytes: usize = release.field("bytes_allocated").unwrap().parse().unwrap();
    // hyper holds a few chunks at a time; the arena holds their buffers.
    assert!(peak < 256 * 1024, "peak {peak} bytes for {chunks} chunks");
    assert!(bytes < 256 * 1024, "{bytes} bytes for {chunks} chunks");
    assert!(layer.pool_stats().retained_bytes < 1 << 20);
}

/// `n` chunks, chunk `i` being `i + 1` bytes: sizes grow all the time.
async fn growing(arena: RequestArena, Path(chunks): Path<usize>) -> Body {
    let parts = futures_util::stream::unfold(0usize, move |i| {
        let arena = arena.clone();
        async move {
            if i == chunks {
                return None;
            }
            let chunk = arena.alloc_bytes(&vec![b'y'; i + 1]);
            Some((Ok::<_, std::convert::Infallible>(chunk), i + 1))
        }
    });
    Body::from_stream(parts)
}

/// Review finding: a stream whose chunks grow never found a spare buffer
/// big enough, so every chunk stayed (25,000 chunks: 310 MB).
#[test]
fn a_stream_of_growing_chunks_stays_bounded() {
    let capture = Capture::default();
    let layer = ArenaLayer::new().max_request_bytes(4 << 20);
    let chunks = 6000; // 18 MB in all, the largest chunk 6 KB
    run(&capture, async {
        let app = Router::new()
            .route("/growing/{chunks}", get(growing))
            .layer(layer.clone());
        let addr = serve(app).await;
        let (status, body) = request(addr, "GET", &format!("/growing/{chunks}"), "").await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), chunks * (chunks + 1) / 2);
        eventually("the arena is back", || layer.pool_stats().in_flight == 0).await;
    });
    let release = &capture.releases()[0];
    assert_eq!(release.field("ended"), Some("responded"));
    let peak: usize = release.field("peak_bytes").unwrap().parse().unwrap();
    assert!(peak < 1 << 20, "peak {peak} bytes");
}
