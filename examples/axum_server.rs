//! An axum server whose handlers do their scratch work in a per-request
//! arena (`arena_tower::ArenaLayer`), with per-request arena stats in the
//! `tracing` output.
//!
//! ```text
//! cargo run --example axum_server                 # http://127.0.0.1:3000
//! cargo run --example axum_server -- --port 8080  # or PORT=8080; --port 0 picks a free port
//! cargo run --example axum_server -- --no-arena   # the same /words without ArenaLayer
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
//! It prints `listening on http://ADDR` once it listens (scripts and
//! `tests/axum_server.rs` read the address there). `--no-arena` serves only
//! `/words`, the same work on the global allocator (`scripts/load-test`).
//! `RUST_LOG` overrides the log filter (`info,arena_tower=debug`, stderr).

use std::borrow::Cow;
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
use serde::{Deserialize, Serialize};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::field::Empty;
use tracing::Level;

/// `POST /words` input (`top` defaults to 3). `text` borrows from the body
/// when it has no escapes.
#[derive(Deserialize)]
struct WordsIn<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    top: Option<usize>,
}

#[derive(Serialize)]
struct WordsOut {
    words: usize,
    distinct: usize,
    top: Vec<(String, u32)>,
}

type Answer<T> = Result<Json<T>, (StatusCode, String)>;

fn parse(body: &[u8]) -> Result<WordsIn<'_>, (StatusCode, String)> {
    serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

/// The words of `text`, lower-cased (borrowed when they already are).
fn words_of(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    let words = text.split(|c: char| !c.is_alphanumeric());
    words.filter(|w| !w.is_empty()).map(|w| {
        if w.chars().any(char::is_uppercase) {
            w.to_lowercase().into()
        } else {
            w.into()
        }
    })
}

/// Sorts `(count, word)` by count, most frequent first, then by word.
fn rank(words: usize, ranked: &mut [(u32, &str)], top: usize) -> Json<WordsOut> {
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let top = ranked.iter().take(top).map(|(n, w)| (w.to_string(), *n));
    Json(WordsOut {
        words,
        distinct: ranked.len(),
        top: top.collect(),
    })
}

/// Counts words. Everything temporary (the body copy, lower-cased words,
/// the hash map and the sort buffer) lives in the request's arena and is
/// freed in one go when the response has been sent.
async fn words(arena: RequestArena, body: Bytes) -> Answer<WordsOut> {
    // The body, copied into the arena so the parsed `&str`s can borrow it.
    let input = parse(arena.alloc_slice_fast(&body))?;
    let mut counts = hashbrown::HashMap::new_in(&arena);
    let mut total = 0;
    for word in words_of(&input.text) {
        total += 1;
        *counts.entry(&*arena.alloc_str(&word)).or_insert(0u32) += 1;
    }
    let mut ranked = ArenaVec::with_capacity_in(counts.len(), &arena);
    ranked.extend(counts.iter().map(|(w, n)| (*n, *w)));
    Ok(rank(total, &mut ranked, input.top.unwrap_or(3)))
}

/// `/words` on the global allocator, without the layer (`--no-arena`).
async fn words_plain(body: Bytes) -> Answer<WordsOut> {
    let input = parse(&body)?;
    let mut counts = hashbrown::HashMap::new();
    let mut total = 0;
    for word in words_of(&input.text) {
        total += 1;
        *counts.entry(word.into_owned()).or_insert(0u32) += 1;
    }
    let mut ranked: Vec<(u32, &str)> = counts.iter().map(|(w, n)| (*n, w.as_str())).collect();
    Ok(rank(total, &mut ranked, input.top.unwrap_or(3)))
}

#[derive(Serialize)]
struct SumOut {
    count: usize,
    sum: i64,
    median: Option<i64>,
}

/// Sum and median of a JSON array of integers; the sort buffer is in the
/// arena. A sum that does not fit in an `i64` is a 422, not a wrapped
/// number.
async fn sum(
    arena: RequestArena,
    Json(numbers): Json<Vec<i64>>,
) -> Result<Json<SumOut>, (StatusCode, &'static str)> {
    let sorted = arena.alloc_slice_fast(&numbers);
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied();
    let sum = sorted
        .iter()
        .try_fold(0i64, |sum, &n| sum.checked_add(n))
        .ok_or((
            StatusCode::UNPROCESSABLE_ENTITY,
            "the sum does not fit in a 64-bit signed integer\n",
        ))?;
    Ok(Json(SumOut {
        count: sorted.len(),
        sum,
        median,
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
/// a chunk's buffer is reused once hyper has written it.
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

/// The arena pool's counters.
async fn stats(State(layer): State<ArenaLayer>) -> Json<serde_json::Value> {
    let s = layer.pool_stats();
    Json(serde_json::json!({
        "leases": s.leases, "hits": s.hits, "misses": s.misses, "in_flight": s.in_flight,
        "retained_arenas": s.retained_arenas, "retained_bytes": s.retained_bytes,
        "retained_bytes_cap": s.retained_bytes_cap,
    }))
}

fn app(layer: ArenaLayer) -> Router {
    let span = |req: &Request<_>| {
        tracing::info_span!("request", method = %req.method(), uri = %req.uri(),
            arena.bytes = Empty, arena.chunks = Empty, arena.pool_hit = Empty)
    };
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
                .make_span_with(span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// `--port N`, `--port=N` or `PORT`, else 3000; 0 picks a free port.
fn port() -> u16 {
    let mut value = std::env::var("PORT").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            value = Some(args.next().expect("--port needs a number"));
        } else if let Some(v) = arg.strip_prefix("--port=") {
            value = Some(v.to_owned());
        }
    }
    value.map_or(3000, |v| v.parse().expect("the port must be a number"))
}

async fn shutdown_signal() {
    tokio::signal::ctrl_c().await.expect("Ctrl-C handler");
    tracing::info!("Ctrl-C: finishing the requests in flight, then exiting");
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,arena_tower=debug".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let addr = SocketAddr::from(([127, 0, 0, 1], port()));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("address");
    if std::env::args().any(|a| a == "--no-arena") {
        println!("listening on http://{addr} without ArenaLayer (Ctrl-C to stop)");
        let plain = Router::new().route("/words", post(words_plain));
        let server = axum::serve(listener, plain).with_graceful_shutdown(shutdown_signal());
        server.await.expect("server");
        return;
    }
    let layer = ArenaLayer::new().max_request_bytes(4 << 20);
    println!("listening on http://{addr} (Ctrl-C to stop)");
    println!(
        "try: curl -s http://{addr}/words -H 'content-type: application/json' \
         -d '{{\"text\": \"the cat and the hat and the bat\", \"top\": 2}}'"
    );
    let server =
        axum::serve(listener, app(layer.clone())).with_graceful_shutdown(shutdown_signal());
    server.await.expect("server");
    println!("pool at exit: {:?}", layer.pool_stats());
}
