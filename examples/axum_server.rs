//! An axum server whose handlers do their scratch work in a per-request
//! arena (`arena_tower::ArenaLayer`), with per-request arena stats in the
//! `tracing` output.
//!
//! ```text
//! cargo run --example axum_server                 # http://127.0.0.1:3000
//! cargo run --example axum_server -- --port 8080  # or PORT=8080
//! cargo run --example axum_server -- --self-test  # ephemeral port, a few requests, exit
//! cargo run --example axum_server -- --no-arena   # the same server without ArenaLayer
//!
//! curl -s localhost:3000/words -H 'content-type: application/json' \
//!      -d '{"text": "the cat and the hat and the bat", "top": 2}'
//! curl -s localhost:3000/sum -H 'content-type: application/json' -d '[3, 1, 4, 1, 5, 9, 2, 6]'
//! curl -s localhost:3000/stats
//! curl -s localhost:3000/slow/200      # answers after 200 ms
//! curl -s localhost:3000/stream/5      # five chunks, 10 ms apart, built in the arena
//! curl -s localhost:3000/panic         # a handler that panics: 500, arena still reclaimed
//! ```
//!
//! `--no-arena` serves `/words` with the same logic on the global allocator
//! and without the layer, for comparisons (`scripts/load-test`).
//!
//! `RUST_LOG` overrides the default filter (`info,arena_tower=debug`).
//! In `--self-test` mode the server answers `ARENA_EXAMPLE_REQUESTS`
//! concurrent `/words` requests (default 50) plus one of each other kind,
//! checks every answer and prints a summary on stdout (logs go to stderr).

use std::borrow::Cow;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use allocator_api2::vec::Vec as ArenaVec;
use arena_tower::{ArenaLayer, RequestArena};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// `POST /words` input. `text` borrows from the request body when it has
/// no escapes.
#[derive(Deserialize)]
struct WordsIn<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(default = "default_top")]
    top: usize,
}

fn default_top() -> usize {
    3
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct WordsOut {
    words: usize,
    distinct: usize,
    top: Vec<(String, u32)>,
}

/// Counts words. Everything temporary (the body copy, lower-cased words,
/// the hash map and the sort buffer) lives in the request's arena and is
/// freed in one go when the response has been sent.
async fn words(arena: RequestArena, body: Bytes) -> Result<Json<WordsOut>, (StatusCode, String)> {
    // The body, copied into the arena so the parsed `&str`s can borrow it.
    let body: &[u8] = arena.alloc_slice_fast(&body);
    let input: WordsIn<'_> =
        serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;

    let mut counts = hashbrown::HashMap::new_in(&arena);
    let mut total = 0;
    for word in input
        .text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        total += 1;
        let word: &str = if word.chars().any(char::is_uppercase) {
            arena.alloc_str(&word.to_lowercase())
        } else {
            arena.alloc_str(word)
        };
        *counts.entry(word).or_insert(0u32) += 1;
    }
    let mut ranked = ArenaVec::with_capacity_in(counts.len(), &arena);
    ranked.extend(counts.iter().map(|(w, n)| (*n, *w)));
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    Ok(Json(WordsOut {
        words: total,
        distinct: counts.len(),
        top: ranked
            .iter()
            .take(input.top)
            .map(|(n, w)| (w.to_string(), *n))
            .collect(),
    }))
}

/// `/words` without the layer (`--no-arena`): the same work on the global
/// allocator.
async fn words_plain(body: Bytes) -> Result<Json<WordsOut>, (StatusCode, String)> {
    let input: WordsIn<'_> =
        serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut counts = hashbrown::HashMap::new();
    let mut total = 0;
    for word in input
        .text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        total += 1;
        let word: String = if word.chars().any(char::is_uppercase) {
            word.to_lowercase()
        } else {
            word.to_owned()
        };
        *counts.entry(word).or_insert(0u32) += 1;
    }
    let mut ranked: Vec<(u32, &str)> = Vec::with_capacity(counts.len());
    ranked.extend(counts.iter().map(|(w, n)| (*n, w.as_str())));
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    Ok(Json(WordsOut {
        words: total,
        distinct: counts.len(),
        top: ranked
            .iter()
            .take(input.top)
            .map(|(n, w)| (w.to_string(), *n))
            .collect(),
    }))
}

/// Answers after `ms` milliseconds, holding arena data across the wait.
async fn slow(arena: RequestArena, Path(ms): Path<u64>) -> String {
    let note = arena.alloc_str(&format!("slept {ms} ms"));
    tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    note.to_string()
}

/// Streams `chunks` chunks, 10 ms apart, each built in the arena
/// (`alloc_bytes`): the arena lives until the body is done or dropped, and
/// a chunk's buffer is reused once hyper has written it, so a long stream
/// runs in the memory of the chunks in flight.
async fn stream(arena: RequestArena, Path(chunks): Path<u32>) -> Body {
    let parts = futures_util::stream::unfold(0u32, move |i| {
        let arena = arena.clone();
        async move {
            if i >= chunks.min(10_000) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            let chunk = arena.alloc_bytes(format!("chunk {i}\n").as_bytes());
            Some((Ok::<_, std::convert::Infallible>(chunk), i + 1))
        }
    });
    Body::from_stream(parts)
}

/// Panics after allocating: `CatchPanicLayer` answers 500 and the arena is
/// reclaimed all the same.
async fn panic(arena: RequestArena) -> String {
    arena.alloc_str("allocated before the panic");
    panic!("this handler panics on purpose");
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct SumOut {
    count: usize,
    sum: i64,
    median: Option<i64>,
}

/// Sum and median of a JSON array of integers; the sort buffer is in the
/// arena.
async fn sum(arena: RequestArena, Json(numbers): Json<Vec<i64>>) -> Json<SumOut> {
    let sorted = arena.alloc_slice_fast(&numbers);
    sorted.sort_unstable();
    Json(SumOut {
        count: sorted.len(),
        sum: sorted.iter().sum(),
        median: sorted.get(sorted.len() / 2).copied(),
    })
}

/// The arena pool's counters.
async fn stats(State(layer): State<ArenaLayer>) -> Json<serde_json::Value> {
    let s = layer.pool_stats();
    Json(serde_json::json!({
        "leases": s.leases,
        "hits": s.hits,
        "misses": s.misses,
        "in_flight": s.in_flight,
        "retained_arenas": s.retained_arenas,
        "retained_bytes": s.retained_bytes,
        "retained_bytes_cap": s.retained_bytes_cap,
    }))
}

fn app(layer: ArenaLayer) -> Router {
    Router::new()
        .route("/words", post(words))
        .route("/sum", post(sum))
        .route("/stats", get(stats))
        .route("/slow/{ms}", get(slow))
        .route("/stream/{chunks}", get(stream))
        .route("/panic", get(panic))
        .with_state(layer.clone())
        // Inside TraceLayer (its span gets the arena fields) and inside
        // CatchPanicLayer (a request over max_request_bytes reaches the
        // layer, which answers 413).
        .layer(layer)
        .layer(CatchPanicLayer::new())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        uri = %req.uri(),
                        arena.bytes = tracing::field::Empty,
                        arena.chunks = tracing::field::Empty,
                        arena.pool_hit = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

fn port_from_args() -> u16 {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            let value = args.next().expect("--port needs a number");
            return value.parse().expect("--port needs a number");
        }
        if let Some(value) = arg.strip_prefix("--port=") {
            return value.parse().expect("--port needs a number");
        }
    }
    std::env::var("PORT")
        .ok()
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(3000)
}

async fn shutdown_signal() {
    tokio::signal::ctrl_c().await.expect("Ctrl-C handler");
    tracing::info!("Ctrl-C: finishing the requests in flight, then exiting");
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,arena_tower=debug".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let layer = ArenaLayer::new().max_request_bytes(4 << 20);
    if std::env::args().any(|a| a == "--self-test")
        || std::env::var_os("ARENA_EXAMPLE_REQUESTS").is_some()
    {
        self_test(layer).await;
        return;
    }

    let addr = SocketAddr::from(([127, 0, 0, 1], port_from_args()));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("address");
    if std::env::args().any(|a| a == "--no-arena") {
        println!("listening on http://{addr} without ArenaLayer (Ctrl-C to stop)");
        let plain = Router::new().route("/words", post(words_plain));
        axum::serve(listener, plain)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .expect("server");
        return;
    }
    println!("listening on http://{addr} (Ctrl-C to stop)");
    println!(
        "try: curl -s http://{addr}/words -H 'content-type: application/json' \
         -d '{{\"text\": \"the cat and the hat and the bat\", \"top\": 2}}'"
    );
    axum::serve(listener, app(layer.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .expect("server");
    println!("pool at exit: {:?}", layer.pool_stats());
}

/// One request on a fresh HTTP/1 connection.
async fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> (StatusCode, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    let status = res.status();
    (
        status,
        res.into_body().collect().await.expect("body").to_bytes(),
    )
}

/// Serves on an ephemeral port, sends requests to itself, checks the
/// answers, prints a summary and returns (the process then exits 0).
async fn self_test(layer: ArenaLayer) {
    let n: usize = std::env::var("ARENA_EXAMPLE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app(layer.clone()))
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .into_future(),
    );
    println!("self-test: server on http://{addr}");

    let (status, body) = send(
        addr,
        "POST",
        "/words",
        r#"{"text": "The cat and the hat and THE bat", "top": 2}"#,
    )
    .await;
    let out: WordsOut = serde_json::from_slice(&body).expect("JSON answer");
    println!("POST /words -> {status} {}", String::from_utf8_lossy(&body));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        out,
        WordsOut {
            words: 8,
            distinct: 5,
            top: vec![("the".into(), 3), ("and".into(), 2)]
        }
    );

    let (status, body) = send(addr, "POST", "/sum", "[3, 1, 4, 1, 5, 9, 2, 6]").await;
    println!("POST /sum -> {status} {}", String::from_utf8_lossy(&body));
    let out: SumOut = serde_json::from_slice(&body).expect("JSON answer");
    assert_eq!(
        out,
        SumOut {
            count: 8,
            sum: 31,
            median: Some(4)
        }
    );

    let (status, body) = send(addr, "GET", "/slow/20", "").await;
    println!(
        "GET /slow/20 -> {status} {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"slept 20 ms"[..]));
    let (status, body) = send(addr, "GET", "/stream/3", "").await;
    println!(
        "GET /stream/3 -> {status} {:?}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(&body[..], b"chunk 0\nchunk 1\nchunk 2\n");
    let (status, _) = send(addr, "GET", "/panic", "").await;
    println!("GET /panic -> {status}");
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let (status, body) = send(addr, "POST", "/words", "not json").await;
    println!("POST /words (bad JSON) -> {status}");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");

    // Concurrent requests, each with its own text and answer.
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(async move {
                let text = format!("alpha beta {} ", "gamma ".repeat(i % 7 + 2)).repeat(i % 5 + 1);
                let body = serde_json::json!({ "text": text, "top": 1 }).to_string();
                let (status, body) = send(addr, "POST", "/words", &body).await;
                assert_eq!(status, StatusCode::OK);
                let out: WordsOut = serde_json::from_slice(&body).expect("JSON answer");
                let reps = (i % 5 + 1) as u32;
                assert_eq!(
                    out.top,
                    vec![("gamma".to_string(), reps * (i % 7 + 2) as u32)]
                );
                assert_eq!(out.words as u32, reps * (2 + (i % 7 + 2) as u32));
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("request task");
    }
    println!("{n} concurrent POST /words: all answers correct");

    let (_, body) = send(addr, "GET", "/stats", "").await;
    println!("GET /stats -> {}", String::from_utf8_lossy(&body));

    // Every arena comes back once its response is done.
    for _ in 0..500 {
        if layer.pool_stats().in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = layer.pool_stats();
    stop.send(()).ok();
    server.await.expect("server task").expect("server");
    println!(
        "self-test: {} requests, {} pool hits, {} in flight, {} bytes retained (cap {})",
        stats.leases, stats.hits, stats.in_flight, stats.retained_bytes, stats.retained_bytes_cap
    );
    assert_eq!(stats.in_flight, 0);
    assert!(stats.retained_bytes <= stats.retained_bytes_cap);
    println!("self-test passed");
}
